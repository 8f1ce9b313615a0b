# -*- test-case-name: tests.test_dash -*-
"""
MPEG-DASH manifests (ISO/IEC 23009-1), pure code: a live MPD for the CMAF
segments :class:`~gocast.media.llhls.PartSegmenter` cuts.

The timeline is the clock's: segmenters for DASH are anchored, so a
segment's decode time counts samples since the Unix epoch, and the MPD's
``availabilityStartTime`` is the epoch itself. Each Representation (one
per variant of an adaptive stream, the mount itself otherwise) lists its
own segments in a ``SegmentTimeline`` under a ``SegmentTemplate`` with
``$Number$``, numbered as the HLS media sequence is; the outputs of one
transcoder have the same numbers and boundaries, so players switch on
any segment.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import List, Optional, Sequence
from xml.sax.saxutils import quoteattr

import attr

from .llhls import PartedSegment

#: The MPD's namespace and the profile of live streams in separate segments.
NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
CHANNELS_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
#: The clock players set theirs by: the server's time, written into the MPD.
UTC_SCHEME = "urn:mpeg:dash:utc:direct:2014"
MEDIA_TYPE = "application/dash+xml"


@attr.s(slots=True, frozen=True, auto_attribs=True)
class TimelineEntry:
    """One segment: its number, decode time and length (in the Representation's timescale)."""

    number: int
    start: int
    duration: int


@attr.s(slots=True, frozen=True, auto_attribs=True)
class Representation:
    id: str
    bandwidth: int
    codecs: str
    sample_rate: int
    channels: int
    #: Where its files are, relative to the MPD (``../live-64/``), or empty: beside it.
    base_url: str
    #: The initialisation segment's name, and the segments' template (``segment_$Number$.m4s``).
    init: str
    media: str
    segments: Sequence[TimelineEntry]
    #: Low-latency DASH: how long before its end a segment can be asked for (its chunks are sent as cut).
    availability_offset: float = 0.0


def duration(seconds: float) -> str:
    """An xs:duration such as ``PT4S`` or ``PT2.5S``."""
    return "PT%gS" % round(seconds, 3)


def date_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def live_mpd(representations: List[Representation], now: float, segment_duration: float, window: int,
             published: Optional[float] = None, target_latency: float = 0.0) -> str:
    """
    The dynamic MPD: refreshed every segment, with ``window`` segments of
    time-shift buffer, and players starting two segments behind the edge;
    in low-latency DASH (``target_latency``), the latency players aim for.
    """
    longest = max([entry.duration / r.sample_rate for r in representations for entry in r.segments]
                  + [segment_duration])
    head = ('<MPD xmlns="%s" profiles="%s" type="dynamic" availabilityStartTime="1970-01-01T00:00:00Z" '
            'publishTime="%s" minimumUpdatePeriod="%s" timeShiftBufferDepth="%s" '
            'suggestedPresentationDelay="%s" minBufferTime="%s" maxSegmentDuration="%s">'
            % (NAMESPACE, PROFILE, date_time(published if published is not None else now),
               duration(segment_duration), duration(window * segment_duration), duration(2 * segment_duration),
               duration(segment_duration), duration(longest)))
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', head]
    if target_latency:
        lines += ['  <ServiceDescription id="0">',
                  '    <Latency target="%d" max="%d" min="%d"/>' % (target_latency * 1000, target_latency * 2000,
                                                                    target_latency * 500),
                  '  </ServiceDescription>']
    lines += ['  <Period id="0" start="PT0S">',
             '    <AdaptationSet id="0" contentType="audio" mimeType="audio/mp4" segmentAlignment="true" '
             'startWithSAP="1" lang="und">']
    for r in representations:
        lines.append('      <Representation id=%s bandwidth="%d" codecs=%s audioSamplingRate="%d">'
                     % (quoteattr(r.id), r.bandwidth, quoteattr(r.codecs), r.sample_rate))
        lines.append('        <AudioChannelConfiguration schemeIdUri="%s" value="%d"/>'
                     % (CHANNELS_SCHEME, r.channels))
        if r.base_url:
            lines.append("        <BaseURL>%s</BaseURL>" % _text(r.base_url))
        first = r.segments[0].number if r.segments else 0
        low_latency = (' availabilityTimeOffset="%g" availabilityTimeComplete="false"' % round(r.availability_offset, 3)
                       if r.availability_offset else "")
        lines.append('        <SegmentTemplate timescale="%d" initialization=%s media=%s startNumber="%d"%s>'
                     % (r.sample_rate, quoteattr(r.init), quoteattr(r.media), first, low_latency))
        lines.append("          <SegmentTimeline>")
        for entry in r.segments:
            lines.append('            <S t="%d" d="%d"/>' % (entry.start, entry.duration))
        lines.append("          </SegmentTimeline>")
        lines.append("        </SegmentTemplate>")
        lines.append("      </Representation>")
    lines += ["    </AdaptationSet>", "  </Period>",
              '  <UTCTiming schemeIdUri="%s" value="%s"/>' % (UTC_SCHEME, date_time(now)), "</MPD>"]
    return "\n".join(lines) + "\n"


def _text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def timeline(segments: Sequence[PartedSegment], map_id: int) -> List[TimelineEntry]:
    """
    The segments of the current initialisation (``map_id``) that follow
    one another without a gap in numbers: a Period has one initialisation
    per Representation, and ``$Number$`` counts up from ``startNumber``.
    """
    entries: List[TimelineEntry] = []
    for segment in segments:
        if segment.map_id != map_id:
            entries = []
            continue
        if entries and segment.sequence != entries[-1].number + 1:
            entries = []
        entries.append(TimelineEntry(segment.sequence, segment.decode_time, segment.samples))
    return entries
