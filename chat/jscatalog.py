"""The browser's catalogs: one content-hashed script per locale that sets `root.SealCatalog`.

Made at start-up from `sealchat-js.po` and CLDR (through Babel): the messages as JSON, the
plural rule as a JavaScript function (Babel writes it from CLDR, never from a catalog file), the
number signs and the short time pattern. It is a script rather than a `.json` fetched later so
that it gets Subresource Integrity and works on browsers with no fetch, XHR JSON or Promise.
"""
from __future__ import annotations

import json
import pathlib
from typing import Iterable, List

from babel import Locale
from babel.messages.plurals import get_plural
from babel.numbers import format_decimal, get_decimal_symbol, get_group_symbol

from .assets import Asset, build_asset
from .catalogs import BROWSER_DOMAIN, LOCALES, LOCALES_DIR, bcp47, is_rtl, read_catalog


def asset_name(code: str) -> str:
    return f"i18n/{bcp47(code)}.js"


def messages(code: str, root: pathlib.Path = LOCALES_DIR) -> dict:
    """msgid -> translation (a list of forms for plurals); untranslated entries are left out so
    the page falls back to the English source."""
    out: dict = {}
    for message in read_catalog(code, BROWSER_DOMAIN, root):
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, (list, tuple)):
            forms = list(message.string)
            if all(forms):
                out[message.id[0]] = forms
        elif message.string:
            out[message.id] = message.string
    return out


def catalog_script(code: str, root: pathlib.Path = LOCALES_DIR) -> str:
    locale = Locale.parse(code)
    periods = locale.day_periods["format"]["abbreviated"]
    data = {
        "lang": bcp47(code),
        "rtl": is_rtl(code),
        "messages": messages(code, root),
        "number": {"decimal": get_decimal_symbol(locale), "group": get_group_symbol(locale),
                   "minGroup": 1 if get_group_symbol(locale) in format_decimal(1000, locale=locale) else 2},
        "time": {"pattern": locale.time_formats["short"].pattern, "am": periods.get("am", "AM"),
                 "pm": periods.get("pm", "PM")},
    }
    plural = get_plural(locale).plural_expr
    body = json.dumps(data, ensure_ascii=False, sort_keys=True)
    return ("(function (root) {\n'use strict';\nvar catalog = " + body + ";\n"
            "catalog.plural = function (n) { return +(" + plural + "); };\n"
            "root.SealCatalog = catalog;\n}(this));\n")


def build(root: pathlib.Path = LOCALES_DIR, codes: Iterable[str] = LOCALES) -> List[Asset]:
    return [build_asset(asset_name(code), catalog_script(code, root).encode("utf-8")) for code in codes]
