"""
Adaptive-bitrate HLS: segments of the variants line up (anchored
segmenters), the master playlist lists the live variants with their
bitrates and codecs (read back with the m3u8 package), and its config.
"""

import m3u8
from twisted.trial.unittest import SynchronousTestCase

from gocast.config import ConfigError, hls_variants, parse_config, with_transcoding_outputs
from gocast.media.hls import Segmenter, Variant, master_playlist, measured_bandwidth
from gocast.media.mpegts import AUDIO_PID, decode_pts

from .media_builders import adts_frame, mp3_frame
from .streaming import feed_frames
from .test_hls import packets
from .test_ladder import Ladder, ladder_config

#: MP3 frames are 1152 samples, AAC 1024: at 44.1 kHz, 26.1 ms and 23.2 ms.
MP3_FRAME, AAC_FRAME = 1152 / 44100, 1024 / 44100
ANCHOR = 1764000000.3


def first_pts(segment):
    audio = [p for p in packets(segment.data) if ((p[1] & 0x1F) << 8 | p[2]) == AUDIO_PID][0]
    payload = audio[4 + 1 + audio[4]:]
    return decode_pts(payload[9:14])


def fill(segmenter, frame, frame_seconds, chunk_frames, seconds):
    """Chunks of ``chunk_frames`` frames, as a mount hands them, for ``seconds`` of audio."""
    now, done = ANCHOR, 0.0
    while done < seconds:
        duration = chunk_frames * frame_seconds
        now += duration
        segmenter.add(frame * chunk_frames, duration, now)
        done += duration


