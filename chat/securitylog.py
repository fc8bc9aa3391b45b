"""Security events: one JSON line per refusal worth an operator's eye, never a payload or secret."""
from __future__ import annotations

import json
import logging
import time

log = logging.getLogger("sealchat.security")


def record(reason: str, address: str, room: str = "") -> None:
    """Log a refused token, throttle, origin or XSRF check, a host action by a member who is not
    the host, or a join by someone the host removed: when, from where, which room, why."""
    log.warning(json.dumps({
        "event": "security",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "address": address,
        "room": room,
        "reason": reason,
    }, ensure_ascii=False))
