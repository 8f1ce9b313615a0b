# -*- test-case-name: tests.test_media -*-
"""
MP3 or AAC, by what the bytes are rather than what the source said: ffmpeg's
icecast output declares ``audio/mpeg`` whatever it encodes unless told
otherwise, so AAC often arrives labelled as MP3 (and then no frame would be
found, and no HLS made). The two sync words cannot be mistaken for each
other (ADTS has layer bits 00, which MP3 reserves), so the first framer to
find frames decides.
"""

from __future__ import annotations

from typing import List, Optional

from ._packet import Packet
from ._sync import ADTSFramer, MP3Framer, SyncFramer

#: How much is looked at before trusting the declared type.
SNIFF_LIMIT = 64 * 1024


class SniffingFramer:
    """
    Frames MP3 or AAC, whichever the bytes turn out to be.

    :ivar content_type: the type found (``audio/mpeg`` or ``audio/aac``), or
        the declared one's until something is found.
    :ivar mismatch: set once the bytes proved the declared type wrong.
    """

    def __init__(self, declared: SyncFramer):
        self.declared = declared
        self.content_type = declared.content_type
        self.mismatch = False
        self.framer: Optional[SyncFramer] = None
        other = ADTSFramer() if isinstance(declared, MP3Framer) else MP3Framer()
        #: Both readings, fed the same bytes until one finds frames.
        self._candidates = (declared, other)
        self._seen = 0

    def take_metadata(self) -> None:
        return None

    def feed(self, data: bytes) -> List[Packet]:
        if self.framer is not None:
            return self.framer.feed(data)
        self._seen += len(data)
        for candidate in self._candidates:
            packets = candidate.feed(data)
            if packets:
                return self._decided(candidate, packets)
        if self._seen > SNIFF_LIMIT:  # nothing recognisable: go by the label
            return self._decided(self.declared, [])
        return []

    def _decided(self, framer: SyncFramer, packets: List[Packet]) -> List[Packet]:
        self.framer = framer
        self.mismatch = framer.content_type != self.declared.content_type
        self.content_type = framer.content_type
        self._candidates = ()
        return packets
