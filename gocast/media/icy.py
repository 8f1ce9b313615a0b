# -*- test-case-name: tests.test_relay -*-
"""
Reading ICY metadata out of a stream (what a relay gets from its upstream
when it asks with ``Icy-MetaData: 1``): after every ``icy-metaint`` audio
bytes comes a length byte N and N*16 bytes of ``StreamTitle='...';``.

Sans-IO: bytes in, audio bytes and metadata texts out.
"""

from __future__ import annotations

import re
from typing import Dict, List, Tuple

#: A metaint above this is not a real server's (Icecast uses 16000).
MAX_METAINT = 1024 * 1024

_FIELD = re.compile(r"(\w+)='(.*?)';", re.S)


class IcyDemuxer:
    """Separates interleaved ICY metadata blocks from the audio."""

    def __init__(self, metaint: int):
        if not 0 < metaint <= MAX_METAINT:
            raise ValueError("icy-metaint %d is not between 1 and %d" % (metaint, MAX_METAINT))
        self.metaint = metaint
        self._audio_left = metaint
        #: Bytes of the metadata block still to come; -1 while waiting for its length byte.
        self._meta_left = 0
        self._meta: List[bytes] = []

    def feed(self, data: bytes) -> Tuple[bytes, List[bytes]]:
        """The audio in ``data``, and the metadata blocks completed (empty blocks left out)."""
        audio: List[bytes] = []
        blocks: List[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            if self._audio_left:
                take = min(self._audio_left, end - pos)
                audio.append(data[pos : pos + take])
                pos += take
                self._audio_left -= take
                if not self._audio_left:
                    self._meta_left = -1
                continue
            if self._meta_left < 0:
                self._meta_left = data[pos] * 16
                pos += 1
            else:
                take = min(self._meta_left, end - pos)
                self._meta.append(data[pos : pos + take])
                pos += take
                self._meta_left -= take
            if not self._meta_left:
                block = b"".join(self._meta).rstrip(b"\x00")
                self._meta = []
                if block:
                    blocks.append(block)
                self._audio_left = self.metaint
        return b"".join(audio), blocks


def parse_metadata(block: bytes) -> Dict[str, str]:
    """
    ``StreamTitle='Artist - Title';StreamUrl='...';`` as a dict. A title
    may hold a quote; only ``';`` ends a field, as players read it. UTF-8,
    else Latin-1 (what older encoders send).
    """
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        text = block.decode("iso-8859-1")
    return {name: value for name, value in _FIELD.findall(text)}
