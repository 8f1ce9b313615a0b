# -*- test-case-name: tests.test_nowplaying -*-
"""
``GET /<mount>/metadata.json`` (what its listeners hear, a fallback's track
when they are on one, for station websites and players: the roadmap's
fields, ``started_at`` and the tracks before) and
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

    def __init__(self, mount: Any, registry: Any):
        super().__init__()
        self.mount = mount
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-cache")
        heard = self.registry.on_air(self.mount.path) or self.mount
        document = now_playing(heard, public_base(request, self.registry.config.server), self.mount.path)
        return json.dumps(document, ensure_ascii=False).encode("utf-8")


class ArtworkJpeg(Resource):
    isLeaf = True

    def __init__(self, mount: Any, registry: Any, artworks: Any):
        super().__init__()
        self.mount = mount
        self.registry = registry
        self.artworks = artworks

    def render_GET(self, request: Request) -> bytes:
        if not self.mount.config.metadata.artwork_enabled or self.artworks is None:
            request.setResponseCode(404)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"this mount serves no artwork (metadata { artwork_enabled true } turns it on)\n"
        cover = self.artworks.cover(self.registry.on_air(self.mount.path) or self.mount)
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
    if leaf == "metadata.json":
        return NowPlayingJson(mount, registry)
    return ArtworkJpeg(mount, registry, artworks)
