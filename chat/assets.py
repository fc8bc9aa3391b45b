"""Static assets built once at start-up: minified, content-hashed, with Subresource Integrity.

Scripts under `frontend/static/js/` are minified with jsmin (they are hand-written ES5, so a
plain minifier is enough). Stylesheets are flattened for old engines: every declaration that uses a
custom property gets, just before it, the same declaration with the light theme's values written
out, so an engine without `var()` keeps the plain one and a modern engine the themed one. The
vendored library is served as it is. Every asset gets a URL that contains a hash of its bytes, so
it can be cached for a year, and a `sha384-...` integrity value for the templates. Nothing here
knows about request handlers.
"""
from __future__ import annotations

import base64
import hashlib
import pathlib
import re
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


class StylesheetError(ValueError):
    """A stylesheet uses a custom property its `:root` block does not define: refused at start-up."""


CSS_COMMENT = re.compile(r"/\*.*?\*/", re.S)
# The first top-level `:root { ... }` block holds the default (light) theme's values.
CSS_ROOT_BLOCK = re.compile(r"(?:^|})\s*:root\s*\{([^{}]*)\}")
CSS_CUSTOM_PROPERTY = re.compile(r"(--[\w-]+)\s*:\s*([^;{}]*?)\s*(?=;|$)")
# A declaration (after `{` or `;`) whose value uses var(); selectors never match, since a value
# cannot hold `{`.
CSS_VAR_DECLARATION = re.compile(r"(?<=[{;])(\s*)([a-zA-Z][\w-]*)(\s*:\s*)([^;{}]*\bvar\([^;{}]*?)(?=\s*[;}])")
CSS_VAR = re.compile(r"var\(\s*(--[\w-]+)\s*(?:,\s*([^()]*))?\)")


def flatten_css(source: str, name: str = "stylesheet") -> str:
    """Each declaration using var() preceded by a plain copy with the `:root` values substituted.

    Comments go; everything else stays as written, so themes still work where var() does."""
    text = CSS_COMMENT.sub("", source)
    root = CSS_ROOT_BLOCK.search(text)
    values = dict(CSS_CUSTOM_PROPERTY.findall(root.group(1))) if root else {}

    def resolve(value: str, depth: int = 0) -> str:
        def one(m: "re.Match[str]") -> str:
            known = values.get(m.group(1))
            if known is None and m.group(2) is None:
                raise StylesheetError(f"{name}: var({m.group(1)}) has no value in :root")
            return resolve(known if known is not None else m.group(2).strip(), depth + 1)
        if depth > 8:
            raise StylesheetError(f"{name}: custom properties refer to each other in a loop")
        return CSS_VAR.sub(one, value)

    def declaration(m: "re.Match[str]") -> str:
        space, prop, colon, value = m.groups()
        plain = resolve(value)
        return f"{space}{prop}{colon}{plain};{space}{prop}{colon}{value}"

    return CSS_VAR_DECLARATION.sub(declaration, text).strip() + "\n"


def build_asset(name: str, raw: bytes) -> Asset:
    suffix = pathlib.PurePosixPath(name).suffix
    body = raw
    if suffix == ".js" and not name.startswith(UNMINIFIED_DIRS):
        body = minify_js(raw.decode("utf-8")).encode("utf-8")
    elif suffix == ".css":
        body = flatten_css(raw.decode("utf-8"), name).encode("utf-8")
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
    def build(cls, root: Optional[pathlib.Path] = None, made: Iterable[Asset] = ()) -> "Assets":
        """The files under `root`, plus assets `made` at start-up (the browser's catalogs)."""
        root = root or STATIC_DIR
        return cls([*(build_asset(name, path.read_bytes()) for name, path in _files(root)), *made])

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
