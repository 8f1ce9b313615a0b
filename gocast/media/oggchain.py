# -*- test-case-name: tests.test_oggchain -*-
"""
Chained Ogg streams joined into one logical stream, for a decoder that
cannot follow chains.

Liquidsoap and ices begin a new logical stream (a *chain*: a new serial
number, the codec headers again with new comments) at every track, so
that players see the new title. ffmpeg 5's Ogg demuxer, reading a pipe,
stops with "Invalid data" at such a chain. When the new chain's codec
headers are those of the stream being decoded (comments aside), its
packets decode with the same decoder, so :class:`OggSplicer` drops the
headers and renumbers the chain's pages (serial number, page sequence,
granule position, CRC) to continue that stream.

Liquidsoap also ends each chain with an empty packet, which ffmpeg's Opus
parser refuses ("Invalid data found"), stopping the transcoder at every
track: empty packets are left out. Pages are only rewritten once a chain
was spliced, to clear an end-of-stream flag (a chain may follow it), or to
leave out an empty packet.
"""

from __future__ import annotations

import struct
import zlib
from typing import Iterator, List, Optional, Tuple

from ._ogg import _codec

_PAGE = struct.Struct("<4sBBqIIIB")
_BOS, _EOS = 0x02, 0x04
#: Each byte with its bits in reverse order.
_REVERSED = bytes(int("{:08b}".format(i)[::-1], 2) for i in range(256))


def ogg_crc(page: bytes) -> int:
    """
    Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, no initial or final
    value), by zlib's reflected CRC-32 of the bit-reversed bytes.
    """
    reflected = zlib.crc32(page.translate(_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int("{:032b}".format(reflected)[::-1], 2)


def pages(data: bytes) -> Iterator[Tuple[bytes, int, int, int, int, int]]:
    """``(page, flags, granule, serial, sequence, body offset)`` for each whole page in ``data``."""
    pos = 0
    while pos + 27 <= len(data):
        capture, version, flags, granule, serial, sequence, _, nsegs = _PAGE.unpack_from(data, pos)
        body = pos + 27 + nsegs
        end = body + sum(data[pos + 27 : body])
        if capture != b"OggS" or version != 0 or end > len(data):
            return
        yield data[pos:end], flags, granule, serial, sequence, body - pos
        pos = end


def without_empty_packets(lacing: bytes, continued: bool) -> bytes:
    """
    The lacing values of a page without its empty packets: a 0 that
    starts a packet (a 0 after 255 ends a packet of a multiple of 255).
    """
    if 0 not in lacing:
        return lacing
    kept = bytearray()
    starts = not continued
    for value in lacing:
        if not (value == 0 and starts):
            kept.append(value)
        starts = value < 255
    return bytes(kept)


def header_packets(header_pages: bytes) -> List[bytes]:
    """The packets in a logical stream's header pages; an unfinished last packet is left out."""
    packets: List[bytes] = []
    partial = b""
    for page, _, _, _, _, body in pages(header_pages):
        pos = body
        for value in page[27:body]:
            partial += page[pos : pos + value]
            pos += value
            if value < 255:
                packets.append(partial)
                partial = b""
    return packets


def _is_comment(packet: bytes) -> bool:
    return packet.startswith((b"\x03vorbis", b"OpusTags")) or (
        packet[:1] and packet[0] & 0x7F == 4 and not packet.startswith(b"\x7fFLAC"))


def stream_layout(header_pages: bytes) -> Optional[bytes]:
    """
    What a decoder is set up with, from a logical stream's header pages:
    its header packets but the comments (Vorbis: identification and
    codebooks; Opus: OpusHead; FLAC: the mapping and STREAMINFO). Two
    chains with the same layout decode as one. None for another codec.
    """
    packets = header_packets(header_pages)
    if not packets or _codec(packets[0]) == "unknown":
        return None
    kept = [p for p in packets if not _is_comment(p)]
    return b"".join(struct.pack(">I", len(p)) + p for p in kept)


class OggSplicer:
    """Keeps one logical stream going for a decoder across same-layout chains."""

    def __init__(self) -> None:
        self._layout: Optional[bytes] = None
        #: The serial number the decoder knows, and the chain now arriving.
        self._serial: Optional[int] = None
        self._chain: Optional[int] = None
        self._sequence = 0
        self._granule_offset = 0
        self._last_granule = 0
        self._renumber = False

    def begin(self, header_pages: bytes) -> bytes:
        """A fresh decoder, sent these headers (returned as they are)."""
        self._layout = stream_layout(header_pages)
        self._serial = self._chain = None
        self._sequence = self._granule_offset = self._last_granule = 0
        self._renumber = False
        for _, _, _, serial, sequence, _ in pages(header_pages):
            self._serial = self._chain = serial
            self._sequence = sequence + 1
        return header_pages

    def chain(self, header_pages: bytes) -> bool:
        """
        A new chain begins. True: it continues the decoder's stream (its
        headers are not sent). False: another layout; start a new decoder.
        """
        layout = stream_layout(header_pages)
        if layout is None or layout != self._layout or self._serial is None:
            return False
        for _, _, _, serial, _, _ in pages(header_pages):
            self._chain = serial
            break
        self._granule_offset = self._last_granule
        self._renumber = True
        return True

    def audio(self, data: bytes) -> bytes:
        """The chain's pages, for the decoder (other streams' pages as they are)."""
        out = []
        for page, flags, granule, serial, sequence, body in pages(data):
            if serial != self._chain:
                out.append(page)
                continue
            lacing = page[27:body]
            kept = without_empty_packets(lacing, bool(flags & 0x01))
            if not kept:
                continue  # nothing but an empty packet
            if not self._renumber and not flags & _EOS and kept == lacing:
                out.append(page)
                self._sequence = sequence + 1
                if granule >= 0:
                    self._last_granule = granule
                continue
            if granule >= 0:
                granule += self._granule_offset
                self._last_granule = granule
            out.append(self._page(flags & ~(_BOS | _EOS), granule, self._sequence, kept, page[body:]))
            self._sequence += 1
        return b"".join(out)

    def _page(self, flags: int, granule: int, sequence: int, lacing: bytes, body: bytes) -> bytes:
        head = _PAGE.pack(b"OggS", 0, flags, granule, self._serial or 0, sequence, 0, len(lacing))
        unsigned = head + lacing + body
        return unsigned[:22] + struct.pack("<I", ogg_crc(unsigned)) + unsigned[26:]
