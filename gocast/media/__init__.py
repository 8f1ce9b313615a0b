"""
Codec framing, pure code: bytes from a source in, whole codec units out.

:func:`framer_for` picks the framer for a source's content type.
"""

from __future__ import annotations

import re
from typing import Any, Optional

from ._ogg import OggFramer, parse_comments
from ._opaque import OpaqueFramer
from ._packet import Packet
from ._sniff import SniffingFramer
from ._sync import ADTSFramer, MP3Framer

_MP3 = {"audio/mpeg", "audio/mp3", "audio/mpeg3", "audio/x-mpeg", "audio/mpa"}
_AAC = {"audio/aac", "audio/aacp", "audio/x-aac", "audio/x-aacp", "audio/adts"}
_OGG = {"application/ogg", "audio/ogg", "audio/x-ogg", "video/ogg", "audio/opus", "audio/vorbis",
        "audio/x-vorbis+ogg", "audio/flac+ogg"}


def media_type(content_type: str) -> str:
    """``audio/mpeg; charset=x`` → ``audio/mpeg``."""
    return content_type.split(";", 1)[0].strip().lower()


#: What a source may stream besides MP3, AAC and Ogg: passed through as is.
_OTHER_AUDIO = {"audio/webm", "video/webm", "audio/x-matroska", "audio/flac", "audio/x-flac", "audio/wav",
                "audio/x-wav", "audio/wave", "audio/mp4", "audio/l16", "application/octet-stream"}
#: Every media type a source may declare; listeners are sent it, so nothing
#: a browser would render (text/html, image/svg+xml...) can be among them.
STREAMABLE = frozenset(_MP3 | _AAC | _OGG | _OTHER_AUDIO)

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(r"(%s)/(%s)((?:[ \t]*;[ \t]*%s=(?:%s|\"[^\"\\\x00-\x1f\x7f]*\"))*)[ \t]*;?[ \t]*"
                         % (_TOKEN, _TOKEN, _TOKEN, _TOKEN))


def normalise_content_type(content_type: str) -> Optional[str]:
    """
    The media type listeners are sent for a source's ``Content-Type``:
    exactly one well-formed ``type/subtype[; params]`` from
    :data:`STREAMABLE`, lowercased, its parameters dropped; ``None`` for
    anything else (two types, a comma, control characters, text/html...).
    """
    match = _MEDIA_TYPE.fullmatch(content_type.strip())
    if match is None:
        return None
    kind = ("%s/%s" % (match.group(1), match.group(2))).lower()
    return kind if kind in STREAMABLE else None


def is_streamable(content_type: str) -> bool:
    """Whether GoCast accepts a source that declares this ``Content-Type``."""
    return normalise_content_type(content_type) is not None


def framer_for(content_type: str) -> Any:
    """The framer for a source's declared type; MP3 and AAC are checked against the bytes."""
    kind = media_type(content_type)
    if kind in _MP3:
        return SniffingFramer(MP3Framer())
    if kind in _AAC:
        return SniffingFramer(ADTSFramer())
    if kind in _OGG:
        return OggFramer()
    return OpaqueFramer()


def sync_codec(content_type: str) -> Optional[str]:
    """``mp3`` or ``aac`` for the types GoCast frames (and segments for HLS) itself, else None."""
    kind = media_type(content_type)
    return "mp3" if kind in _MP3 else "aac" if kind in _AAC else None


def is_ogg(content_type: Optional[str]) -> bool:
    return media_type(content_type or "") in _OGG


__all__ = ["ADTSFramer", "MP3Framer", "OggFramer", "OpaqueFramer", "Packet", "STREAMABLE", "SniffingFramer",
           "framer_for", "is_ogg", "is_streamable", "media_type", "normalise_content_type", "parse_comments",
           "sync_codec"]
