# -*- test-case-name: tests.test_media -*-
"""
Ogg pages (Vorbis, Opus, FLAC, or any codec) out of a byte stream.

Pages pass through untouched. The codec header pages at the start of each
logical stream are kept aside (:attr:`OggFramer.header_pages`), because a
listener who joins later must receive them before any audio; a new
beginning-of-stream page after audio starts a chained stream, whose headers
replace the old ones. The comment header (Vorbis comments, OpusTags, FLAC's
VORBIS_COMMENT) gives the title and artist.
"""

from __future__ import annotations

import struct
from typing import Dict, List, Optional

from ._packet import Packet

#: The largest possible page: 27 + 255 lacing values + 255 * 255 bytes.
MAX_PAGE = 27 + 255 + 255 * 255
_PAGE_HEADER = struct.Struct("<4sBBqIIIB")
_GRANULE_NONE = -1


def _codec(first_packet: bytes) -> str:
    if first_packet.startswith(b"\x01vorbis"):
        return "vorbis"
    if first_packet.startswith(b"OpusHead"):
        return "opus"
    if first_packet.startswith(b"\x7fFLAC"):
        return "flac"
    return "unknown"


def _header_count(codec: str, first_packet: bytes) -> Optional[int]:
    """How many header packets the codec has, if it says."""
    if codec == "vorbis":
        return 3
    if codec == "opus":
        return 2
    if codec == "flac" and len(first_packet) >= 9:
        extra = struct.unpack(">H", first_packet[7:9])[0]
        return 1 + extra if extra else None
    return None


def _sample_rate(codec: str, first_packet: bytes) -> int:
    if codec == "vorbis" and len(first_packet) >= 16:
        return struct.unpack("<I", first_packet[12:16])[0]
    if codec == "opus":
        return 48000
    if codec == "flac" and len(first_packet) >= 30:
        # STREAMINFO follows the 13-byte mapping header and a 4-byte block header.
        info = first_packet[17:]
        return (info[10] << 12) | (info[11] << 4) | (info[12] >> 4)
    return 0


def parse_comments(packet: bytes) -> Dict[str, str]:
    """Title and artist from a Vorbis, Opus or FLAC comment header packet."""
    if packet.startswith(b"\x03vorbis"):
        body = packet[7:]
    elif packet.startswith(b"OpusTags"):
        body = packet[8:]
    elif packet and packet[0] & 0x7F == 4:
        body = packet[4:]
    else:
        return {}
    out: Dict[str, str] = {}
    try:
        (vendor,) = struct.unpack_from("<I", body, 0)
        pos = 4 + vendor
        (count,) = struct.unpack_from("<I", body, pos)
        pos += 4
        for _ in range(min(count, 1024)):
            (size,) = struct.unpack_from("<I", body, pos)
            pos += 4
            entry = body[pos : pos + size].decode("utf-8", "replace")
            pos += size
            key, _, value = entry.partition("=")
            if key.lower() in ("title", "artist", "album") and value:
                out.setdefault(key.lower(), value)
    except struct.error:
        pass
    return out


class OggFramer:
    """Whole Ogg pages out of a byte stream, with its codec headers kept aside."""

    content_type = "application/ogg"

    def __init__(self) -> None:
        self._buf = bytearray()
        self.header_pages = b""
        self._collecting: List[bytes] = []
        self._in_headers = False
        self._packets: List[bytes] = []  # header packets completed so far
        self._partial = b""
        self._needed: Optional[int] = None
        self._serial: Optional[int] = None
        self._codec = "unknown"
        self._rate = 0
        self._granule = 0
        self._metadata: Optional[Dict[str, str]] = None
        self._headers_ready = False

    def take_metadata(self) -> Optional[Dict[str, str]]:
        """The newest comment-header metadata, once."""
        metadata, self._metadata = self._metadata, None
        return metadata

    def feed(self, data: bytes) -> List[Packet]:
        buf = self._buf
        buf += data
        out: List[Packet] = []
        audio: List[bytes] = []
        duration = 0.0
        pos = 0
        while True:
            start = buf.find(b"OggS", pos)
            if start < 0:
                pos = max(pos, len(buf) - 3)
                break
            if start + 27 > len(buf):
                pos = start
                break
            _, version, flags, granule, serial, _, _, nsegs = _PAGE_HEADER.unpack_from(buf, start)
            if version != 0:
                pos = start + 1
                continue
            body_start = start + 27 + nsegs
            if body_start > len(buf):
                pos = start
                break
            lacing = bytes(buf[start + 27 : body_start])
            end = body_start + sum(lacing)
            if end > len(buf):
                pos = start
                break
            page = bytes(buf[start:end])
            pos = end
            is_header = self._page_is_header(page, flags, granule, serial, lacing, body_start - start)
            if self._headers_ready:
                self._headers_ready = False
                if audio:
                    out.append(Packet(b"".join(audio), duration))
                    audio, duration = [], 0.0
                out.append(Packet(self.header_pages, 0.0, header=True))
            if is_header:
                continue
            audio.append(page)
            duration += self._page_duration(serial, granule)
        del buf[:pos]
        if len(buf) > MAX_PAGE:
            del buf[: len(buf) - 3]
        if audio:
            out.append(Packet(b"".join(audio), duration))
        return out

    def _page_is_header(self, page: bytes, flags: int, granule: int, serial: int,
                        lacing: bytes, body_offset: int) -> bool:
        """Track the header phase; ``True`` if ``page`` is a codec header page."""
        if flags & 0x02:  # beginning of a logical stream
            if self._serial is not None and serial != self._serial and self._in_headers:
                return False  # a second multiplexed stream: pass it through
            self._in_headers = True
            self._serial = serial
            self._collecting = []
            self._packets = []
            self._partial = b""
            self._needed = None
            self._granule = 0
        if not self._in_headers or serial != self._serial:
            return False
        if granule not in (0, _GRANULE_NONE) and self._needed is None:
            self._finish_headers()
            return False
        self._collecting.append(page)
        self._collect_packets(page[body_offset:], lacing)
        if self._needed is not None and len(self._packets) >= self._needed:
            self._finish_headers()
        return True

    def _collect_packets(self, body: bytes, lacing: bytes) -> None:
        pos = 0
        partial = self._partial
        for value in lacing:
            partial += body[pos : pos + value]
            pos += value
            if value < 255:
                if len(self._packets) < 8:
                    self._packets.append(partial)
                    if len(self._packets) == 1:
                        self._codec = _codec(partial)
                        self._needed = _header_count(self._codec, partial)
                        self._rate = _sample_rate(self._codec, partial)
                partial = b""
        self._partial = partial[: 1024 * 1024]

    def _finish_headers(self) -> None:
        self._in_headers = False
        self._headers_ready = True
        self.header_pages = b"".join(self._collecting)
        for packet in self._packets[1:]:
            comments = parse_comments(packet)
            if comments:
                self._metadata = comments
                break
        self._collecting = []

    def _page_duration(self, serial: int, granule: int) -> float:
        if serial != self._serial or granule < 0 or not self._rate:
            return 0.0
        delta = granule - self._granule
        self._granule = granule
        return delta / self._rate if delta > 0 else 0.0
