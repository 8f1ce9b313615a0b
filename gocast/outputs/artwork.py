# -*- test-case-name: tests.test_nowplaying -*-
"""
Each mount's cover at ``/<mount>/artwork.jpg`` (``metadata { artwork_enabled
true }``): made when now-playing changes, from the track's embedded picture
(a file's tags) or the cover URL given with it (a source, the API, the
admin), fitted to ``artwork_size`` with Pillow in a thread, kept in memory
for the track and on disk under ``artwork_cache`` (by the hash of its
URL or bytes, :data:`MAX_CACHED` files at most) so a cover comes back without
being fetched or resized again.

A URL is fetched only from the hosts ``artwork_hosts`` names: the URL
comes from a source client or an API caller, and the server must not be
made to fetch from wherever they say (another host's URL is passed on to
players as it is). A fetch is bounded (:data:`FETCH_TIMEOUT`, the size of
:data:`~gocast.core.track.MAX_PICTURE`), must answer 200 with an
``image/*`` type, and must decode. What fails leaves the placeholder, and
a log line.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Callable, Dict, Optional, Tuple

import attr
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from ..core.events import Event
from ..core.track import MAX_PICTURE, host_allowed
from ..media.artwork import NotAnImage, etag_of, fit_jpeg, placeholder_jpeg

FETCH_TIMEOUT = 10.0
#: Covers kept on disk; the oldest go first.
MAX_CACHED = 500


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Cover:
    jpeg: bytes = attr.ib(repr=lambda data: "<%d bytes>" % len(data))
    etag: str


class Artworks:
    """
    :param fetch: ``(url, timeout, max_body) -> Deferred of HttpReply`` (OutboundHttp.request's shape).
    :param in_thread: runs a function in a thread, a Deferred of its result (deferToThread).
    :param data_dir: where relative ``artwork_cache`` folders are.
    """

    _log = Logger()

    def __init__(self, registry: Any, bus: Any, fetch: Callable[..., Deferred],
                 in_thread: Callable[..., Deferred], data_dir: Callable[[], str]):
        self.registry = registry
        self.fetch = fetch
        self.in_thread = in_thread
        self.data_dir = data_dir
        self._placeholders: Dict[Tuple[int, int], Cover] = {}
        bus.subscribe(self.changed, ["source.metadata"])

    def changed(self, event: Event) -> None:
        mount = self.registry.find(event.mount or "")
        if mount is None or not mount.config.metadata.artwork_enabled:
            return
        mount.cover = None
        version, track = mount.metadata_version, mount.track
        settings = mount.config.metadata
        if track.picture is not None:
            picture = track.picture.data
            made = self.made(picture, lambda: succeed(picture), settings)
        elif track.artwork and host_allowed(track.artwork, settings.artwork_hosts):
            url = track.artwork
            made = self.made(url.encode("utf-8"), lambda: self.fetched(url), settings)
        else:
            return
        made.addCallbacks(lambda cover: self.take(mount, version, cover), lambda failure: self._log.warn(
            "{mount}: no cover for {song}: {why}", mount=mount.path, song=mount.song,
            why=failure.getErrorMessage()))

    @staticmethod
    def take(mount: Any, version: int, cover: Cover) -> None:
        if mount.metadata_version == version:  # still the track it was made for
            mount.cover = cover

    def fetched(self, url: str) -> Deferred:
        def check(reply: Any) -> bytes:
            kind = reply.headers.get("content-type", "").split(";")[0].strip().lower()
            if reply.code != 200 or not kind.startswith("image/"):
                raise NotAnImage("%s answered %d with %s, not an image" % (url, reply.code, kind or "no type"))
            return reply.body

        return self.fetch("GET", url, FETCH_TIMEOUT, max_body=MAX_PICTURE).addCallback(check)

    def made(self, origin: bytes, image: Callable[[], Deferred], settings: Any) -> Deferred:
        """
        The cover of an image known by ``origin`` (its URL, or its bytes):
        from the disk cache when it was made before, else made from what
        ``image()`` gives (fetched only then).
        """
        size = tuple(settings.artwork_size)
        folder = self.folder(settings)
        cached = None
        if folder:
            cached = os.path.join(folder, hashlib.sha256(origin + b"%dx%d" % size).hexdigest() + ".jpg")
        return self.in_thread(_cached, cached).addCallback(
            lambda cover: cover if cover is not None else image().addCallback(
                lambda data: self.in_thread(_make, data, size, cached)))

    def folder(self, settings: Any) -> Optional[str]:
        if not settings.artwork_cache:
            return None
        return os.path.join(self.data_dir(), settings.artwork_cache)

    def cover(self, mount: Any) -> Cover:
        """What ``/<mount>/artwork.jpg`` serves now: the cover, or the placeholder."""
        if mount.cover is not None:
            return mount.cover
        size = tuple(mount.config.metadata.artwork_size)
        if size not in self._placeholders:
            jpeg = placeholder_jpeg(size)
            self._placeholders[size] = Cover(jpeg, etag_of(jpeg))
        return self._placeholders[size]


def _cached(path: Optional[str]) -> Optional[Cover]:
    """In a thread: the cover kept in ``path``, if it is there."""
    try:
        with open(path, "rb") as f:  # type: ignore[arg-type]
            jpeg = f.read()
    except (OSError, TypeError):
        return None
    return Cover(jpeg, etag_of(jpeg))


def _make(data: bytes, size: Tuple[int, int], cached: Optional[str]) -> Cover:
    """In a thread: the cover made from ``data``, and kept in ``cached``."""
    jpeg = fit_jpeg(data, size)
    if cached is not None:
        try:
            os.makedirs(os.path.dirname(cached), exist_ok=True)
            with open(cached + ".part", "wb") as f:
                f.write(jpeg)
            os.replace(cached + ".part", cached)
            _trim(os.path.dirname(cached))
        except OSError:
            pass  # served from memory all the same
    return Cover(jpeg, etag_of(jpeg))


def _trim(folder: str) -> None:
    names = [os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".jpg")]
    if len(names) <= MAX_CACHED:
        return
    names.sort(key=os.path.getmtime)
    for name in names[:len(names) - MAX_CACHED]:
        try:
            os.remove(name)
        except OSError:
            pass
