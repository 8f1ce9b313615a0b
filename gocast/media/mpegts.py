# -*- test-case-name: tests.test_hls -*-
"""
A small MPEG-TS muxer for audio-only HLS segments (ISO/IEC 13818-1).

One program: a PAT, a PMT, and one audio stream (ADTS AAC, stream type
0x0F, or MPEG audio, 0x03) on PID 0x100, which also carries the PCR. Each
segment starts with the PAT and PMT; each chunk of whole frames becomes one
PES packet whose PTS (90 kHz, 33 bits, wrapping) comes from the running
sample clock, so timestamps run on across segments. Continuity counters
also run on across segments, as players expect. Pure code: bytes in, bytes
out.
"""

from __future__ import annotations

from typing import List, Optional

PACKET = 188
PAT_PID = 0x0000
PMT_PID = 0x1000
AUDIO_PID = 0x0100
STREAM_TYPES = {"aac": 0x0F, "mp3": 0x03}
ID3_PID = 0x0102
PTS_WRAP = 1 << 33
#: Timed ID3 (Apple's "Timed Metadata for HTTP Live Streaming"): a program-level
#: metadata pointer and, on the metadata stream, a metadata descriptor.
_ID3_FORMAT = b"\xff\xffID3 \xffID3 "
METADATA_POINTER = b"\x25\x0f" + _ID3_FORMAT + b"\x00\x0f\x00\x01"
METADATA_DESCRIPTOR = b"\x26\x0d" + _ID3_FORMAT + b"\x00\x0f"


def crc32_mpeg(data: bytes) -> int:
    """The CRC-32 of MPEG-2 sections (polynomial 0x04C11DB7, not reflected)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def _section(table_id: int, extension: int, body: bytes) -> bytes:
    """A long-form PSI section with its CRC, behind a pointer field."""
    length = 5 + len(body) + 4
    header = bytes([table_id, 0xB0 | (length >> 8), length & 0xFF, extension >> 8, extension & 0xFF,
                    0xC1, 0x00, 0x00])
    section = header + body
    return b"\x00" + section + crc32_mpeg(section).to_bytes(4, "big")


def pat() -> bytes:
    return _section(0x00, 0x0001, bytes([0x00, 0x01, 0xE0 | (PMT_PID >> 8), PMT_PID & 0xFF]))


def _es(stream_type: int, pid: int, info: bytes = b"") -> bytes:
    return bytes([stream_type, 0xE0 | (pid >> 8), pid & 0xFF, 0xF0 | (len(info) >> 8), len(info) & 0xFF]) + info


def pmt(stream_type: int) -> bytes:
    """The audio stream, and a timed ID3 stream for now-playing titles."""
    body = (bytes([0xE0 | (AUDIO_PID >> 8), AUDIO_PID & 0xFF, 0xF0, len(METADATA_POINTER)])
            + METADATA_POINTER + _es(stream_type, AUDIO_PID) + _es(0x15, ID3_PID, METADATA_DESCRIPTOR))
    return _section(0x02, 0x0001, body)


def _syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def id3_tag(title: str, artist: str = "", artwork: str = "") -> bytes:
    """
    An ID3v2.4 tag with TIT2 (and TPE1), UTF-8, and the cover's URL in a
    WXXX frame (description ``artwork``) when there is one.
    """
    frames = b""
    for frame_id, text in ((b"TIT2", title), (b"TPE1", artist)):
        if text:
            body = b"\x03" + text.encode("utf-8") + b"\x00"
            frames += frame_id + _syncsafe(len(body)) + b"\x00\x00" + body
    if artwork:
        body = b"\x03artwork\x00" + artwork.encode("latin-1", "replace")
        frames += b"WXXX" + _syncsafe(len(body)) + b"\x00\x00" + body
    return b"ID3\x04\x00\x00" + _syncsafe(len(frames)) + frames


def encode_pts(pts: int, marker: int = 0x2) -> bytes:
    """The 5-byte PTS field of a PES header."""
    pts %= PTS_WRAP
    return bytes([
        (marker << 4) | (((pts >> 30) & 0x07) << 1) | 1,
        (pts >> 22) & 0xFF,
        (((pts >> 15) & 0x7F) << 1) | 1,
        (pts >> 7) & 0xFF,
        ((pts & 0x7F) << 1) | 1,
    ])


def decode_pts(field: bytes) -> int:
    return (((field[0] >> 1) & 0x07) << 30) | (field[1] << 22) | ((field[2] >> 1) << 15) | \
        (field[3] << 7) | (field[4] >> 1)


def pes(payload: bytes, pts: int, stream_id: int = 0xC0) -> bytes:
    """A PES packet with a PTS (audio by default; 0xBD for timed ID3)."""
    header = b"\x80\x80\x05" + encode_pts(pts)
    length = len(header) + len(payload)
    return (b"\x00\x00\x01" + bytes([stream_id]) + (length if length <= 0xFFFF else 0).to_bytes(2, "big")
            + header + payload)


def _pcr(pts: int) -> bytes:
    base = pts % PTS_WRAP
    return bytes([(base >> 25) & 0xFF, (base >> 17) & 0xFF, (base >> 9) & 0xFF, (base >> 1) & 0xFF,
                  ((base & 1) << 7) | 0x7E, 0x00])


class TSMuxer:
    """Muxes chunks of whole audio frames into TS segments, keeping counters across them."""

    def __init__(self, codec: str):
        self.stream_type = STREAM_TYPES[codec]
        self._counters = {PAT_PID: 0, PMT_PID: 0, AUDIO_PID: 0, ID3_PID: 0}

    def _packets(self, pid: int, payload: bytes, pcr: bytes = b"") -> List[bytes]:
        """Cut ``payload`` into TS packets; the first starts the unit (and carries ``pcr``)."""
        out = []
        pos = 0
        first = True
        while first or pos < len(payload):
            adaptation: Optional[bytes] = (b"\x10" + pcr) if first and pcr else None
            room = PACKET - 4 - (1 + len(adaptation) if adaptation is not None else 0)
            chunk = payload[pos : pos + room]
            pos += len(chunk)
            missing = room - len(chunk)
            if missing:  # the last packet is stuffed through its adaptation field
                if adaptation is not None:
                    adaptation += b"\xff" * missing
                elif missing == 1:
                    adaptation = b""
                else:
                    adaptation = b"\x00" + b"\xff" * (missing - 2)
            counter = self._counters[pid]
            self._counters[pid] = (counter + 1) & 0x0F
            if adaptation is None:
                field, control = b"", 0x10
            else:
                field, control = bytes([len(adaptation)]) + adaptation, 0x30
            header = bytes([0x47, (0x40 if first else 0) | (pid >> 8), pid & 0xFF, control | counter])
            out.append(header + field + chunk)
            first = False
        return out

    def segment(self, chunks: List[bytes], pts: List[int], id3: bytes = b"") -> bytes:
        """
        A segment: PAT, PMT, the ``id3`` tag (now playing) at the first PTS
        if given, then one PES per chunk at its PTS.
        """
        packets = self._packets(PAT_PID, pat()) + self._packets(PMT_PID, pmt(self.stream_type))
        if id3 and pts:
            packets += self._packets(ID3_PID, pes(id3, pts[0], 0xBD))
        for data, stamp in zip(chunks, pts):
            packets += self._packets(AUDIO_PID, pes(data, stamp), _pcr(stamp))
        return b"".join(packets)
