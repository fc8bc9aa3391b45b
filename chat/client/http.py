"""The JSON API over HTTP(S), with the XSRF cookie and bearer token the server expects."""
from __future__ import annotations

import json
from typing import Any, Dict, Optional
from urllib.parse import quote, urlencode, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .errors import ServerRefused


def refusal(exc: HTTPClientError) -> Exception:
    """The typed ServerRefused inside an HTTP error response, or `exc` itself when it carries none."""
    if exc.response is None or not exc.response.body:
        return exc
    try:
        data = json.loads(exc.response.body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return ServerRefused("http_error", f"HTTP {exc.code}")
    return ServerRefused.from_dict(data)


class HttpApi:
    """One client identity: its cookies, its source address and, once joined, its token."""

    def __init__(self, server: str, source_address: Optional[str] = None, ca_file: Optional[str] = None,
                 request_timeout: float = 60.0) -> None:
        parts = urlsplit(server.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"server must be an http:// or https:// URL, not {server!r}")
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.source_address = source_address
        self.ca_file = ca_file
        self.request_timeout = request_timeout
        self.cookies: Dict[str, str] = {}
        self.token: Optional[str] = None
        self._http = AsyncHTTPClient(force_instance=True, max_clients=8)

    @property
    def ws_url(self) -> str:
        return "ws" + self.base[4:] + "/ws"

    def request(self, path: str, method: str = "GET", body: Any = None,
                timeout: Optional[float] = None, raw_body: Optional[bytes] = None) -> HTTPRequest:
        headers = {"Accept": "application/json"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if "_xsrf" in self.cookies:
            headers["X-XSRFToken"] = self.cookies["_xsrf"]
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
        if payload is not None:
            headers["Content-Type"] = "application/json"
        return HTTPRequest(self.base + path, method=method, headers=headers, body=payload,
                           network_interface=self.source_address, ca_certs=self.ca_file,
                           request_timeout=timeout or self.request_timeout, connect_timeout=10,
                           follow_redirects=False)

    async def call(self, path: str, method: str = "GET", body: Any = None, timeout: Optional[float] = None,
                   raw_body: Optional[bytes] = None) -> dict:
        """Send a request; a typed error from the server is raised as ServerRefused."""
        req = self.request(path, method, body, timeout, raw_body)
        try:
            resp = await self._http.fetch(req)
        except HTTPClientError as exc:
            raise refusal(exc) from None
        for header in resp.headers.get_list("Set-Cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        try:
            data = json.loads(resp.body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ServerRefused("not_sealchat", f"{self.base} did not answer like a Sealchat server.")
        return data

    async def lookup(self, room: str, username: Optional[str] = None) -> dict:
        query = "?" + urlencode({"username": username}) if username else ""
        return await self.call(f"/api/rooms/{quote(room, safe='')}{query}")

    async def create(self, body: dict) -> dict:
        return await self.call("/api/rooms", "POST", body)

    async def join(self, body: dict) -> dict:
        return await self.call("/api/join", "POST", body)

    async def send_frame(self, frame: dict) -> dict:
        """One frame over long-poll; the answer holds the server's reply to it, if any, as `reply`."""
        return await self.call("/api/poll/send", "POST", frame)

    async def leave(self) -> dict:
        return await self.call("/api/leave", "POST", {})

    async def join_code(self) -> dict:
        return await self.call("/api/joincode")

    async def health(self) -> dict:
        return await self.call("/healthz")

    def close(self) -> None:
        self._http.close()
