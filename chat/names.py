"""Room names and usernames: canonical room ids and the rules every name must meet.

Names follow the PRECIS framework (RFC 8264): usernames the UsernameCaseMapped profile of RFC 8265,
applied to each space-separated part; room names the Nickname profile of RFC 8266. On top of PRECIS
the Unicode security mechanisms of UTS #39 keep one name from imitating another: invisible and
blank characters, piles of combining marks, letters outside the identifier profile and mixed
scripts are refused, and look-alikes are compared by their confusable skeleton, in small letters
and in capitals. docs/NAMES.md tells the rules in plain words, and which libraries and Unicode data
versions they use.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import groupby
from typing import Callable, Iterable, Optional, Union

import icu
from precis_i18n import get_profile
from precis_i18n.derived import CONTEXTO, FREE_PVAL, PVALID, derived_property

from .errors import NP_, ChatError, N_, Plural

MAX_ROOM_NAME = 64
MAX_USERNAME = 32
# At most this many combining marks on one letter: Vietnamese uses two, Tibetan stacks and Burmese
# syllables up to four; more is "Zalgo" text that spills over the names around it.
MAX_MARKS = 4
# Unicode categories refused anywhere in a name: controls, format characters (bidi overrides,
# zero-width joiners), surrogates, private use, unassigned, line and paragraph separators.
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}

# PRECIS profiles (precis-i18n). Case mapping by full case folding, like the ids before PRECIS:
# "Straße" and "STRASSE", or a final and a medial Greek sigma, are one name.
_USER_DISPLAY = get_profile("UsernameCasePreserved")
_USER_KEY = get_profile("UsernameCaseMapped:CaseFold")
_ROOM_KEY = get_profile("NicknameCaseMapped:CaseFold")

# UTS #39 data from ICU (pyicu-wheels bundles it; see docs/NAMES.md for the versions).
_IGNORABLE = icu.UnicodeSet(r"[\p{Default_Ignorable_Code_Point}]")
_IDENTIFIER = icu.UnicodeSet(r"[\p{Identifier_Status=Allowed}]")
_EMOJI = icu.UnicodeSet(r"[\p{Emoji_Presentation}]")
# Identifier_Type (UTS #39 table 1): letters listed only as technical (small capitals, phonetic
# letters) or obsolete, which imitate the ordinary letters of their own script.
_ODD = icu.UnicodeSet(r"[[[\p{Identifier_Type=Technical}\p{Identifier_Type=Obsolete}]"
                      r"-[\p{Identifier_Type=Recommended}\p{Identifier_Type=Inclusion}\p{Identifier_Type=Limited_Use}"
                      r"\p{Identifier_Type=Uncommon_Use}\p{Identifier_Type=Exclusion}]]&[[:L:][:M:][:N:]]]")
_SPOOF = icu.SpoofChecker()
_SPOOF.setRestrictionLevel(icu.URestrictionLevel.HIGHLY_RESTRICTIVE)
_SPOOF.setChecks(icu.USpoofChecks.RESTRICTION_LEVEL | icu.USpoofChecks.MIXED_NUMBERS)
_SKELETON = icu.SpoofChecker()


def _prototype_parts() -> icu.UnicodeSet:
    """Every character of a recommended character's prototype, as is and case folded (ʜ for Cyrillic н).

    Room ids spell letters by their prototype and an id must itself be a room name, so these stay
    allowed. Han and Hangul are left out: ids keep them as they are.
    """
    recommended = icu.UnicodeSet(r"[[\p{Identifier_Type=Recommended}\p{Identifier_Type=Inclusion}]"
                                 r"-[\p{Script=Han}\p{Script=Hangul}\u0000-\u007f]]")
    parts = icu.UnicodeSet()
    chars = icu.UnicodeSetIterator(recommended)
    while chars.next():
        ch = chars.getString()
        look = _SKELETON.getSkeleton(0, ch)
        if look != ch:
            parts.addAll(look + unicodedata.normalize("NFKC", look).casefold())
    return parts


# Letters, marks and digits a room name may not use: the odd ones, but for the prototypes room ids use.
_ODD_IN_ROOMS = icu.UnicodeSet(_ODD).removeAll(_prototype_parts())
for _set in (_IGNORABLE, _IDENTIFIER, _EMOJI, _ODD_IN_ROOMS):
    _set.freeze()  # read-only from here on, and faster to query
_LIBRARY_ERRORS = (UnicodeError, ValueError, icu.ICUError)

ROOM_NAME, USERNAME = "room name", "username"  # the `what` of every check below
# A refusal's sentence, or its singular and plural forms (the count is passed beside it).
Sentence = Union[str, Plural]
# PRECIS's reasons for refusing a character: the sentence for a room name, then for a username.
_PRECIS_REASONS = {
    "symbols": (N_("The room name contains a symbol ({char})."),
                N_("The username contains a symbol ({char}).")),
    "punctuation": (N_("The room name contains a punctuation mark other than ASCII's ({char})."),
                    N_("The username contains a punctuation mark other than ASCII's ({char}).")),
    "spaces": (N_("The room name contains an unusual space ({char})."),
               N_("The username contains an unusual space ({char}).")),
    "has_compat": (N_("The room name contains a compatibility character (a styled or composed form of another "
                      "one) ({char})."),
                   N_("The username contains a compatibility character (a styled or composed form of another "
                      "one) ({char}).")),
    "other_letter_digits": (N_("The room name contains a character that is not an ordinary letter or digit "
                               "({char})."),
                            N_("The username contains a character that is not an ordinary letter or digit "
                               "({char}).")),
    "old_hangul_jamo": (N_("The room name contains a Hangul jamo or filler ({char})."),
                        N_("The username contains a Hangul jamo or filler ({char}).")),
    "precis_ignorable_properties": (N_("The room name contains an invisible character ({char})."),
                                    N_("The username contains an invisible character ({char}).")),
    "controls": (N_("The room name contains a control character ({char})."),
                 N_("The username contains a control character ({char}).")),
    "unassigned": (N_("The room name contains an unassigned code point ({char})."),
                   N_("The username contains an unassigned code point ({char}).")),
}
_PRECIS_OTHER = (N_("The room name contains a character PRECIS does not allow here ({char})."),
                 N_("The username contains a character PRECIS does not allow here ({char})."))
# RFC 5892 appendix A: characters PRECIS allows only next to certain others.
_CONTEXT_RULES = {"middle_dot", "greek_keraia", "hebrew_punctuation", "katakana_middle_dot", "arabic_indic",
                  "extended_arabic_indic", "zero_width_joiner", "zero_width_nonjoiner"}


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'UNNAMED')}"


def _refuse(what: str, room: Sentence, user: Sentence, params: Optional[dict] = None,
            count: Optional[int] = None) -> ChatError:
    """A bad_name refusal in the sentence for `what`: each is whole, so that it translates whole."""
    sentence = room if what == ROOM_NAME else user
    return ChatError("bad_name", sentence, params, count=count)


@lru_cache(maxsize=8192)
def _skeleton(text: str) -> str:
    """The UTS #39 confusable skeleton (NFD, each character replaced by its prototype, NFD)."""
    return _SKELETON.getSkeleton(0, text)


