# -*- test-case-name: tests.test_hls -*-
"""
HLS output for mounts with ``hls { enabled true }``: a subscriber of the
mount's frame stream that cuts segments (MP3 and AAC sources with no extra
process; Ogg Vorbis/Opus/FLAC through an ffmpeg AAC transcoder), and the
twisted.web resources that serve them from memory:

- ``GET /hls/<mount>/playlist.m3u8``
- ``GET /hls/<mount>/segment_<N>.ts`` (standard HLS: MPEG-TS)
- ``GET /hls/<mount>/init_<K>.mp4``, ``segment_<N>.m4s``, ``part_<N>_<I>.m4s``
  (``low_latency true``: CMAF), with blocking playlist reload
  (``?_HLS_msn=N&_HLS_part=I``) and a blocking preload-hinted part.

A mount without a source (and no segment yet) answers 404. On a mount
with listener auth, the playlist and every segment and part pass the gate
(:mod:`gocast.auth.gate`); a ``?token=`` on the playlist is written into
the URIs it lists, so players need no support for it.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import quote

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from .auth.address import host_of
from .auth.base import AuthRequest
from .auth.gate import Admission, ListenerGate
from .core.mount import Chunk, Mount
from .core.throttle import address_key
from .geo import NOWHERE, GeoLocator, Location
from .core.registry import MountRegistry
from .media import Packet, media_type
from .media.oggchain import OggSplicer
from .media._sync import adts_header
from .media.hls import Segmenter
from .media.llhls import PartSegmenter
from .resources.site import request_arg
from .transcode import AACTranscoder, ffmpeg_argv

_CODECS = {"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mpeg3": "mp3", "audio/aac": "aac",
           "audio/aacp": "aac", "audio/x-aac": "aac", "audio/x-aacp": "aac", "audio/adts": "aac"}

#: Blocked requests (playlist reloads and hinted parts) one mount holds at most.
MAX_WAITERS = 10000
#: Segments and parts never change once cut, and their numbers are not reused.
IMMUTABLE = b"public, max-age=31536000, immutable"
#: The same, on a mount with listener auth: browsers may keep them, shared caches not.
PRIVATE_IMMUTABLE = b"private, max-age=31536000, immutable"

AnySegmenter = Union[Segmenter, PartSegmenter]


class HlsOutput:
    """
    Segments one mount's stream; never counted as a listener. When the
    mount's source leaves it follows the fallbacks as listeners do (so HLS
    players hear the fallback, after an ``EXT-X-DISCONTINUITY``), and it
    comes home when the source is back.
    """

    is_listener = False
    follows_fallback = True

    def __init__(self, mount: Mount, now: Callable[[], float], reactor: Any = None, clock: Any = None):
        self.mount = mount
        #: The mount whose audio arrives: ``mount``, or a fallback of it.
        self.feeding = mount
        self.now = now
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.segmenter: Optional[AnySegmenter] = None
        self._waiters: List[Tuple[Callable[[], bool], Deferred, Any]] = []
        self.transcoder: Optional[AACTranscoder] = None
        self._generation = -1
        #: The stream the transcoder's output belongs to (a new one is a discontinuity).
        self._transcoded_generation = -1
        #: The last input stream sent to the transcoder: its generation and source.
        self._input: Tuple[int, Any] = (-1, None)
        #: Joins a source's chained Ogg streams into the one ffmpeg is reading.
        self.splicer = OggSplicer()
        #: HLS clients by (address, user agent) or session parameter: when last
        #: seen, least recently seen first (so the ones that left are at the front).
        self.sessions: "OrderedDict[str, float]" = OrderedDict()
        #: Where each of them is (GeoIP), looked up when first seen.
        self.places: Dict[str, Location] = {}
        #: The client address (:func:`address_key`) each of them plays from.
        self.owners: Dict[str, str] = {}

    def room_for(self, key: str) -> bool:
        """Whether the client ``key`` may play: a new one only while the mount is not full."""
        mount = self.mount
        return not mount.max_listeners or mount.listeners < mount.max_listeners or key in self.sessions

    def sessions_of(self, address: str) -> int:
        """How many listening sessions the client address (its :func:`address_key`) holds."""
        self.session_count()  # forget the sessions that ended
        return sum(1 for owner in self.owners.values() if owner == address)

    def seen(self, key: str, address: str = "", locate: Callable[[], Location] = lambda: NOWHERE) -> None:
        """
        A client fetched a segment or a part: it listens. Fetching playlists
        alone counts for nothing (anyone can ask for a playlist with a new
        ``?session=`` every time; only playing costs bandwidth).
        """
        sessions = self.sessions
        if key in sessions:
            sessions.move_to_end(key)
        else:
            self.places[key] = locate()
            self.owners[key] = address
        sessions[key] = self.now()
        self.mount.note_peak()

    def session_count(self) -> int:
        """
        Clients seen on the playlist within two target durations count as
        listeners. Asked on every playlist request: the clients that left
        are taken from the front, without looking at the others.
        """
        sessions = self.sessions
        horizon = self.now() - 2 * self.mount.config.hls.segment_duration
        while sessions:
            key, when = next(iter(sessions.items()))
            if when >= horizon:
                break
            del sessions[key]
            self.places.pop(key, None)
            self.owners.pop(key, None)
        return len(sessions)

    def session_locations(self) -> List[Location]:
        self.session_count()  # forget the sessions that ended
        return list(self.places.values())

    @property
    def home(self) -> str:
        return self.mount.path

    @property
    def live(self) -> bool:
        """Whether audio is coming (from the mount or a fallback)."""
        return self.feeding.source is not None

    def chunk(self, chunk: Chunk) -> None:
        codec = _CODECS.get(media_type(self.feeding.content_type))
        if self.feeding.is_ogg:
            self.transcode(chunk, "ogg")
        elif codec == "mp3" and self.mount.config.hls.low_latency:
            # Browsers' Media Source Extensions take no MP3 in MP4 (Chromium
            # refuses audio/mp4; codecs="mp3"), and hls.js misplaces MPEG
            # audio parts in a TS segment: LL-HLS from MP3 is made from AAC.
            self.transcode(chunk, "mp3")
        elif codec is not None and not chunk.header:
            if self.transcoder is not None:  # no longer needed: low_latency off, or back from Ogg
                self.transcoder.stop()
                self.transcoder = None
            self.segment(codec, chunk.data, chunk.duration, chunk.generation)

    def segment(self, codec: str, data: bytes, duration: float, generation: int) -> None:
        segmenter = self.segmenter
        if segmenter is None or _settings(segmenter)[1:] != _wanted(self.mount):
            self.segmenter = self._new_segmenter(codec)
        elif segmenter.codec != codec:
            if isinstance(segmenter, Segmenter):
                # A fallback in another codec (MP3 to AAC): a discontinuity in the same playlist.
                segmenter.switch_codec(codec)
            else:  # LL-HLS is always AAC; should it not be, a new playlist
                self.segmenter = self._new_segmenter(codec)
        elif generation != self._generation:
            segmenter.discontinuity()
        self._generation = generation
        self.segmenter.set_title(self.feeding.title, self.feeding.artist)
        self.segmenter.add(data, duration, self.now())
        self._wake()

    def _new_segmenter(self, codec: str) -> AnySegmenter:
        """
        A segmenter for the current settings. Sequence numbers start from
        the clock (and never go back), so segment URLs are not reused after
        a restart and a CDN may cache them for good.
        """
        config = self.mount.config.hls
        first = int(self.now() // config.segment_duration)
        if self.segmenter is not None:
            first = max(first, self.segmenter.next_sequence + 1)
        if config.low_latency:
            return PartSegmenter(codec, config.segment_duration, config.part_duration, config.playlist_length,
                                 first)
        return Segmenter(codec, config.segment_duration, config.playlist_length, first)

    def wait(self, ready: Callable[[], bool], timeout: float) -> Optional[Deferred]:
        """
        A Deferred that fires True once ``ready()`` holds (checked whenever
        audio is cut), or False after ``timeout``; None if too many wait.
        Cancelling it (the client left) forgets the wait.
        """
        if len(self._waiters) >= MAX_WAITERS:
            return None

        def forget(d: Deferred) -> None:
            self._drop(d)

        d: Deferred = Deferred(forget)
        timer = self.clock.callLater(timeout, self._expire, d)
        self._waiters.append((ready, d, timer))
        return d

    def _expire(self, d: Deferred) -> None:
        self._drop(d)
        d.callback(False)

    def _drop(self, d: Deferred) -> None:
        for waiter in self._waiters:
            if waiter[1] is d:
                self._waiters.remove(waiter)
                if waiter[2].active():
                    waiter[2].cancel()
                return

    def _wake(self) -> None:
        if not self._waiters:
            return
        ready = [w for w in self._waiters if w[0]()]
        for waiter in ready:
            self._waiters.remove(waiter)
            waiter[2].cancel()
            waiter[1].callback(True)

    def transcode(self, chunk: Chunk, input_format: str) -> None:
        """
        Through an ffmpeg child process to AAC. A new source restarts
        ffmpeg, which is sent the new codec headers first. A chained Ogg
        stream from the same source (Liquidsoap and ices start one at every
        track) with the same codec setup is spliced into the stream ffmpeg
        is reading: no restart, no gap, no discontinuity at each new track.
        """
        if self.reactor is None:
            return
        if self.transcoder is None or self.transcoder.argv != ffmpeg_argv(input_format):
            if self.transcoder is not None:
                self.transcoder.stop()
            self.transcoder = AACTranscoder(self.reactor, self.transcoded,
                                            lambda: self.splicer.begin(self.feeding.header_pages),
                                            "%s HLS" % self.mount.path, ffmpeg_argv(input_format))
            self._input = (-1, None)
        ogg = input_format == "ogg"
        if chunk.generation != self._input[0]:
            same_source = self._input[1] is self.feeding.source
            self._input = (chunk.generation, self.feeding.source)
            if not (ogg and chunk.header and same_source and self.transcoder.running
                    and self.splicer.chain(chunk.data)):
                self._transcoded_generation = chunk.generation
                self.transcoder.stop()
                self.transcoder.start()
            if chunk.header:
                return  # sent to ffmpeg as it started, or spliced
        self.transcoder.feed(self.splicer.audio(chunk.data) if ogg else chunk.data)

    def transcoded(self, packet: Packet) -> None:
        """
        ffmpeg writes in bursts of any length: regroup its frames into short
        chunks, so segments end close to their target duration.
        """
        for data, duration in regroup_adts(packet.data, TRANSCODED_CHUNK):
            self.segment("aac", data, duration, self._transcoded_generation)

    def source_stopped(self) -> None:
        if self.transcoder is not None:
            self.transcoder.stop()

    def metadata_changed(self) -> None:
        """The next chunk carries the new title into the segment being cut."""

    def moved(self, mount: Mount) -> None:
        """Now fed by ``mount`` (a fallback, or home again): a discontinuity, a new transcoder stream."""
        self.feeding = mount
        self._generation = self._transcoded_generation = -1
        self._input = (-1, None)

    def detach(self, reason: str) -> None:  # pragma: no cover - outputs are never detached
        """Outputs stay with their mount when no fallback is live."""


#: Seconds of transcoded audio per chunk handed to the segmenter.
TRANSCODED_CHUNK = 0.1


def regroup_adts(data: bytes, seconds: float) -> List[Tuple[bytes, float]]:
    """Whole ADTS frames in ``data``, grouped into chunks of about ``seconds``."""
    groups: List[Tuple[bytes, float]] = []
    start = pos = 0
    duration = 0.0
    while pos + 7 <= len(data):
        header = adts_header(data, pos)
        if header is None:
            break
        length, samples, rate, _ = header
        pos += length
        duration += samples / rate
        if duration >= seconds:
            groups.append((data[start:pos], duration))
            start, duration = pos, 0.0
    if pos > start:
        groups.append((data[start:pos], duration))
    return groups


def _settings(segmenter: AnySegmenter) -> Tuple[Any, ...]:
    """What a segmenter was made for: codec, mode, durations, window."""
    part = segmenter.part_duration if isinstance(segmenter, PartSegmenter) else None
    return (segmenter.codec, segmenter.low_latency, segmenter.segment_duration, segmenter.playlist_length, part)


def _wanted(mount: Mount) -> Tuple[Any, ...]:
    config = mount.config.hls
    return (config.low_latency, config.segment_duration, config.playlist_length,
            config.part_duration if config.low_latency else None)


class HlsOutputs:
    """Attaches an :class:`HlsOutput` to every mount whose config enables HLS."""

    _log = Logger()

    def __init__(self, now: Callable[[], float], reactor: Any = None, clock: Any = None):
        self.now = now
        self.reactor = reactor
        self.clock = clock
        self.outputs: Dict[str, HlsOutput] = {}

    def attach(self, mount: Mount) -> None:
        output = self.outputs.get(mount.path)
        if mount.config.hls.enabled and output is None:
            output = self.outputs[mount.path] = HlsOutput(mount, self.now, self.reactor, self.clock)
            mount.add_subscriber(output)
            mount.session_listeners = output.session_count
            mount.session_locations = output.session_locations
        elif not mount.config.hls.enabled and output is not None:
            output = self.outputs.pop(mount.path)
            output.feeding.remove_subscriber(output)
            mount.session_listeners = lambda: 0
            mount.session_locations = lambda: []

    def output(self, path: str) -> Optional[HlsOutput]:
        return self.outputs.get(path)


class _PrefixedHls(Resource):
    isLeaf = True

    def __init__(self, hls: "HlsResource", mount: str, name: str):
        super().__init__()
        self.hls = hls
        self.mount = mount
        self.name = name

    def render_GET(self, request: Request) -> bytes:
        return self.hls.serve(request, self.mount, self.name)


def session_key(request: Request) -> str:
    """One HLS listener: the ``session`` query parameter, else address and user agent."""
    session = request.args.get(b"session")
    if session:
        return "s:" + session[-1].decode("utf-8", "replace")[:128]
    peer = request.getClientAddress()
    agent = (request.getHeader(b"user-agent") or b"").decode("latin-1", "replace")[:256]
    return "c:%s|%s" % (host_of(peer), agent)


class HlsResource(Resource):
    """``/hls/...``: the last path segment is the file, the rest the mount."""

    isLeaf = True

    def __init__(self, outputs: HlsOutputs, registry: MountRegistry, gate: Optional[ListenerGate] = None,
                 geo: Optional[GeoLocator] = None):
        super().__init__()
        self.outputs = outputs
        self.registry = registry
        self.gate = gate
        self.geo = geo

    def render_GET(self, request: Request) -> bytes:
        parts = [p.decode("utf-8", "replace") for p in request.postpath]
        if len(parts) < 2:
            return self.missing(request)
        return self.serve(request, "/" + "/".join(parts[:-1]), parts[-1])

    def serve(self, request: Request, mount: str, name: str) -> Union[bytes, int]:
        gate = self.gate
        if gate is None or not gate.protected(mount):
            return self.serve_allowed(request, mount, name)
        # Not for shared caches: they would hand it to clients that never passed the gate.
        request.private_cache = True  # type: ignore[attr-defined]
        headers = {key.decode("latin-1").lower(): values[-1].decode("latin-1")
                   for key, values in request.requestHeaders.getAllRawHeaders()}
        peer = request.getClientAddress()
        asked = AuthRequest.build(mount, host_of(peer), headers, request_arg(request, b"token"), protocol="hls")
        admission = gate.authorize(asked)
        if not isinstance(admission, Deferred):
            return self.through_gate(request, mount, name, admission)
        gone: List[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        admission.addCallback(lambda decided: gone or self.send_late(
            request, self.through_gate(request, mount, name, decided)))
        return NOT_DONE_YET

    def through_gate(self, request: Request, mount: str, name: str, admission: Admission) -> Union[bytes, int]:
        decision = admission.decision
        if not decision.allowed:
            if decision.challenge:
                request.setHeader(b"www-authenticate", decision.challenge.encode("latin-1"))
            return self.refuse(request, decision.status, decision.reason)
        return self.serve_allowed(request, mount, name)

    @staticmethod
    def send_late(request: Request, body: Union[bytes, int]) -> None:
        """Finish a request answered after render returned (unless the answer itself waits)."""
        if not isinstance(body, bytes):
            return
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()

    def serve_allowed(self, request: Request, mount: str, name: str) -> Union[bytes, int]:
        output = self.outputs.output(mount)
        live = self.registry.get(mount)
        if output is None or live is None or not output.live:
            return self.missing(request)
        segmenter = output.segmenter
        if name == "playlist.m3u8":
            if segmenter is None or not segmenter.ready:
                # The source just connected: answer once the first segment (or part) is cut.
                return self.block(request, output, lambda: output.segmenter is not None and output.segmenter.ready,
                                  lambda: self.playlist(request, output, output.segmenter))  # type: ignore
            return self.playlist(request, output, segmenter)
        if segmenter is None:
            return self.missing(request)
        found = segmenter.lookup(name)
        if found is None and not (isinstance(segmenter, PartSegmenter) and name == segmenter.next_part_name()):
            return self.missing(request)
        refused = self.listening(request, output)
        if refused is not None:
            return refused
        if found is not None:
            return self.file(request, *found)
        # The preload hint: answer as soon as that part is cut.
        return self.block(request, output, lambda: segmenter.lookup(name) is not None,
                          lambda: self.file(request, *segmenter.lookup(name)))  # type: ignore[misc]

    def listening(self, request: Request, output: HlsOutput) -> Optional[bytes]:
        """
        Count the client fetching a segment or part as a listener; the
        refusal (503) when the mount is full, or when its address already
        holds ``limits.max_connections_per_ip`` sessions.
        """
        key = session_key(request)
        host = host_of(request.getClientAddress())
        if key not in output.sessions:
            if not output.room_for(key):
                return self.refuse(request, 503, "mount %s is full (%d listeners)"
                                   % (output.mount.path, output.mount.listeners))
            limit = self.registry.config.limits.max_connections_per_ip
            if limit and output.sessions_of(address_key(host)) >= limit:
                return self.refuse(request, 503, "too many sessions from your address "
                                                 "(limits.max_connections_per_ip is %d)" % limit)
        geo = self.geo
        output.seen(key, address_key(host), (lambda: geo.locate(host)) if geo is not None else (lambda: NOWHERE))
        return None

    def playlist(self, request: Request, output: HlsOutput, segmenter: AnySegmenter) -> Union[bytes, int]:
        if not output.room_for(session_key(request)):
            # As for ICY listeners: HLS clients count towards max_listeners (once they play).
            return self.refuse(request, 503, "mount %s is full (%d listeners)"
                               % (output.mount.path, output.mount.listeners))
        try:
            sequence, part = blocking_reload(request)
        except ValueError as e:
            return self.refuse(request, 400, str(e))
        if sequence is None or not isinstance(segmenter, PartSegmenter):
            return self.playlist_text(request, segmenter)
        if segmenter.too_far(sequence, part):
            return self.refuse(request, 400, "_HLS_msn/_HLS_part is too far ahead of the live edge")

        def ready() -> bool:
            return output.segmenter is not segmenter or segmenter.has(sequence, part)

        return self.block(request, output, ready, lambda: self.playlist_text(request, output.segmenter))

    def block(self, request: Request, output: HlsOutput, ready: Callable[[], bool],
              answer: Callable[[], Union[bytes, int]]) -> Union[bytes, int]:
        """
        Hold ``request`` until ``ready()``, then send ``answer()``; after
        three target durations, 503 (as LL-HLS asks of blocking reloads).
        """
        if ready():
            return answer()
        segmenter = output.segmenter
        target = segmenter.target_duration() if segmenter else math.ceil(output.mount.config.hls.segment_duration)
        waiting = output.wait(ready, 3 * target)
        if waiting is None:
            return self.refuse(request, 503, "too many blocked requests on this stream")

        def done(arrived: bool) -> None:
            # NOT_DONE_YET from answer(): a blocking reload now waits for its part.
            self.send_late(request, answer() if arrived else self.refuse(request, 503, "not available in time"))

        def gone(failure: Any) -> None:
            failure.trap(CancelledError)

        waiting.addCallback(done).addErrback(gone)
        request.notifyFinish().addErrback(lambda _: waiting.cancel())
        return NOT_DONE_YET

    @staticmethod
    def playlist_text(request: Request, segmenter: Optional[AnySegmenter]) -> bytes:
        if segmenter is None:
            return HlsResource.missing(request)
        # Fresh for at most half a part (LL-HLS) or half a segment.
        half = (segmenter.part_target() if isinstance(segmenter, PartSegmenter)
                else segmenter.target_duration()) / 2
        request.setHeader(b"content-type", b"application/vnd.apple.mpegurl")
        request.setHeader(b"cache-control", b"max-age=%d" % int(half))
        text = segmenter.playlist()
        # The token and the session go on to every segment, so they are let in and counted.
        query = "&".join("%s=%s" % (name.decode("ascii"), quote(value, safe=""))
                         for name, value in ((b"token", request_arg(request, b"token")),
                                             (b"session", request_arg(request, b"session"))) if value)
        if query:
            text = with_query(text, query)
        if getattr(request, "private_cache", False):
            request.setHeader(b"cache-control", b"private, max-age=%d" % int(half))
        return text.encode("ascii")

    @staticmethod
    def file(request: Request, content_type: str, data: bytes) -> bytes:
        request.setHeader(b"content-type", content_type.encode("ascii"))
        request.setHeader(b"cache-control",
                          PRIVATE_IMMUTABLE if getattr(request, "private_cache", False) else IMMUTABLE)
        return data

    def for_path(self, path: str) -> Optional[Resource]:
        """
        The resource for ``path`` under a mount's own ``hls.path`` prefix
        (read from the running config, so a reload moves it), if any.
        """
        for mount, config in self.registry.config.mounts.items():
            prefix = config.hls.path.rstrip("/")
            if config.hls.enabled and prefix and path.startswith(prefix + "/"):
                return _PrefixedHls(self, mount, path[len(prefix) + 1:])
        return None

    @staticmethod
    def missing(request: Request) -> bytes:
        return HlsResource.refuse(request, 404, "no such HLS stream or segment")

    @staticmethod
    def refuse(request: Request, code: int, reason: str) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        return reason.encode("utf-8") + b"\n"


_URI_ATTRIBUTE = re.compile(r'URI="([^"?]*)"')


def with_query(playlist: str, query: str) -> str:
    """Every URI of ``playlist`` (segment lines, ``URI="..."`` attributes) with ``?query`` added."""
    lines = []
    for line in playlist.split("\n"):
        if line.startswith("#"):
            line = _URI_ATTRIBUTE.sub(lambda m: 'URI="%s?%s"' % (m.group(1), query), line)
        elif line:
            line = "%s?%s" % (line, query)
        lines.append(line)
    return "\n".join(lines)


def blocking_reload(request: Request) -> Tuple[Optional[int], Optional[int]]:
    """``_HLS_msn`` and ``_HLS_part``; ValueError with the reason if they are malformed."""
    values = []
    for name in (b"_HLS_msn", b"_HLS_part"):
        given = request.args.get(name)
        if not given:
            values.append(None)
            continue
        text = given[-1].decode("ascii", "replace")
        if not text.isdigit() or len(text) > 19:
            raise ValueError("%s must be a non-negative integer" % name.decode())
        values.append(int(text))
    if values[0] is None and values[1] is not None:
        raise ValueError("_HLS_part needs _HLS_msn")
    return values[0], values[1]
