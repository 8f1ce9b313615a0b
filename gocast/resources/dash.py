# -*- test-case-name: tests.test_dash -*-
"""
The twisted.web resource that serves what :mod:`gocast.outputs.dash` cut,
from memory:

- ``GET /dash/<mount>/manifest.mpd``: the live MPD, one Representation per
  variant (the mount's transcoding outputs, or ``hls.variants``), else the
  mount itself;
- ``GET /dash/<mount>/init_<K>.mp4`` and ``segment_<N>.m4s``: CMAF.

Everything else works as for HLS (:class:`~gocast.resources.hls.HlsResource`):
listener auth on the MPD and every segment (a ``?token=`` on the MPD goes
on to the segment URLs), players counted as the mount's listeners, CORS,
segments cacheable for good and the MPD for a second.
"""

from __future__ import annotations

from typing import Callable, Optional, Union
from urllib.parse import quote

from twisted.internet.defer import CancelledError
from twisted.web.server import NOT_DONE_YET, Request

from ..config import hls_variants
from ..media.dash import MEDIA_TYPE, Representation, TimelineEntry, live_mpd, timeline
from ..media.hls import measured_bandwidth
from ..media.llhls import PartSegmenter
from ..outputs.hls import HlsOutput
from .hls import HlsResource, _forwarded_query, expected_bitrate, session_key

MANIFEST = "manifest.mpd"


def segment_number(name: str) -> Optional[int]:
    """N of ``segment_N.m4s``."""
    if name.startswith("segment_") and name.endswith(".m4s") and name[8:-4].isdigit() and len(name) < 40:
        return int(name[8:-4])
    return None

#: What fragmented MP4 adds to the audio (moof, mdat, emsg boxes): a few percent.
CMAF_OVERHEAD = 1.04
#: The latency low-latency DASH players aim for, in seconds (the MPD's ServiceDescription).
LOW_LATENCY_TARGET = 3.0


