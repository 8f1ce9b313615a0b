# -*- test-case-name: tests.test_fileplayer -*-
"""
What a file says of itself, read with mutagen: its format (from its bytes,
not its name), and its title, artist, album, genre, year, length and
embedded picture (ID3 APIC, FLAC pictures, Ogg METADATA_BLOCK_PICTURE,
MP4 ``covr``), so listeners of a fallback file see what is playing and
its cover.
"""

from __future__ import annotations

import base64
import io
import re
from typing import Any, Optional, Tuple

import mutagen
from mutagen.flac import Picture as FlacPicture

from ..core.track import MAX_PICTURE, Picture, TrackInfo

#: mutagen's file types, by class name, and the content type GoCast streams each as.
_CONTENT_TYPES = {"MP3": "audio/mpeg", "EasyMP3": "audio/mpeg", "AAC": "audio/aac",
                  "OggOpus": "application/ogg", "OggVorbis": "application/ogg", "OggFLAC": "application/ogg"}

_YEAR = re.compile(r"(\d{4})")


def content_type_of(data: bytes) -> Optional[str]:
    """What the file is, from its bytes: MP3, AAC (ADTS) or Ogg; None for anything else."""
    try:
        found = mutagen.File(io.BytesIO(data))
    except Exception:  # mutagen raises many kinds on junk
        return None
    return _CONTENT_TYPES.get(type(found).__name__) if found is not None else None


def read_tags(data: bytes) -> Tuple[str, str, TrackInfo]:
    """``(title, artist, the rest)`` of a file's tags; empty when it has none."""
    try:
        easy = mutagen.File(io.BytesIO(data), easy=True)
        full = mutagen.File(io.BytesIO(data))
    except Exception:
        return "", "", TrackInfo()
    if easy is None:
        return "", "", TrackInfo()
    tags = easy.tags or {}

    def first(key: str) -> str:
        try:
            values = tags.get(key) or []
        except (KeyError, ValueError):
            return ""
        return str(values[0]) if values else ""

    year = _YEAR.match(first("date"))
    length = getattr(getattr(easy, "info", None), "length", None)
    return first("title"), first("artist"), TrackInfo(
        album=first("album"), genre=first("genre"), year=int(year.group(1)) if year else None,
        duration=round(float(length), 3) if length else None, picture=picture_of(full))


def picture_of(found: Any) -> Optional[Picture]:
    """The file's cover (the front cover when it says which), if it has one of a sane size."""
    if found is None:
        return None
    candidates = []
    tags = getattr(found, "tags", None)
    if tags is not None and hasattr(tags, "getall"):  # ID3
        candidates = [(frame.type == 3, frame.mime, frame.data) for frame in tags.getall("APIC")]
    elif getattr(found, "pictures", None):  # FLAC
        candidates = [(p.type == 3, p.mime, p.data) for p in found.pictures]
    elif tags is not None and "covr" in tags:  # MP4
        candidates = [(True, "image/png" if cover.imageformat == cover.FORMAT_PNG else "image/jpeg", bytes(cover))
                      for cover in tags["covr"]]
    elif tags is not None:  # Vorbis comments (Ogg Vorbis, Opus)
        for encoded in tags.get("metadata_block_picture", []):
            try:
                block = FlacPicture(base64.b64decode(encoded))
            except Exception:  # a malformed block: no cover from it
                continue
            candidates.append((block.type == 3, block.mime, block.data))
    candidates = [c for c in candidates if 0 < len(c[2]) <= MAX_PICTURE]
    if not candidates:
        return None
    candidates.sort(key=lambda c: not c[0])  # the front cover first
    _, mime, data = candidates[0]
    return Picture(mime or "image/jpeg", data)
