# -*- test-case-name: tests.test_mount -*-
"""
A mount: one stream, its current source, and the frame stream its
subscribers share.

The source's bytes go through the codec framer; whole frames are gathered
into chunks of about :data:`CHUNK_SECONDS` (shorter when a fan-out to
thousands takes long enough to matter, see :func:`chunk_seconds_for`)
and kept in a bounded ring of
immutable ``bytes`` (``limits.queue_size``). Every subscriber (ICY listener,
later HLS segmenter, recorder, WebSocket client) receives the same chunk
object; a subscriber that falls out of the ring is dropped, and nobody else
notices.
"""

from __future__ import annotations

import codecs
import secrets
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterable, List, Optional, Tuple
from urllib.parse import unquote_plus

import attr
from twisted.logger import Logger
from zope.interface import Interface

from ..config import LimitsConfig, MountConfig
from ..media import framer_for, is_ogg
from .track import HISTORY, NO_INFO, TrackInfo
from .events import EventBus
from .text import scrub

_log = Logger()

#: Chunks gather frames until they hold this much audio: fewer, larger
#: writes per listener, at the cost of this much latency. At 0.1 s the
#: fan-out benchmark spent 162 us of CPU per listener-second; at 0.25 s, 95.
CHUNK_SECONDS = 0.25
#: How far behind the source a listener should be at most: the wait for a
#: chunk to fill plus its place in the chunk's fan-out. With thousands of
#: listeners the fan-out itself takes a good part of it (about 12 us a
#: listener, mostly the ``send``), so chunks shorten to stay within it...
LATENCY_BUDGET = 0.28
#: ...never below this...
MIN_CHUNK_SECONDS = 0.1
#: ...nor so short that fan-outs would take more than this share of the time.
FANOUT_SHARE = 0.75
#: A chunk never grows past this, whatever the bitrate.
CHUNK_BYTES = 64 * 1024
#: ICY metadata is at most 255 blocks of 16 bytes.
ICY_MAX = 255 * 16
#: A chunk goes to at most this many subscribers at once; the others get it
#: in the reactor's next turns, so a new listener's first burst (or a
#: source's bytes) never waits behind the fan-out to ten thousand.
FANOUT_SLICE = 500


def chunk_seconds_for(fanout_seconds: float) -> float:
    """
    How much audio a chunk should gather when fanning one out takes
    ``fanout_seconds``: :data:`CHUNK_SECONDS` while that is short, less as
    it grows (to hold :data:`LATENCY_BUDGET`), and back up once keeping the
    budget would cost more than :data:`FANOUT_SHARE` of the time.
    """
    return min(CHUNK_SECONDS, max(MIN_CHUNK_SECONDS, LATENCY_BUDGET - fanout_seconds,
                                  fanout_seconds / FANOUT_SHARE))


@attr.s(slots=True, frozen=True, auto_attribs=True)
class Chunk:
    """
    Whole frames, shared by every subscriber.

    :ivar seq: position in the mount's stream, counting chunks.
    :ivar generation: which set of codec headers the chunk belongs to.
    :ivar header: the chunk is the codec header pages themselves (Ogg).
    :ivar at: stream time of its first sample: seconds of audio the source sent before it.
    """

    seq: int
    data: bytes
    duration: float
    generation: int
    header: bool = False
    at: float = 0.0


class ISubscriber(Interface):
    """Something that consumes a mount's stream."""

    def chunk(chunk: Chunk) -> None:
        """A new chunk is on the mount."""

    def metadata_changed() -> None:
        """The now-playing metadata changed."""

    def moved(mount: "Mount") -> None:
        """The subscriber now belongs to ``mount`` (fallback, override, moveclients)."""

    def detach(reason: str) -> None:
        """The mount stops serving this subscriber (no source, no fallback)."""


@attr.s(slots=True, auto_attribs=True)
class SourceInfo:
    """What a connected source told us about itself."""

    content_type: str
    peer: str = ""
    user_agent: str = ""
    connected_at: float = 0.0
    #: ice-* and icy-* request headers, lower-cased names.
    ice: Dict[str, str] = attr.Factory(dict)
    #: Ends the source's connection (``/admin/killsource``).
    disconnect: Callable[[], None] = lambda: None
    #: The upstream's URL (no password) when the source is a relay.
    relay: str = ""
    #: The mount whose transcoding output this source is (its transcoder), else empty.
    transcoded_from: str = ""
    #: Whether titles inside the stream (Ogg comments) are the mount's now-playing; not for a
    #: transcoder's output, whose now-playing is copied from the mount it transcodes.
    inband_metadata: bool = True

    def audio_info(self) -> Dict[str, str]:
        """``ice-audio-info: bitrate=128;samplerate=44100`` as a dict."""
        out = {}
        for item in self.ice.get("ice-audio-info", "").split(";"):
            key, sep, value = item.partition("=")
            if sep:
                out[unquote_plus(key.strip()).lower()] = unquote_plus(value.strip())
        return out


