"""The translation catalogs are complete and in step with the code: every locale has every message
the code shows and no other, each translated with the English source's placeholders; and no
user-visible text in a template or script escapes extraction."""
from __future__ import annotations

import html.parser
import importlib.util
import pathlib
import re
import subprocess
from typing import Dict, Iterator, List, Set, Tuple

import pytest
from babel.messages.catalog import Catalog
from babel.messages.jslexer import tokenize
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

from chat.catalogs import BROWSER_DOMAIN, LOCALES, LOCALES_DIR, SERVER_DOMAIN, read_catalog

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "frontend" / "templates"
SCRIPTS = ROOT / "frontend" / "static" / "js"
DOMAINS = (SERVER_DOMAIN, BROWSER_DOMAIN)
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]*)[^{}]*\}")
# Words shown as they are in every language: the product's name.
NAMES = {"Sealchat"}


def load_script():
    """scripts/catalogs.py, the tool docs/TRANSLATING.md names, as a module."""
    spec = importlib.util.spec_from_file_location("catalogs_script", ROOT / "scripts" / "catalogs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> Dict[str, Catalog]:
    """What `scripts/catalogs.py extract` takes from the code as it is now, per domain."""
    script, out = load_script(), {}
    for domain in DOMAINS:
        pot = tmp_path_factory.mktemp("pot") / f"{domain}.pot"
        script.extract(domain, pot)
        with pot.open("rb") as f:
            out[domain] = read_po(f)
    return out


def ids(catalog: Catalog) -> Set[object]:
    return {m.id for m in catalog if m.id}


def placeholders(text: str) -> Set[str]:
    return set(PLACEHOLDER.findall(text))


def test_the_code_has_messages_in_both_domains(extracted) -> None:
    assert len(ids(extracted[SERVER_DOMAIN])) > 50, "pages and error sentences are extracted"
    assert len(ids(extracted[BROWSER_DOMAIN])) > 50, "the scripts' sentences are extracted"


def test_the_committed_templates_are_current(extracted) -> None:
    for domain in DOMAINS:
        with (LOCALES_DIR / f"{domain}.pot").open("rb") as f:
            committed = read_po(f)
        assert ids(committed) == ids(extracted[domain]), \
            f"{domain}.pot is stale: run `python scripts/catalogs.py extract`"


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("code", LOCALES)
def test_catalog_has_every_message_and_no_other(code: str, domain: str, extracted) -> None:
    catalog = read_catalog(code, domain)
    wanted, have = ids(extracted[domain]), ids(catalog)
    assert not (wanted - have), f"{code}/{domain}.po lacks {sorted(map(str, wanted - have))[:10]}"
    assert not (have - wanted), f"{code}/{domain}.po has extra {sorted(map(str, have - wanted))[:10]}"


@pytest.mark.parametrize("domain", DOMAINS)
@pytest.mark.parametrize("code", LOCALES)
def test_every_message_is_translated_with_the_same_placeholders(code: str, domain: str) -> None:
    catalog = read_catalog(code, domain)
    nplurals = get_plural(code).num_plurals
    problems: List[str] = []
    for m in catalog:
        if not m.id:
            continue
        if m.fuzzy:
            problems.append(f"fuzzy: {m.id!r}")
        if isinstance(m.id, (list, tuple)):
            source = placeholders(m.id[0]) | placeholders(m.id[1])
            forms = list(m.string)
            if len(forms) != nplurals or not all(forms):
                problems.append(f"needs {nplurals} plural forms: {m.id[0]!r}")
                continue
            for form in forms:
                # A form may leave out the number itself ("one member", Arabic's dual), nothing else.
                if placeholders(form) - source or (source - {"count", "n"}) - placeholders(form):
                    problems.append(f"placeholders {sorted(placeholders(form))} != {sorted(source)}: {form!r}")
        else:
            if not m.string:
                problems.append(f"untranslated: {m.id!r}")
            elif placeholders(m.string) != placeholders(m.id):
                problems.append(f"placeholders {sorted(placeholders(m.string))} != "
                                f"{sorted(placeholders(m.id))}: {m.string!r}")
    assert problems == [], f"{code}/{domain}.po:\n" + "\n".join(problems[:20])


@pytest.mark.parametrize("code", LOCALES)
def test_plural_rule_is_cldrs(code: str) -> None:
    for domain in DOMAINS:
        catalog, rule = read_catalog(code, domain), get_plural(code)
        assert (catalog.num_plurals, catalog.plural_expr) == (rule.num_plurals, rule.plural_expr)


def test_no_compiled_catalog_is_committed() -> None:
    tracked = subprocess.run(["git", "ls-files", "*.mo"], cwd=ROOT, capture_output=True, text=True).stdout
    assert tracked.strip() == "", "compiled catalogs are made at start-up, never committed"


# --- extraction check: user-visible text outside the catalog ---------------------------------------

VISIBLE_ATTRIBUTES = {"title", "aria-label", "placeholder", "alt", "value", "aria-description"}
_TEMPLATE_CODE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
# Blocks that fill in a class name, not text.
_CLASS_BLOCK = re.compile(r"\{% block mainclass %\}.*?\{% end %\}", re.S)


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: List[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, object]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        for name, value in attrs:
            if name in VISIBLE_ATTRIBUTES and isinstance(value, str) and tag != "option":
                self.found.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.found.append(data)


def untranslated_template_text(source: str) -> List[str]:
    parser = _Text()
    parser.feed(_TEMPLATE_CODE.sub(" ", _CLASS_BLOCK.sub(" ", source)))
    words = re.compile(r"[^\W\d_]{2,}")
    return [t.strip() for t in parser.found if any(w not in NAMES for w in words.findall(t))]


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.html")))
def test_template_text_goes_through_the_catalog(template: str) -> None:
    left = untranslated_template_text((TEMPLATES / template).read_text("utf-8"))
    assert left == [], f"{template}: text outside _(): {left}"


def test_the_template_check_finds_bare_text() -> None:
    assert untranslated_template_text('<p>{{ _("Fine") }}</p><button title="Close it">x</button>') == \
        ["Close it"]
    assert untranslated_template_text("<p>Join the room</p><a>Sealchat</a>") == ["Join the room"]


# A string in a script looks like something a person reads: a capitalised word followed by more
# words, or words ending in sentence punctuation.
_WORDS = re.compile(r"[^\W\d_]{2,}(?:[ \u00a0]+[^\W\d_]+)+")


def looks_like_a_sentence(text: str) -> bool:
    return bool(_WORDS.search(text)) and (text[:1].isupper() or text.rstrip().endswith((".", "…", "?", "!", ":")))
_CALLS = {"i18n.t", "i18n.n"}
# Strings made for developers (thrown errors, console output), never put on the page.
# (`fail` is sealcrypto.js's typed-error constructor.)
_DEVELOPER_CALLS = {"Error", "TypeError", "RangeError", "console.log", "console.warn", "console.error", "fail"}


def sentences_outside_catalog(source: str) -> Iterator[Tuple[int, str]]:
    calls: List[str] = []  # the function each open parenthesis belongs to
    previous = None
    for token in tokenize(source, dotted=True):
        if token.type == "operator" and token.value == "(":
            calls.append(previous.value if previous is not None and previous.type == "name" else "")
        elif token.type == "operator" and token.value == ")" and calls:
            calls.pop()
        elif token.type == "string":
            text = token.value[1:-1]
            inside = set(calls)
            if looks_like_a_sentence(text) and not (inside & _CALLS) and not (inside & _DEVELOPER_CALLS) \
                    and not any(c.endswith(".Error") for c in inside):
                yield token.lineno, text
        if token.type not in ("linecomment", "multilinecomment"):
            previous = token


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.js")))
def test_script_sentences_go_through_the_catalog(script: str) -> None:
    left = list(sentences_outside_catalog((SCRIPTS / script).read_text("utf-8")))
    assert left == [], f"{script}: sentences outside i18n.t/i18n.n: {left[:10]}"


def test_the_script_check_finds_bare_sentences() -> None:
    source = ("a = i18n.t('Fine {x}.', {x: 1}); b = 'Not translated here.'; c = 'msg-row';\n"
              "throw new Error('For developers only.'); d = i18n.n('{count} day', '{count} days', 2);")
    assert list(sentences_outside_catalog(source)) == [(1, "Not translated here.")]