def _spaces(text: str) -> str:
    """Every space character as one ASCII space, none at the ends (RFC 8266's additional mapping)."""
    text = "".join(" " if unicodedata.category(ch) == "Zs" else ch for ch in text)
    return re.sub(" {2,}", " ", text).strip()


def _prepare(value: object, what: str, limit: int) -> str:
    """NFC text with ordinary spaces, non-empty, within the limit, without anything invisible."""
    if not isinstance(value, str):
        raise _refuse(what, N_("The room name must be text."), N_("The username must be text."))
    text = _spaces(unicodedata.normalize("NFC", value).strip())
    if not text:
        raise _refuse(what, N_("The room name is empty."), N_("The username is empty."))
    if len(text) > limit:
        raise _refuse(what, NP_("The room name is longer than {limit} character.",
                             "The room name is longer than {limit} characters."),
                      NP_("The username is longer than {limit} character.",
                       "The username is longer than {limit} characters."), {"limit": limit}, limit)
    for ch in text:
        if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
            raise _refuse(what, N_("The room name contains a control or invisible character ({char})."),
                          N_("The username contains a control or invisible character ({char})."),
                          {"char": _describe(ch)})
    for ch in text:
        if _IGNORABLE.contains(ch) or _skeleton(ch) == "":
            raise _refuse(what, N_("The room name contains an invisible or blank filler character ({char}), "
                                   "which would let it pass for another name."),
                          N_("The username contains an invisible or blank filler character ({char}), "
                             "which would let it pass for another name."), {"char": _describe(ch)})
    return text


