# -*- test-case-name: tests.test_fileplayer -*-
"""
Fallback files: ``fallback { file /path/silence.mp3 loop true }``.

A file is cut into whole frames once (MP3, AAC, Ogg: known from its bytes,
else its name), then fed to a mount of its own at its real bitrate, paced
by the reactor's clock: a little ahead of real time, so listeners never
starve, never faster. Its tags (:mod:`gocast.inputs.filetags`) are the
mount's now-playing while it plays.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import attr
from twisted.logger import Logger

from ..config.files import describe, open_regular
from ..core.mount import Mount, SourceInfo
from ..core.track import NO_INFO, TrackInfo
from ..media import Packet, framer_for
from .filetags import content_type_of, read_tags

#: How far ahead of real time the player keeps the mount.
LEAD = 0.5
#: How often it tops the mount up.
TICK = 0.1
#: Fallback files are read into memory; larger ones are refused.
MAX_FILE = 64 * 1024 * 1024

_TYPES = {".mp3": "audio/mpeg", ".aac": "audio/aac", ".adts": "audio/aac", ".ogg": "application/ogg",
          ".oga": "audio/ogg", ".opus": "audio/ogg"}


def content_type_for(path: str) -> Optional[str]:
    return _TYPES.get(os.path.splitext(path)[1].lower())


def cut(data: bytes, content_type: str) -> List[Packet]:
    """The file's whole frames, in packets of a few kilobytes."""
    framer = framer_for(content_type)
    packets: List[Packet] = []
    for start in range(0, len(data), 4096):
        packets.extend(framer.feed(data[start : start + 4096]))
    return packets


Tags = Tuple[str, str, TrackInfo]


@attr.s(frozen=True, slots=True, auto_attribs=True)
class Loaded:
    """A file read and cut: its frames, its content type, and (title, artist, the rest) from its tags."""

    packets: List[Packet]
    content_type: str
    tags: Tags


class FilePlayer:
    """Feeds one file to one mount, in real time."""

    def __init__(self, mount: Mount, packets: List[Packet], content_type: str, loop: bool, clock: Any,
                 on_end: Callable[[], None], tags: Tags = ("", "", NO_INFO)):
        self.mount = mount
        self.packets = packets
        self.content_type = content_type
        self.tags = tags
        self.loop = loop
        self.clock = clock
        self.on_end = on_end
        self._index = 0
        self._fed = 0.0
        self._started = 0.0
        self._call: Any = None

    def start(self) -> None:
        # Its in-stream titles (Ogg comments) are in the tags read with mutagen, which say more.
        self.mount.start_source(SourceInfo(self.content_type, "file", "GoCast fallback file",
                                           self.clock.seconds(), inband_metadata=False))
        title, artist, info = self.tags
        if title or artist:
            self.mount.set_metadata(title=title, artist=artist, info=info)
        self._started = self.clock.seconds()
        self._tick()

    def _tick(self) -> None:
        self._call = None
        target = self.clock.seconds() - self._started + LEAD
        while self._fed < target:
            if self._index >= len(self.packets):
                if not self.loop:
                    self.stop()
                    self.on_end()
                    return
                self._index = 0
            packet = self.packets[self._index]
            self._index += 1
            self.mount.feed(packet.data)
            self._fed += packet.duration
        self._call = self.clock.callLater(TICK, self._tick)

    def stop(self) -> None:
        if self._call is not None:
            self._call.cancel()
            self._call = None
        if self.mount.source is not None:
            self.mount.stop_source()


class FilePlayers:
    """Starts file players for the registry; reads and cuts each file once."""

    _log = Logger()

    def __init__(self, clock: Any):
        self.clock = clock
        self._cache: Dict[str, Loaded] = {}
        self.playing: Dict[Mount, FilePlayer] = {}

    def load(self, path: str) -> Optional[Loaded]:
        """The file's frames, what it is (from its bytes, else its name) and its tags; read once."""
        loaded = self._cache.get(path)
        if loaded is not None:
            return loaded
        try:
            with os.fdopen(open_regular(path), "rb") as f:
                data = f.read(MAX_FILE)
        except OSError as e:
            self._log.error("fallback file {path}: {why}", path=path, why=describe(e))
            return None
        content_type = content_type_of(data) or content_type_for(path)
        if content_type is None:
            self._log.error("fallback file {path}: not MP3, AAC or Ogg (Opus, Vorbis, FLAC)", path=path)
            return None
        packets = cut(data, content_type)
        if not sum(p.duration for p in packets):
            self._log.error("fallback file {path}: no audio frames found", path=path)
            return None
        loaded = self._cache[path] = Loaded(packets, content_type, read_tags(data))
        return loaded

    def start(self, mount: Mount, path: str, loop: bool, on_end: Callable[[], None]) -> bool:
        loaded = self.load(path)
        if loaded is None:
            return False
        player = FilePlayer(mount, loaded.packets, loaded.content_type, loop, self.clock, on_end, loaded.tags)
        self.playing[mount] = player
        player.start()
        return True

    def stop(self, mount: Mount) -> None:
        player = self.playing.pop(mount, None)
        if player is not None:
            player.stop()
