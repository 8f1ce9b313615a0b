# -*- test-case-name: tests.test_nowplaying -*-
"""
What is playing beyond ICY's one line of text: album, genre, year,
duration and a cover, as a source, the API, Icecast's admin or a file's
tags give them. A mount keeps the current track's, when it started, and
the last tracks played (:class:`~gocast.core.mount.Mount`).
"""

from __future__ import annotations

import re
import time
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

import attr

#: Tracks a mount remembers (metadata.json's ``history``).
HISTORY = 10
#: The largest embedded picture taken from a file.
MAX_PICTURE = 8 * 1024 * 1024
#: An artwork URL as a source or the API may give it: http(s), printable, bounded.
_ARTWORK_URL = re.compile(r"https?://[\x21-\x7e]{1,2040}")


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Picture:
    """An image embedded in a file's tags (APIC, METADATA_BLOCK_PICTURE, covr)."""

    mime: str
    data: bytes = attr.ib(repr=lambda data: "<%d bytes>" % len(data))


@attr.s(frozen=True, slots=True, auto_attribs=True)
class TrackInfo:
    album: str = ""
    genre: str = ""
    year: Optional[int] = None
    #: Seconds, when known (a file's length).
    duration: Optional[float] = None
    #: A cover's http(s) URL, as given with the track.
    artwork: str = ""
    picture: Optional[Picture] = None


NO_INFO = TrackInfo()


def artwork_url(value: str) -> Optional[str]:
    """``value`` when it is an http(s) URL fit to show and fetch, else None."""
    value = value.strip()
    return value if _ARTWORK_URL.fullmatch(value) else None


def iso(seconds: Optional[float]) -> Optional[str]:
    """Unix time as ISO 8601 (UTC), or None."""
    if not seconds:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def host_allowed(url: str, hosts: Tuple[str, ...]) -> bool:
    """Whether ``url``'s host is one of ``hosts`` (``*.example.com`` takes its subdomains)."""
    host = (urlsplit(url).hostname or "").lower()
    for allowed in hosts:
        allowed = allowed.lower()
        if host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:])):
            return True
    return False


def artwork_link(mount: Any, path: str = "") -> Optional[str]:
    """
    Where the current cover is: this server's ``/<mount>/artwork.jpg`` when
    the mount serves artwork and makes this track's cover itself (from a
    file's picture, a URL it may fetch, or the placeholder when there is
    none), with the track's number so a browser fetches each track's;
    else the URL given with the track, else None.
    """
    track, settings = mount.track, mount.config.metadata
    if settings.artwork_enabled and (not track.artwork or track.picture is not None
                                     or host_allowed(track.artwork, settings.artwork_hosts)):
        return "%s/artwork.jpg?v=%d" % (path or mount.path, mount.metadata_version)
    return track.artwork or None


def now_playing(mount: Any, base: str = "", path: str = "") -> Dict[str, Any]:
    """
    metadata.json, as the roadmap shows it (title, artist, album, artwork,
    duration, genre, year), with ``song``, ``started_at`` and the tracks
    before (``history``). ``base`` (``http://host:port``) makes this
    server's artwork link absolute; ``path`` is the mount asked for when
    ``mount`` is what its listeners hear instead (a fallback).
    """
    track = mount.track
    artwork = artwork_link(mount, path)
    if artwork and artwork.startswith("/"):
        artwork = base + artwork
    return {"mount": path or mount.path, "live": mount.source is not None, "title": mount.title or None,
            "artist": mount.artist or None, "album": track.album or None, "artwork": artwork,
            "duration": track.duration, "genre": track.genre or None, "year": track.year,
            "song": mount.song or None, "started_at": iso(mount.track_started),
            "playing_from": mount.path if path and path != mount.path else None,
            "history": [dict(entry, started_at=iso(entry["started_at"]), ended_at=iso(entry["ended_at"]))
                        for entry in mount.history]}
