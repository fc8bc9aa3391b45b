"""Names that cannot impersonate each other, checked where a user meets them: RoomTable.

A look-alike of a member's name is refused (bad_name, or username_taken beside that member); a
look-alike of a room's name finds that room (room_exists on create, the same room on join);
ordinary names in many scripts are accepted and keep apart. docs/NAMES.md tells the rules.
"""
from __future__ import annotations

import itertools
import os

import pytest

from chat import names
from chat.client import crypto
from chat.config import Settings
from chat.errors import ChatError
from chat.rooms import RoomTable, verifier_for

SALT = crypto.b64u(b"\x01" * 16)
_addresses = (f"10.1.{n // 250}.{n % 250 + 1}" for n in itertools.count())


class Door:
    """A room table and one password, so a test reads as create, join and look up."""

    def __init__(self) -> None:
        self.table = RoomTable(Settings())
        self.auth = os.urandom(32)

    def create(self, room: str, user: str = "alice"):
        return self.table.create(room, user, next(_addresses), SALT, "pbkdf2-sha256", 100_000,
                                 crypto.b64u(verifier_for(self.auth)))

    def join(self, room: str, user: str):
        return self.table.join(room, user, next(_addresses), crypto.b64u(self.auth))


def refusal(call) -> ChatError:
    with pytest.raises(ChatError) as info:
        call()
    return info.value


@pytest.fixture
def door() -> Door:
    return Door()


# --- look-alikes of "alice" ------------------------------------------------------------------------
# Each was admitted beside "alice" before; each must now be refused as a name on its own.
IMPOSTORS = {
    "\u0430lice": "scripts",                     # Cyrillic а
    "al\u03b9\u0441\u0435": "scripts",           # Greek iota, Cyrillic es and ie
    "\u1d00lice": "ordinary writing",            # LATIN LETTER SMALL CAPITAL A
    "al\u034fice": "invisible",                  # COMBINING GRAPHEME JOINER
    "alice\ufe0f": "invisible",                  # VARIATION SELECTOR-16
    "al\u180bice": "invisible",                  # MONGOLIAN FREE VARIATION SELECTOR ONE
    "alice\u3164": "invisible",                  # HANGUL FILLER
    "\u3164alice": "invisible",
    "alice\u2800": "BRAILLE PATTERN BLANK",      # BRAILLE PATTERN BLANK
    "alice\u115f": "invisible",                  # HANGUL CHOSEONG FILLER
    "al\u1160ice": "invisible",                  # HANGUL JUNGSEONG FILLER
    "alice\uffa0": "invisible",                  # HALFWIDTH HANGUL FILLER
    "a\u0301\u0302\u0303\u0304\u0306lice": "combining marks",
    "alic\u0363\u0364\u0365\u0366\u0367\u0368e": "combining marks",
    "a\u0308\u0308lice": "repeats",
    "alice\u200b": "control",                    # ZERO WIDTH SPACE, a format character
    "alice\u202e": "control",                    # RIGHT-TO-LEFT OVERRIDE
    "alice \u0661": "right-to-left",             # an Arabic-Indic digit in a Latin name
    "\u0905\u0930\u094d\u091c\u0941\u0928 1\u0968": "digits of different number systems",
}


@pytest.mark.parametrize("impostor, reason", IMPOSTORS.items(), ids=[ascii(k) for k in IMPOSTORS])
def test_look_alike_usernames_are_refused_with_a_reason(door, impostor, reason):
    door.create("family")
    err = refusal(lambda: door.join("family", impostor))
    assert err.code == "bad_name" and err.message.startswith("The username ") and reason in err.message
    assert err.message.endswith(".")
    info = door.table.lookup("family", impostor)
    assert info["username_ok"] is False and info["username_error"] == err.message


# Names PRECIS and UTS #39 accept on their own, but that look like (or fold to) a present member's.
TAKEN = {
    "alice": ["alice", "ALICE", "Alice", "\uff41\uff4c\uff49\uff43\uff45", "aIice", "a1ice", "ALlCE", "AL1CE",
              "\u0430\u04cf\u0456\u0441\u0435"],   # all-Cyrillic а ӏ (palochka) і с е
    "ape": ["\u0430\u0440\u0435", "APE"],          # all-Cyrillic а р е
    "ok": ["\u041e\u041a", "\u043e\u043a", "\u039f\u039a", "\u03bf\u03ba"],  # Cyrillic ОК ок, Greek ΟΚ οκ
    "pay": ["\u0440\u0430\u0443", "\u0420\u0410\u0423", "\u03a1\u0391\u03a5"],  # Cyrillic рау РАУ, Greek ΡΑΥ
    "kite": ["\u039a\u0399\u03a4\u0395"],        # Greek ΚΙΤΕ
    "coco": ["\u0441\u043e\u0441\u043e"],          # all-Cyrillic с о с о
    "mary": ["rnary"],                             # r n for m
    "bob": ["b0b", "BOB", "\u0412\u041e\u0412"],  # Cyrillic ВОВ
    "stra\u00dfe": ["STRASSE", "Strasse"],
    "\u0391\u03bb\u03ad\u03be\u03b1\u03bd\u03b4\u03c1\u03bf\u03c2": [
        "\u0391\u039b\u0388\u039e\u0391\u039d\u0394\u03a1\u039f\u03a3"],
}


