# -*- test-case-name: tests.test_ladder -*-
"""
The transcoding ladder: a mount's ``transcoding { outputs {..} }``, each
output published on a mount of its own.

A :class:`Ladder` is a subscriber of its mount's frame stream (never a
listener) that feeds one ffmpeg: it decodes once and encodes every output,
each to its own pipe (``pipe:3``, ``pipe:4``...), paced by the stream, since
ffmpeg reads chunks as the source sends them. Each pipe feeds its output
mount as a source would, so the outputs have listeners, HLS, stats and
recordings like any mount. The ladder follows its mount's fallbacks (the
fallback's audio is transcoded, and the outputs' listeners hear it), copies
its now-playing to the outputs, and restarts ffmpeg with backoff when it
dies (the outputs keep their listeners). An ``on_demand`` output has an
ffmpeg of its own, started by its first listener and stopped a while after
the last.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from ..config._ladder import CONTENT_TYPES
from ..config._mount import TranscodeOutput
from ..core.mount import Chunk, Mount, SourceInfo
from ..media import sync_codec
from .recording_encoder import FORMATS
from .transcode import FFmpegChild, StreamFeed

#: An on-demand output's ffmpeg runs this long after its last listener left.
ON_DEMAND_LINGER = 10.0
#: Ogg pages of this many microseconds: ffmpeg's default second would hold a
#: second of audio back from listeners.
OGG_PAGE_DURATION = 200000
#: First output pipe: ffmpeg's 0, 1 and 2 are stdin, stdout and stderr.
FIRST_FD = 3


def input_format(content_type: str, ogg: bool) -> Optional[str]:
    """ffmpeg's demuxer for what the mount streams (``None``: let ffmpeg find out)."""
    if ogg:
        return "ogg"
    codec = sync_codec(content_type)
    return {"mp3": "mp3", "aac": "aac"}.get(codec or "")


def encoder_args(output: TranscodeOutput) -> List[str]:
    """ffmpeg's options for one output, up to its pipe."""
    codec, muxer, _ = FORMATS[output.format]  # as recordings are encoded
    args = ["-map", "0:a", "-c:a", codec, "-b:a", str(output.bitrate)]
    if output.sample_rate and output.format != "opus":  # Opus is 48 kHz; ffmpeg resamples to it
        args += ["-ar", str(output.sample_rate)]
    if output.channels:
        args += ["-ac", str(output.channels)]
    if output.quality is not None:
        # LAME's algorithm quality runs from 0 (best) to 9; Opus's complexity from 0 to 10 (best).
        level = 9 - round(output.quality * 0.9) if output.format == "mp3" else output.quality
        args += ["-compression_level", str(level)]
    if output.format == "mp3":
        args += ["-write_xing", "0", "-id3v2_version", "0"]  # a stream: no header of a file's length
    if muxer == "ogg":
        args += ["-page_duration", str(OGG_PAGE_DURATION)]
    return args + ["-map_metadata", "-1", "-flush_packets", "1", "-f", muxer]


def ladder_argv(source_format: Optional[str], outputs: Iterable[TranscodeOutput]) -> List[str]:
    """One ffmpeg reading the stream on stdin and writing output N to ``pipe:N+3``."""
    argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    if source_format:
        argv += ["-f", source_format]
    argv += ["-i", "pipe:0", "-vn"]
    for fd, output in enumerate(outputs, FIRST_FD):
        argv += encoder_args(output) + ["pipe:%d" % fd]
    return argv


def cpu_seconds(pid: Optional[int], ticks: Callable[[], float] = lambda: os.sysconf("SC_CLK_TCK")) -> float:
    """CPU time (user and system) process ``pid`` has used, from /proc; 0 when it cannot be read."""
    if pid is None:
        return 0.0
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks()
    except (OSError, ValueError, IndexError):
        return 0.0


