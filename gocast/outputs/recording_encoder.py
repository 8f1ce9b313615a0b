# -*- test-case-name: tests.test_recorder -*-
"""
Recordings in another format than the source's (``recording { format mp3
}``): one ffmpeg child per file, fed the mount's chunks (the Ogg headers
first), its output written to the file. A file ends when its ffmpeg has
flushed and exited after its input closed, so every file is a whole
stream of its own.
"""

from __future__ import annotations

import shutil
from typing import Any, Callable, Dict, List, Tuple

from twisted.internet.protocol import ProcessProtocol

#: Format: (ffmpeg codec, ffmpeg container, file extension).
FORMATS: Dict[str, Tuple[str, str, str]] = {
    "mp3": ("libmp3lame", "mp3", "mp3"),
    "aac": ("aac", "adts", "aac"),
    "opus": ("libopus", "ogg", "opus"),
    "vorbis": ("libvorbis", "ogg", "ogg"),
    "ogg": ("libvorbis", "ogg", "ogg"),
    "flac": ("flac", "flac", "flac"),
}


def encoder_argv(fmt: str, bitrate: int) -> List[str]:
    codec, container, _ = FORMATS[fmt]
    rate = [] if fmt == "flac" else ["-b:a", str(bitrate)]
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "pipe:0", "-vn", "-c:a", codec] + rate + [
        "-f", container, "pipe:1"]


class Encoder(ProcessProtocol):
    """
    One file's ffmpeg: ``output`` gets what it encodes, ``ended`` is called
    with the process's end (``None`` when it exited cleanly) and its last
    error lines.
    """

    def __init__(self, output: Callable[[bytes], None], ended: Callable[["Encoder", Any, str], None]):
        self.output = output
        self.ended = ended
        self.errors = b""

    def outReceived(self, data: bytes) -> None:
        self.output(data)

    def errReceived(self, data: bytes) -> None:
        self.errors = (self.errors + data)[-2000:]

    def feed(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def finish(self) -> None:
        """No more input: ffmpeg flushes what it holds and exits."""
        if self.transport is not None:
            self.transport.closeStdin()

    def processEnded(self, reason: Any) -> None:
        from twisted.internet.error import ProcessDone

        clean = reason.check(ProcessDone) is not None
        self.ended(self, None if clean else reason, self.errors.decode("utf-8", "replace").strip())


def spawn_encoder(reactor: Any, encoder: Encoder, fmt: str, bitrate: int) -> None:
    argv = encoder_argv(fmt, bitrate)
    reactor.spawnProcess(encoder, shutil.which(argv[0]) or argv[0], argv, env=None)
