"""The gettext catalogs: which locales exist, and compiling their `.po` files at start-up.

Translations live as `.po` files under `frontend/locales/<locale>/LC_MESSAGES/`: `sealchat.po`
for pages and error sentences (Tornado's `tornado.locale`), `sealchat-js.po` for the browser
(chat/jscatalog.py). Nothing compiled is kept in the repository: start-up compiles with Babel
into a temporary directory, Tornado reads the result into memory, and the directory goes.
"""
from __future__ import annotations

import pathlib
import tempfile
from typing import Dict, Tuple

import tornado.locale
from babel import Locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = pathlib.Path(__file__).resolve().parents[1] / "frontend" / "locales"
SERVER_DOMAIN = "sealchat"
BROWSER_DOMAIN = "sealchat-js"
DEFAULT = "en"
# Tornado's spelling (language_TERRITORY), in the order the language switcher lists them.
LOCALES: Tuple[str, ...] = ("en", "pl", "de", "fr", "es", "pt_BR", "uk", "ar")


def po_path(code: str, domain: str, root: pathlib.Path = LOCALES_DIR) -> pathlib.Path:
    return root / code / "LC_MESSAGES" / f"{domain}.po"


def read_catalog(code: str, domain: str, root: pathlib.Path = LOCALES_DIR) -> Catalog:
    with po_path(code, domain, root).open("rb") as f:
        return read_po(f, locale=code, domain=domain)


def bcp47(code: str) -> str:
    """`pt_BR` -> `pt-BR`: the form of `lang` attributes and cookies."""
    return code.replace("_", "-")


def native_names() -> Dict[str, str]:
    """Each locale's name in its own language, for the switcher ("polski", "العربية")."""
    return {code: Locale.parse(code).get_display_name(code) for code in LOCALES}


def is_rtl(code: str) -> bool:
    return Locale.parse(code).character_order == "right-to-left"


def load(root: pathlib.Path = LOCALES_DIR) -> None:
    """Compiles every locale's server catalog and hands it to `tornado.locale`."""
    with tempfile.TemporaryDirectory(prefix="sealchat-locales-") as tmp:
        for code in LOCALES:
            catalog = read_catalog(code, SERVER_DOMAIN, root)
            out = pathlib.Path(tmp) / code / "LC_MESSAGES" / f"{SERVER_DOMAIN}.mo"
            out.parent.mkdir(parents=True)
            with out.open("wb") as f:
                write_mo(f, catalog)
        tornado.locale.set_default_locale(DEFAULT)
        tornado.locale.load_gettext_translations(tmp, SERVER_DOMAIN)
