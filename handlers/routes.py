"""The URL map: every route the server answers, in one place."""
from __future__ import annotations

from typing import List

from tornado.routing import Rule
from tornado.web import url

from . import api, poll, websocket


def routes() -> List[Rule]:
    return [
        url(r"/healthz", api.HealthHandler),
        url(r"/api/rooms/(.+)", api.LookupHandler),
        url(r"/api/rooms", api.CreateHandler),
        url(r"/api/join", api.JoinHandler),
        url(r"/api/leave", api.LeaveHandler),
        url(r"/api/joincode", api.JoinCodeHandler),
        url(r"/api/poll/send", poll.PollSendHandler),
        url(r"/api/poll/events", poll.PollEventsHandler),
        url(r"/ws", websocket.ChatSocket),
    ]
