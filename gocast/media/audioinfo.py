# -*- test-case-name: tests.test_audioinfo -*-
"""
What a stream is, read from its own bytes: codec, sample rate and channels.

A web player told this before the first audio frame can set up its decoder
(Web Audio, WebCodecs, MSE) without probing; sources rarely say it
themselves (``ice-audio-info`` is optional), so it is read from the first
frame header (MP3, ADTS) or the identification header (Ogg Opus, Vorbis).
"""

from __future__ import annotations

import struct
from typing import Dict, Optional, Union

from . import is_ogg, sync_codec
from ._ogg import _codec
from ._sync import _MP3_BITRATES, adts_header, mp3_header

Info = Dict[str, Union[str, int, None]]

#: How far into the audio to look for a frame header (junk, ID3 tags first).
SEARCH = 16 * 1024


def describe(content_type: str, header_pages: bytes, audio: bytes) -> Info:
    """
    ``{"codec", "sample_rate", "channels"}`` (and ``bitrate`` in kbit/s for
    MP3, from its first frame); ``None`` for what the bytes do not say.
    """
    codec = sync_codec(content_type)
    if codec == "mp3":
        return _sync_info("mp3", audio, _mp3_channels)
    if codec == "aac":
        return _sync_info("aac", audio, _adts_channels)
    if is_ogg(content_type):
        return _ogg_info(header_pages)
    return {"codec": None, "sample_rate": None, "channels": None}


def _sync_info(codec: str, audio: bytes, channels_at) -> Info:
    parse = mp3_header if codec == "mp3" else adts_header
    end = min(len(audio), SEARCH) - 7
    pos = audio.find(b"\xff", 0, end)
    while 0 <= pos < end:
        header = parse(audio, pos)
        if header is not None:
            info: Info = {"codec": codec, "sample_rate": header[2], "channels": channels_at(audio, pos)}
            if codec == "mp3":
                info["bitrate"] = _mp3_bitrate(audio, pos)
            return info
        pos = audio.find(b"\xff", pos + 1, end)
    return {"codec": codec, "sample_rate": None, "channels": None}


def _mp3_bitrate(audio: bytes, pos: int) -> int:
    version, layer = (audio[pos + 1] >> 3) & 3, (audio[pos + 1] >> 1) & 3
    return _MP3_BITRATES[(3 if version == 3 else 2, layer)][audio[pos + 2] >> 4]


def _mp3_channels(audio: bytes, pos: int) -> int:
    return 1 if audio[pos + 3] >> 6 == 3 else 2  # channel mode 3 is mono; the others are two channels


def _adts_channels(audio: bytes, pos: int) -> Optional[int]:
    config = ((audio[pos + 2] & 1) << 2) | (audio[pos + 3] >> 6)
    return {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8}.get(config)  # 0: told in-band (rare on the radio)


def _ogg_info(header_pages: bytes) -> Info:
    """From the first packet of the first page: OpusHead or the Vorbis identification header."""
    codec = sample_rate = channels = None
    if len(header_pages) >= 28 and header_pages.startswith(b"OggS"):
        segments = header_pages[26]
        packet = header_pages[27 + segments:]
        codec = _codec(packet)
        if codec == "opus" and len(packet) >= 10:
            sample_rate, channels = 48000, packet[9]  # Opus always decodes at 48 kHz
        elif codec == "vorbis" and len(packet) >= 16:
            channels = packet[11]
            sample_rate = struct.unpack("<I", packet[12:16])[0]
        elif codec == "unknown":
            codec = None
    return {"codec": codec or "ogg", "sample_rate": sample_rate, "channels": channels}
