# -*- test-case-name: tests.test_transcode -*-
"""
ffmpeg child processes fed a mount's stream: the AAC transcoder that turns
a mount's Ogg (Vorbis, Opus, FLAC) stream, or MP3 for low-latency HLS,
into ADTS AAC for HLS, and the transcoding ladder's encoder
(:mod:`gocast.outputs.ladder`). Each is started when a stream begins and
stopped when it ends; if ffmpeg dies it is logged and restarted with
backoff (1, 2, 4... up to 30 s).
"""

from __future__ import annotations

import shutil
from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

from ..media import ADTSFramer, Packet, sync_codec
from ..media.oggchain import OggSplicer

MAX_BACKOFF = 30.0
#: A child that ran this long before dying was healthy: the backoff starts again from 1 s.
STABLE_SECONDS = 60.0

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
    def __init__(self, owner: "FFmpegChild"):
        self.owner = owner
        self.errors = b""

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        if childFD == 2:
            self.errReceived(data)
            return
        output = self.owner.outputs.get(childFD)
        if output is not None and self.owner.process is self:
            output(data)

    def outReceived(self, data: bytes) -> None:
        self.childDataReceived(1, data)

    def errReceived(self, data: bytes) -> None:
        self.errors = (self.errors + data)[-2000:]

    def processEnded(self, reason: Any) -> None:
        self.owner.ended(self, reason, self.errors.decode("utf-8", "replace").strip())


class FFmpegChild:
    """
    An ffmpeg reading a stream on its stdin and writing to one or more
    pipes, restarted with backoff when it dies while wanted.

    :param outputs: what to do with the bytes ffmpeg writes, by file
        descriptor (1 for ``pipe:1``, 3 for ``pipe:3``...).
    :param headers: the bytes a new process must read first (the current
        Ogg codec headers), sent again after a restart.
    :param restarted: called after each restart that follows a death.
    """

    _log = Logger()
    #: What the log calls this child.
    role = "transcoder"

    def __init__(self, reactor: Any, argv: List[str], outputs: Dict[int, Callable[[bytes], None]],
                 headers: Callable[[], bytes], label: str, restarted: Callable[[], None] = lambda: None):
        self.reactor = reactor
        self.argv = argv
        self.outputs = outputs
        self.headers = headers
        self.label = label
        self.restarted = restarted
        self.process: Optional[_FFmpeg] = None
        self.wanted = False
        self.failures = 0
        self._restart: Any = None
        self._spawned_at = 0.0

    def start(self) -> None:
        self.wanted = True
        if self.process is None and self._restart is None:
            self._spawn()

    def _spawn(self) -> None:
        self._restart = None
        executable = shutil.which(self.argv[0]) or self.argv[0]
        protocol = _FFmpeg(self)
        fds: Dict[int, Any] = {0: "w", 2: "r"}
        fds.update((fd, "r") for fd in self.outputs)
        self.reactor.spawnProcess(protocol, executable, self.argv, env=None, childFDs=fds)
        self.process = protocol
        self._spawned_at = self.reactor.seconds()
        headers = self.headers()
        if headers:
            protocol.transport.write(headers)

    @property
    def running(self) -> bool:
        """An ffmpeg is up and reading (not stopped, not waiting to be restarted)."""
        return self.process is not None and self.process.transport is not None

    @property
    def pid(self) -> Optional[int]:
        return getattr(self.process.transport, "pid", None) if self.process is not None else None

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
        if self.reactor.seconds() - self._spawned_at >= STABLE_SECONDS:
            self.failures = 0
        self.failures += 1
        delay = min(2.0 ** (self.failures - 1), MAX_BACKOFF)
        self._log.warn("{label}: the {role} (ffmpeg) died ({why}); restarting in {delay}s",
                       label=self.label, role=self.role, why=errors or reason.getErrorMessage(), delay=delay)
        self._restart = self.reactor.callLater(delay, self._respawn)

    def _respawn(self) -> None:
        self._spawn()
        self.restarted()


class AACTranscoder(FFmpegChild):
    """
    Feeds Ogg (or MP3) bytes to ffmpeg, hands back whole AAC frames.

    :param output: called with each :class:`Packet` of ADTS frames.
    """

    role = "AAC transcoder"

    def __init__(self, reactor: Any, output: Callable[[Packet], None], headers: Callable[[], bytes],
                 label: str, argv: Optional[List[str]] = None):
        framer = ADTSFramer()

        def frames(data: bytes) -> None:
            for packet in framer.feed(data):
                output(packet)

        super().__init__(reactor, argv or ffmpeg_argv(), {1: frames}, headers, label)


class StreamFeed:
    """
    A mount's chunks into an :class:`FFmpegChild`. A new stream (a new
    source, a fallback, a chain whose codec setup differs) restarts ffmpeg,
    which reads the new codec headers first; a chained Ogg stream from the
    same source (Liquidsoap and ices start one at every track) with the same
    codec setup is spliced into the stream ffmpeg is reading: no restart,
    no gap.

    :param feeding: the mount whose chunks arrive now.
    """

    def __init__(self, feeding: Callable[[], Any]):
        self.feeding = feeding
        #: Joins a source's chained Ogg streams into the one ffmpeg is reading.
        self.splicer = OggSplicer()
        #: The last input stream sent to ffmpeg: its generation and source.
        self._input: Tuple[int, Any] = (-1, None)

    def headers(self) -> bytes:
        """What a new ffmpeg reads first: the feeding mount's Ogg headers (nothing for MP3 and AAC)."""
        return self.splicer.begin(self.feeding().header_pages)

    def forget(self) -> None:
        """The next chunk starts a new stream (the feeding mount changed)."""
        self._input = (-1, None)

    def feed(self, child: FFmpegChild, chunk: Any, ogg: bool) -> bool:
        """Send ``chunk`` to ``child``; whether that (re)started it for a new stream."""
        restarted = False
        if chunk.generation != self._input[0]:
            source = self.feeding().source
            same_source = self._input[1] is source
            self._input = (chunk.generation, source)
            if not (ogg and chunk.header and same_source and child.running and self.splicer.chain(chunk.data)):
                child.stop()
                child.start()
                restarted = True
            if chunk.header:
                return restarted  # sent to ffmpeg as it started, or spliced
        child.feed(self.splicer.audio(chunk.data) if ogg else chunk.data)
        return restarted