def _check_marks(what: str, text: str) -> None:
    """Refuse combining marks with nothing to sit on, repeated on one letter, or piled up."""
    base = ""
    marks: list[str] = []
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.category(ch).startswith("M"):
            if not base or base == " ":
                raise _refuse(what, N_("The room name starts a word with a combining mark ({char})."),
                              N_("The username starts a word with a combining mark ({char})."),
                              {"char": _describe(ch)})
            if ch in marks:
                raise _refuse(what, N_("The room name repeats the combining mark {char} on one letter."),
                              N_("The username repeats the combining mark {char} on one letter."),
                              {"char": _describe(ch)})
            marks.append(ch)
            if len(marks) > MAX_MARKS:
                raise _refuse(what, NP_("The room name stacks more than {max} combining mark on one letter.",
                                     "The room name stacks more than {max} combining marks on one letter."),
                              NP_("The username stacks more than {max} combining mark on one letter.",
                               "The username stacks more than {max} combining marks on one letter."),
                              {"max": MAX_MARKS}, MAX_MARKS)
        else:
            base, marks = ch, []


def _precis_refusal(what: str, exc: UnicodeEncodeError) -> ChatError:
    """PRECIS's reason for refusing, as a sentence."""
    kind = exc.reason.rsplit("/", 1)[-1]
    if kind == "bidi_rule":
        return _refuse(what, N_("The room name mixes right-to-left and left-to-right text in a way that can "
                                "reorder it on screen (RFC 5893)."),
                       N_("The username mixes right-to-left and left-to-right text in a way that can "
                          "reorder it on screen (RFC 5893)."))
    if kind in ("empty", "not_idempotent") or exc.end - exc.start != 1:
        return _refuse(what, N_("The room name is not a valid name (PRECIS: {rule})."),
                       N_("The username is not a valid name (PRECIS: {rule})."), {"rule": kind.replace("_", " ")})
    ch = exc.object[exc.start]
    if kind in ("arabic_indic", "extended_arabic_indic"):
        return _refuse(what, N_("The room name mixes Arabic-Indic and Extended Arabic-Indic digits."),
                       N_("The username mixes Arabic-Indic and Extended Arabic-Indic digits."))
    if kind in _CONTEXT_RULES:
        return _refuse(what, N_("The room name uses {char} outside the words it belongs in."),
                       N_("The username uses {char} outside the words it belongs in."), {"char": _describe(ch)})
    room, user = _PRECIS_REASONS.get(kind, _PRECIS_OTHER)
    return _refuse(what, room, user, {"char": _describe(ch)})


def _invalid(what: str) -> ChatError:
    return _refuse(what, N_("The room name is not a valid name."), N_("The username is not a valid name."))


