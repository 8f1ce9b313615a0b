"""Chained Ogg streams joined for the HLS transcoder: layouts, empty packets, renumbered pages."""

import struct

from twisted.trial.unittest import SynchronousTestCase

from gocast.media.oggchain import OggSplicer, ogg_crc, pages, stream_layout, without_empty_packets

from .media_builders import comment_packet, ogg_page, opus_stream


def textbook_crc(data):
    """Ogg's CRC bit by bit, as the spec describes it."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def vorbis_headers(serial, title, codebooks=b"books", channels=2):
    ident = b"\x01vorbis" + b"\x00" * 4 + bytes([channels]) + (44100).to_bytes(4, "little") + b"\x00" * 14
    comments = comment_packet(b"\x03vorbis", title=title)
    return (ogg_page([ident], serial, 0, bos=True) +
            ogg_page([comments, b"\x05vorbis" + codebooks], serial, 0, seq=1))


def parsed(data):
    return [(flags, granule, serial, sequence) for _, flags, granule, serial, sequence, _ in pages(data)]


class LayoutTests(SynchronousTestCase):
    def test_crc_matches_the_spec(self):
        page = ogg_page([b"\x80" * 300, b"abc"], serial=7, granule=960)
        self.assertEqual(ogg_crc(page), textbook_crc(page))
        self.assertEqual(ogg_crc(b""), 0)

    def test_same_setup_whatever_the_comments(self):
        opus_a, _ = opus_stream(1, "A")
        opus_b, _ = opus_stream(2, "B")
        self.assertEqual(stream_layout(opus_a), stream_layout(opus_b))
        mono = opus_a.replace(b"OpusHead\x01\x02", b"OpusHead\x01\x01")
        self.assertNotEqual(stream_layout(opus_a), stream_layout(mono))
        self.assertEqual(stream_layout(vorbis_headers(1, "A")), stream_layout(vorbis_headers(2, "B")))
        # Vorbis packets need the codebooks they were made with.
        self.assertNotEqual(stream_layout(vorbis_headers(1, "A")),
                            stream_layout(vorbis_headers(1, "A", codebooks=b"other")))

    def test_unknown_or_cut_short(self):
        opus, _ = opus_stream()
        for junk in (b"", b"OggS", ogg_page([b"Speex   "], bos=True), opus[:30]):
            self.assertIsNone(stream_layout(junk), junk)

    def test_empty_packets_found_in_the_lacing(self):
        self.assertEqual(without_empty_packets(bytes([10, 0, 20]), False), bytes([10, 20]))
        self.assertEqual(without_empty_packets(bytes([0, 20]), False), bytes([20]))
        # A 0 after 255 ends a 255-byte packet; a page may begin by ending one.
        self.assertEqual(without_empty_packets(bytes([255, 0, 0]), False), bytes([255, 0]))
        self.assertEqual(without_empty_packets(bytes([0, 5]), True), bytes([0, 5]))


class SplicerTests(SynchronousTestCase):
    def setUp(self):
        self.splicer = OggSplicer()
        self.first, self.first_audio = opus_stream(1, "First", pages=3)
        self.assertEqual(self.splicer.begin(self.first), self.first)

    def test_pages_pass_as_they_are_until_a_chain(self):
        audio = b"".join(self.first_audio)
        self.assertEqual(self.splicer.audio(audio), audio)

    def test_a_same_layout_chain_continues_the_stream(self):
        self.splicer.audio(b"".join(self.first_audio))  # granules 960, 1920, 2880; sequences 2-4
        second, second_audio = opus_stream(2, "Second", pages=2)
        self.assertTrue(self.splicer.chain(second))
        out = self.splicer.audio(b"".join(second_audio))
        self.assertEqual(parsed(out), [(0, 2880 + 960, 1, 5), (0, 2880 + 1920, 1, 6)])
        for page, *_ in pages(out):
            unsigned = page[:22] + b"\x00" * 4 + page[26:]
            self.assertEqual(struct.unpack("<I", page[22:26])[0], textbook_crc(unsigned))
        self.assertEqual([page[28:] for page, *_ in pages(out)], [page[28:] for page in second_audio])

    def test_another_layout_is_refused(self):
        mono, _ = opus_stream(2, "Mono")
        self.assertFalse(self.splicer.chain(mono.replace(b"OpusHead\x01\x02", b"OpusHead\x01\x01")))
        self.assertFalse(OggSplicer().chain(self.first))  # nothing begun

    def test_end_of_stream_cleared_and_empty_packets_left_out(self):
        """Liquidsoap ends each chain with an empty packet on an end-of-stream page."""
        last = ogg_page([b"\x80" * 100, b""], serial=1, granule=3840, seq=2)
        last = last[:5] + b"\x04" + last[6:]
        out = self.splicer.audio(last)
        self.assertEqual(parsed(out), [(0, 3840, 1, 2)])
        self.assertEqual(out[26:28], b"\x01\x64")  # one lacing value: the 100-byte packet
        self.assertEqual(self.splicer.audio(ogg_page([b""], serial=1, granule=3840, seq=3)), b"")

    def test_other_streams_pass_through(self):
        other = ogg_page([b"skeleton"], serial=99, granule=5)
        self.assertTrue(self.splicer.chain(opus_stream(2, "Second")[0]))
        self.assertEqual(self.splicer.audio(other), other)
