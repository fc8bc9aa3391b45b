"""Pages and assets over plain HTTP: hashed URLs, long caching, Subresource Integrity, a strict
CSP with nothing inline, and prefilled names escaped. No browser needed."""
from __future__ import annotations

import base64
import hashlib
import pathlib
import re
import urllib.error
import urllib.request

import pytest

from chat.assets import Assets, minify_js

STATIC = pathlib.Path(__file__).resolve().parents[2] / "frontend" / "static"
PAGES = ["/", "/create", "/login", "/chat/some%20room"]


def fetch(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.mark.parametrize("path", PAGES)
def test_page_has_strict_csp_and_nothing_inline(shared_server, path):
    status, headers, body = fetch(shared_server.url() + path)
    assert status == 200
    html = body.decode("utf-8")
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert headers["Cache-Control"] == "no-store"
    assert "_xsrf=" in headers.get("Set-Cookie", "")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\sstyle\s*=", html), "inline style attribute"
    assert "<style" not in html
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    refs = re.findall(r'(?:src|href)="(/static/[^"]+)" integrity="([^"]+)"', html)
    assert refs and any(r[0].endswith(".css") for r in refs)
    for url, integrity in refs:
        status, headers, asset = fetch(shared_server.url() + url)
        assert status == 200
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert integrity == "sha384-" + base64.b64encode(hashlib.sha384(asset).digest()).decode()
        assert hashlib.sha256(asset).hexdigest().startswith(url.split("/")[2])


def test_scripts_minified_vendor_as_shipped_and_fallback_urls_given(shared_server):
    _, _, body = fetch(shared_server.url() + "/create")
    html = body.decode("utf-8")
    vendor = re.search(r'data-vendor="([^"]+)"', html).group(1)
    worker = re.search(r'data-worker="([^"]+)"', html).group(1)
    _, _, vendor_body = fetch(shared_server.url() + vendor)
    assert vendor_body == (STATIC / "vendor" / "forge-1.4.3.min.js").read_bytes()
    _, headers, worker_body = fetch(shared_server.url() + worker)
    assert headers["Content-Type"].startswith("text/javascript")
    source = (STATIC / "js" / "sealcrypto-worker.js").read_text("utf-8")
    assert worker_body.decode("utf-8") == minify_js(source)
    assert len(worker_body) < len(source.encode("utf-8"))


def test_unknown_or_stale_asset_hash_is_404(shared_server):
    assets = Assets.build()
    url = assets.url("js/dom.js")
    stale = url.replace(assets["js/dom.js"].digest, "0" * 20)
    assert fetch(shared_server.url() + stale)[0] == 404
    assert fetch(shared_server.url() + "/static/" + "0" * 20 + "/../chat/app.py")[0] == 404


def test_prefilled_names_are_escaped(shared_server):
    payload = '"><script>window.pwned=1</script>'
    url = shared_server.url() + "/login?roomname=" + urllib.request.quote(payload) + "&username=x"
    html = fetch(url)[2].decode("utf-8")
    assert "<script>window.pwned" not in html
    assert "&lt;script&gt;" in html


def test_no_backtick_in_served_scripts():
    assets = Assets.build()
    for name in assets.names():
        if name.startswith("js/"):
            assert b"`" not in assets[name].body, name
