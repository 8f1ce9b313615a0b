# -*- test-case-name: tests.test_fileplayer -*-
"""
Fallback files: ``fallback { file /path/silence.mp3 loop true }``.

A file is cut into whole frames once (MP3, AAC, Ogg), then fed to a mount
of its own at its real bitrate, paced by the reactor's clock: a little
ahead of real time, so listeners never starve, never faster.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional

from twisted.logger import Logger

from ..config.files import describe, open_regular
from ..core.mount import Mount, SourceInfo
from ..media import Packet, framer_for

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


class FilePlayer:
    """Feeds one file to one mount, in real time."""

    def __init__(self, mount: Mount, packets: List[Packet], content_type: str, loop: bool, clock: Any,
                 on_end: Callable[[], None]):
        self.mount = mount
        self.packets = packets
        self.content_type = content_type
        self.loop = loop
        self.clock = clock
        self.on_end = on_end
        self._index = 0
        self._fed = 0.0
        self._started = 0.0
        self._call: Any = None

    def start(self) -> None:
        self.mount.start_source(SourceInfo(self.content_type, "file", "GoCast fallback file",
                                           self.clock.seconds()))
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
        self._cache: Dict[str, List[Packet]] = {}
        self.playing: Dict[Mount, FilePlayer] = {}

    def load(self, path: str) -> Optional[List[Packet]]:
        packets = self._cache.get(path)
        if packets is not None:
            return packets
        content_type = content_type_for(path)
        if content_type is None:
            self._log.error("fallback file {path}: unknown format; use .mp3, .aac, .ogg or .opus",
                            path=path)
            return None
        try:
            with os.fdopen(open_regular(path), "rb") as f:
                data = f.read(MAX_FILE)
        except OSError as e:
            self._log.error("fallback file {path}: {why}", path=path, why=describe(e))
            return None
        packets = cut(data, content_type)
        if not sum(p.duration for p in packets):
            self._log.error("fallback file {path}: no audio frames found", path=path)
            return None
        self._cache[path] = packets
        return packets

    def start(self, mount: Mount, path: str, loop: bool, on_end: Callable[[], None]) -> bool:
        packets = self.load(path)
        if packets is None:
            return False
        player = FilePlayer(mount, packets, content_type_for(path) or "", loop, self.clock, on_end)
        self.playing[mount] = player
        player.start()
        return True

    def stop(self, mount: Mount) -> None:
        player = self.playing.pop(mount, None)
        if player is not None:
            player.stop()
