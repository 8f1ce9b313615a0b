"""Framers: whole units out, junk and tags skipped, durations, Ogg headers."""

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gocast.media import (
    ADTSFramer,
    MP3Framer,
    OggFramer,
    OpaqueFramer,
    framer_for,
    is_streamable,
    parse_comments,
)

from .media_builders import adts_frame, comment_packet, mp3_frame, ogg_page, opus_stream


def feed_in_pieces(framer, data, size):
    packets = []
    for i in range(0, len(data), size):
        packets.extend(framer.feed(data[i : i + size]))
    return packets


class MP3Tests(SynchronousTestCase):
    def test_whole_frames_in_any_pieces(self):
        frames = b"".join(mp3_frame(padding=i % 2) for i in range(20))
        for size in (1, 7, 417, 418, 5000):
            packets = feed_in_pieces(MP3Framer(), frames, size)
            out = b"".join(p.data for p in packets)
            # The last frame waits for the next header to confirm sync only
            # while unsynced; once synced, every complete frame is out.
            self.assertEqual(out, frames, size)
            for packet in packets:
                self.assertEqual(packet.data[:2], b"\xff\xfb")

    def test_duration(self):
        packets = MP3Framer().feed(b"".join(mp3_frame() for _ in range(10)))
        self.assertAlmostEqual(sum(p.duration for p in packets), 10 * 1152 / 44100)

    def test_id3_and_junk_skipped(self):
        tag = b"ID3\x04\x00\x00\x00\x00\x01\x00" + b"T" * 128
        frames = b"".join(mp3_frame() for _ in range(5))
        data = b"junk\xff\xfe" + tag + frames + b"\x00\x01garbage" + frames
        out = b"".join(p.data for p in feed_in_pieces(MP3Framer(), data, 100))
        self.assertEqual(out, frames + frames)

    def test_large_id3_tag_not_buffered(self):
        size = 5 * 1024 * 1024
        syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
        framer = MP3Framer()
        framer.feed(b"ID3\x03\x00\x00" + syncsafe)
        for _ in range(size // 65536):
            self.assertEqual(framer.feed(b"\xff" * 65536), [])
        out = framer.feed(b"\xff" * (size % 65536) + mp3_frame() * 3)
        self.assertEqual(b"".join(p.data for p in out), mp3_frame() * 3)
        self.assertLess(len(framer._buf), 70000)

    def test_false_sync_needs_confirmation(self):
        # A lone header-looking word followed by garbage is not a frame.
        data = b"\xff\xfb\x90\x44" + b"\x01" * 2000
        self.assertEqual(MP3Framer().feed(data), [])

    def test_mpeg2_layer3(self):
        header = bytes([0xFF, 0xF3, 0x80, 0x44])  # MPEG-2 layer III, 64 kbps, 22050 Hz
        frame = header + b"\x00" * (72 * 64000 // 22050 - 4)
        packets = MP3Framer().feed(frame * 4)
        self.assertEqual(b"".join(p.data for p in packets), frame * 4)
        self.assertAlmostEqual(sum(p.duration for p in packets), 4 * 576 / 22050)


class ADTSTests(SynchronousTestCase):
    def test_frames(self):
        frames = b"".join(adts_frame(150 + i) for i in range(8))
        packets = feed_in_pieces(ADTSFramer(), b"xx" + frames, 33)
        self.assertEqual(b"".join(p.data for p in packets), frames)
        self.assertAlmostEqual(sum(p.duration for p in packets), 8 * 1024 / 44100)


class OggTests(SynchronousTestCase):
    def test_headers_kept_aside_and_title_read(self):
        headers, audio = opus_stream(title="First")
        framer = OggFramer()
        packets = feed_in_pieces(framer, headers + b"".join(audio), 50)
        self.assertEqual(framer.header_pages, headers)
        self.assertEqual([p.header for p in packets][0], True)
        self.assertEqual(b"".join(p.data for p in packets if not p.header), b"".join(audio))
        self.assertAlmostEqual(sum(p.duration for p in packets), 3 * 0.02)
        self.assertEqual(framer.take_metadata(), {"title": "First", "artist": "Band"})
        self.assertIsNone(framer.take_metadata())

    def test_chained_stream_replaces_headers(self):
        first, audio1 = opus_stream(1, "One")
        second, audio2 = opus_stream(2, "Two")
        framer = OggFramer()
        framer.feed(first + b"".join(audio1))
        framer.take_metadata()
        packets = framer.feed(second + b"".join(audio2))
        self.assertEqual(framer.header_pages, second)
        self.assertEqual([p.header for p in packets], [True, False])
        self.assertEqual(framer.take_metadata()["title"], "Two")

    def test_vorbis_three_headers(self):
        ident = b"\x01vorbis" + b"\x00" * 4 + b"\x02" + (44100).to_bytes(4, "little") + b"\x00" * 14
        comments = comment_packet(b"\x03vorbis", title="V")
        setup = b"\x05vorbis" + b"\x00" * 600
        pages = [ogg_page([ident], bos=True), ogg_page([comments, setup], seq=1)]
        audio = ogg_page([b"\x00" * 50], granule=4410, seq=2)
        framer = OggFramer()
        packets = framer.feed(b"".join(pages) + audio)
        self.assertEqual(framer.header_pages, b"".join(pages))
        self.assertEqual(packets[-1].data, audio)
        self.assertAlmostEqual(packets[-1].duration, 0.1)
        self.assertEqual(framer.take_metadata(), {"title": "V"})

    def test_unknown_codec_uses_granule_rule(self):
        headers = ogg_page([b"Speex   " + b"\x00" * 70], bos=True) + ogg_page([b"\x00" * 10], seq=1)
        audio = ogg_page([b"\x00" * 30], granule=320, seq=2)
        framer = OggFramer()
        packets = framer.feed(headers + audio)
        self.assertEqual(framer.header_pages, headers)
        self.assertEqual([(p.header, p.data) for p in packets], [(True, headers), (False, audio)])

    def test_flac_comment_block(self):
        self.assertEqual(parse_comments(comment_packet(b"\x84\x00\x00\x10", title="F")), {"title": "F"})


class RobustnessTests(SynchronousTestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.binary(max_size=3000), max_size=20), st.sampled_from(
        [MP3Framer, ADTSFramer, OggFramer, OpaqueFramer]))
    def test_random_bytes_never_raise(self, chunks, cls):
        framer = cls()
        for chunk in chunks:
            for packet in framer.feed(chunk):
                self.assertIsInstance(packet.data, bytes)
                self.assertGreaterEqual(packet.duration, 0.0)
        framer.take_metadata()

    @settings(max_examples=100, deadline=None)
    @given(st.binary(max_size=500).filter(lambda b: b"ID3" not in b), st.integers(1, 700))
    def test_frames_survive_junk_prefix(self, junk, piece):
        # Junk holding "ID3" would be a real tag that swallows what follows.
        frames = b"".join(mp3_frame() for _ in range(6))
        out = b"".join(p.data for p in feed_in_pieces(MP3Framer(), junk + frames, piece))
        self.assertTrue(out.endswith(frames[-2000:]))


class ChoiceTests(SynchronousTestCase):
    def test_framer_for(self):
        self.assertIsInstance(framer_for("audio/mpeg").declared, MP3Framer)
        self.assertIsInstance(framer_for("audio/aacp; x=1").declared, ADTSFramer)
        self.assertIsInstance(framer_for("application/ogg"), OggFramer)
        self.assertIsInstance(framer_for("audio/webm"), OpaqueFramer)

    def test_aac_labelled_mp3_is_framed_as_aac(self):
        framer = framer_for("audio/mpeg")
        sent = adts_frame() * 10
        self.assertEqual(framer.feed(sent[:5]), [])  # not enough to tell yet
        out = b"".join(p.data for p in framer.feed(sent[5:]))
        self.assertEqual((framer.content_type, framer.mismatch), ("audio/aac", True))
        more = adts_frame() * 3
        sent += more
        out += b"".join(p.data for p in framer.feed(more))
        self.assertEqual(out, sent[:len(out)])  # whole frames, in order, nothing lost
        self.assertGreaterEqual(len(out), 12 * len(adts_frame()))

    def test_mp3_labelled_mp3_stays_mp3(self):
        framer = framer_for("audio/mpeg")
        self.assertTrue(framer.feed(mp3_frame() * 5))
        self.assertEqual((framer.content_type, framer.mismatch), ("audio/mpeg", False))

    def test_unrecognisable_bytes_go_by_the_label(self):
        framer = framer_for("audio/aac")
        self.assertEqual(framer.feed(b"\x00" * (70 * 1024)), [])
        self.assertIsInstance(framer.framer, ADTSFramer)
        self.assertFalse(framer.mismatch)

    def test_streamable(self):
        self.assertTrue(is_streamable("audio/flac"))
        self.assertTrue(is_streamable("application/ogg"))
        self.assertFalse(is_streamable("text/html"))