def _precis(profile, what: str, text: str, lenient_context: bool = False) -> str:
    """The profile's enforcement of `text`, or a bad_name refusal saying why.

    With `lenient_context`, a character that PRECIS allows only in some company (RFC 5892
    appendix A: the middle dot between two l's, Arabic-Indic digits of one kind) is allowed
    anywhere; every character is still checked against the string class.
    """
    try:
        return profile.enforce(text)
    except UnicodeEncodeError as exc:
        if not (lenient_context and exc.reason.rsplit("/", 1)[-1] in _CONTEXT_RULES):
            raise _precis_refusal(what, exc) from None
    except _LIBRARY_ERRORS:
        raise _invalid(what) from None
    try:
        mapped = profile.apply_five_rules(profile.apply_five_rules(text))
    except _LIBRARY_ERRORS:
        raise _invalid(what) from None
    for i, ch in enumerate(mapped):
        prop, kind = derived_property(ord(ch), profile.base.ucd)
        if prop not in (PVALID, FREE_PVAL, CONTEXTO):
            raise _precis_refusal(what, UnicodeEncodeError(profile.name, mapped, i, i + 1, "DISALLOWED/" + kind))
    return mapped


def _script_list(text: str) -> list[str]:
    """The scripts of the letters, marks and digits of `text` in order of appearance, without Common and Inherited."""
    seen: list[str] = []
    for ch in text:
        if unicodedata.category(ch)[0] in "LMN":
            name = icu.Script.getScript(ch).getName()
            if name not in ("Common", "Inherited") and name not in seen:
                seen.append(name)
    return seen


def _scripts(text: str) -> str:
    return ", ".join(_script_list(text))


def _words(text: str) -> list[str]:
    """The runs of letters, marks and digits in `text`: what a reader takes in as one word."""
    return ["".join(run) for is_word, run in groupby(text, lambda ch: unicodedata.category(ch)[0] in "LMN")
            if is_word]


# --- room names --------------------------------------------------------------------------------
def _room_symbol_ok(ch: str) -> bool:
    """Room names may hold any letter, mark or digit; other characters must be harmless."""
    if ch == " " or "!" <= ch <= "~" or unicodedata.category(ch)[0] in "LMN":
        return True
    if _IDENTIFIER.contains(ch) or _EMOJI.contains(ch):
        return True
    skeleton = _skeleton(ch)  # dashes, quotes and the like stand for the ASCII one they look like
    return skeleton != "" and all("!" <= c <= "~" for c in skeleton)


@lru_cache(maxsize=8192)
def _id_char_ok(ch: str) -> bool:
    """Whether a character may stand in a room id: ASCII, or a letter, mark or digit PRECIS allows."""
    if " " <= ch <= "~":
        return True
    if unicodedata.category(ch)[0] not in "LMN" or _ODD_IN_ROOMS.contains(ch):
        return False
    if _IGNORABLE.contains(ch) or _skeleton(ch) == "":
        return False
    try:
        _ROOM_KEY.enforce(ch)
    except _LIBRARY_ERRORS:
        return False
    return True


@lru_cache(maxsize=8192)
def _prototype(ch: str) -> str:
    """The UTS #39 prototype of one character, where that is itself fit for a room id.

    ASCII stays as it is, so a lowercase ASCII name is its own id, as it always was. A prototype
    that is a symbol or a conjoining jamo (the skeleton of く is ❬, of a Hangul syllable its
    decomposed jamo) would not be a room name itself, so such a character keeps its own form.
    """
    if ch < "\x80":
        return ch
    look = unicodedata.normalize("NFC", _skeleton(ch))
    folded = unicodedata.normalize("NFKC", look).casefold()
    if look == ch or not look or not all(_id_char_ok(c) for c in look + folded):
        return ch
    return look


def _check_room_letters(key: str) -> None:
    """Refuse odd letters (ᴀ, ꜰ) and words that mix scripts unless the id resolves them to one script.

    "Famіly" (Cyrillic і) is the room "family"; "ғamily" (Cyrillic ғ, whose prototype is r̵) has no
    ordinary Latin reading, so it would be a room of its own that looks like "family".
    """
    for ch in key:
        if _ODD_IN_ROOMS.contains(ch):
            raise ChatError("bad_name", N_("The room name contains {char}, which is not used in ordinary writing "
                                           "and can imitate another letter (UTS #39 identifier type)."),
                            {"char": _describe(ch)})
    for word in _words(unicodedata.normalize("NFC", key)):
        if not _SPOOF.check(word) & icu.USpoofChecks.RESTRICTION_LEVEL:
            continue
        looks = [_prototype(ch) for ch in word]
        changed = [(ch, look) for ch, look in zip(word, looks) if look != ch]
        if not changed:
            continue
        ordinary = all(len(look) == 1 and _IDENTIFIER.contains(look) and unicodedata.category(look)[0] == "L"
                       for _, look in changed)
        if not ordinary or _SPOOF.check("".join(looks)) & icu.USpoofChecks.RESTRICTION_LEVEL:
            raise ChatError("bad_name", N_("The room name mixes letters of different scripts ({scripts}) in the "
                                           "word \"{word}\"; write each word in one script."),
                            {"scripts": _scripts(word), "word": word})