@pytest.mark.parametrize("member, look_alike", [(m, x) for m, xs in TAKEN.items() for x in xs])
def test_look_alike_of_a_present_member_is_taken(door, member, look_alike):
    door.create("family", member)
    assert names.username(look_alike)  # a valid name on its own ...
    assert door.table.lookup("family", look_alike)["username_available"] is False
    assert refusal(lambda: door.join("family", look_alike)).code == "username_taken"  # ... but not here


@pytest.mark.parametrize("member, look_alike", [("\u0430\u04cf\u0456\u0441\u0435", "alice"),
                                               ("\u041e\u041a", "ok"), ("\u03a1\u0391\u03a5", "pay")])
def test_a_latin_name_is_taken_beside_its_whole_script_look_alike(door, member, look_alike):
    door.create("family", member)
    assert door.table.lookup("family", look_alike)["username_available"] is False
    assert refusal(lambda: door.join("family", look_alike)).code == "username_taken"


def test_names_in_different_scripts_that_do_not_look_alike_keep_apart(door):
    door.create("family", "Anna")
    for user in ["\u0410\u043d\u043d\u0430", "\u041e\u043b\u0435\u043d\u0430", "Olena", "allce", "Ian", "lan",
                 "\u043e\u0440\u0435\u0445", "\u03bd\u03b1\u03b9"]:  # Анна, Олена, орех, Greek ναι
        door.join("family", user)
    assert len(door.table.rooms["family"].usernames()) == 9


def test_the_look_alike_is_free_once_the_member_left(door):
    alice, _ = door.create("family", "alice")
    door.join("family", "bob")
    door.table.leave(alice)
    session, _ = door.join("family", "aIice")
    assert session.username == "aIice"  # shown as typed


# --- look-alikes of a room's name ------------------------------------------------------------------
ROOM_LOOK_ALIKES = {
    "family": ["Fam\u0456ly", "f\u0430mily", "FAMILY", "\uff26\uff41\uff4d\uff49\uff4c\uff59", " family ",
               "\U0001d41f\U0001d41a\U0001d426\U0001d422\U0001d425\U0001d432"],
    "K\u00fcche": ["K\u03cbche", "Ku\u0308che", "K\u00dcCHE"],
    "ape": ["\u0430\u0440\u0435", "\u13aape"],
    "Kitchen LAN": ["Kitchen  LAN", "Kitchen\u3000LAN", "kitchen\u00a0lan", "Kitch\u0435n LAN"],
    "K\u00fcche - Bad": ["K\u00fcche \u2013 Bad", "K\u00fcche \u2010 Bad"],
}


@pytest.mark.parametrize("room, look_alike", [(r, x) for r, xs in ROOM_LOOK_ALIKES.items() for x in xs])
def test_look_alike_room_name_finds_the_room(door, room, look_alike):
    session, _ = door.create(room)
    assert names.room_id(look_alike) == session.room_id
    assert refusal(lambda: door.create(look_alike, "mallory")).code == "room_exists"
    info = door.table.lookup(look_alike)
    assert info["exists"] is True and info["name"] == names.display_room_name(room)
    bob, _ = door.join(look_alike, "bob")
    assert bob.room_id == session.room_id and door.table.rooms[session.room_id].usernames() == ["alice", "bob"]


# Look-alikes whose id differs from the room's (a Latin name's id stays what it is): refused while the room is open.
ROOM_LOOK_ALIKES_REFUSED = {
    "alice": ["\u0430\u04cf\u0456\u0441\u0435", "a\u04cfice", "aIice", "a1ice", "ALlCE"],
    "ok": ["\u041e\u041a", "\u039f\u039a", "\u043e\u043a"],
    "pay": ["\u03a1\u0391\u03a5"],
    "bob": ["\u0412\u041e\u0412", "b0b"],
    "Kite Club": ["\u039a\u0399\u03a4\u0395 Club"],
}