class MountInUse(Exception):
    """A source is already streaming to the mount."""


def _first(*values: Optional[str]) -> Optional[str]:
    for value in values:
        if value:
            return value
    return None


class Mount:
    """One mount point and its shared stream."""

    def __init__(self, path: str, config: MountConfig, limits: LimitsConfig, bus: EventBus,
                 later: Optional[Callable[[Callable[[], None]], Any]] = None):
        """
        :param later: runs a function in a later reactor turn (``lambda f:
            reactor.callLater(0, f)``): large fan-outs go in slices. Without
            it every subscriber is told at once (tests).
        """
        self.path = path
        self.later = later
        #: Chunks still going out: (chunk, the subscribers it goes to, how many were told, when it was cut).
        self._fanout: Deque[List[Any]] = deque()
        self._fanout_scheduled = False
        #: How long a chunk takes to reach every subscriber (smoothed), and so how long chunks are.
        self.fanout_seconds = 0.0
        self.chunk_seconds = CHUNK_SECONDS
        self.config = config
        self.limits = limits
        self.bus = bus
        self.source: Optional[SourceInfo] = None
        self.framer: Any = None
        self.ring: Deque[Chunk] = deque()
        self.ring_bytes = 0
        self.next_seq = 0
        #: Tells this mount's stream from another on the same path (a restart, a mount removed and made
        #: again), whose chunks count from 0 too: a client resuming from a chunk number names both.
        self.stream_id = secrets.token_hex(6)
        self.generation = 0
        self.header_pages = b""
        self.subscribers: Dict[Any, None] = {}
        self._listeners = 0
        #: The outputs whose listeners hold no connection (HLS, DASH), by name: they count their sessions.
        self.session_outputs: Dict[str, Any] = {}
        #: Listeners worker processes serve for this mount, as they last reported.
        self.remote_listeners = 0
        self._pending: List[bytes] = []
        self._pending_seconds = 0.0
        self._pending_bytes = 0
        self.title = ""
        self.artist = ""
        self.stream_url = ""
        #: The rest of what is known of the track playing (album, cover...), when it started (wall
        #: clock), and the tracks before it, newest first.
        self.track = NO_INFO
        self.track_started: Optional[float] = None
        self.history: Deque[Dict[str, Any]] = deque(maxlen=HISTORY)
        #: The current track's cover, once made (:mod:`gocast.outputs.artwork`).
        self.cover: Any = None
        self.metadata_version = 0
        self._icy_cache: Tuple[int, bytes] = (-1, b"\x00")
        self.peak_listeners = 0
        #: stats.milestone fires when the listener count first reaches 10, 100, 1000...
        self._next_milestone = 10
        self.bytes_received = 0
        self.bytes_sent = 0
        self.slow_listeners = 0
        #: Seconds of audio the current source sent (the stream time of the next chunk).
        self.stream_seconds = 0.0

    # Configuration

    def reconfigure(self, config: MountConfig, limits: LimitsConfig) -> None:
        self.config = config
        self.limits = limits

    @property
    def burst_size(self) -> int:
        if self.config.burst_size is not None:
            return self.config.burst_size
        return self.limits.burst_size

    @property
    def max_listeners(self) -> int:
        """0 means no limit."""
        return self.config.max_listeners or self.limits.max_listeners_per_mount

    @property
    def content_type(self) -> str:
        if self.source is not None:
            return self.source.content_type
        return self.config.type or "audio/mpeg"

    @property
    def is_ogg(self) -> bool:
        return is_ogg(self.content_type)

    # Source

    def start_source(self, info: SourceInfo) -> None:
        """
        :raises MountInUse: when another source is connected.
        """
        if self.source is not None:
            raise MountInUse(self.path)
        self.source = info
        self.framer = framer_for(info.content_type)
        self.stream_seconds = 0.0
        self.header_pages = b""
        self.generation += 1
        self._pending = []
        self._pending_seconds = 0.0
        self._pending_bytes = 0
        self.bus.publish("source.connect", self.path, source_ip=info.peer,
                         user_agent=info.user_agent, content_type=info.content_type)
        title = info.ice.get("icy-title") or info.ice.get("ice-title")
        if title:
            self.set_metadata(song=title)

    def codec_mismatch(self, found: str) -> None:
        """The source's bytes are not what it declared: serve them as what they are."""
        assert self.source is not None
        declared, self.source.content_type = self.source.content_type, found
        self.bus.publish("source.codec_mismatch", self.path, declared=declared, found=found)

    def feed(self, data: bytes) -> None:
        """Bytes from the source, in any pieces."""
        self.bytes_received += len(data)
        packets = self.framer.feed(data)
        if getattr(self.framer, "mismatch", False) and self.source is not None \
                and self.source.content_type != self.framer.content_type:
            self.codec_mismatch(self.framer.content_type)
        for packet in packets:
            if packet.header:
                self._flush()
                self.generation += 1
                self.header_pages = packet.data
                self._publish(packet.data, 0.0, header=True)
                continue
            self._pending.append(packet.data)
            self._pending_seconds += packet.duration
            self._pending_bytes += len(packet.data)
            if (self._pending_seconds >= self.chunk_seconds or self._pending_bytes >= CHUNK_BYTES
                    or not packet.duration):
                self._flush()
        metadata = self.framer.take_metadata()
        if metadata and self.source is not None and self.source.inband_metadata:
            self.set_metadata(title=metadata.get("title", ""), artist=metadata.get("artist", ""))

    def stop_source(self) -> Optional[SourceInfo]:
        """The source left; returns what it was. Subscribers stay (the registry moves them)."""
        self._flush()
        info, self.source = self.source, None
        self.framer = None
        self._tell_each(lambda subscriber: getattr(subscriber, "source_stopped", lambda: None)())
        if info is not None:
            self.bus.publish("source.disconnect", self.path, source_ip=info.peer,
                             bytes_received=self.bytes_received)
        return info

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        seconds = self._pending_seconds
        self._pending = []
        self._pending_seconds = 0.0
        self._pending_bytes = 0
        self._publish(data, seconds)

    def _publish(self, data: bytes, seconds: float, header: bool = False) -> None:
        chunk = Chunk(self.next_seq, data, seconds, self.generation, header, self.stream_seconds)
        self.stream_seconds += seconds
        self.next_seq += 1
        ring = self.ring
        ring.append(chunk)
        self.ring_bytes += len(data)
        queue_size = self.limits.queue_size
        while self.ring_bytes > queue_size and len(ring) > 1:
            self.ring_bytes -= len(ring.popleft().data)
        if self.later is None or (len(self.subscribers) <= FANOUT_SLICE and not self._fanout):
            self._tell_each(lambda subscriber: subscriber.chunk(chunk))
            self._fanned_out(0.0)  # at once
            return
        self._fanout.append([chunk, list(self.subscribers), 0, self.bus.now()])
        if not self._fanout_scheduled:
            self._fan_out()

    def _fan_out(self) -> None:
        """Tell the next slice of subscribers their chunks, in order; the rest in a later turn."""
        self._fanout_scheduled = False
        budget = FANOUT_SLICE
        while self._fanout and budget:
            entry = self._fanout[0]
            chunk, subscribers, told, cut = entry
            end = min(len(subscribers), told + budget)
            current = self.subscribers
            for subscriber in subscribers[told:end]:
                if subscriber in current:  # not gone or moved since
                    try:
                        subscriber.chunk(chunk)  # not through _tell: this loop runs for every listener
                    except Exception:
                        self._cut_off(subscriber)
            budget -= end - told
            entry[2] = end
            if end >= len(subscribers):
                self._fanout.popleft()
                self._fanned_out(self.bus.now() - cut)
        if self._fanout and self.later is not None:
            self._fanout_scheduled = True
            self.later(self._fan_out)

    def _fanned_out(self, seconds: float) -> None:
        """A chunk reached everyone ``seconds`` after it was cut: the next chunks' length follows."""
        self.fanout_seconds += (seconds - self.fanout_seconds) / 4
        self.chunk_seconds = chunk_seconds_for(self.fanout_seconds)

    # Subscribers

    def _tell_each(self, tell: Callable[[Any], None]) -> None:
        """
        Tell every subscriber; one that raises (a bug) is cut off and logged,
        and the others still get what it did not.
        """
        for subscriber in list(self.subscribers):
            self._tell(subscriber, tell)

    def _tell(self, subscriber: Any, tell: Callable[[Any], None]) -> None:
        try:
            tell(subscriber)
        except Exception:
            self._cut_off(subscriber)

    def _cut_off(self, subscriber: Any) -> None:
        """Log the exception being handled, and let the subscriber that raised it go (alone)."""
        _log.failure("{mount}: a subscriber failed and was cut off", mount=self.path)
        self.remove_subscriber(subscriber)
        try:
            subscriber.detach("internal error")
        except Exception:
            _log.failure("{mount}: and failed to close", mount=self.path)

    def add_subscriber(self, subscriber: Any) -> None:
        """
        Add a subscriber; listeners (``is_listener``, the default) are
        counted, except those that stand for listeners counted elsewhere
        (``counted`` false: another node's or a worker's relay pull).
        """
        if subscriber in self.subscribers:
            return
        self.subscribers[subscriber] = None
        if not _counted(subscriber):
            return
        self._listeners += 1
        count = self.listeners
        if count > self.peak_listeners:
            self.peak_listeners = count
        if count >= self._next_milestone:
            self.bus.publish("stats.milestone", self.path, listeners=count, milestone=self._next_milestone)
            while self._next_milestone <= count:
                self._next_milestone *= 10

    def remove_subscriber(self, subscriber: Any) -> None:
        if subscriber in self.subscribers:
            del self.subscribers[subscriber]
            if _counted(subscriber):
                self._listeners -= 1

    def session_listeners(self) -> int:
        """Listeners that hold no connection (HLS and DASH players), as their outputs count them."""
        return sum(output.session_count() for output in self.session_outputs.values())

    def session_locations(self) -> List[Any]:
        """Where those listeners are (GeoIP locations)."""
        return [place for output in self.session_outputs.values() for place in output.session_locations()]

    @property
    def listeners(self) -> int:
        return self._listeners + self.session_listeners() + self.remote_listeners

    @property
    def total_bytes_sent(self) -> int:
        """Bytes sent to listeners, counting those still connected (they settle when they leave or move)."""
        return self.bytes_sent + sum(getattr(s, "unsettled", 0) for s in self.subscribers)

    @property
    def connected_listeners(self) -> int:
        """Listeners holding a connection (not HLS clients, which come and go per request), workers' included."""
        return self._listeners + self.remote_listeners

    def note_peak(self) -> None:
        if self.listeners > self.peak_listeners:
            self.peak_listeners = self.listeners

    def listener_subscribers(self) -> List[Any]:
        """The subscribers that are listeners (not outputs such as HLS)."""
        return [s for s in self.subscribers if getattr(s, "is_listener", True)]

    def burst(self) -> List[bytes]:
        """
        What a new listener receives first: the codec headers (Ogg), then the
        newest chunks of the current stream holding at most ``burst_size``
        bytes (at least one chunk), each starting on a frame boundary.
        """
        chunks = [chunk.data for chunk in self.burst_chunks()]
        if self.header_pages:
            chunks.insert(0, self.header_pages)
        return chunks

    def burst_chunks(self) -> List[Chunk]:
        """The chunks of :meth:`burst`: the current stream's newest, at most ``burst_size`` bytes (one at least)."""
        chunks: List[Chunk] = []
        budget = self.burst_size
        for chunk in reversed(self.ring):
            if chunk.generation != self.generation or chunk.header:
                break
            if chunks and budget < len(chunk.data):
                break
            chunks.append(chunk)
            budget -= len(chunk.data)
        chunks.reverse()
        return chunks

    def chunks_after(self, seq: int) -> Optional[Iterable[Chunk]]:
        """The chunks after ``seq``, or ``None`` when some left the ring (too far behind)."""
        return chunks_after(self.ring, self.next_seq, seq)

    @property
    def oldest_seq(self) -> int:
        return self.ring[0].seq if self.ring else self.next_seq

    # Metadata

    def set_metadata(self, song: str = "", title: str = "", artist: str = "", url: str = "",
                     from_node: str = "", info: TrackInfo = NO_INFO) -> None:
        """
        Update now-playing. ``song`` is Icecast's ``Artist - Title`` form and
        fills both; ``title``/``artist`` may come separately; ``info`` holds
        the rest (album, cover...). ``from_node`` names the cluster node the
        update was made on when it was not this one: the event says so, and
        is neither shared again nor sent to webhooks a second time.
        """
        song, title, artist, url = (clean_metadata(text) for text in (song, title, artist, url))
        if song:
            artist_part, sep, title_part = song.partition(" - ")
            title, artist = (title_part, artist_part) if sep else (song, "")
        now = self.bus.now()
        if (title, artist) != (self.title, self.artist) or self.track_started is None:
            if self.title or self.artist:
                self.history.appendleft({"title": self.title or None, "artist": self.artist or None,
                                         "album": self.track.album or None, "song": self.song or None,
                                         "started_at": self.track_started, "ended_at": now})
            self.track_started = now
        self.title = title
        self.artist = artist
        self.track = attr.evolve(info, album=clean_metadata(info.album), genre=clean_metadata(info.genre))
        if url:
            self.stream_url = url
        self.metadata_version += 1
        extra: Dict[str, Any] = {"from_node": from_node} if from_node else {}
        if self.track.album:
            extra["album"] = self.track.album
        if self.track.artwork:
            extra["artwork"] = self.track.artwork
        self.bus.publish("source.metadata", self.path, title=self.title, artist=self.artist,
                         song=self.song, **extra)
        self._tell_each(lambda subscriber: subscriber.metadata_changed())

    @property
    def song(self) -> str:
        return "%s - %s" % (self.artist, self.title) if self.artist else self.title

    def icy_block(self) -> bytes:
        """The current ICY metadata block (length byte + padded text), built once per change."""
        version, block = self._icy_cache
        if version == self.metadata_version:
            return block
        block = icy_metadata(self.song, self.stream_url, self.config.charset)
        self._icy_cache = (self.metadata_version, block)
        return block

    # What listeners are told

    def listener_headers(self) -> List[Tuple[str, str]]:
        """``icy-*`` response headers: the mount's config wins over what the source sent."""
        cfg = self.config
        ice = self.source.ice if self.source else {}
        audio_info = self.source.audio_info() if self.source else {}
        bitrate = str(cfg.bitrate // 1000) if cfg.bitrate else _first(
            ice.get("ice-bitrate"), ice.get("icy-br"), audio_info.get("bitrate"),
            audio_info.get("ice-bitrate"))
        public = "1" if cfg.public else "0" if cfg.public is False else _first(
            ice.get("ice-public"), ice.get("icy-pub"), ice.get("icy-public"))
        pairs = [
            ("icy-name", _first(cfg.stream_name, ice.get("ice-name"), ice.get("icy-name"))),
            ("icy-description", _first(cfg.description, ice.get("ice-description"),
                                       ice.get("icy-description"))),
            ("icy-genre", _first(cfg.genre, ice.get("ice-genre"), ice.get("icy-genre"))),
            ("icy-url", _first(cfg.url, ice.get("ice-url"), ice.get("icy-url"))),
            ("icy-br", bitrate),
            ("icy-pub", public),
        ]
        if audio_info:
            pairs.append(("ice-audio-info", ";".join("%s=%s" % kv for kv in audio_info.items())))
        return [(name, value) for name, value in pairs if value]


