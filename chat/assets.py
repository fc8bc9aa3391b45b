"""Static assets built once at start-up: minified, content-hashed, with Subresource Integrity.

Scripts under `frontend/static/js/` are minified with jsmin (they are hand-written ES5, so a
plain minifier is enough); stylesheets and the vendored library are served as they are. Every
asset gets a URL that contains a hash of its bytes, so it can be cached for a year, and a
`sha384-...` integrity value for the templates. Nothing here knows about request handlers.
"""
from __future__ import annotations

import base64
import hashlib
import pathlib
from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

from jsmin import jsmin

STATIC_DIR = pathlib.Path(__file__).resolve().parents[1] / "frontend" / "static"
URL_PREFIX = "/static/"
CACHE_CONTROL = "public, max-age=31536000, immutable"

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}
# Served exactly as shipped (already minified, checked against a published hash).
UNMINIFIED_DIRS = ("vendor/",)


@dataclass(frozen=True)
class Asset:
    name: str  # path relative to the static directory, with forward slashes
    body: bytes
    content_type: str
    digest: str  # short content hash used in the URL
    integrity: str  # sha384-<base64>

    @property
    def url(self) -> str:
        return f"{URL_PREFIX}{self.digest}/{self.name}"


def minify_js(source: str) -> str:
    """jsmin, keeping quoted strings intact; the result ends with one newline."""
    return jsmin(source, quote_chars="'\"").strip() + "\n"


def build_asset(name: str, raw: bytes) -> Asset:
    suffix = pathlib.PurePosixPath(name).suffix
    body = raw
    if suffix == ".js" and not name.startswith(UNMINIFIED_DIRS):
        body = minify_js(raw.decode("utf-8")).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()[:20]
    integrity = "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")
    return Asset(name, body, CONTENT_TYPES.get(suffix, "application/octet-stream"), digest, integrity)


def _files(root: pathlib.Path) -> Iterable[Tuple[str, pathlib.Path]]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in CONTENT_TYPES and not path.name.startswith("."):
            yield path.relative_to(root).as_posix(), path


class Assets:
    """The built asset table: name -> Asset, and (digest, name) -> Asset for serving."""

    def __init__(self, assets: Iterable[Asset]) -> None:
        self._by_name: Dict[str, Asset] = {a.name: a for a in assets}

    @classmethod
    def build(cls, root: Optional[pathlib.Path] = None) -> "Assets":
        root = root or STATIC_DIR
        return cls(build_asset(name, path.read_bytes()) for name, path in _files(root))

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Asset:
        return self._by_name[name]

    def names(self) -> Iterable[str]:
        return list(self._by_name)

    def url(self, name: str) -> str:
        return self._by_name[name].url

    def integrity(self, name: str) -> str:
        return self._by_name[name].integrity

    def find(self, digest: str, name: str) -> Optional[Asset]:
        """The asset at /static/<digest>/<name>, only when the digest is the current one."""
        asset = self._by_name.get(name)
        if asset is None or asset.digest != digest:
            return None
        return asset
