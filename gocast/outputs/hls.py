# -*- test-case-name: tests.test_hls -*-
"""
HLS output for mounts with ``hls { enabled true }``: a subscriber of the
mount's frame stream that cuts segments (MP3 and AAC sources with no extra
process; Ogg Vorbis/Opus/FLAC through an ffmpeg AAC transcoder) and keeps
them in memory, with the mount's HLS sessions (the players counted as its
listeners). :mod:`gocast.resources.hls` serves them.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import attr
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from ..config._mount import dash_shares_hls
from ..core.mount import Chunk, Mount
from ..core.track import artwork_link
from ..media import Packet, media_type
from ..media._sync import adts_header
from ..media.hls import Segmenter
from ..media.llhls import PartSegmenter
from ..observe.geo import NOWHERE, Location
from .transcode import AACTranscoder, StreamFeed, ffmpeg_argv

_CODECS = {"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mpeg3": "mp3", "audio/aac": "aac",
           "audio/aacp": "aac", "audio/x-aac": "aac", "audio/x-aacp": "aac", "audio/adts": "aac"}

#: Blocked requests (playlist reloads and hinted parts) one mount holds at most.
MAX_WAITERS = 10000

AnySegmenter = Union[Segmenter, PartSegmenter]


@attr.s(slots=True, auto_attribs=True)
class HlsPlayer:
    """One HLS client counted as a listener."""

    id: str
    ip: str
    address: str
    place: Location
    started: float
    sent: int = 0


class HlsOutput:
    """
    Segments one mount's stream; never counted as a listener. When the
    mount's source leaves it follows the fallbacks as listeners do (so HLS
    players hear the fallback, after an ``EXT-X-DISCONTINUITY``), and it
    comes home when the source is back.
    """

    is_listener = False
    follows_fallback = True
    #: HLS players numbered across outputs (``hls-N``), for events and logs.
    _ids = 0
    #: What the listener events and player IDs call these clients.
    protocol = "hls"

    def __init__(self, mount: Mount, now: Callable[[], float], reactor: Any = None, clock: Any = None,
                 variants: Callable[[], Any] = frozenset):
        """:param variants: the mounts that are variants of an adaptive stream (their segments line up)."""
        self.mount = mount
        self.variants = variants
        #: The mount whose audio arrives: ``mount``, or a fallback of it.
        self.feeding = mount
        self.now = now
        self.reactor = reactor
        self.clock = clock if clock is not None else reactor
        self.segmenter: Optional[AnySegmenter] = None
        #: Blocked requests: each one's Deferred, what it waits for and its deadline (found and dropped at once).
        self._waiters: Dict[Deferred, Tuple[Callable[[], bool], Any]] = {}
        self.transcoder: Optional[AACTranscoder] = None
        self._generation = -1
        #: The stream the transcoder's output belongs to (a new one is a discontinuity).
        self._transcoded_generation = -1
        #: What the transcoder reads: the feeding mount's chunks, chained Ogg streams spliced.
        self.feed = StreamFeed(lambda: self.feeding)
        #: HLS clients by (address, user agent) or session parameter: when last
        #: seen, least recently seen first (so the ones that left are at the front).
        self.sessions: "OrderedDict[str, float]" = OrderedDict()
        #: What is known of each of them.
        self.players: Dict[str, HlsPlayer] = {}

    def room_for(self, key: str) -> bool:
        """Whether the client ``key`` may play: a new one only while the mount is not full."""
        mount = self.mount
        return not mount.max_listeners or mount.listeners < mount.max_listeners or key in self.sessions

    def sessions_of(self, address: str) -> int:
        """How many listening sessions the client address (its :func:`address_key`) holds."""
        self.session_count()  # forget the sessions that ended
        return sum(1 for player in self.players.values() if player.address == address)

    def seen(self, key: str, ip: str = "", address: str = "", user_agent: str = "",
             locate: Callable[[], Location] = lambda: NOWHERE) -> None:
        """
        A client fetched a segment or a part: it listens. Fetching playlists
        alone counts for nothing (anyone can ask for a playlist with a new
        ``?session=`` every time; only playing costs bandwidth). A new one
        is a ``listener.connect``, as an ICY listener is.
        """
        sessions = self.sessions
        now = self.now()
        if key in sessions:
            sessions.move_to_end(key)
        else:
            HlsOutput._ids += 1
            player = self.players[key] = HlsPlayer("%s-%d" % (self.protocol, HlsOutput._ids), ip, address,
                                                   locate(), now)
            mount = self.mount
            mount.bus.publish("listener.connect", mount.path, id=player.id, ip=ip, user_agent=user_agent,
                              listeners=mount.listeners + 1, listener_id=None, protocol=self.protocol)
        sessions[key] = now
        self.mount.note_peak()

    def sent(self, key: str, size: int) -> None:
        """A segment or part of ``size`` bytes went to the client ``key``."""
        player = self.players.get(key)
        if player is not None:
            player.sent += size
        self.mount.bytes_sent += size

    def session_count(self) -> int:
        """
        Clients seen on a segment within two target durations count as
        listeners. Asked on every playlist request: the clients that left
        are taken from the front, without looking at the others, each a
        ``listener.disconnect`` with how long it listened and what it got.
        """
        sessions = self.sessions
        horizon = self.now() - 2 * self.settings()[1]
        while sessions:
            key, when = next(iter(sessions.items()))
            if when >= horizon:
                break
            del sessions[key]
            player = self.players.pop(key, None)
            if player is not None:
                self.mount.bus.publish("listener.disconnect", self.mount.path, id=player.id, ip=player.ip,
                                       duration=when - player.started, bytes_sent=player.sent,
                                       listener_id=None, protocol=self.protocol)
        return len(sessions)

    def session_locations(self) -> List[Location]:
        self.session_count()  # forget the sessions that ended
        return [player.place for player in self.players.values()]

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
        elif codec == "mp3" and self.settings()[0]:
            # Browsers' Media Source Extensions take no MP3 in MP4 (Chromium
            # refuses audio/mp4; codecs="mp3"), and hls.js misplaces MPEG
            # audio parts in a TS segment: LL-HLS from MP3 is made from AAC.
            self.transcode(chunk, "mp3")
        elif codec is not None and not chunk.header:
            if self.transcoder is not None:  # no longer needed: low_latency off, or back from Ogg
                self.transcoder.stop()
                self.transcoder = None
            self.segment(codec, chunk.data, chunk.duration, chunk.generation, chunk.at)

    def anchor(self, at: float) -> Optional[float]:
        """
        Where an aligned variant's stream time starts (see :class:`Segmenter`):
        its source's start plus ``at``, the stream time of the chunk that
        starts the segmenter; outputs of one transcoder share their source's
        start, so their segments line up. ``None`` for a mount that is no
        variant of an adaptive stream.
        """
        source = self.feeding.source
        if source is None or not (self.anchored or source.transcoded_from or self.mount.path in self.variants()):
            return None
        return source.connected_at + at

    @property
    def anchored(self) -> bool:
        """
        Whether every segmenter counts stream time from a wall-clock anchor,
        not only those of adaptive-bitrate variants: DASH's timeline is the
        clock's, and DASH may serve these segments (:func:`dash_shares_hls`).
        """
        config = self.mount.config
        return dash_shares_hls(config.hls, config.dash)

    def segment(self, codec: str, data: bytes, duration: float, generation: int,
                at: Optional[float] = None) -> None:
        """:param at: the chunk's stream time (``None``: transcoded here, with no stream time of its own)."""
        segmenter = self.segmenter
        if (segmenter is None or _settings(segmenter)[1:] != self.settings()
                or (self.anchored and segmenter.anchor is None)):  # DASH came to share it: on the clock
            self.segmenter = self._new_segmenter(codec, None if at is None else self.anchor(at))
        elif segmenter.codec != codec:
            if isinstance(segmenter, Segmenter):
                # A fallback in another codec (MP3 to AAC): a discontinuity in the same playlist.
                segmenter.switch_codec(codec)
            else:  # LL-HLS is always AAC; should it not be, a new playlist
                self.segmenter = self._new_segmenter(codec)
        elif generation != self._generation:
            segmenter.discontinuity()
        self._generation = generation
        self.segmenter.set_title(self.feeding.title, self.feeding.artist, artwork_link(self.feeding) or "")
        self.segmenter.add(data, duration, self.now())
        self._wake()

    def _new_segmenter(self, codec: str, anchor: Optional[float] = None) -> AnySegmenter:
        """
        A segmenter for the current settings. Sequence numbers start from
        the clock (and never go back), so segment URLs are not reused after
        a restart and a CDN may cache them for good; an aligned variant's
        (``anchor``) count from its stream's start on the same clock.
        """
        cmaf, segment_duration, playlist_length, part_duration = self.settings()
        if anchor is None and self.anchored:
            anchor = self.now()
        first = int((self.now() if anchor is None else anchor) // segment_duration)
        if self.segmenter is not None:
            first = max(first, self.segmenter.next_sequence + 1)
        if cmaf:
            return PartSegmenter(codec, segment_duration, part_duration or segment_duration, playlist_length,
                                 first, anchor)
        return Segmenter(codec, segment_duration, playlist_length, first, anchor)

    def settings(self) -> Tuple[bool, float, int, Optional[float]]:
        """What segments to cut: CMAF parts or not, segment duration, segments listed, part duration."""
        config = self.mount.config.hls
        return (config.low_latency, config.segment_duration, config.playlist_length,
                config.part_duration if config.low_latency else None)

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
        self._waiters[d] = (ready, timer)
        return d

    def _expire(self, d: Deferred) -> None:
        self._drop(d)
        d.callback(False)

    def _drop(self, d: Deferred) -> None:
        waiter = self._waiters.pop(d, None)
        if waiter is not None and waiter[1].active():
            waiter[1].cancel()

    def _wake(self) -> None:
        """Release every blocked request whose part or segment is there (thousands at once, in one pass)."""
        if not self._waiters:
            return
        ready = [d for d, (is_ready, _) in self._waiters.items() if is_ready()]
        for d in ready:
            _, timer = self._waiters.pop(d)
            timer.cancel()
            d.callback(True)

    def transcode(self, chunk: Chunk, input_format: str) -> None:
        """Through an ffmpeg child process to AAC (see :class:`StreamFeed`): a new stream is a discontinuity."""
        if self.reactor is None:
            return
        if self.transcoder is None or self.transcoder.argv != ffmpeg_argv(input_format):
            if self.transcoder is not None:
                self.transcoder.stop()
            self.transcoder = AACTranscoder(self.reactor, self.transcoded, self.feed.headers,
                                            "%s HLS" % self.mount.path, ffmpeg_argv(input_format))
            self.feed.forget()
        if self.feed.feed(self.transcoder, chunk, input_format == "ogg"):
            self._transcoded_generation = chunk.generation

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
        self.feed.forget()

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


class HlsOutputs:
    """Attaches an :class:`HlsOutput` to every mount whose config enables HLS."""

    _log = Logger()
    #: The outputs made, and the config block that turns them on.
    output_class: Any = None
    kind = "hls"

    def __init__(self, now: Callable[[], float], reactor: Any = None, clock: Any = None):
        self.now = now
        self.reactor = reactor
        self.clock = clock
        self.outputs: Dict[str, HlsOutput] = {}
        #: The mounts some master playlist lists as variants.
        self.variants: Callable[[], Any] = frozenset

    def attach(self, mount: Mount) -> None:
        output = self.outputs.get(mount.path)
        enabled = self.enabled(mount)
        if enabled and output is None:
            output = self.outputs[mount.path] = (self.output_class or HlsOutput)(
                mount, self.now, self.reactor, self.clock, lambda: self.variants())
            mount.add_subscriber(output)
            mount.session_outputs[self.kind] = output
        elif not enabled and output is not None:
            output = self.outputs.pop(mount.path)
            output.feeding.remove_subscriber(output)
            mount.session_outputs.pop(self.kind, None)

    def enabled(self, mount: Mount) -> bool:
        """Whether ``mount`` needs an output here."""
        return bool(getattr(mount.config, self.kind).enabled)

    def output(self, path: str) -> Optional[HlsOutput]:
        return self.outputs.get(path)
