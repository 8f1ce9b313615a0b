# -*- test-case-name: tests.test_dash -*-
"""
MPEG-DASH output for mounts with ``dash { enabled true }``: an
:class:`~gocast.outputs.hls.HlsOutput` that always cuts CMAF segments
(AAC; MP3 and Ogg sources through the same ffmpeg AAC transcoder) on the
clock's timeline, with its own segment duration and window, and counts
its players as the mount's listeners (``protocol`` ``dash``).
:mod:`gocast.resources.dash` serves the MPD and the segments.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

from ..config._mount import dash_shares_hls
from ..core.mount import Mount
from .hls import HlsOutput, HlsOutputs


class DashOutput(HlsOutput):
    protocol = "dash"

    @property
    def anchored(self) -> bool:
        return True

    def settings(self) -> Tuple[bool, float, int, Optional[float]]:
        config = self.mount.config.dash
        part = config.part_duration if config.low_latency else config.segment_duration
        return True, config.segment_duration, config.window, part



class DashOutputs(HlsOutputs):
    """
    Attaches a :class:`DashOutput` to every mount whose config enables DASH,
    unless its low-latency HLS cuts the same CMAF segments (then DASH
    serves those: :meth:`segments_of`).
    """

    output_class = DashOutput
    kind = "dash"

    def __init__(self, now: Callable[[], float], reactor: Any = None, clock: Any = None,
                 hls: Optional[HlsOutputs] = None):
        super().__init__(now, reactor, clock)
        self.hls = hls

    def enabled(self, mount: Mount) -> bool:
        config = mount.config
        return config.dash.enabled and not (self.hls is not None and dash_shares_hls(config.hls, config.dash))

    def segments_of(self, path: str) -> Optional[HlsOutput]:
        """The output whose CMAF segments DASH serves for ``path``: its own, or its LL-HLS output's."""
        output = self.outputs.get(path)
        if output is None and self.hls is not None:
            shared = self.hls.output(path)
            if shared is not None and dash_shares_hls(shared.mount.config.hls, shared.mount.config.dash):
                return shared
        return output
