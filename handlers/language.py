"""The page's language: a link's `?lang=`, else the device's choice (a cookie the switcher sets),
else Accept-Language."""
from __future__ import annotations

from typing import Any, Dict, Optional

import tornado.locale

from chat.catalogs import LOCALES, bcp47, native_names

COOKIE = "sealchat_lang"
_BY_TAG = {bcp47(code).lower(): code for code in LOCALES}
_NAMES = native_names()


class LanguageMixin:
    """For pages, JSON answers and WebSocket frames alike: `self.locale` is the user's language."""

    get_cookie: Any
    get_query_argument: Any
    locale: Any

    def get_user_locale(self) -> Optional[tornado.locale.Locale]:
        asked = self.get_query_argument("lang", "") or self.get_cookie(COOKIE) or ""
        code = _BY_TAG.get(asked.lower())
        # None: Tornado then reads Accept-Language (get_browser_locale).
        return tornado.locale.get(code) if code else None

    def language_namespace(self) -> Dict[str, Any]:
        """What base.html needs: lang, dir and the switcher's choices."""
        code = self.locale.code if self.locale.code in LOCALES else "en"
        return {"lang": bcp47(code), "dir": "rtl" if self.locale.rtl else "ltr", "locale_code": code,
                "languages": [(bcp47(c), _NAMES[c]) for c in LOCALES]}
