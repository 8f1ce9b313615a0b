# -*- test-case-name: tests.test_nowplaying -*-
"""
``GET /<mount>/metadata.json`` (what is playing, for station websites and
players: the roadmap's fields, ``started_at`` and the tracks before) and
``GET /<mount>/artwork.jpg`` (its cover, or a placeholder, when the mount
sets ``metadata { artwork_enabled true }``). Both may be read by any
page (CORS, like the streams) and must not be cached without asking
(``no-cache``; the cover has an ETag, so asking is cheap).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.web.resource import Resource
from twisted.web.server import Request

from ..core.track import now_playing
from .site import public_base

#: The names after a mount's path, and what each is.
LEAVES = ("metadata.json", "artwork.jpg")


class NowPlayingJson(Resource):
    isLeaf = True

    def __init__(self, mount: Any, config: Any):
        super().__init__()
        self.mount = mount
        self.config = config

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-cache")
        document = now_playing(self.mount, public_base(request, self.config.server))
        return json.dumps(document, ensure_ascii=False).encode("utf-8")


class ArtworkJpeg(Resource):
    isLeaf = True

    def __init__(self, mount: Any, artworks: Any):
        super().__init__()
        self.mount = mount
        self.artworks = artworks

    def render_GET(self, request: Request) -> bytes:
        if not self.mount.config.metadata.artwork_enabled or self.artworks is None:
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"this mount serves no artwork (metadata { artwork_enabled true } turns it on)\n"
        cover = self.artworks.cover(self.mount)
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"etag", cover.etag.encode("ascii"))
        request.setHeader(b"x-content-type-options", b"nosniff")
        if request.setETag(cover.etag.encode("ascii")):
            return b""  # 304: the cover the client has
        request.setHeader(b"content-type", b"image/jpeg")
        return cover.jpeg


def leaf_for(registry: Any, path: str, artworks: Any) -> Any:
    """The resource of ``/<mount>/metadata.json`` or ``/<mount>/artwork.jpg``, or None."""
    base, _, leaf = path.rpartition("/")
    mount = registry.get(base) if leaf in LEAVES and base else None
    if mount is None:
        return None
    return NowPlayingJson(mount, registry.config) if leaf == "metadata.json" else ArtworkJpeg(mount, artworks)
