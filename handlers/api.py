"""The JSON API: room lookup, create, join, leave and the current join code."""
from __future__ import annotations

from chat.errors import ChatError, N_
from chat.ratelimit import Throttle

from .base import BaseHandler, SessionHandler


class LookupHandler(BaseHandler):
    """GET /api/rooms/<name>: this site's pages only, each ask paid from the lookup allowance."""

    same_origin_only = True

    def admit(self) -> None:
        lookups: Throttle = self.settings["lookups"]
        lookups.take(self.client_address)  # anyone may ask, so each ask is paid for

    def get(self, name: str) -> None:
        self.xsrf_token  # noqa: B018  (reading it sets the _xsrf cookie that create and join need)
        self.write_json(self.rooms.lookup(name, self.get_query_argument("username", None), self.locale.translate))


class AdmissionHandler(BaseHandler):
    """Create and join: the address pays from its connection allowance before the body is read."""

    def admit(self) -> None:
        self.rooms.admission.connections.take(self.client_address)


class CreateHandler(AdmissionHandler):
    def admit(self) -> None:
        super().admit()
        # The creations throttle (spent by create() when a room is made) and the address's live rooms.
        self.rooms.admission.check_create(self.client_address)

    def post(self) -> None:
        body = self.json_body()
        address = self.client_address
        join_code = body.get("join_code", False)
        if not isinstance(join_code, bool):
            raise ChatError("bad_frame", N_("Field 'join_code' must be true or false."))
        session, token = self.rooms.create(body.get("room"), body.get("username"), address, body.get("salt"),
                                           body.get("kdf"), body.get("iter"), body.get("verifier"), join_code)
        out = self.rooms.admitted(session, token)
        room = self.rooms.room_of(session)
        if room.join_code is not None:
            out["join_code_info"] = dict(room.join_code.current(), uri=room.join_code.uri(room.name))
        self.write_json(out, 201)


class JoinHandler(AdmissionHandler):
    def post(self) -> None:
        body = self.json_body()
        address = self.client_address
        invite = body.get("invite")
        if invite is not None and not isinstance(invite, str):
            raise ChatError("bad_frame", N_("Field 'invite' must be text."))
        session, token = self.rooms.join(body.get("room"), body.get("username"), address,
                                         body.get("auth_key"), body.get("join_code"), invite)
        self.write_json(self.rooms.admitted(session, token))


class LeaveHandler(SessionHandler):
    def post(self) -> None:
        self.rooms.leave(self.session, "leave")
        self.write_json({"ok": True})


class JoinCodeHandler(SessionHandler):
    """Members (only) may read the room's current join code, e.g. for a kiosk display.

    The code and its countdown only: the secret (the otpauth URI) is not handed out on every poll.
    """

    same_origin_only = True

    def get(self) -> None:
        room = self.rooms.room_of(self.session)
        if room.join_code is None:
            raise ChatError("not_found", N_("This room has no join code."))
        self.write_json(room.join_code.current())


class HealthHandler(BaseHandler):
    same_origin_only = True

    def get(self) -> None:
        out = dict(status="ok", **self.rooms.stats())
        out["connections"] = self.settings["connection_caps"].stats()
        self.write_json(out)
