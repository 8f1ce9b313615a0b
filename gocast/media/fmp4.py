# -*- test-case-name: tests.test_fmp4 -*-
"""
A small fragmented-MP4 (CMAF) muxer for one audio track, ISO/IEC 14496-12.

LL-HLS parts (and, later, DASH segments) are CMAF fragments: an
initialisation segment (``ftyp`` + ``moov`` describing the track) fetched
once, then fragments of ``moof`` + ``mdat`` holding whole codec frames
with their decode time. AAC frames are stored raw (their ADTS header
becomes the ``esds`` AudioSpecificConfig); MP3 frames are stored whole.
Timed ID3 (now playing) travels in an ``emsg`` box, the scheme hls.js and
Safari read. Pure code: bytes in, bytes out.
"""

from __future__ import annotations

import struct
from typing import Iterator, List, Optional, Sequence, Tuple

import attr

from ._sync import adts_header, mp3_header

TRACK_ID = 1
#: Timed ID3 in fMP4 (AOM "Carriage of ID3 Timed Metadata in CMAF").
ID3_SCHEME = b"https://aomedia.org/emsg/ID3"
_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
#: Sample flags of an audio frame: depends on no other sample.
_SYNC_SAMPLE = 0x02000000


@attr.s(slots=True, frozen=True, auto_attribs=True)
class TrackFormat:
    """What the initialisation segment says about the track."""

    codec: str  # "aac" or "mp3"
    sample_rate: int
    channels: int
    #: MPEG-4 objectTypeIndication: 0x40 AAC, 0x6B MPEG-1 audio, 0x69 MPEG-2 audio.
    object_type: int
    #: AudioSpecificConfig for AAC; empty for MP3.
    decoder_config: bytes = b""


@attr.s(slots=True, frozen=True, auto_attribs=True)
class Frame:
    data: bytes
    samples: int
    format: TrackFormat


def _aac_format(b: bytes, i: int) -> TrackFormat:
    profile = b[i + 2] >> 6  # audio object type minus one
    rate_index = (b[i + 2] >> 2) & 0xF
    channels = ((b[i + 2] & 1) << 2) | (b[i + 3] >> 6)
    rate = adts_header(b, i)[2]  # type: ignore[index]
    config = ((profile + 1) << 11) | (rate_index << 7) | (channels << 3)
    return TrackFormat("aac", rate, channels or 2, 0x40, config.to_bytes(2, "big"))


def _mp3_format(b: bytes, i: int, rate: int) -> TrackFormat:
    mpeg1 = (b[i + 1] >> 3) & 3 == 3
    channels = 1 if b[i + 3] >> 6 == 3 else 2
    return TrackFormat("mp3", rate, channels, 0x6B if mpeg1 else 0x69)


def split_frames(codec: str, data: bytes) -> Iterator[Frame]:
    """The frames of a chunk of whole ADTS or MPEG audio frames, as MP4 samples."""
    pos = 0
    while pos < len(data):
        if codec == "aac":
            header = adts_header(data, pos) if pos + 7 <= len(data) else None
            if header is None:
                return
            length, samples, _, _ = header
            start = pos + (7 if data[pos + 1] & 1 else 9)  # protection_absent, else a CRC follows
            yield Frame(data[start : pos + length], samples, _aac_format(data, pos))
        else:
            header = mp3_header(data, pos) if pos + 4 <= len(data) else None
            if header is None:
                return
            length, samples, rate, _ = header
            yield Frame(data[pos : pos + length], samples, _mp3_format(data, pos, rate))
        pos += length


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _descriptor(tag: int, body: bytes) -> bytes:
    """An MPEG-4 descriptor; the size in the 4-byte expandable form players all read."""
    size = len(body)
    return bytes([tag, 0x80 | (size >> 21) & 0x7F, 0x80 | (size >> 14) & 0x7F, 0x80 | (size >> 7) & 0x7F,
                  size & 0x7F]) + body


