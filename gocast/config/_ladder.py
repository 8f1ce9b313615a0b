# -*- test-case-name: tests.test_ladder -*-
"""
The mounts a transcoding ladder publishes on. Each output of a mount's
``transcoding {}`` block is a mount of its own (listeners, HLS, stats,
limits): configured under ``mounts`` when the operator wants to set more,
else made from its parent's settings. Listener auth is the parent's unless
the output mount sets its own, so an output never lets in more listeners
than its parent does.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import attr

from ._mount import FallbackConfig, MountConfig, RecordingConfig, TranscodeOutput, TranscodingConfig
from ._schema import Config

#: The content type of each output format, as its mount serves it.
CONTENT_TYPES = {"mp3": "audio/mpeg", "aac": "audio/aac", "opus": "audio/ogg", "vorbis": "audio/ogg"}


def transcoding_outputs(config: Config) -> Dict[str, Tuple[str, str, TranscodeOutput]]:
    """Every transcoding output by its mount: (parent mount, output name, output)."""
    found: Dict[str, Tuple[str, str, TranscodeOutput]] = {}
    for parent, mount in sorted(config.mounts.items()):
        if mount.transcoding.active:
            for name, output in sorted(mount.transcoding.outputs.items()):
                found.setdefault(output.path, (parent, name, output))
    return found


def output_mount(parent: MountConfig, output: TranscodeOutput, own: Optional[MountConfig]) -> MountConfig:
    """The settings of ``output``'s mount: its own (``own``) with the parent's auth, or the parent's."""
    kind = CONTENT_TYPES[output.format]
    if own is not None:
        inherited = own
        if not own.auth.type and not own.allowed_ips and not own.denied_ips:
            inherited = attr.evolve(own, auth=parent.auth, allowed_ips=parent.allowed_ips,
                                    denied_ips=parent.denied_ips)
        return attr.evolve(inherited, type=own.type or kind,
                           bitrate=own.bitrate if own.bitrate is not None else output.bitrate)
    return attr.evolve(parent, type=kind, bitrate=output.bitrate, transcoding=TranscodingConfig(),
                       recording=RecordingConfig(), fallback=FallbackConfig(), dump_file="", schedule={},
                       hls=attr.evolve(parent.hls, path=""), dash=attr.evolve(parent.dash, path=""))


def hls_variants(config: Config, path: str, kind: str = "hls") -> Tuple[str, ...]:
    """
    The variants of ``path``'s master playlist (``kind`` ``hls``) or of its
    MPD's adaptation set (``dash``): its ``hls.variants``, else its
    transcoding outputs that serve that kind, highest bitrate first
    (``config`` with the outputs' mounts, see :func:`with_transcoding_outputs`).
    """
    mount = config.mounts.get(path)
    if mount is None or not getattr(mount, kind).enabled:
        return ()
    if mount.hls.variants:
        return tuple(v for v in mount.hls.variants if v in config.mounts and getattr(config.mounts[v], kind).enabled)
    if not mount.transcoding.active:
        return ()
    outputs = sorted(mount.transcoding.outputs.values(), key=lambda output: -output.bitrate)
    return tuple(output.path for output in outputs
                 if output.path in config.mounts and getattr(config.mounts[output.path], kind).enabled)


def all_variants(config: Config) -> frozenset:
    """Every mount some master playlist or MPD lists."""
    return frozenset(variant for path in config.mounts for kind in ("hls", "dash")
                     for variant in hls_variants(config, path, kind))


def with_transcoding_outputs(config: Config) -> Config:
    """``config`` with a mount for every transcoding output (the file's own settings kept, see above)."""
    outputs = transcoding_outputs(config)
    if not outputs:
        return config
    mounts = dict(config.mounts)
    for path, (parent, _, output) in outputs.items():
        mounts[path] = output_mount(config.mounts[parent], output, config.mounts.get(path))
    return attr.evolve(config, mounts=mounts)
