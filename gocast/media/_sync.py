# -*- test-case-name: tests.test_media -*-
"""
Framers for sync-word formats: MPEG audio (MP3: MPEG 1, 2 and 2.5, layers
I to III) and AAC in ADTS.

Both work the same way: find a frame header, read the frame length from it,
and emit whole frames. Before trusting a header the framer needs the next
frame's header to agree with it (same format and sample rate), so random
bytes that happen to look like a sync word are skipped, not emitted. ID3v2
tags and junk between frames are dropped. Memory is bounded: junk is never
kept beyond :data:`MAX_BUFFER`.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from ._packet import Packet

#: The most a framer keeps while waiting for the rest of a frame.
MAX_BUFFER = 64 * 1024

#: (frame length, samples, sample rate, signature); the signature must stay
#: the same from frame to frame.
Header = Tuple[int, int, int, int]

_MP3_BITRATES = {
    (3, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 1): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}

_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


def mp3_header(b: bytes, i: int) -> Optional[Header]:
    """Parse the MPEG audio frame header at ``b[i:i+4]``."""
    if b[i] != 0xFF or b[i + 1] & 0xE0 != 0xE0:
        return None
    b1, b2 = b[i + 1], b[i + 2]
    version = (b1 >> 3) & 3  # 0: MPEG 2.5, 2: MPEG 2, 3: MPEG 1
    layer = (b1 >> 1) & 3  # 1: III, 2: II, 3: I
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 3
    if version == 1 or layer == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _MP3_BITRATES[(3 if version == 3 else 2, layer)][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    padding = (b2 >> 1) & 1
    if layer == 3:
        length, samples = (12 * bitrate // rate + padding) * 4, 384
    elif layer == 2 or version == 3:
        length, samples = 144 * bitrate // rate + padding, 1152
    else:
        length, samples = 72 * bitrate // rate + padding, 576
    return length, samples, rate, (version << 4) | (layer << 2) | rate_index


def adts_header(b: bytes, i: int) -> Optional[Header]:
    """Parse the ADTS header at ``b[i:i+7]``."""
    if b[i] != 0xFF or b[i + 1] & 0xF6 != 0xF0:
        return None
    b2, b3 = b[i + 2], b[i + 3]
    rate_index = (b2 >> 2) & 0xF
    if rate_index >= len(_ADTS_RATES):
        return None
    length = ((b3 & 3) << 11) | (b[i + 4] << 3) | (b[i + 5] >> 5)
    if length < (7 if b[i + 1] & 1 else 9):
        return None
    samples = 1024 * ((b[i + 6] & 3) + 1)
    channels = ((b2 & 1) << 2) | (b3 >> 6)
    return length, samples, _ADTS_RATES[rate_index], (b2 >> 6) << 8 | rate_index << 3 | channels


class SyncFramer:
    """Whole frames out of a byte stream, for one sync-word format."""

    #: Bytes needed to read a header.
    header_size = 4
    content_type = "application/octet-stream"

    def __init__(self) -> None:
        self._buf = bytearray()
        self._signature: Optional[int] = None
        self._skip = 0  # bytes of an ID3 tag still to drop
        self.header_pages = b""

    def parse_header(self, b: bytes, i: int) -> Optional[Header]:
        raise NotImplementedError

    def take_metadata(self) -> None:
        return None

    def feed(self, data: bytes) -> List[Packet]:
        """Take any bytes; return the whole frames now complete, as one packet."""
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        buf = self._buf
        buf += data
        parts = []
        duration = 0.0
        while True:
            pos, size, seconds = self._scan(buf)
            if size:
                parts.append(bytes(buf[pos - size : pos]))
                duration += seconds
            if not pos:
                break
            del buf[:pos]
        if len(buf) > MAX_BUFFER:
            del buf[: len(buf) - self.header_size]
        return [Packet(b"".join(parts), duration)] if parts else []

    def _scan(self, buf: bytearray) -> Tuple[int, int, float]:
        """
        Walk ``buf``; return the end of the last whole frame, the byte count
        of the frames that end there, and their duration.
        """
        pos = 0
        run_start = 0
        duration = 0.0
        end = len(buf)
        hs = self.header_size
        while pos + hs <= end:
            if buf[pos] == 0x49 and buf[pos : pos + 3] == b"ID3":
                if run_start != pos:
                    break  # emit the frames before the tag first
                tag = self._id3_size(buf, pos)
                if tag is None:
                    break
                if pos + tag > end:
                    self._skip = pos + tag - end
                    return end, 0, 0.0
                pos = run_start = pos + tag
                continue
            header = self.parse_header(buf, pos)
            if header is None:
                if run_start != pos:
                    break
                self._signature = None
                pos = run_start = pos + 1
                continue
            length, samples, rate, signature = header
            if self._signature is None or signature != self._signature:
                # Not synced: trust this header only if the next one agrees.
                nxt = pos + length
                if nxt + hs > end:
                    break
                following = self.parse_header(buf, nxt)
                if following is None or following[3] != signature:
                    if run_start != pos:
                        break
                    pos = run_start = pos + 1
                    continue
                if run_start != pos:
                    break
                self._signature = signature
            if pos + length > end:
                break
            pos += length
            duration += samples / rate
        return pos, pos - run_start, duration

    @staticmethod
    def _id3_size(buf: bytearray, pos: int) -> Optional[int]:
        """Total size of the ID3v2 tag at ``pos``, or ``None`` if incomplete."""
        if len(buf) < pos + 10:
            return None
        size = 0
        for b in buf[pos + 6 : pos + 10]:
            size = (size << 7) | (b & 0x7F)
        footer = 10 if buf[pos + 5] & 0x10 else 0
        return 10 + size + footer


class MP3Framer(SyncFramer):
    header_size = 4
    content_type = "audio/mpeg"

    def parse_header(self, b: bytes, i: int) -> Optional[Header]:
        return mp3_header(b, i)


class ADTSFramer(SyncFramer):
    header_size = 7
    content_type = "audio/aac"

    def parse_header(self, b: bytes, i: int) -> Optional[Header]:
        return adts_header(b, i)