@pytest.mark.parametrize("room, look_alike", [(r, x) for r, xs in ROOM_LOOK_ALIKES_REFUSED.items() for x in xs])
def test_look_alike_room_name_is_refused_beside_the_room(door, room, look_alike):
    session, _ = door.create(room)
    assert names.room_id(look_alike) != session.room_id
    err = refusal(lambda: door.create(look_alike, "mallory"))
    assert err.code == "room_exists" and "looks like" in err.message
    assert refusal(lambda: door.join(look_alike, "mallory")).code == "room_not_found"
    assert list(door.table.rooms) == [session.room_id]
    door.table.leave(session)  # once the room is gone, the name is free
    assert door.create(look_alike, "mallory")[0].room_id == names.room_id(look_alike)
    assert refusal(lambda: door.create(room, "alice")).code == "room_exists"  # and the other way round


ROOM_REFUSALS = {
    "\u1d00lice": "ordinary writing", "\ua730amily": "ordinary writing",  # small capitals A, F
    "fam\u026aly": "ordinary writing", "Fami\u029fy": "ordinary writing",  # small capitals I, L
    "\u0251lice": "ordinary writing",                                       # Latin alpha, a phonetic letter
    "\u0493amily": "different scripts (Cyrillic, Latin)",                    # Cyrillic ғ, prototype r̵, not f
    "Fam\u0456\u043bly": "different scripts",                                # Cyrillic і and л in a Latin word
    "Family\u3164": "invisible", "\u3164Family": "invisible", "Fam\u200bily": "control",
    "Family\u2800": "BRAILLE PATTERN BLANK", "Fa\u034fmily": "invisible", "Family\ufe0f": "invisible",
    "Fa\u115fmily": "invisible", "Family\uffa0": "invisible",
    "Fa\u0300\u0301\u0302\u0303\u0304mily": "combining marks", "Fa\u0301\u0301mily": "repeats",
    "\u0301Family": "combining mark",
}


@pytest.mark.parametrize("room, reason", ROOM_REFUSALS.items(), ids=[ascii(k) for k in ROOM_REFUSALS])
def test_room_names_that_imitate_others_are_refused_with_a_reason(door, room, reason):
    door.create("family")
    err = refusal(lambda: door.create(room, "mallory"))
    assert err.code == "bad_name" and err.message.startswith("The room name ") and reason in err.message
    assert refusal(lambda: door.join(room, "mallory")).code == "bad_name"
    assert refusal(lambda: door.table.lookup(room)).code == "bad_name"


# --- ordinary names --------------------------------------------------------------------------------
ORDINARY_USERS = [
    "\u0141ukasz", "Za\u017c\u00f3\u0142\u0107",                          # Polish
    "\u0391\u03bb\u03ad\u03be\u03b1\u03bd\u03b4\u03c1\u03bf\u03c2",       # Greek
    "\u0414\u043c\u0438\u0442\u0440\u0438\u0439",                         # Russian
    "\u0645\u062d\u0645\u062f",                                           # Arabic
    "\u738b\u5c0f\u660e",                                                 # Chinese
    "\u3055\u304f\u3089", "\u5c71\u7530\u305f\u308d\u3046", "\u30ab\u30bf\u30ab\u30ca",  # Japanese
    "\u30b5\u30fc\u30d0\u30fc",                                           # katakana with the long-vowel mark
    "\uae40\ubbfc\uc900",                                                 # Korean
    "\u05e9\u05e8\u05d4",                                                 # Hebrew
    "\u0905\u0930\u094d\u091c\u0941\u0928",                               # Devanagari
    "Nguy\u1ec5n", "Fran\u00e7ois", "J\u00fcrgen", "\u00d8ystein",
    "bob", "alice2", "anna-maria", "j.doe", "user_42", "o'brien", "Mary Ann", "\u5c71\u7530 \u592a\u90ce",
    "\u738bxiao", "\u0645\u062d\u0645\u062f123",
]


def test_ordinary_usernames_are_accepted_and_kept_apart(door):
    door.create("family", "alice")
    for user in ORDINARY_USERS:
        session, _ = door.join("family", user)
        assert session.username == user
    room = door.table.rooms["family"]
    assert room.usernames() == ["alice"] + ORDINARY_USERS
    assert len({names.username_key(u) for u in room.usernames()}) == len(room.usernames())


def test_username_display_is_the_precis_form_of_what_was_typed():
    assert names.username("  \u0141ukasz ") == "\u0141ukasz"
    assert names.username("\uff21\uff4c\uff49\uff43\uff45") == "Alice"  # fullwidth to ordinary width
    assert names.username("Mary   Ann") == "Mary Ann"
    assert names.username("\u5c71\u7530\u3000\u592a\u90ce") == "\u5c71\u7530 \u592a\u90ce"
    assert names.username("Zaz\u0307o\u0301\u0142c\u0301") == "Za\u017c\u00f3\u0142\u0107"  # NFC


