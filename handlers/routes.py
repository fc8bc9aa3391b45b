"""The URL map: every route the server answers, in one place."""
from __future__ import annotations

from typing import List

from tornado.routing import Rule
from tornado.web import url

from . import api, kiosk, pages, poll, websocket


def routes() -> List[Rule]:
    return [
        url(r"/healthz", api.HealthHandler),
        url(r"/api/rooms/(.+)", api.LookupHandler),
        url(r"/api/rooms", api.CreateHandler),
        url(r"/api/join", api.JoinHandler),
        url(r"/api/leave", api.LeaveHandler),
        url(r"/api/joincode", api.JoinCodeHandler),
        url(r"/api/joincode/qr", kiosk.JoinCodeQrHandler),
        url(r"/qr/join", kiosk.JoinLinkQrHandler),
        # The one route whose body is a frame; every other body is a small JSON object.
        url(r"/api/poll/send", poll.PollSendHandler, {"body": "frame"}),
        url(r"/api/poll/events", poll.PollEventsHandler),
        url(r"/ws", websocket.ChatSocket),
        url(r"/", pages.IndexPage),
        url(r"/create", pages.CreatePage),
        url(r"/login", pages.LoginPage),
        url(r"/chat/(.+)", pages.ChatPage),
        url(r"/kiosk/(.+)", kiosk.KioskPage),
        url(r"/static/([0-9a-f]{20})/([A-Za-z0-9_./-]+)", pages.StaticAssetHandler),
    ]
