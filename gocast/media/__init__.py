"""
Codec framing, pure code: bytes from a source in, whole codec units out.

:func:`framer_for` picks the framer for a source's content type.
"""

from __future__ import annotations

from typing import Any, Optional

from ._ogg import OggFramer, parse_comments
from ._opaque import OpaqueFramer
from ._packet import Packet
from ._sync import ADTSFramer, MP3Framer

_MP3 = {"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg", "audio/mpa"}
_AAC = {"audio/aac", "audio/aacp", "audio/x-aac", "audio/x-aacp", "audio/adts"}
_OGG = {"application/ogg", "audio/ogg", "audio/x-ogg", "video/ogg", "audio/opus", "audio/vorbis",
        "audio/x-vorbis+ogg", "audio/flac+ogg"}


def media_type(content_type: str) -> str:
    """``audio/mpeg; charset=x`` → ``audio/mpeg``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_streamable(content_type: str) -> bool:
    """Whether GoCast accepts a source of this type (audio, Ogg, WebM, raw)."""
    kind = media_type(content_type)
    return (kind.startswith("audio/") or kind in _OGG or kind in ("video/webm", "application/octet-stream"))


def framer_for(content_type: str) -> Any:
    kind = media_type(content_type)
    if kind in _MP3:
        return MP3Framer()
    if kind in _AAC:
        return ADTSFramer()
    if kind in _OGG:
        return OggFramer()
    return OpaqueFramer()


def is_ogg(content_type: Optional[str]) -> bool:
    return media_type(content_type or "") in _OGG


__all__ = ["ADTSFramer", "MP3Framer", "OggFramer", "OpaqueFramer", "Packet", "framer_for",
           "is_ogg", "is_streamable", "media_type", "parse_comments"]
