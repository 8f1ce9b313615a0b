"""Hand-built codec units for framer tests: exact sizes, no encoder needed."""

import struct


def mp3_frame(bitrate_kbps=128, rate=44100, padding=0, fill=b"\x00"):
    """An MPEG-1 layer III frame (header + payload) of the exact size."""
    bitrate_index = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320).index(bitrate_kbps)
    rate_index = (44100, 48000, 32000).index(rate)
    header = bytes([0xFF, 0xFB, (bitrate_index << 4) | (rate_index << 2) | (padding << 1), 0x44])
    length = 144 * bitrate_kbps * 1000 // rate + padding
    return header + (fill * (length - 4))[: length - 4]


def adts_frame(payload=200, rate_index=4, channels=2):
    """An ADTS AAC frame without CRC, with ``payload`` bytes of data."""
    length = 7 + payload
    header = bytes([
        0xFF, 0xF1,
        (1 << 6) | (rate_index << 2) | (channels >> 2),
        ((channels & 3) << 6) | (length >> 11),
        (length >> 3) & 0xFF,
        ((length & 7) << 5) | 0x1F,
        0xFC,
    ])
    return header + b"\x11" * payload


def ogg_page(packets, serial=1, granule=0, bos=False, seq=0):
    """An Ogg page holding whole ``packets`` (no CRC: GoCast does not check it)."""
    lacing = b""
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    flags = 0x02 if bos else 0
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, serial, seq, 0, len(lacing))
    return header + lacing + b"".join(packets)


def comment_packet(prefix, **tags):
    vendor = b"test"
    entries = [("%s=%s" % (k.upper(), v)).encode() for k, v in tags.items()]
    body = struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", len(entries))
    for entry in entries:
        body += struct.pack("<I", len(entry)) + entry
    return prefix + body


def opus_stream(serial=1, title="Song", pages=3):
    """Header pages (OpusHead, OpusTags) and ``pages`` audio pages of 20 ms each."""
    head = ogg_page([b"OpusHead" + b"\x01\x02" + b"\x00" * 9], serial, 0, bos=True)
    tags = ogg_page([comment_packet(b"OpusTags", title=title, artist="Band")], serial, 0, seq=1)
    audio = [ogg_page([b"\x80" * 100], serial, 960 * (i + 1), seq=2 + i) for i in range(pages)]
    return head + tags, audio
