# -*- test-case-name: tests.test_transcode -*-
"""
An ffmpeg child process that turns a mount's Ogg (Vorbis, Opus, FLAC)
stream, or MP3 for low-latency HLS, into ADTS AAC, for HLS. It is started when a source's stream begins
and stopped when it ends; if ffmpeg dies it is logged and restarted with
backoff (1, 2, 4... up to 30 s).
"""

from __future__ import annotations

import shutil
from typing import Any, Callable, List, Optional

from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

from ..media import ADTSFramer, Packet, sync_codec

MAX_BACKOFF = 30.0

def ffmpeg_needs(config: Any) -> List[str]:
    """
    The mounts a config asks ffmpeg of, each with why: HLS of a source that
    may be Ogg (a mount that does not fix ``type`` to MP3 or AAC), and
    low-latency HLS of MP3. AAC, and MP3 in plain HLS, are segmented here.
    """
    needs = []
    for path, mount in sorted(config.mounts.items()):
        codec = sync_codec(mount.type)
        if not mount.hls.enabled or codec == "aac":
            continue
        if codec == "mp3":
            if mount.hls.low_latency:
                needs.append("%s (low-latency HLS of MP3)" % path)
        else:
            needs.append("%s (HLS of %s)" % (path, "Ogg" if mount.type else "an Ogg source, if one comes"))
    return needs


def ffmpeg_missing(config: Any) -> Optional[str]:
    """A warning when ``config`` needs ffmpeg and it is not on PATH, else ``None``."""
    needs = ffmpeg_needs(config)
    if not needs or shutil.which("ffmpeg"):
        return None
    return ("ffmpeg is not on PATH, and these mounts need it: %s; install ffmpeg "
            "(Debian and Ubuntu: apt install ffmpeg)" % ", ".join(needs))


def ffmpeg_argv(input_format: str = "ogg", bitrate: int = 128000) -> List[str]:
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", input_format, "-i", "pipe:0",
            "-vn", "-c:a", "aac", "-b:a", str(bitrate), "-f", "adts", "pipe:1"]


class _FFmpeg(ProcessProtocol):
    def __init__(self, owner: "AACTranscoder"):
        self.owner = owner
        self.framer = ADTSFramer()
        self.errors = b""

    def outReceived(self, data: bytes) -> None:
        for packet in self.framer.feed(data):
            self.owner.output(packet)

    def errReceived(self, data: bytes) -> None:
        self.errors = (self.errors + data)[-2000:]

    def processEnded(self, reason: Any) -> None:
        self.owner.ended(self, reason, self.errors.decode("utf-8", "replace").strip())


class AACTranscoder:
    """
    Feeds Ogg (or MP3) bytes to ffmpeg, hands back whole AAC frames.

    :param output: called with each :class:`Packet` of ADTS frames.
    :param headers: the current Ogg codec headers, sent again after a restart.
    """

    _log = Logger()

    def __init__(self, reactor: Any, output: Callable[[Packet], None], headers: Callable[[], bytes],
                 label: str, argv: Optional[List[str]] = None):
        self.reactor = reactor
        self.output = output
        self.headers = headers
        self.label = label
        self.argv = argv or ffmpeg_argv()
        self.process: Optional[_FFmpeg] = None
        self.wanted = False
        self.failures = 0
        self._restart: Any = None

    def start(self) -> None:
        self.wanted = True
        if self.process is None and self._restart is None:
            self._spawn()

    def _spawn(self) -> None:
        self._restart = None
        executable = shutil.which(self.argv[0]) or self.argv[0]
        protocol = _FFmpeg(self)
        self.reactor.spawnProcess(protocol, executable, self.argv, env=None)
        self.process = protocol
        headers = self.headers()
        if headers:
            protocol.transport.write(headers)

    @property
    def running(self) -> bool:
        """An ffmpeg is up and reading (not stopped, not waiting to be restarted)."""
        return self.process is not None and self.process.transport is not None

    def feed(self, data: bytes) -> None:
        if self.running:
            self.process.transport.write(data)  # type: ignore[union-attr]

    def stop(self) -> None:
        self.wanted = False
        if self._restart is not None:
            self._restart.cancel()
            self._restart = None
        process, self.process = self.process, None
        if process is not None and process.transport is not None:
            process.transport.closeStdin()

    def ended(self, protocol: _FFmpeg, reason: Any, errors: str) -> None:
        if protocol is not self.process:
            return  # a process we stopped
        self.process = None
        if not self.wanted:
            return
        self.failures += 1
        delay = min(2.0 ** (self.failures - 1), MAX_BACKOFF)
        self._log.warn("{label}: the AAC transcoder (ffmpeg) died ({why}); restarting in {delay}s",
                       label=self.label, why=errors or reason.getErrorMessage(), delay=delay)
        self._restart = self.reactor.callLater(delay, self._spawn)
