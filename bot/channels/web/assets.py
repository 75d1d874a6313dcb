"""The widget's files, read once and kept in memory with their gzip form and a content hash.

Served with an ETag (a browser revalidates with a 304), `Cross-Origin-Resource-Policy: cross-origin` (the
clinic's own site loads them) and gzip when the browser accepts it. No CDN, nothing fetched elsewhere.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request, Response

STATIC = Path(__file__).with_name("static")
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CACHE = "public, max-age=300"  # the embed snippet names a fixed URL: a short cache, then a cheap 304


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str

    @classmethod
    def read(cls, path: Path) -> Asset:
        body = path.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:20]
        return cls(path.name, body, gzip.compress(body, 9, mtime=0), TYPES[path.suffix], f'"{digest}"')

    def response(self, request: Request) -> Response:
        headers = {
            "ETag": self.etag,
            "Cache-Control": CACHE,
            "Vary": "Accept-Encoding",
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.media_type, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def load_assets(folder: Path = STATIC) -> dict[str, Asset]:
    """Every servable file of the folder by name."""
    return {path.name: Asset.read(path) for path in sorted(folder.iterdir()) if path.suffix in TYPES}