class AnchoredSegmenterTests(SynchronousTestCase):
    def test_variants_in_other_codecs_line_up(self):
        mp3 = Segmenter("mp3", 2.0, 10, anchor=ANCHOR)
        aac = Segmenter("aac", 2.0, 10, anchor=ANCHOR)
        fill(mp3, mp3_frame(), MP3_FRAME, 9, 20)  # chunks of 235 ms
        fill(aac, adts_frame(), AAC_FRAME, 13, 20)  # chunks of 302 ms: other cut points
        self.assertEqual([s.sequence for s in mp3.segments], [s.sequence for s in aac.segments])
        self.assertEqual(mp3.segments[0].sequence, int(ANCHOR // 2))
        for a, b in zip(list(mp3.segments)[1:], list(aac.segments)[1:]):
            # Each starts within a frame of its boundary, and of the other's start.
            boundary = a.sequence * 2.0
            self.assertLess(abs(first_pts(a) / 90000 - boundary % (2 ** 33 / 90000)), MP3_FRAME)
            self.assertLess(abs(first_pts(a) - first_pts(b)), MP3_FRAME * 90000)
            self.assertLess(abs(a.duration - 2.0), MP3_FRAME)
        # The first is what was left of its segment's time after the anchor.
        self.assertLess(abs(mp3.segments[0].duration - (2.0 - ANCHOR % 2.0)), MP3_FRAME)

    def test_timestamps_follow_the_audio_without_drift(self):
        aac = Segmenter("aac", 2.0, 3, anchor=ANCHOR)
        fill(aac, adts_frame(), AAC_FRAME, 7, 600)  # ten minutes in chunks of 162 ms
        last = aac.segments[-1]
        expected = (ANCHOR + sum_frames_before(last, AAC_FRAME)) * 90000 % 2 ** 33
        self.assertLess(abs(first_pts(last) - expected), 2)


def sum_frames_before(segment, frame_seconds):
    """Stream time of a segment's first frame: the first frame at or after its boundary minus half a frame."""
    boundary = segment.sequence * 2.0 - ANCHOR
    frames = -(-(boundary - frame_seconds / 2) // frame_seconds)
    return frames * frame_seconds


class MasterPlaylistTests(SynchronousTestCase):
    def test_text_and_bandwidth(self):
        text = master_playlist([Variant("../live-320/playlist.m3u8", 352000, 340000, "mp3"),
                                Variant("../live-64/playlist.m3u8", 70400, 70000, "aac")])
        parsed = m3u8.loads(text)
        self.assertTrue(parsed.is_variant)
        self.assertEqual([(p.uri, p.stream_info.bandwidth, p.stream_info.average_bandwidth, p.stream_info.codecs)
                          for p in parsed.playlists],
                         [("../live-320/playlist.m3u8", 352000, 340000, "mp4a.40.34"),
                          ("../live-64/playlist.m3u8", 70400, 70000, "mp4a.40.2")])
        self.assertEqual(measured_bandwidth([], 64000), (70400, 70400))

    def test_served_from_the_ladders_outputs(self):
        t = Ladder(ladder_config(parent="hls { enabled true segment_duration 2 }"))
        source, _ = t.h.source()
        feed_frames(source, 40)
        self.assertEqual(t.h.get("/hls/live/master.m3u8")[0], "HTTP/1.0 404 Not Found")  # no variant live yet
        t.encode()
        for _ in range(5):
            t.write(3, mp3_frame(320) * 40)
            t.write(4, adts_frame() * 40)
        status, headers, body = t.h.get("/hls/live/master.m3u8?token=abc&session=s1")
        self.assertEqual((status, headers["content-type"]), ("HTTP/1.0 200 OK", "application/vnd.apple.mpegurl"))
        parsed = m3u8.loads(body.decode())
        listed = [(p.uri, p.stream_info.codecs) for p in parsed.playlists]
        self.assertEqual(listed, [
            ("../../hls/live-320/playlist.m3u8?token=abc&session=s1", "mp4a.40.34"),
            ("../../hls/live-96/playlist.m3u8?token=abc&session=s1", "mp4a.40.2"),  # Opus is made AAC
            ("../../hls/live-64/playlist.m3u8?token=abc&session=s1", "mp4a.40.2")])
        high, _, low = parsed.playlists
        self.assertGreater(high.stream_info.bandwidth, 320000)  # measured on its segments
        self.assertLess(low.stream_info.bandwidth, high.stream_info.bandwidth)
        # The variants' segments line up: the same sequence numbers.
        outputs = [t.h.hls.output(p) for p in ("/live-320", "/live-64")]
        self.assertEqual(*[[s.sequence for s in o.segmenter.segments] for o in outputs])
        self.assertTrue(outputs[0].segmenter.segments)


    @staticmethod
    def encoding(parent):
        """A ladder whose ffmpeg wrote each output's first bytes."""
        t = Ladder(ladder_config(parent=parent))
        source, _ = t.h.source()
        feed_frames(source, 40)
        t.encode()
        return t

    def test_low_latency_variants_are_aac(self):
        t = self.encoding("hls { enabled true low_latency true segment_duration 2 }")
        status, _, body = t.h.get("/hls/live/master.m3u8")
        self.assertEqual(status, "HTTP/1.0 200 OK")
        self.assertEqual({p.stream_info.codecs for p in m3u8.loads(body.decode()).playlists}, {"mp4a.40.2"})

    def test_a_master_under_the_mounts_own_prefix(self):
        t = self.encoding("hls { enabled true path /radio }")
        _, _, body = t.h.get("/radio/master.m3u8")
        self.assertIn("../hls/live-64/playlist.m3u8", body.decode())


class VariantConfigTests(SynchronousTestCase):
    def test_automatic_from_transcoding_outputs_highest_first(self):
        config = with_transcoding_outputs(parse_config(ladder_config(parent="hls { enabled true }")).config)
        self.assertEqual(hls_variants(config, "/live"), ("/live-320", "/live-96", "/live-64"))
        self.assertEqual(hls_variants(config, "/live-64"), ())

    def test_listed_variants_and_mistakes(self):
        config = parse_config("mounts { a { hls { enabled true variants [/b /c] } } b { hls { enabled true } } "
                              "c { hls { enabled true } } }").config
        self.assertEqual(hls_variants(config, "/a"), ("/b", "/c"))
        with self.assertRaises(ConfigError) as caught:
            parse_config("mounts { a { hls { enabled true variants [/b /nope] } } b { hls { enabled true } } }")
        self.assertIn("/nope is not a mount of this config", str(caught.exception.issues[0]))
        with self.assertRaises(ConfigError) as caught:
            parse_config("mounts { a { hls { enabled true variants [/b] } } b { } }")
        self.assertIn("/b serves no HLS", str(caught.exception.issues[0]))
        with self.assertRaises(ConfigError) as caught:
            parse_config("mounts { a { hls { variants [/b] } } b { } }")
        self.assertIn("set enabled true too", str(caught.exception.issues[0]))