class Encoder:
    """
    One ffmpeg of a ladder and the outputs it encodes. The output mounts'
    sources start with ffmpeg's first bytes for them, and stay through a
    restart (the listeners stay connected and hear the stream resume).
    """

    def __init__(self, ladder: "Ladder", outputs: List[TranscodeOutput], on_demand: bool = False):
        self.ladder = ladder
        self.outputs = outputs
        self.on_demand = on_demand
        self.feed = StreamFeed(lambda: ladder.feeding)
        self.child: Optional[FFmpegChild] = None
        #: CPU seconds of processes that ended, and the last reading of the current one.
        self._cpu_done = 0.0
        self._cpu_now: Tuple[Optional[int], float] = (None, 0.0)
        #: When ffmpeg started on the current stream: the outputs' stream time counts from there, the
        #: same for all, so the HLS segments of the outputs line up (adaptive bitrate).
        self.started = 0.0
        #: Whether ffmpeg should run: always, or for an on-demand output, while listened to.
        self.active = not on_demand
        #: Listeners waiting for an on-demand output to start, and the next check for listeners.
        self.waiting: List[Deferred] = []
        self.linger: Any = None

    @property
    def paths(self) -> List[str]:
        return [output.path for output in self.outputs]

    @property
    def running(self) -> bool:
        return self.child is not None and self.child.wanted

    def feed_chunk(self, chunk: Chunk) -> None:
        feeding = self.ladder.feeding
        ogg = feeding.is_ogg
        argv = ladder_argv(input_format(feeding.content_type, ogg), self.outputs)
        if self.child is None or self.child.argv != argv:
            self.stop_child()
            self.child = FFmpegChild(self.ladder.reactor, argv, {
                fd: self._writer(output) for fd, output in enumerate(self.outputs, FIRST_FD)},
                self.feed.headers, "%s transcoding" % self.ladder.home, self._restarted)
            self.feed.forget()
        if self.feed.feed(self.child, chunk, ogg):  # a new stream: ffmpeg (re)started
            self.started = self.ladder.reactor.seconds()
            self.ladder.bus.publish("transcoder.started", self.ladder.home, outputs=self.paths,
                                    input=feeding.path)

    def _writer(self, output: TranscodeOutput) -> Callable[[bytes], None]:
        return lambda data: self.ladder.output_bytes(output, data, self)

    def _restarted(self) -> None:
        self.ladder.restarts += 1
        self.ladder.bus.publish("transcoder.restarted", self.ladder.home, outputs=self.paths,
                                restarts=self.ladder.restarts)

    def stop_child(self) -> None:
        child, self.child = self.child, None
        if child is not None:
            self.cpu_seconds()  # the last reading, before the process is gone
            self._cpu_done += self._cpu_now[1]
            self._cpu_now = (None, 0.0)
            child.stop()

    def cpu_seconds(self) -> float:
        """CPU time of this encoder's processes so far (read from /proc for the running one)."""
        pid = self.child.pid if self.child is not None else None
        if pid is not None:
            previous_pid, previous = self._cpu_now
            if previous_pid not in (None, pid):  # restarted since: the old one's time is done
                self._cpu_done += previous
            reading = cpu_seconds(pid)
            self._cpu_now = (pid, reading or (previous if previous_pid == pid else 0.0))
        return self._cpu_done + self._cpu_now[1]

    def answer_waiting(self, mount: Optional[Mount]) -> None:
        waiting, self.waiting = self.waiting, []
        for d in waiting:
            d.callback(mount)