def _room_step(text: str) -> str:
    """One round of canonicalisation: each character by its prototype, then NFKC and case folding."""
    mapped = "".join(_prototype(ch) for ch in unicodedata.normalize("NFC", text))
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", mapped).casefold())
    return _spaces(folded)


def _settled(step: Callable[[str], str], text: str) -> str:
    """Apply `step` until the text no longer changes (at most 8 rounds), so a key's key is itself."""
    for _ in range(8):
        nxt = step(text)
        if nxt == text:
            break
        text = nxt
    return text


def _room_canonical(key: str) -> str:
    return unicodedata.normalize("NFC", _settled(_room_step, key))


def _room_once(value: object) -> tuple[str, str]:
    display = _prepare(value, ROOM_NAME, MAX_ROOM_NAME)
    return display, _room_id_of(display)


@lru_cache(maxsize=4096)
def _room_id_of(display: str) -> str:
    """The id of a prepared room name (at most MAX_ROOM_NAME characters, so the cache stays small)."""
    key = _precis(_ROOM_KEY, ROOM_NAME, display, lenient_context=True)
    _check_marks(ROOM_NAME, key)
    for ch in key:
        if not _room_symbol_ok(ch):
            raise ChatError("bad_name", N_("The room name contains {char}; room names may use letters, digits, "
                                           "spaces, ordinary punctuation and emoji."), {"char": _describe(ch)})
    _check_room_letters(key)
    try:
        rid = _room_canonical(key)
    except _LIBRARY_ERRORS:
        raise _invalid(ROOM_NAME) from None
    if not rid:
        raise ChatError("bad_name", N_("The room name is empty once normalised."))
    if len(rid) > MAX_ROOM_NAME:
        raise ChatError("bad_name", NP_("The room name is longer than {limit} character once normalised.",
                                        "The room name is longer than {limit} characters once normalised."),
                        {"limit": MAX_ROOM_NAME}, count=MAX_ROOM_NAME)
    # The id must name its own room: a client may send it back as the room name.
    if rid != display:
        try:
            again = _room_once(rid)[1]
        except ChatError:
            again = None
        if again != rid:
            raise ChatError("bad_name", N_("The room name cannot be reduced to a stable room id; leave out "
                                           "unusual characters."))
    return rid


def display_room_name(value: object) -> str:
    """The room name as the creator typed it: NFC, spaces made ordinary and trimmed, validated."""
    return _room_once(value)[0]


def room_id(value: object) -> str:
    """Canonical id: NFKC, case folded, spaces collapsed, non-ASCII look-alikes by their UTS #39 prototype.

    'Lobby' and 'ＬＯＢＢＹ ' are one room, and so are 'Family' and 'Famіly' (Cyrillic і); a
    lowercase ASCII name is its own id.
    """
    return _room_once(value)[1]