class DashResource(HlsResource):
    """``/dash/...``: the last path segment is the file, the rest the mount."""

    kind = "dash"
    entry_points = (MANIFEST,)

    def serve_allowed(self, request: Request, mount: str, name: str) -> Union[bytes, int]:
        if name == MANIFEST:
            return self.manifest(request, mount)
        output = self.outputs.segments_of(mount)
        if output is None or not isinstance(output.segmenter, PartSegmenter):
            return self.missing(request)
        if not (name.startswith("init_") or name.startswith("segment_")):
            return self.missing(request)
        found = output.segmenter.lookup(name)
        number = segment_number(name)
        growing = (found is None and number is not None and output.segmenter.anchor is not None
                   and output.segmenter.next_sequence <= number <= output.segmenter.next_sequence + 1)
        if found is None and not growing:
            return self.missing(request)
        refused = self.listening(request, output)
        if refused is not None:
            return refused
        if growing:
            return self.stream(request, output, output.segmenter, number)  # type: ignore[arg-type]
        output.sent(session_key(request), len(found[1]))  # type: ignore[index]
        return self.file(request, *found)  # type: ignore[misc]

    def stream(self, request: Request, output: HlsOutput, segmenter: PartSegmenter, number: int) -> int:
        """
        Low-latency DASH: the segment being cut (or the next), each CMAF
        chunk written as soon as it is cut (chunked transfer), the answer
        ending with the segment. A segment that never comes ends it with
        what was sent (its chunks, or nothing: 404 before the first).
        """
        key = session_key(request)
        sent = [0]
        request.setHeader(b"content-type", b"audio/mp4")
        request.setHeader(b"cache-control", b"no-cache")

        def later(ready: Callable[[], bool]) -> bool:
            waiting = output.wait(ready, 3 * max(segmenter.part_target(), 1.0))
            if waiting is None:
                return False
            request.notifyFinish().addErrback(lambda _: waiting.cancel())
            waiting.addCallback(pump).addErrback(lambda failure: failure.trap(CancelledError))
            return True

        def pump(arrived: bool = True) -> None:
            current = output.segmenter is segmenter
            found = segmenter.parts_of(number) if current else None
            if arrived and current and found is None and number > segmenter.next_sequence:
                # Not begun yet: asked a moment early.
                if later(lambda: output.segmenter is not segmenter or segmenter.next_sequence >= number):
                    return
            if found is not None:
                parts, whole = found
                for part in parts[sent[0]:]:
                    request.write(part.data)
                    output.sent(key, len(part.data))
                sent[0] = len(parts)
                if arrived and not whole and later(lambda: output.segmenter is not segmenter or _grown()):
                    return
            if not sent[0]:
                request.setResponseCode(404)
            request.finish()

        def _grown() -> bool:
            found = segmenter.parts_of(number)
            return found is None or found[1] or len(found[0]) > sent[0]

        pump()
        return NOT_DONE_YET

    def manifest(self, request: Request, mount: str) -> bytes:
        config = self.registry.config
        if mount not in config.mounts:  # DASH is only ever enabled in a mount's config
            return self.missing(request)
        variants = hls_variants(config, mount, "dash") or (mount,)
        depth = request.uri.split(b"?", 1)[0].count(b"/") - 1
        representations = []
        dash = config.mounts[mount].dash
        low_latency = dash.low_latency
        query = _forwarded_query(request)
        for path in variants:
            output = self.outputs.segments_of(path)
            found = self.representation(output, path, depth, query, low_latency)
            if found is not None:
                representations.append(found)
        if not representations:
            self.registry.demand(mount)  # an on-demand relay starts; the player's next try finds it
            return self.refuse(request, 404, "no DASH stream of %s is live yet" % mount)
        request.setHeader(b"content-type", MEDIA_TYPE.encode("ascii"))
        request.setHeader(b"cache-control", b"%s, max-age=1" % (
            b"private" if getattr(request, "private_cache", False) else b"public"))
        now = self.outputs.now()
        return live_mpd(representations, now, dash.segment_duration, dash.window,
                        target_latency=LOW_LATENCY_TARGET if low_latency else 0.0).encode("utf-8")

    @staticmethod
    def representation(output: Optional[HlsOutput], path: str, depth: int, query: str,
                       low_latency: bool = False) -> Optional[Representation]:
        """A variant's Representation, once it has a whole segment; ``None`` before."""
        if output is None or not output.live or not isinstance(output.segmenter, PartSegmenter):
            return None
        segmenter = output.segmenter
        track = segmenter.track
        entries = timeline(segmenter.live(), segmenter.map_id)
        offset = 0.0
        if low_latency:  # the segment being cut is there too, sent as it grows
            cutting = segmenter.in_progress()
            if cutting is not None and entries and cutting[0] == entries[-1].number + 1:
                entries.append(TimelineEntry(*cutting))
            offset = max(segmenter.segment_duration - segmenter.part_duration, 0.0)
        if track is None or not entries:
            return None
        # A Representation keeps its bandwidth from one MPD update to the next: the configured bitrate
        # (every transcoding output has one) with CMAF's overhead; measured only when none is set.
        configured = output.mount.config.bitrate
        bandwidth = (int(configured * CMAF_OVERHEAD) if configured
                     else measured_bandwidth(segmenter.live(), expected_bitrate(output.mount))[0])
        base = "../" * depth + "dash/%s/" % quote(path.lstrip("/"), safe="/")
        init, media = "init_%d.mp4" % segmenter.map_id, "segment_$Number$.m4s"
        if query:  # the token and session go on to every file, so they are let in and counted
            init, media = init + "?" + query, media + "?" + query
        codec = "mp4a.40.%d" % (track.decoder_config[0] >> 3) if track.decoder_config else "mp4a.40.2"
        return Representation(path.lstrip("/"), bandwidth, codec, track.sample_rate, track.channels, base, init,
                              media, entries, offset)
