"""The fragmented-MP4 (CMAF) muxer: box layout, sample tables, timed ID3."""

import struct

from twisted.trial.unittest import SynchronousTestCase

from gocast.media import fmp4

from .media_builders import adts_frame, mp3_frame


class SplitFramesTests(SynchronousTestCase):
    def test_adts_headers_become_the_decoder_config(self):
        frames = list(fmp4.split_frames("aac", adts_frame(100) + adts_frame(120, channels=1)))
        self.assertEqual([len(f.data) for f in frames], [100, 120])  # ADTS headers stripped
        self.assertEqual(frames[0].samples, 1024)
        fmt = frames[0].format
        self.assertEqual((fmt.sample_rate, fmt.channels, fmt.object_type), (44100, 2, 0x40))
        # AAC LC (object type 2), 44.1 kHz (index 4), stereo: 00010 0100 0010 000
        self.assertEqual(fmt.decoder_config, bytes([0x12, 0x10]))
        self.assertNotEqual(frames[1].format, fmt)  # mono: another format

    def test_mp3_frames_stay_whole(self):
        frame = mp3_frame()
        frames = list(fmp4.split_frames("mp3", frame * 3))
        self.assertEqual([f.data for f in frames], [frame] * 3)
        self.assertEqual((frames[0].samples, frames[0].format.object_type, frames[0].format.channels),
                         (1152, 0x6B, 2))

    def test_trailing_garbage_is_ignored(self):
        self.assertEqual(len(list(fmp4.split_frames("mp3", mp3_frame() + b"\x00\x01"))), 1)


class BoxTests(SynchronousTestCase):
    def test_init_segment(self):
        fmt = next(fmp4.split_frames("aac", adts_frame())).format
        init = fmp4.init_segment(fmt)
        self.assertEqual([kind for kind, _ in fmp4.boxes(init)], [b"ftyp", b"moov"])
        self.assertEqual(fmp4.find_box(init, [b"ftyp"])[:4], b"iso6")
        mdhd = fmp4.find_box(init, [b"moov", b"trak", b"mdia", b"mdhd"])
        self.assertEqual(struct.unpack(">I", mdhd[12:16])[0], 44100)  # the timescale is the sample rate
        stsd = fmp4.find_box(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
        self.assertIn(b"mp4a", stsd)
        self.assertIn(b"\x05\x80\x80\x80\x02\x12\x10", stsd)  # DecoderSpecificInfo: the AudioSpecificConfig
        trex = fmp4.find_box(init, [b"moov", b"mvex", b"trex"])
        self.assertEqual(struct.unpack(">I", trex[4:8])[0], fmp4.TRACK_ID)

    def test_fragment_offsets_and_sample_table(self):
        samples = [(b"\xaa" * 10, 1024), (b"\xbb" * 20, 1024)]
        data = fmp4.fragment(7, 441000, samples)
        kinds = fmp4.boxes(data)
        self.assertEqual([k for k, _ in kinds], [b"moof", b"mdat"])
        self.assertEqual(kinds[1][1], b"\xaa" * 10 + b"\xbb" * 20)
        self.assertEqual(struct.unpack(">I", fmp4.find_box(data, [b"moof", b"mfhd"])[4:])[0], 7)
        tfdt = fmp4.find_box(data, [b"moof", b"traf", b"tfdt"])
        self.assertEqual((tfdt[0], struct.unpack(">Q", tfdt[4:])[0]), (1, 441000))
        trun = fmp4.find_box(data, [b"moof", b"traf", b"trun"])
        count, offset = struct.unpack(">Ii", trun[4:12])
        self.assertEqual(count, 2)
        self.assertEqual(data[offset : offset + 10], b"\xaa" * 10)  # data_offset points into mdat
        self.assertEqual(struct.unpack(">IIII", trun[12:]), (1024, 10, 1024, 20))

    def test_emsg_carries_id3(self):
        data = fmp4.emsg_id3(b"ID3tag", 44100, 882000, 3)
        body = fmp4.find_box(data, [b"emsg"])
        self.assertEqual(body[0], 1)  # version 1: absolute presentation time
        self.assertEqual(struct.unpack(">IQII", body[4:24]), (44100, 882000, 0xFFFFFFFF, 3))
        self.assertTrue(body[24:].startswith(fmp4.ID3_SCHEME + b"\x00\x00"))
        self.assertTrue(body.endswith(b"ID3tag"))