# --- usernames ---------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _username(text: str) -> str:
    """The display form of a prepared username (at most MAX_USERNAME characters)."""
    parts = text.split(" ")  # RFC 8265 section 3.1: userparts separated by spaces
    display = " ".join(_precis(_USER_DISPLAY, USERNAME, part) for part in parts)
    for part in display.split(" "):
        _precis(_USER_KEY, USERNAME, part)
    _check_marks(USERNAME, display)
    for ch in display:
        if unicodedata.category(ch)[0] in "LMN" and not _IDENTIFIER.contains(ch):
            raise ChatError("bad_name", N_("The username contains {char}, which is not used in ordinary writing "
                                           "and can imitate another letter (UTS #39 identifier profile)."),
                            {"char": _describe(ch)})
    try:
        verdict = _SPOOF.check(display)
    except _LIBRARY_ERRORS:
        raise _invalid(USERNAME) from None
    if verdict & icu.USpoofChecks.MIXED_NUMBERS:
        raise ChatError("bad_name", N_("The username mixes digits of different number systems."))
    if verdict & icu.USpoofChecks.RESTRICTION_LEVEL:
        raise ChatError("bad_name", N_("The username mixes letters of different scripts ({scripts}), a common way "
                                       "to imitate another name; write it in one script."),
                        {"scripts": _scripts(display)})
    return display


def username(value: object) -> str:
    """The username as typed after PRECIS (width mapped, NFC), refused unless it is safe to show."""
    return _username(_prepare(value, USERNAME, MAX_USERNAME))


# The ASCII capital each prototype of an ASCII capital other than itself stands for: l for I.
_CAPITAL_OF = {_SKELETON.getSkeleton(0, c): c for c in map(chr, range(0x41, 0x5B)) if _SKELETON.getSkeleton(0, c) != c}


def _midword_capitals(text: str) -> str:
    """Inside a word a letter reads in its neighbours' case: 'aIice' as 'alice', 'ALlCE' and 'AL1CE' as 'ALICE'."""
    out = list(text)
    for i in range(1, len(out)):
        ch, before = out[i], unicodedata.category(text[i - 1])
        if unicodedata.category(ch) in ("Lu", "Lt") and before == "Ll":
            look = _skeleton(ch)
            if len(look) == 1 and unicodedata.category(look) == "Ll":
                out[i] = look
        elif before == "Lu" and i + 1 < len(text) and unicodedata.category(text[i + 1]) == "Lu":
            out[i] = _CAPITAL_OF.get(_skeleton(ch), ch)
    return "".join(out)


def _user_key_step(text: str) -> str:
    text = _midword_capitals(text)
    try:
        key = " ".join(_USER_KEY.enforce(part) for part in text.split(" "))
    except _LIBRARY_ERRORS:
        key = unicodedata.normalize("NFKC", text).casefold()
    return _skeleton(key)


@lru_cache(maxsize=4096)
def username_key(name: str) -> str:
    """Usernames that differ by case, compatibility form or look (UTS #39 skeleton) are one name.

    The key is the confusable skeleton of the PRECIS UsernameCaseMapped form, repeated until it
    no longer changes, so the key of a key is itself.
    """
    return _settled(_user_key_step, name)


# --- look-alikes of names already in use -------------------------------------------------------------
def _folded_skeleton(text: str) -> str:
    """The skeleton of the case-folded text, without the username rules: what the capitals' key repeats."""
    return _skeleton(unicodedata.normalize("NFKC", text).casefold())


@lru_cache(maxsize=16384)
def _looks(name: str) -> tuple[str, str, frozenset[str]]:
    """A name's key, its capitals' key (the skeleton of the name in capitals, case folded), its scripts."""
    capitals = _settled(_folded_skeleton, _skeleton(unicodedata.normalize("NFC", name).upper()))
    return username_key(name), capitals, frozenset(_script_list(name))


def look_alike(name: str, others: Iterable[str]) -> Optional[str]:
    """The first of `others` that `name` could pass for, or None.

    Two names look alike when their keys are equal, or when they are written in different
    scripts and their capitals look alike: "ВОВ" for "bob", "ΟΚ" for "ok", and "аӏісе" for
    "alice", whose palochka ӏ is drawn like its capital Ӏ, which UTS #39 takes for an l.
    """
    key, capitals, scripts = _looks(name)
    for other in others:
        other_key, other_capitals, other_scripts = _looks(other)
        if other_key == key or (other_capitals == capitals and other_scripts != scripts):
            return other
    return None
