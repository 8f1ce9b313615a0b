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

from typing import Optional, Tuple

from ..core.mount import Chunk
from .hls import HlsOutput, HlsOutputs


class DashOutput(HlsOutput):
    protocol = "dash"
    anchored = True

    def settings(self) -> Tuple[bool, float, int, Optional[float]]:
        config = self.mount.config.dash
        return True, config.segment_duration, config.window, config.segment_duration

    def anchor(self, chunk: Chunk) -> Optional[float]:
        """Every DASH stream is on the clock: its source's start plus the chunk's stream time."""
        source = self.feeding.source
        return None if source is None else source.connected_at + chunk.at


class DashOutputs(HlsOutputs):
    """Attaches a :class:`DashOutput` to every mount whose config enables DASH."""

    output_class = DashOutput
    kind = "dash"