def chunks_after(ring: Deque[Chunk], next_seq: int, seq: int) -> Optional[Iterable[Chunk]]:
    """
    The chunks of ``ring`` (numbered up to ``next_seq - 1``) after ``seq``,
    or ``None`` when some already left it: what a listener catches up with.
    """
    if not ring or seq + 1 >= next_seq:
        return ()
    if seq + 1 < ring[0].seq:
        return None
    start = seq + 1 - ring[0].seq
    return [ring[i] for i in range(start, len(ring))]


def _counted(subscriber: Any) -> bool:
    return getattr(subscriber, "is_listener", True) and getattr(subscriber, "counted", True)


#: The longest now-playing text kept (a title, an artist, a song, a URL).
MAX_METADATA = 1024


def clean_metadata(text: str) -> str:
    """
    Now-playing text from any door (a source, the admin, the API, Ogg
    comments), made safe to repeat: at most :data:`MAX_METADATA`
    characters, no control characters, and no ``';``, which would end
    ``StreamTitle`` early for every ICY player (the quote stays).
    """
    return scrub(text[:MAX_METADATA]).replace("';", "' ;").strip()


def icy_metadata(song: str, url: str = "", charset: str = "UTF-8") -> bytes:
    """
    An ICY metadata block: a length byte N, then N*16 bytes of
    ``StreamTitle='...';`` (and ``StreamUrl='...';``) padded with NULs.
    Quotes are not escaped: players split on ``';``. Text past the 4080-byte
    limit is cut from the title. The text always ends with at least one NUL,
    as Icecast writes it: Icecast, relaying us, reads the block as a C string
    and would cut the last character (the ``;``) off a block without one.
    """
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    tail = b"StreamUrl='%s';" % url[:1024].encode(charset, "replace") if url else b""
    room = max(ICY_MAX - len(b"StreamTitle='';") - len(tail) - 1, 0)
    # Cut on a character boundary, not inside a multi-byte sequence.
    title = song.encode(charset, "replace")[:room].decode(charset, "ignore").encode(charset)
    text = b"StreamTitle='" + title + b"';" + tail
    blocks = len(text) // 16 + 1
    return bytes([blocks]) + text.ljust(blocks * 16, b"\x00")