class Ladder:
    """The transcoding outputs of one mount (its ``home``): a subscriber of the stream that feeds it."""

    is_listener = False
    follows_fallback = True
    _log = Logger()

    def __init__(self, home: Mount, registry: Any, reactor: Any):
        self._home = home
        self.registry = registry
        self.reactor = reactor
        self.bus = home.bus
        #: The mount whose audio arrives: home, or one of its fallbacks.
        self.feeding = home
        self.restarts = 0
        self.encoders: List[Encoder] = []
        #: The outputs as configured when the encoders were built.
        self.configured: List[TranscodeOutput] = []
        #: What each output mount was given as its source (so a ladder only ever stops its own).
        self.sources: Dict[str, SourceInfo] = {}
        self._settle: Any = None
        self.configure()

    @property
    def home(self) -> str:
        return self._home.path

    @property
    def outputs(self) -> List[TranscodeOutput]:
        return [output for _, output in sorted(self._home.config.transcoding.outputs.items())]

    def configure(self, outputs: Optional[List[TranscodeOutput]] = None) -> None:
        """
        (Re)build the encoders for ``outputs`` (default: the home mount's):
        ffmpeg starts again with the next chunk, and an output no longer
        listed loses its source.
        """
        gone = set(self.fed_paths())
        self.stop_encoders()
        for encoder in self.encoders:
            if encoder.on_demand:
                self.registry.on_demand.pop(encoder.paths[0], None)
        self.configured = outputs = self.outputs if outputs is None else outputs
        always = [output for output in outputs if not output.on_demand]
        self.encoders = ([Encoder(self, always)] if always else []) + [
            Encoder(self, [output], on_demand=True) for output in outputs if output.on_demand]
        for path in gone - set(self.fed_paths()):
            self.stop_output(path)
        for encoder in self.encoders:
            if encoder.on_demand:
                self.registry.on_demand[encoder.paths[0]] = lambda e=encoder: self.demand(e)

    def fed_paths(self) -> List[str]:
        return [path for encoder in self.encoders for path in encoder.paths]

    # The stream

    @property
    def live(self) -> bool:
        return self.feeding.source is not None

    def chunk(self, chunk: Chunk) -> None:
        if self._settle is not None:
            self._settle.cancel()
            self._settle = None
        for encoder in self.encoders:
            if encoder.active:
                encoder.feed_chunk(chunk)

    def demand(self, encoder: Encoder) -> Optional[Deferred]:
        """
        A listener asks for an on-demand output: ``None`` when it streams
        already (or cannot, its parent being silent), else a Deferred that
        fires once the output has a source. Its ffmpeg starts with the next
        chunk, and stops once nobody listened for :data:`ON_DEMAND_LINGER`.
        """
        mount = self.registry.get(encoder.paths[0])
        if not self.live or (mount is not None and mount.source is not None):
            return None
        if not encoder.active:
            encoder.active = True
            encoder.linger = self.reactor.callLater(ON_DEMAND_LINGER, self._check_demand, encoder)
        d: Deferred = Deferred()
        encoder.waiting.append(d)
        return d

    def _check_demand(self, encoder: Encoder) -> None:
        encoder.linger = None
        mount = self.registry.get(encoder.paths[0])
        if encoder.waiting and (mount is None or mount.source is None):
            encoder.answer_waiting(None)  # no audio in all that time: they are told (404, or a fallback)
        if self.registry.listeners_wanting(encoder.paths[0]) > 0:
            encoder.linger = self.reactor.callLater(ON_DEMAND_LINGER, self._check_demand, encoder)
            return
        self._log.info("{mount}: no listeners for {seconds}s; its transcoder stops (on demand)",
                       mount=encoder.paths[0], seconds=ON_DEMAND_LINGER)
        self.stop_encoder(encoder)
        for path in encoder.paths:
            self.stop_output(path)

    def output_bytes(self, output: TranscodeOutput, data: bytes, encoder: Encoder) -> None:
        """ffmpeg wrote ``data`` for ``output``: its mount's source starts with the first bytes."""
        mount = self.registry.get(output.path)
        if mount is None:
            return
        if mount.source is None:
            self.start_output(mount, output, encoder.started)
            if encoder.on_demand:
                encoder.answer_waiting(mount)
        mount.feed(data)

    def start_output(self, mount: Mount, output: TranscodeOutput, started: float) -> None:
        source = self.feeding.source
        ice = {name: value for name, value in (source.ice if source is not None else {}).items()
               if name in ("ice-name", "ice-description", "ice-genre", "ice-url", "ice-public", "icy-name",
                           "icy-description", "icy-genre", "icy-url", "icy-pub")}
        ice["ice-bitrate"] = str(output.bitrate // 1000)
        ice["ice-audio-info"] = "bitrate=%d" % (output.bitrate // 1000) + (
            ";samplerate=%d" % output.sample_rate if output.sample_rate and output.format != "opus" else "") + (
            ";channels=%d" % output.channels if output.channels else "")
        info = SourceInfo(CONTENT_TYPES[output.format], "transcoder", "GoCast transcoder (ffmpeg)", started, ice,
                          disconnect=self.restart, transcoded_from=self.home, inband_metadata=False)
        mount.start_source(info)
        self.sources[mount.path] = info
        self.copy_metadata(mount)
        self._log.info("{mount}: transcoded from {home} ({codec}, {bitrate} bit/s)", mount=mount.path,
                       home=self.home, codec=output.format, bitrate=output.bitrate)
        self.registry.source_started(mount)

    def copy_metadata(self, mount: Mount) -> None:
        feeding = self.feeding
        if (mount.title, mount.artist) != (feeding.title, feeding.artist) or feeding.stream_url != mount.stream_url:
            mount.set_metadata(title=feeding.title, artist=feeding.artist, url=feeding.stream_url)

    def metadata_changed(self) -> None:
        for path in self.fed_paths():
            mount = self.registry.get(path)
            if mount is not None and mount.source is not None:
                self.copy_metadata(mount)

    def moved(self, mount: Mount) -> None:
        """Now fed by ``mount`` (a fallback, or home again): ffmpeg starts on the new stream."""
        self.feeding = mount
        for encoder in self.encoders:
            encoder.feed.forget()
        self.metadata_changed()

    def source_stopped(self) -> None:
        """
        The feeding mount's source left. A fallback may take over in the
        same turn (then :meth:`moved` comes first); if none does, the outputs
        stop too, in the next turn.
        """
        if self._settle is None:
            self._settle = self.reactor.callLater(0, self.settle)

    def settle(self) -> None:
        self._settle = None
        if not self.live:
            self.stop_encoders()
            for path in self.fed_paths():
                self.stop_output(path)

    def restart(self) -> None:
        """Start every ffmpeg again (an admin's killsource on an output): with the next chunk."""
        for encoder in self.encoders:
            if encoder.child is not None:
                encoder.child.stop()
                encoder.feed.forget()

    def detach(self, reason: str) -> None:  # pragma: no cover - outputs are never detached
        """Outputs stay with their mount when no fallback is live."""

    # Stopping

    def stop_encoder(self, encoder: Encoder) -> None:
        encoder.stop_child()
        encoder.answer_waiting(None)
        if encoder.on_demand:
            encoder.active = False
            if encoder.linger is not None and encoder.linger.active():
                encoder.linger.cancel()
            encoder.linger = None

    def stop_encoders(self) -> None:
        for encoder in self.encoders:
            self.stop_encoder(encoder)

    def stop_output(self, path: str) -> None:
        """The output mount loses the source this ladder gave it (its listeners fall back, or go)."""
        mount = self.registry.get(path)
        given = self.sources.pop(path, None)
        if mount is not None and given is not None and mount.source is given:
            mount.stop_source()
            self.registry.source_stopped(mount)

    def close(self) -> None:
        """Transcoding was turned off (or the mount removed): ffmpeg stops, the outputs lose their source."""
        if self._settle is not None:
            self._settle.cancel()
            self._settle = None
        self.configure([])
        self.feeding.remove_subscriber(self)

    # What the API, the dashboard and metrics show

    def cpu_seconds(self) -> float:
        return sum(encoder.cpu_seconds() for encoder in self.encoders)

    def describe(self) -> List[Dict[str, Any]]:
        """The outputs, each with its mount, format, bitrate and whether its encoder runs."""
        found = []
        for encoder in self.encoders:
            for output in encoder.outputs:
                mount = self.registry.get(output.path)
                found.append({"mount": output.path, "format": output.format, "bitrate": output.bitrate,
                              "sample_rate": output.sample_rate or None, "channels": output.channels or None,
                              "on_demand": output.on_demand, "running": encoder.active and encoder.running,
                              "live": mount is not None and mount.source is not None})
        return found


class Ladders:
    """Every mount's transcoding ladder, following the config (:meth:`attach` at each mount's (re)configure)."""

    def __init__(self, reactor: Any):
        self.reactor = reactor
        self.registry: Any = None
        self.ladders: Dict[str, Ladder] = {}

    def attach(self, mount: Mount) -> None:
        ladder = self.ladders.get(mount.path)
        if not mount.config.transcoding.active or self.registry is None:
            if ladder is not None:
                del self.ladders[mount.path]
                ladder.close()
            return
        if ladder is None:
            ladder = self.ladders[mount.path] = Ladder(mount, self.registry, self.reactor)
            mount.add_subscriber(ladder)
        elif ladder.configured != ladder.outputs:
            ladder.configure()

    def of(self, path: str) -> Optional[Ladder]:
        return self.ladders.get(path)

    def stop(self) -> None:
        for ladder in list(self.ladders.values()):
            ladder.close()
        self.ladders.clear()
