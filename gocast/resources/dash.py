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

from typing import Optional, Union
from urllib.parse import quote

from twisted.web.server import Request

from ..config import hls_variants
from ..media.dash import MEDIA_TYPE, Representation, live_mpd, timeline
from ..media.hls import measured_bandwidth
from ..media.llhls import PartSegmenter
from ..outputs.hls import HlsOutput
from .hls import HlsResource, _forwarded_query, session_key

MANIFEST = "manifest.mpd"


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
        found = output.segmenter.lookup(name)
        if found is None or not (name.startswith("init_") or name.startswith("segment_")):
            return self.missing(request)
        refused = self.listening(request, output)
        if refused is not None:
            return refused
        output.sent(session_key(request), len(found[1]))
        return self.file(request, *found)

    def manifest(self, request: Request, mount: str) -> bytes:
        config = self.registry.config
        if self.registry.get(mount) is None and mount not in config.mounts:
            return self.missing(request)
        variants = hls_variants(config, mount, "dash") or (mount,)
        depth = request.uri.split(b"?", 1)[0].count(b"/") - 1
        representations = []
        window = config.mounts[mount].dash.window if mount in config.mounts else 5
        segment_duration = config.mounts[mount].dash.segment_duration if mount in config.mounts else 4.0
        query = _forwarded_query(request)
        for path in variants:
            output = self.outputs.segments_of(path)
            found = self.representation(output, path, depth, query)
            if found is not None:
                representations.append(found)
        if not representations:
            self.registry.demand(mount)  # an on-demand relay starts; the player's next try finds it
            return self.refuse(request, 404, "no DASH stream of %s is live yet" % mount)
        request.setHeader(b"content-type", MEDIA_TYPE.encode("ascii"))
        request.setHeader(b"cache-control", b"%s, max-age=1" % (
            b"private" if getattr(request, "private_cache", False) else b"public"))
        now = self.outputs.now()
        return live_mpd(representations, now, segment_duration, window).encode("utf-8")

    @staticmethod
    def representation(output: Optional[HlsOutput], path: str, depth: int, query: str) -> Optional[Representation]:
        """A variant's Representation, once it has a whole segment; ``None`` before."""
        if output is None or not output.live or not isinstance(output.segmenter, PartSegmenter):
            return None
        segmenter = output.segmenter
        track = segmenter.track
        entries = timeline(segmenter.live(), segmenter.map_id)
        if track is None or not entries:
            return None
        config = output.mount.config
        bandwidth, _ = measured_bandwidth(segmenter.live(), config.bitrate or 128000)
        base = "../" * depth + "dash/%s/" % quote(path.lstrip("/"), safe="/")
        init, media = "init_%d.mp4" % segmenter.map_id, "segment_$Number$.m4s"
        if query:  # the token and session go on to every file, so they are let in and counted
            init, media = init + "?" + query, media + "?" + query
        codec = "mp4a.40.%d" % (track.decoder_config[0] >> 3) if track.decoder_config else "mp4a.40.2"
        return Representation(path.lstrip("/"), bandwidth, codec, track.sample_rate, track.channels, base, init,
                              media, entries)
