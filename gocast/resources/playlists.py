# -*- test-case-name: tests.test_icecast_admin -*-
"""
``/mount.m3u``, ``/mount.pls`` and ``/mount.xspf``: playlists that point a
player at a mount, as Icecast serves them. The stream URL uses the Host the
client asked for, so it works behind NAT and proxies.
"""

from __future__ import annotations

from typing import Optional, Tuple
from xml.etree import ElementTree

from twisted.web.resource import Resource
from twisted.web.server import Request

from ..config import Config
from ..core.mount import Mount
from ..core.text import scrub
from .status import listen_url, sub, xml_bytes

TYPES = {
    ".m3u": b"audio/x-mpegurl",
    ".pls": b"audio/x-scpls",
    ".xspf": b"application/xspf+xml",
}


def split_playlist(path: str) -> Optional[Tuple[str, str]]:
    """``/live.m3u`` → ``("/live", ".m3u")``."""
    for suffix in TYPES:
        if path.endswith(suffix) and len(path) > len(suffix) + 1:
            return path[: -len(suffix)], suffix
    return None


class Playlist(Resource):
    isLeaf = True

    def __init__(self, mount: Mount, suffix: str, config: Config):
        super().__init__()
        self.mount = mount
        self.suffix = suffix
        self.config = config

    def render_GET(self, request: Request) -> bytes:
        host = request.getHeader(b"host")
        url = listen_url(self.config, self.mount.path, host.decode("latin-1") if host else None)
        name = scrub(dict(self.mount.listener_headers()).get("icy-name") or self.mount.path)
        request.setHeader(b"content-type", TYPES[self.suffix])
        if self.suffix == ".m3u":
            return (url + "\n").encode("utf-8")
        if self.suffix == ".pls":
            return ("[playlist]\nNumberOfEntries=1\nFile1=%s\nTitle1=%s\nLength1=-1\nVersion=2\n"
                    % (url, name)).encode("utf-8")
        root = ElementTree.Element("playlist", version="1", xmlns="http://xspf.org/ns/0/")
        track = sub(sub(root, "trackList"), "track")
        sub(track, "location", url)
        sub(track, "title", name)
        return xml_bytes(root)