def _esds(fmt: TrackFormat) -> bytes:
    specific = _descriptor(0x05, fmt.decoder_config) if fmt.decoder_config else b""
    decoder = _descriptor(0x04, bytes([fmt.object_type, 0x15]) + b"\x00\x00\x00" + struct.pack(">II", 0, 0)
                          + specific)
    es = _descriptor(0x03, struct.pack(">HB", TRACK_ID, 0) + decoder + _descriptor(0x06, b"\x02"))
    return full_box(b"esds", 0, 0, es)


def _mp4a(fmt: TrackFormat) -> bytes:
    rate = fmt.sample_rate if fmt.sample_rate < 0x10000 else 0
    return box(b"mp4a", b"\x00" * 6, struct.pack(">H", 1), b"\x00" * 8,
               struct.pack(">HHHHI", fmt.channels, 16, 0, 0, rate << 16), _esds(fmt))


def init_segment(fmt: TrackFormat) -> bytes:
    """``ftyp`` + ``moov``: the track's description, with no samples (they come in fragments)."""
    ftyp = box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6cmfcmp41")
    mvhd = full_box(b"mvhd", 0, 0, struct.pack(">IIII", 0, 0, 1000, 0), struct.pack(">IH", 0x00010000, 0x0100),
                    b"\x00" * 10, _MATRIX, b"\x00" * 24, struct.pack(">I", TRACK_ID + 1))
    tkhd = full_box(b"tkhd", 0, 3, struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0), b"\x00" * 8,
                    struct.pack(">HHHH", 0, 0, 0x0100, 0), _MATRIX, struct.pack(">II", 0, 0))
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, fmt.sample_rate, 0, 0x55C4, 0))
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I", 0), b"soun", b"\x00" * 12, b"GoCast audio\x00")
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    stbl = box(b"stbl", full_box(b"stsd", 0, 0, struct.pack(">I", 1), _mp4a(fmt)),
               full_box(b"stts", 0, 0, struct.pack(">I", 0)), full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
               full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)), full_box(b"stco", 0, 0, struct.pack(">I", 0)))
    minf = box(b"minf", full_box(b"smhd", 0, 0, struct.pack(">HH", 0, 0)), dinf, stbl)
    trak = box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))
    mvex = box(b"mvex", full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 0, 0, 0)))
    return ftyp + box(b"moov", mvhd, trak, mvex)


def emsg_id3(tag: bytes, timescale: int, presentation_time: int, event_id: int) -> bytes:
    """An ``emsg`` (version 1) carrying an ID3 tag at ``presentation_time``."""
    return full_box(b"emsg", 1, 0, struct.pack(">IQII", timescale, presentation_time, 0xFFFFFFFF, event_id),
                    ID3_SCHEME + b"\x00", b"\x00", tag)


def fragment(sequence: int, decode_time: int, samples: Sequence[Tuple[bytes, int]]) -> bytes:
    """
    One fragment: ``moof`` (decode time of the first sample, each sample's
    duration and size) then ``mdat`` with the samples.
    """

    def moof(data_offset: int) -> bytes:
        trun = full_box(b"trun", 0, 0x000301, struct.pack(">Ii", len(samples), data_offset),
                        b"".join(struct.pack(">II", duration, len(data)) for data, duration in samples))
        traf = box(b"traf", full_box(b"tfhd", 0, 0x020020, struct.pack(">II", TRACK_ID, _SYNC_SAMPLE)),
                   full_box(b"tfdt", 1, 0, struct.pack(">Q", decode_time)), trun)
        return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", sequence)), traf)

    size = len(moof(0))
    return moof(size + 8) + box(b"mdat", *(data for data, _ in samples))


def boxes(data: bytes) -> List[Tuple[bytes, bytes]]:
    """The top-level boxes of ``data`` as (type, body): for tests and tools."""
    out = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size < 8:
            break
        out.append((kind, data[pos + 8 : pos + size]))
        pos += size
    return out


def find_box(data: bytes, path: Sequence[bytes]) -> Optional[bytes]:
    """The body of the box at ``path`` (container boxes only along the way)."""
    for kind, body in boxes(data):
        if kind == path[0]:
            return body if len(path) == 1 else find_box(body, path[1:])
    return None
