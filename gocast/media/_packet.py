# -*- test-case-name: tests.test_media -*-
"""What a framer hands to a mount: whole codec units with their duration."""

from __future__ import annotations

import attr


@attr.frozen
class Packet:
    """
    Whole frames (MP3, ADTS) or pages (Ogg), concatenated.

    :ivar data: the bytes, always starting and ending on a unit boundary.
    :ivar duration: seconds of audio in ``data``; 0.0 when the format does
        not tell (opaque streams).
    :ivar header: ``True`` for codec header pages (Ogg), which every new
        listener must receive before any audio.
    """

    data: bytes
    duration: float = 0.0
    header: bool = False
