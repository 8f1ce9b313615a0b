# -*- test-case-name: tests.test_hls -*-
"""
HLS segmenting and playlists (RFC 8216), pure code.

A :class:`Segmenter` takes chunks of whole audio frames with their
duration, cuts them into MPEG-TS segments of about ``segment_duration``
(never splitting a chunk, so never a frame), keeps the live playlist's
segments plus a few older ones (a client that just fetched a playlist can
still get them), and renders the media playlist. Memory is bounded by the
number of segments kept.
"""

from __future__ import annotations

import math
from collections import deque
from datetime import datetime, timezone
from typing import Any, Deque, Iterator, List, Optional, Tuple

import attr

from ._sync import adts_header, mp3_header
from .mpegts import PTS_WRAP, TSMuxer, id3_tag

#: Older segments kept beyond the playlist window.
KEEP_EXTRA = 3
#: PTS of the first sample, in 90 kHz ticks (players dislike 0).
FIRST_PTS = 10 * 90000


@attr.s(slots=True, frozen=True, auto_attribs=True)
class Segment:
    sequence: int
    data: bytes
    duration: float
    started_at: float
    discontinuity: bool
    #: Discontinuities so far, this segment's included.
    discontinuities: int


class RenderedPlaylist:
    """
    A segmenter's playlist, rendered once per change rather than once per
    request (every player asks every few seconds, LL-HLS ones every part):
    :meth:`playlist_key` says what it depends on.
    """

    _rendered: Tuple[Any, str] = (None, "")

    def playlist_key(self) -> Any:
        raise NotImplementedError

    def render_playlist(self) -> str:
        raise NotImplementedError

    def playlist(self) -> str:
        key = self.playlist_key()
        if self._rendered[0] != key:
            self._rendered = (key, self.render_playlist())
        return self._rendered[1]


def whole_frames(codec: str, data: bytes) -> Iterator[Tuple[bytes, float]]:
    """Each MP3 or ADTS frame of a chunk of whole frames, as it is (header included), and its duration."""
    parse = adts_header if codec == "aac" else mp3_header
    pos, need = 0, 7 if codec == "aac" else 4
    while pos + need <= len(data):
        header = parse(data, pos)
        if header is None:
            return
        length, samples, rate, _ = header
        yield data[pos:pos + length], samples / rate
        pos += length


