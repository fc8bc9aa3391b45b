"""HTML pages (create, join, chat) and the content-hashed static assets they load."""
from __future__ import annotations

from datetime import date
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal

from chat.assets import CACHE_CONTROL, Assets
from chat.errors import ChatError, N_
from chat.jscatalog import asset_name

from .base import BaseHandler

# Loaded on demand by sealcrypto.js: the pure-JavaScript fallback and the key-derivation Worker.
VENDOR_SCRIPT = "vendor/forge-1.4.3.min.js"
WORKER_SCRIPT = "js/sealcrypto-worker.js"
# X25519 and Ed25519 for sealcrypto.js on every browser: loaded eagerly, before it, by the pages
# that hold session keys (chat and kiosk); the join pages only derive the admission keys.
NACL_SCRIPT = "vendor/nacl-fast-1.0.3.min.js"
# Scripts every page loads, in order, after its language's catalog; the page's own script comes last.
COMMON_SCRIPTS = ("js/i18n.js", "js/language.js", "js/dom.js", "js/api.js", "js/session.js")
PAGE_SCRIPTS = {
    "index": ("js/forms.js",),
    "create": ("js/sealcrypto.js", "js/passwords.js", "js/forms.js"),
    "login": ("js/sealcrypto.js", "js/forms.js"),
    "chat": (NACL_SCRIPT, "js/sealcrypto.js", "js/transport.js", "js/epochs.js", "js/room.js", "js/emoji.js",
             "js/alerts.js", "js/chatview.js", "js/joincode.js", "js/idle.js"),
    "kiosk": (NACL_SCRIPT, "js/sealcrypto.js", "js/transport.js", "js/epochs.js", "js/room.js",
              "js/joincode.js", "js/wakelock.js", "js/kiosk.js"),
}


class PageHandler(BaseHandler):
    page = "index"
    template = "index.html"

    @property
    def assets(self) -> Assets:
        return self.settings["assets"]

    def render_page(self, **kwargs: Any) -> None:
        self.xsrf_token  # noqa: B018  (reading it sets the _xsrf cookie the JSON API needs)
        assets = self.assets
        language = self.language_namespace()
        names = (asset_name(language["locale_code"]),) + COMMON_SCRIPTS + PAGE_SCRIPTS[self.page]
        scripts = [(assets.url(n), assets.integrity(n)) for n in names]
        self.render(self.template, page=self.page, assets=assets, scripts=scripts, **language,
                    format_number=lambda n: format_decimal(n, locale=language["locale_code"]),
                    format_day=lambda iso: format_date(date.fromisoformat(iso), "long", locale=language["locale_code"]),
                    vendor_url=assets.url(VENDOR_SCRIPT), vendor_integrity=assets.integrity(VENDOR_SCRIPT),
                    worker_url=assets.url(WORKER_SCRIPT), worker_integrity=assets.integrity(WORKER_SCRIPT),
                    prefill_room=self.get_query_argument("roomname", ""),
                    prefill_user=self.get_query_argument("username", ""),
                    **kwargs)

    def get(self) -> None:
        self.render_page()


class IndexPage(PageHandler):
    page, template = "index", "index.html"


class CreatePage(PageHandler):
    page, template = "create", "create.html"


class LoginPage(PageHandler):
    page, template = "login", "login.html"


class ChatPage(PageHandler):
    page, template = "chat", "chat.html"

    def get(self, room: str) -> None:  # type: ignore[override]
        self.render_page(room=room)


class StaticAssetHandler(BaseHandler):
    """/static/<hash>/<name>: immutable bytes, cached for a year."""

    def get(self, digest: str, name: str) -> None:
        asset = self.settings["assets"].find(digest, name)
        if asset is None:
            raise ChatError("not_found", N_("Nothing here."))
        self.set_header("Content-Type", asset.content_type)
        self.set_header("Cache-Control", CACHE_CONTROL)
        self.finish(asset.body)

    def head(self, digest: str, name: str) -> None:
        self.get(digest, name)
