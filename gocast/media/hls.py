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
from typing import Any, Deque, List, Optional, Tuple

import attr

from .mpegts import TSMuxer, id3_tag

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


class Segmenter(RenderedPlaylist):
    """Cuts MPEG-TS segments for standard HLS."""

    low_latency = False

    def __init__(self, codec: str, segment_duration: float = 6.0, playlist_length: int = 3,
                 first_sequence: int = 0):
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

    def add(self, data: bytes, duration: float, now: float) -> Optional[Segment]:
        """Add a chunk that ends ``now``; return the segment it completed, if any."""
        return self._add(data, duration, now)

    def set_title(self, title: str, artist: str = "") -> None:
        """Now playing, written as timed ID3 at the start of each segment."""
        self._id3 = id3_tag(title, artist) if title or artist else b""

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
