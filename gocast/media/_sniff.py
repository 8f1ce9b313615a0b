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
        self._seen = bytearray()

    def take_metadata(self) -> None:
        return None

    def feed(self, data: bytes) -> List[Packet]:
        if self.framer is not None:
            return self.framer.feed(data)
        self._seen += data
        for candidate in (type(self.declared)(), ADTSFramer() if isinstance(self.declared, MP3Framer)
                          else MP3Framer()):
            packets = candidate.feed(bytes(self._seen))
            if packets:
                return self._decided(candidate, packets)
        if len(self._seen) > SNIFF_LIMIT:  # nothing recognisable: go by the label
            return self._decided(self.declared, self.declared.feed(bytes(self._seen)))
        return []

    def _decided(self, framer: SyncFramer, packets: List[Packet]) -> List[Packet]:
        self.framer = framer
        self.mismatch = framer.content_type != self.declared.content_type
        self.content_type = framer.content_type
        self._seen = bytearray()
        return packets
