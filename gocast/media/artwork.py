# -*- test-case-name: tests.test_nowplaying -*-
"""
Covers as players get them: any image Pillow reads (JPEG, PNG, GIF,
WebP...), fitted into the mount's ``artwork_size`` box and saved as JPEG.
Pure code, run in a thread by :mod:`gocast.outputs.artwork` (decoding a
large image takes tens of milliseconds).
"""

from __future__ import annotations

import hashlib
import io
from typing import Tuple

from PIL import Image, ImageDraw, UnidentifiedImageError

#: Larger images are refused before they are decoded (a small file can claim a huge canvas).
MAX_PIXELS = 40_000_000


class NotAnImage(ValueError):
    """The bytes are not an image Pillow reads, or one too large to decode."""


def fit_jpeg(data: bytes, size: Tuple[int, int]) -> bytes:
    """``data`` (an image) fitted into ``size`` (keeping its shape), as a JPEG."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise NotAnImage("the image is %dx%d: too large" % (image.width, image.height))
            image.draft("RGB", size)  # JPEG decodes at a fraction of its size when it can
            picture = image.convert("RGB")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as e:
        raise NotAnImage("not an image: %s" % e) from None
    picture.thumbnail(size, Image.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue()


def placeholder_jpeg(size: Tuple[int, int]) -> bytes:
    """What ``artwork.jpg`` shows when there is no cover: a plain dark square with a disc."""
    width, height = size
    image = Image.new("RGB", size, (52, 56, 64))
    radius = min(width, height) // 3
    centre = (width // 2, height // 2)
    draw = ImageDraw.Draw(image)
    draw.ellipse([centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius],
                 fill=(78, 84, 96))
    hole = max(2, radius // 5)
    draw.ellipse([centre[0] - hole, centre[1] - hole, centre[0] + hole, centre[1] + hole], fill=(52, 56, 64))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def etag_of(data: bytes) -> str:
    return '"%s"' % hashlib.sha256(data).hexdigest()[:32]
