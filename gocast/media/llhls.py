# -*- test-case-name: tests.test_llhls -*-
"""
Low-Latency HLS segmenting and playlists (the LL-HLS additions to HLS,
draft-pantos-hls-rfc8216bis), pure code.

A :class:`PartSegmenter` takes chunks of whole ADTS or MPEG audio frames,
splits them into frames and packs them into CMAF fragments: *parts* of at
most ``part_duration`` (a part is closed as soon as the next frame would
not fit, so it is published without waiting for more audio), and
*segments* of about ``segment_duration`` made of whole parts (a segment's
bytes are its parts' bytes). A change of track format (sample rate,
channels, codec) starts a new initialisation segment and a discontinuity.

It answers the questions blocking playlist reload asks (is part M of
segment N out yet? is that request too far ahead?) and renders the media
playlist with ``EXT-X-PART``, ``EXT-X-PART-INF``, ``EXT-X-SERVER-CONTROL``
and ``EXT-X-PRELOAD-HINT``. Memory is bounded like the TS segmenter's:
the live window plus :data:`~gocast.media.hls.KEEP_EXTRA` older segments.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

import attr

from . import fmp4
from .hls import KEEP_EXTRA, RenderedPlaylist, program_date_time
from .mpegts import id3_tag

#: Seconds of decode time before the first sample (players dislike 0).
FIRST_TIME = 10
#: How far past the newest part a blocking request may ask, in parts.
ADVANCE_PART_LIMIT = 3
#: Parts are listed for segments this many target durations from the end.
PART_WINDOW = 3
MP4_TYPE = "audio/mp4"


@attr.s(slots=True, frozen=True, auto_attribs=True)
class Part:
    sequence: int  # its segment's media sequence number
    index: int
    data: bytes
    duration: float


@attr.s(slots=True, frozen=True, auto_attribs=True)
class PartedSegment:
    sequence: int
    parts: Tuple[Part, ...]
    duration: float
    started_at: float
    discontinuity: bool
    #: Discontinuities so far, this segment's included.
    discontinuities: int
    map_id: int
    #: Decode time of its first sample, and its length, in samples (DASH's timeline).
    decode_time: int = 0
    samples: int = 0

    @property
    def data(self) -> bytes:
        return b"".join(part.data for part in self.parts)


class PartSegmenter(RenderedPlaylist):
    """Cuts CMAF parts and segments for LL-HLS."""

    low_latency = True

    def __init__(self, codec: str, segment_duration: float = 6.0, part_duration: float = 0.5,
                 playlist_length: int = 3, first_sequence: int = 0, anchor: Optional[float] = None):
        """
        :param anchor: the wall-clock time of the stream's first sample: then
            segment N holds the stream time ``[N*d, (N+1)*d)`` counted from
            it, and decode times count from the epoch (as for
            :class:`~gocast.media.hls.Segmenter`): the variants of one
            transcoder line up, and a DASH timeline follows the clock.
        """
        self.codec = codec
        self.segment_duration = segment_duration
        self.part_duration = part_duration
        self.playlist_length = playlist_length
        self.segments: Deque[PartedSegment] = deque()
        self.next_sequence = first_sequence
        self.inits: Dict[int, bytes] = {}
        #: Parts of the segment being cut.
        self.parts: List[Part] = []
        self._format: Optional[fmp4.TrackFormat] = None
        self._map_id = -1
        self._frames: List[fmp4.Frame] = []
        self._part_samples = 0
        self._decode_time = 0
        self._fragments = 0
        self._started_at = 0.0
        self._discontinuity_next = False
        self._discontinuities = 0
        self._id3 = b""
        self._segment_start = 0
        self.anchor = anchor
        #: Stream time since the anchor of the next frame.
        self.elapsed = 0.0
        if anchor is not None:
            self.next_sequence = max(first_sequence, int(anchor // segment_duration))

    # Input

    def set_title(self, title: str, artist: str = "", artwork: str = "") -> None:
        """Now playing, sent as timed ID3 (``emsg``) at the start of each segment."""
        self._id3 = id3_tag(title, artist, artwork) if title or artist else b""

    def add(self, data: bytes, duration: float, now: float) -> None:
        """
        Add a chunk of whole frames that ends ``now`` (its first sample
        arrived ``duration`` earlier: that is a segment's PROGRAM-DATE-TIME).
        """
        arrived = now - duration
        for frame in fmp4.split_frames(self.codec, data):
            if frame.format != self._format:
                self._new_format(frame.format)
            seconds = frame.samples / frame.format.sample_rate
            if self.anchor is not None and (self._frames or self.parts) and self.elapsed + seconds / 2 >= (
                    (self.next_sequence + 1) * self.segment_duration - self.anchor):
                self.close()  # the segment's time is up: the frame starts the next
            if not self._frames and not self.parts:
                self._started_at = arrived
            arrived += seconds
            self.elapsed += seconds
            self._frames.append(frame)
            self._part_samples += frame.samples
            if (self._part_samples + frame.samples) / self._format.sample_rate > self.part_duration + 1e-9:
                self._close_part()

    def discontinuity(self) -> None:
        """The stream changed (new source, fallback): end the segment, flag the next."""
        self.close()
        self._discontinuity_next = True

    def close(self) -> None:
        self._close_part()
        self._close_segment()

    def _new_format(self, fmt: fmp4.TrackFormat) -> None:
        if self._format is not None:
            self.discontinuity()
        self._format = fmt
        self._map_id = self.next_sequence  # unique, like sequence numbers
        self.inits[self._map_id] = fmp4.init_segment(fmt)
        if self.anchor is None:
            self._decode_time = FIRST_TIME * fmt.sample_rate
        else:  # counted from the epoch: every variant, and the DASH clock, agree on it
            self._decode_time = int(round(self.anchor * fmt.sample_rate + self.elapsed * fmt.sample_rate))

    def _close_part(self) -> None:
        if not self._frames:
            return
        assert self._format is not None
        rate = self._format.sample_rate
        head = b""
        if not self.parts and self._id3:
            self._fragments += 1
            head = fmp4.emsg_id3(self._id3, rate, self._decode_time, self._fragments)
        self._fragments += 1
        samples = [(frame.data, frame.samples) for frame in self._frames]
        if not self.parts:
            self._segment_start = self._decode_time
        data = head + fmp4.fragment(self._fragments, self._decode_time, samples)
        self.parts.append(Part(self.next_sequence, len(self.parts), data, self._part_samples / rate))
        self._decode_time += self._part_samples
        self._frames, self._part_samples = [], 0
        if self.anchor is None and sum(p.duration for p in self.parts) >= self.segment_duration - self.part_duration / 2:
            self._close_segment()

    def _close_segment(self) -> None:
        if not self.parts:
            return
        flagged = self._discontinuity_next and bool(self.segments)
        if flagged:
            self._discontinuities += 1
        self._discontinuity_next = False
        self.segments.append(PartedSegment(
            self.next_sequence, tuple(self.parts), sum(p.duration for p in self.parts), self._started_at,
            flagged, self._discontinuities, self._map_id, self._segment_start,
            self._decode_time - self._segment_start))
        self.next_sequence += 1
        self.parts = []
        while len(self.segments) > self.playlist_length + KEEP_EXTRA:
            self.segments.popleft()
        kept = {segment.map_id for segment in self.segments} | {self._map_id}
        for map_id in [m for m in self.inits if m not in kept]:
            del self.inits[map_id]

    # Questions

    @property
    def ready(self) -> bool:
        """Whether a playlist can be served: players want one whole segment in it."""
        return bool(self.segments)

    def newest(self) -> Tuple[int, int]:
        """(segment, part) of the newest part."""
        if self.parts:
            return self.next_sequence, len(self.parts) - 1
        if self.segments:
            return self.segments[-1].sequence, len(self.segments[-1].parts) - 1
        return self.next_sequence, -1

    def has(self, sequence: int, part: Optional[int]) -> bool:
        """Whether a playlist now holds segment ``sequence`` (or that part of it, or later)."""
        if part is None:
            return sequence < self.next_sequence
        return (sequence, part) <= self.newest()

    def too_far(self, sequence: int, part: Optional[int]) -> bool:
        """A blocking request so far ahead it gets 400 rather than a wait."""
        if sequence > self.next_sequence + 1:  # the last whole segment plus two
            return True
        newest_sequence, newest_part = self.newest()
        return part is not None and sequence == newest_sequence and part > newest_part + ADVANCE_PART_LIMIT

    def target_duration(self) -> int:
        return max([math.ceil(s.duration) for s in self.live()] + [math.ceil(self.segment_duration)])

    def part_target(self) -> float:
        durations = [p.duration for s in self.segments for p in s.parts] + [p.duration for p in self.parts]
        return max([self.part_duration] + durations)

    def lookup(self, name: str) -> Optional[Tuple[str, bytes]]:
        """The content type and bytes of ``init_K.mp4``, ``segment_N.m4s`` or ``part_N_I.m4s``."""
        stem, _, extension = name.partition(".")
        kind, _, numbers = stem.partition("_")
        try:
            values = [int(v) for v in numbers.split("_")]
        except ValueError:
            return None
        if (kind, extension, len(values)) == ("init", "mp4", 1) and values[0] in self.inits:
            return MP4_TYPE, self.inits[values[0]]
        if (kind, extension, len(values)) == ("segment", "m4s", 1):
            for segment in self.segments:
                if segment.sequence == values[0]:
                    return MP4_TYPE, segment.data
        if (kind, extension, len(values)) == ("part", "m4s", 2):
            part = self.part(*values)
            if part is not None:
                return MP4_TYPE, part.data
        return None

    def part(self, sequence: int, index: int) -> Optional[Part]:
        parts = self.parts if sequence == self.next_sequence else next(
            (s.parts for s in self.segments if s.sequence == sequence), ())
        return parts[index] if 0 <= index < len(parts) else None

    def next_part_name(self) -> str:
        """The part the playlist hints at (``EXT-X-PRELOAD-HINT``): not cut yet."""
        return "part_%d_%d.m4s" % (self.next_sequence, len(self.parts))

    # Output

    def live(self) -> List[PartedSegment]:
        return list(self.segments)[-self.playlist_length:]

    def in_progress(self) -> Optional[Tuple[int, int, int]]:
        """
        The segment being cut, once it has a part, for low-latency DASH:
        its number, decode time, and length when done (to its anchored
        boundary), in samples; ``None`` unanchored or before its first part.
        """
        if self.anchor is None or not self.parts or self._format is None:
            return None
        end = int(round((self.next_sequence + 1) * self.segment_duration * self._format.sample_rate))
        return self.next_sequence, self._segment_start, max(end, self._decode_time) - self._segment_start

    def parts_of(self, sequence: int) -> Optional[Tuple[Tuple[Part, ...], bool]]:
        """The parts of segment ``sequence`` so far, and whether it is whole; ``None`` if it is not here."""
        if sequence == self.next_sequence:
            return tuple(self.parts), False
        for segment in self.segments:
            if segment.sequence == sequence:
                return segment.parts, True
        return None

    @property
    def track(self) -> Optional[fmp4.TrackFormat]:
        """The current track format (codec, rate, channels), once audio came."""
        return self._format

    @property
    def map_id(self) -> int:
        """The initialisation segment of what is being cut now (``init_<map_id>.mp4``)."""
        return self._map_id

    def playlist_key(self) -> Any:
        return (self.next_sequence, len(self.parts), self._map_id, self._discontinuity_next, self._started_at,
                self.playlist_length, self.segment_duration, self.part_duration)

    def render_playlist(self) -> str:
        live = self.live()
        target = self.target_duration()
        part_target = self.part_target()
        first = live[0] if live else None
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:6",
            "#EXT-X-TARGETDURATION:%d" % target,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=%.3f" % (3 * part_target),
            "#EXT-X-PART-INF:PART-TARGET=%.3f" % part_target,
            "#EXT-X-MEDIA-SEQUENCE:%d" % (first.sequence if first else self.next_sequence),
            "#EXT-X-DISCONTINUITY-SEQUENCE:%d"
            % ((first.discontinuities - first.discontinuity) if first else self._discontinuities),
        ]
        remaining = sum(s.duration for s in live) + sum(p.duration for p in self.parts)
        map_id = None
        for segment in live:
            map_id = self._segment_head(lines, segment.discontinuity, segment.map_id, map_id,
                                        segment.started_at)
            if remaining <= PART_WINDOW * target:
                lines.extend(self._part_lines(segment.parts))
            remaining -= segment.duration
            lines.append("#EXTINF:%.3f," % segment.duration)
            lines.append("segment_%d.m4s" % segment.sequence)
        if self.parts:
            flagged = self._discontinuity_next and bool(self.segments)
            self._segment_head(lines, flagged, self._map_id, map_id, self._started_at)
            lines.extend(self._part_lines(self.parts))
        lines.append('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="%s"' % self.next_part_name())
        return "\n".join(lines) + "\n"

    @staticmethod
    def _segment_head(lines: List[str], discontinuity: bool, map_id: int, previous_map: Optional[int],
                      started_at: float) -> int:
        if discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        if map_id != previous_map:
            lines.append('#EXT-X-MAP:URI="init_%d.mp4"' % map_id)
        lines.append("#EXT-X-PROGRAM-DATE-TIME:%s" % program_date_time(started_at))
        return map_id

    @staticmethod
    def _part_lines(parts: Tuple[Part, ...] | List[Part]) -> List[str]:
        return ['#EXT-X-PART:DURATION=%.3f,URI="part_%d_%d.m4s",INDEPENDENT=YES'
                % (p.duration, p.sequence, p.index) for p in parts]
