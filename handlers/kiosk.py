"""The kiosk view and the QR codes it and the chat page show (join link, authenticator URI)."""
from __future__ import annotations

import re

from chat import names, qr
from chat.errors import ChatError, N_

from .base import BaseHandler, SessionHandler
from .pages import PageHandler

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


class KioskPage(PageHandler):
    """/kiosk/<room>: a member device on a wall; `?readonly=1` hides the composer."""

    page, template = "kiosk", "kiosk.html"

    def get(self, room: str) -> None:  # type: ignore[override]
        self.render_page(room=room, read_only=self.get_query_argument("readonly", "") in ("1", "true", "yes"))


class SvgHandler(BaseHandler):
    def write_svg(self, image: bytes) -> None:
        """An SVG image that no cache keeps (it may carry a join-code secret)."""
        self.set_header("Content-Type", qr.CONTENT_TYPE)
        self.set_header("Cache-Control", "no-store")
        self.finish(image)


class JoinCodeQrHandler(SessionHandler, SvgHandler):
    """GET /api/joincode/qr: the otpauth:// URI as a QR code, for members only (never cached)."""

    same_origin_only = True

    async def get(self) -> None:
        room = self.rooms.room_of(self.session)
        if room.join_code is None:
            raise ChatError("not_found", N_("This room has no join code."))
        self.write_svg(await self.settings["qr_cache"].draw(room.join_code.uri(room.name)))


class JoinLinkQrHandler(SvgHandler):
    """GET /qr/join?roomname=<name>: the join page's address with the room name, as a QR code.

    The room name is no secret (it is in every link to the room), so no session is needed. Other
    sites' pages are refused; the address pays for each request from its lookup allowance; images
    are drawn off the event loop and recent ones are cached.
    """

    same_origin_only = True

    @property
    def qr_cache(self) -> qr.SvgCache:
        return self.settings["qr_cache"]

    def admit(self) -> None:
        self.settings["lookups"].take(self.client_address)

    async def get(self) -> None:
        name = names.display_room_name(self.get_query_argument("roomname", ""))
        self.write_svg(await self.qr_cache.join_link_svg(self.base_url(), name))

    def base_url(self) -> str:
        """--public-url where it is set; else this server as the browser reached it: Host header,
        and https when TLS is on here or at a trusted proxy that says so."""
        if self.config.public_url:
            return self.config.public_url.rstrip("/")
        host = self.request.host or ""
        if len(host) > qr.MAX_HOST or not _HOST.match(host):
            raise ChatError("bad_frame", N_("The request's Host header is not a host name."))
        return f"{self.request_scheme}://{host}"