class Segmenter(RenderedPlaylist):
    """
    Cuts MPEG-TS segments for standard HLS.

    Unanchored, a segment closes once it holds ``segment_duration`` of
    audio, on a chunk boundary. Anchored (``anchor``: the wall-clock time
    of the stream's first sample), segment N holds the frames whose
    stream time, counted from the anchor, lies in ``[N*d, (N+1)*d)``, cut
    between frames, and timestamps count from the anchor too: the variants
    of an adaptive-bitrate stream that share an anchor (the outputs of one
    transcoder) get the same boundaries, sequence numbers and timestamps,
    so players switch between them on any boundary.
    """

    low_latency = False

    def __init__(self, codec: str, segment_duration: float = 6.0, playlist_length: int = 3,
                 first_sequence: int = 0, anchor: Optional[float] = None):
        self.codec = codec
        self.muxer = TSMuxer(codec)
        self.segment_duration = segment_duration
        self.playlist_length = playlist_length
        self.segments: Deque[Segment] = deque()
        self.next_sequence = first_sequence
        self._discontinuities = 0
        self._pts = FIRST_PTS
        self._chunks: List[bytes] = []
        self._stamps: List[int] = []
        self._duration = 0.0
        self._started_at = 0.0
        self._discontinuity_next = False
        self._id3 = b""
        #: The anchor, and the stream time since it of the next frame (kept apart: added to the
        #: anchor's large number, frame after frame, rounding would drift by milliseconds an hour).
        self.anchor = anchor
        self.elapsed = 0.0
        if anchor is not None:
            self.next_sequence = max(first_sequence, int(anchor // segment_duration))

    def add(self, data: bytes, duration: float, now: float) -> Optional[Segment]:
        """Add a chunk that ends ``now``; return the segment it completed, if any."""
        if self.anchor is None:
            return self._add(data, duration, now)
        done = None
        arrived = now - duration
        piece: List[bytes] = []  # frames of this chunk in the current segment: one PES, as unanchored
        start = self.elapsed
        for frame, seconds in whole_frames(self.codec, data):
            boundary = (self.next_sequence + 1) * self.segment_duration - self.anchor
            if self.elapsed + seconds / 2 >= boundary and (self._chunks or piece):
                self._add_piece(piece, start)
                piece, start = [], self.elapsed
                done = self.close()
            if not self._chunks and not piece:
                self._started_at = arrived
            piece.append(frame)
            arrived += seconds
            self.elapsed += seconds
        self._add_piece(piece, start)
        return done

    def _add_piece(self, frames: List[bytes], start: float) -> None:
        """Frames from stream time ``start`` to :attr:`elapsed`; stamped from it, so never drifting."""
        if frames:
            assert self.anchor is not None
            self._chunks.append(b"".join(frames))
            self._stamps.append(int(round(self.anchor * 90000 + start * 90000)) % PTS_WRAP)
            self._duration += self.elapsed - start

    def set_title(self, title: str, artist: str = "", artwork: str = "") -> None:
        """Now playing, written as timed ID3 at the start of each segment."""
        self._id3 = id3_tag(title, artist, artwork) if title or artist else b""

    def _add(self, data: bytes, duration: float, now: float) -> Optional[Segment]:
        if not self._chunks:
            self._started_at = now - duration  # when its first sample arrived (PROGRAM-DATE-TIME)
        self._chunks.append(data)
        self._stamps.append(self._pts)
        self._pts += int(round(duration * 90000))
        self._duration += duration
        if self._duration >= self.segment_duration:
            return self.close()
        return None

    def discontinuity(self) -> None:
        """The stream changed (new source, fallback): end the segment, flag the next."""
        self.close()
        self._discontinuity_next = True

    def switch_codec(self, codec: str) -> None:
        """The stream goes on in another codec: segments from now on carry it, after a discontinuity."""
        self.discontinuity()
        self.codec = codec
        self.muxer = TSMuxer(codec)

    def close(self) -> Optional[Segment]:
        if not self._chunks:
            return None
        flagged = self._discontinuity_next and bool(self.segments)
        if flagged:
            self._discontinuities += 1
        self._discontinuity_next = False
        segment = Segment(self.next_sequence, self.muxer.segment(self._chunks, self._stamps, self._id3),
                          self._duration, self._started_at, flagged, self._discontinuities)
        self.next_sequence += 1
        self._chunks, self._stamps, self._duration = [], [], 0.0
        self.segments.append(segment)
        while len(self.segments) > self.playlist_length + KEEP_EXTRA:
            self.segments.popleft()
        return segment

    @property
    def ready(self) -> bool:
        return bool(self.segments)

    def target_duration(self) -> int:
        return max([math.ceil(s.duration) for s in self.live()] + [math.ceil(self.segment_duration)])

    def get(self, sequence: int) -> Optional[Segment]:
        for segment in self.segments:
            if segment.sequence == sequence:
                return segment
        return None

    def lookup(self, name: str) -> Optional[Tuple[str, bytes]]:
        """The content type and bytes of ``segment_N.ts``."""
        if name.startswith("segment_") and name.endswith(".ts") and name[8:-3].isdigit():
            segment = self.get(int(name[8:-3]))
            if segment is not None:
                return "video/mp2t", segment.data
        return None

    def live(self) -> List[Segment]:
        return list(self.segments)[-self.playlist_length:]

    def playlist_key(self) -> Any:
        # The text changes with each segment cut, and only then (or when a reload changes the settings).
        return self.next_sequence, self.playlist_length, self.segment_duration

    def render_playlist(self) -> str:
        """The live media playlist; segment URIs are relative (``segment_N.ts``)."""
        live = self.live()
        target = self.target_duration()
        first = live[0] if live else None
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            "#EXT-X-TARGETDURATION:%d" % target,
            "#EXT-X-MEDIA-SEQUENCE:%d" % (first.sequence if first else self.next_sequence),
            "#EXT-X-DISCONTINUITY-SEQUENCE:%d"
            % ((first.discontinuities - first.discontinuity) if first else self._discontinuities),
        ]
        for segment in live:
            if segment.discontinuity:
                lines.append("#EXT-X-DISCONTINUITY")
            lines.append("#EXT-X-PROGRAM-DATE-TIME:%s" % program_date_time(segment.started_at))
            lines.append("#EXTINF:%.3f," % segment.duration)
            lines.append("segment_%d.ts" % segment.sequence)
        return "\n".join(lines) + "\n"


def program_date_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


#: RFC 6381 codec names of the audio a variant's segments hold.
CODECS = {"aac": "mp4a.40.2", "mp3": "mp4a.40.34"}
#: What MPEG-TS adds to the audio (packet headers, PES headers, tables), for a variant with no segment yet.
TS_OVERHEAD = 1.1


@attr.s(slots=True, frozen=True, auto_attribs=True)
class Variant:
    """One ``EXT-X-STREAM-INF`` of a master playlist."""

    uri: str
    bandwidth: int
    average_bandwidth: int
    codec: str


def measured_bandwidth(segments: List[Any], bitrate: int) -> Tuple[int, int]:
    """
    ``(BANDWIDTH, AVERAGE-BANDWIDTH)`` in bit/s: the peak and the mean of
    the segments' bitrates, or ``bitrate`` with the container's overhead
    before any segment is cut.
    """
    rates = [len(s.data) * 8 / s.duration for s in segments if s.duration > 0]
    if not rates:
        estimate = int(bitrate * TS_OVERHEAD)
        return estimate, estimate
    total = sum(s.duration for s in segments if s.duration > 0)
    average = sum(len(s.data) * 8 for s in segments if s.duration > 0) / total
    return int(math.ceil(max(rates))), int(math.ceil(average))


def master_playlist(variants: List[Variant]) -> str:
    """A master playlist of audio-only variants (RFC 8216, 4.3.4.2)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for variant in variants:
        lines.append('#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS="%s"'
                     % (variant.bandwidth, variant.average_bandwidth, CODECS.get(variant.codec, variant.codec)))
        lines.append(variant.uri)
    return "\n".join(lines) + "\n"