ORDINARY_ROOMS = [
    "Kitchen LAN", "K\u00fcche", "Za\u017c\u00f3\u0142\u0107 g\u0119\u015bl\u0105 ja\u017a\u0144",
    "\u0391\u03bb\u03ad\u03be\u03b1\u03bd\u03b4\u03c1\u03bf\u03c2", "\u0414\u043c\u0438\u0442\u0440\u0438\u0439",
    "\u0645\u062d\u0645\u062f", "\u738b\u5c0f\u660e", "\u5c71\u7530\u305f\u308d\u3046", "\u30ab\u30bf\u30ab\u30ca",
    "\uae40\ubbfc\uc900", "\u05e9\u05e8\u05d4", "\u0905\u0930\u094d\u091c\u0941\u0928", "room-1.2_3",
    "K\u00fcche & Co/1", "<b>Room</b>", "Tom\u2019s room", "Party \U0001f389", "Caf\u00e9 2",
    "\u041e\u043b\u0435\u043d\u0430", "\u0414\u043c\u0438\u0442\u0440\u043e",  # Олена, Дмитро
    "\u043e\u0440\u0435\u0445", "\u0410\u043d\u043d\u0430", "Anna",          # орех, Анна, Anna
    "\u0492\u0430\u043b\u044b\u043c",                                      # Kazakh Ғалым
    "LAN-\u0432\u0435\u0447\u0435\u0440\u0438\u043d\u043a\u0430", "Caf\u00e9 \u041c\u043e\u0441\u043a\u0432\u0430",
    "\u03bd\u03b1\u03b9", "\u0395\u03bb\u03bb\u03ac\u03b4\u03b1",                       # Greek ναι, Ελλάδα
    "\u0254k\u0254 \u025bwe", "\u2d5c\u2d30\u2d4e\u2d30\u2d63\u2d49\u2d56\u2d5c",          # ɔkɔ ɛwe, Tifinagh
]


def test_ordinary_room_names_are_accepted_and_kept_apart(door):
    ids = set()
    for room in ORDINARY_ROOMS:
        session, _ = door.create(room)
        assert door.table.rooms[session.room_id].name == room
        assert door.join(room, "bob")[0].room_id == session.room_id
        ids.add(session.room_id)
    assert len(ids) == len(ORDINARY_ROOMS)


@pytest.mark.parametrize("name", ["family", "kitchen lan", "room-1.2_3", "corn", "com", "r00m", "l1", "0o",
                                  "x" * 64, "<b>room</b>", "k\u00fcche & co/1"])
def test_lowercase_ascii_and_existing_ids_are_their_own_room_id(name):
    assert names.room_id(name) == name


def test_room_ids_of_ordinary_names_did_not_change():
    assert names.room_id("  K\u00fcche ") == "k\u00fcche"
    assert names.room_id("\uff2c\uff2f\uff22\uff22\uff39") == "lobby"
    assert names.room_id("Stra\u00dfe") == "strasse"
    assert names.room_id("Kitchen LAN") == "kitchen lan"
    assert names.room_id("\u738b\u5c0f\u660e") == "\u738b\u5c0f\u660e"
    assert names.room_id("\uae40\ubbfc\uc900") == "\uae40\ubbfc\uc900"
    assert names.room_id("\u3055\u304f\u3089") == "\u3055\u304f\u3089"
    assert names.room_id("\u041e\u043b\u0435\u043d\u0430") == "o\u043be\u029ca"          # Олена
    assert names.room_id("\u043e\u0440\u0435\u0445") == "opex"                            # орех
    assert names.room_id("\u0391\u03bb\u03ad\u03be\u03b1\u03bd\u03b4\u03c1\u03bf\u03c2") == names.room_id(
        "\u0391\u039b\u0388\u039e\u0391\u039d\u0394\u03a1\u039f\u03a3")


def test_room_display_keeps_what_was_typed():
    assert names.display_room_name("  Kitchen   LAN ") == "Kitchen LAN"
    assert names.display_room_name("K\u00fcche") == "K\u00fcche"
    assert names.display_room_name("\uff2c\uff2f\uff22\uff22\uff39") == "\uff2c\uff2f\uff22\uff22\uff39"


def test_keys_and_ids_are_fixed_points():
    for user in ORDINARY_USERS + [u for xs in TAKEN.values() for u in xs]:
        key = names.username_key(names.username(user))
        assert names.username_key(key) == key
    for room in ORDINARY_ROOMS + [r for xs in ROOM_LOOK_ALIKES.values() for r in xs]:
        rid = names.room_id(room)
        assert names.room_id(rid) == rid and names.room_id(names.display_room_name(room)) == rid


def test_old_limits_and_wording_still_hold():
    assert "longer than 64" in refusal(lambda: names.room_id("x" * 65)).message
    assert "longer than 32" in refusal(lambda: names.username("u" * 33)).message
    assert "empty" in refusal(lambda: names.room_id(" \u3000 ")).message
    assert "must be text" in refusal(lambda: names.username(None)).message
    assert refusal(lambda: names.room_id(7)).code == "bad_name"
