"""
MPEG-DASH: the live MPD (read back with lxml), its Representations per
variant on one clock-based timeline, the CMAF files it names, caching,
tokens and listener auth, and the config.
"""

import jwt
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from gocast.config import parse_config
from gocast.media.dash import NAMESPACE, Representation, TimelineEntry, live_mpd
from gocast.media.fmp4 import split_frames

from .media_builders import adts_frame, mp3_frame
from .streaming import Harness, feed_frames
from .test_ladder import Ladder

NS = {"d": NAMESPACE}


def mpd_of(body):
    return etree.fromstring(body)


def feed_aac(source, seconds):
    frame = adts_frame()
    feed_frames(source, int(seconds * 44100 / 1024), frame)


class MpdTests(SynchronousTestCase):
    def test_a_dynamic_mpd_with_a_timeline_per_representation(self):
        entries = [TimelineEntry(441000 + n, (441000 + n) * 4 * 44100, 4 * 44100) for n in range(3)]
        text = live_mpd([Representation("live-64", 70400, "mp4a.40.2", 44100, 2, "../live-64/",
                                        "init_9.mp4", "segment_$Number$.m4s?token=a%26b", entries)],
                        now=1764000000.0, segment_duration=4.0, window=5)
        root = mpd_of(text.encode())
        self.assertEqual(root.get("type"), "dynamic")
        self.assertEqual(root.get("availabilityStartTime"), "1970-01-01T00:00:00Z")
        self.assertEqual((root.get("minimumUpdatePeriod"), root.get("timeShiftBufferDepth")), ("PT4S", "PT20S"))
        [representation] = root.findall(".//d:Representation", NS)
        self.assertEqual((representation.get("bandwidth"), representation.get("codecs")), ("70400", "mp4a.40.2"))
        template = representation.find("d:SegmentTemplate", NS)
        self.assertEqual(template.get("media"), "segment_$Number$.m4s?token=a%26b")
        self.assertEqual((template.get("startNumber"), template.get("timescale")), ("441000", "44100"))
        self.assertEqual([int(s.get("t")) for s in template.findall(".//d:S", NS)],
                         [e.start for e in entries])
        self.assertEqual(representation.find("d:BaseURL", NS).text, "../live-64/")
        timing = root.find("d:UTCTiming", NS)
        self.assertEqual(timing.get("value"), "2025-11-24T16:00:00.000Z")


class DashServingTests(SynchronousTestCase):
    def test_a_mount_alone(self):
        h = Harness("mounts { live { dash { enabled true segment_duration 2 window 3 } } }")
        status, _, _ = h.get("/dash/live/manifest.mpd")
        self.assertEqual(status, "HTTP/1.0 404 Not Found")  # no source yet
        source, _ = h.source(content_type="audio/aac")
        feed_aac(source, 9)
        status, headers, body = h.get("/dash/live/manifest.mpd")
        self.assertEqual((status, headers["content-type"], headers["cache-control"]),
                         ("HTTP/1.0 200 OK", "application/dash+xml", "public, max-age=1"))
        root = mpd_of(body)
        [representation] = root.findall(".//d:Representation", NS)
        template = representation.find("d:SegmentTemplate", NS)
        timeline = template.findall(".//d:S", NS)
        self.assertGreaterEqual(len(timeline), 3)
        # Segment numbers and times are the clock's: number N starts at N * 2 s (in samples).
        first = int(template.get("startNumber"))
        for index, entry in enumerate(timeline):
            start = int(entry.get("t")) / 44100
            self.assertLess(abs(start - (first + index) * 2.0), 0.03 if index else 2.0)
        # The files it names are there, immutable, and hold the AAC frames.
        status, headers, init = h.get("/dash/live/" + template.get("initialization"))
        self.assertEqual((status, headers["content-type"]), ("HTTP/1.0 200 OK", "audio/mp4"))
        self.assertIn(b"ftyp", init[:16])
        status, headers, segment = h.get("/dash/live/segment_%d.m4s" % (first + 1))
        self.assertEqual((status, headers["cache-control"]), ("HTTP/1.0 200 OK",
                                                              "public, max-age=31536000, immutable"))
        self.assertIn(b"moof", segment)
        self.assertEqual(h.get("/dash/live/segment_%d.m4s" % (first + 99))[0], "HTTP/1.0 404 Not Found")
        self.assertEqual(h.get("/dash/live/playlist.m3u8")[0], "HTTP/1.0 404 Not Found")
        self.assertIn("listener.connect", h.event_names())  # a DASH player is a listener

    def test_the_roadmaps_path_and_a_token(self):
        h = Harness('mounts { live { dash { enabled true segment_duration 2 path /radio/dash } '
                    'auth { type token secret "dash-test-secret-of-32-bytes-long" } } }')
        source, _ = h.source(content_type="audio/aac")
        feed_aac(source, 7)
        self.assertEqual(h.get("/radio/dash/manifest.mpd")[0], "HTTP/1.0 401 Unauthorized")
        token = jwt.encode({"exp": 2000000000}, "dash-test-secret-of-32-bytes-long", algorithm="HS256")
        status, headers, body = h.get("/radio/dash/manifest.mpd?token=" + token)
        self.assertEqual(status, "HTTP/1.0 200 OK")
        self.assertTrue(headers["cache-control"].startswith("private"))
        template = mpd_of(body).find(".//d:SegmentTemplate", NS)
        self.assertTrue(template.get("media").endswith("?token=" + token))
        self.assertEqual(mpd_of(body).find(".//d:BaseURL", NS).text, "../../dash/live/")
        self.assertEqual(h.get("/dash/live/" + template.get("initialization"))[0], "HTTP/1.0 200 OK")

    def test_variants_of_a_ladder_line_up(self):
        t = Ladder("""mounts { live {
            dash { enabled true segment_duration 2 }
            transcoding { enabled true outputs {
                a { path /live-hi format aac bitrate 128k }
                b { path /live-lo format aac bitrate 48k } } } } }""")
        source, _ = t.h.source()
        feed_frames(source, 40)
        for _ in range(6):
            t.write(3, adts_frame(payload=400) * 40)
            t.write(4, adts_frame(payload=100) * 40)
        status, _, body = t.h.get("/dash/live/manifest.mpd")
        self.assertEqual(status, "HTTP/1.0 200 OK")
        representations = mpd_of(body).findall(".//d:Representation", NS)
        self.assertEqual([r.get("id") for r in representations], ["live-hi", "live-lo"])
        self.assertGreater(*[int(r.get("bandwidth")) for r in representations])
        timelines = [[(s.get("t"), s.get("d")) for s in r.findall(".//d:S", NS)] for r in representations]
        self.assertEqual(timelines[0], timelines[1])  # the same boundaries: switch anywhere
        numbers = [r.find("d:SegmentTemplate", NS).get("startNumber") for r in representations]
        self.assertEqual(numbers[0], numbers[1])


class FramesTests(SynchronousTestCase):
    def test_split_frames_sees_mp3_and_aac(self):
        self.assertEqual(len(list(split_frames("aac", adts_frame() * 3))), 3)
        self.assertEqual(len(list(split_frames("mp3", mp3_frame() * 2))), 2)


class SharedPackagingTests(SynchronousTestCase):
    def test_low_latency_hls_and_dash_share_one_packaging(self):
        h = Harness("mounts { live { hls { enabled true low_latency true segment_duration 2 } "
                    "dash { enabled true segment_duration 2 } } }")
        self.assertIsNone(h.dash.output("/live"))  # no second segmenter
        source, _ = h.source(content_type="audio/aac")
        feed_aac(source, 7)
        hls = h.hls.output("/live")
        self.assertIsNotNone(hls.segmenter.anchor)  # on the clock, for DASH
        status, _, body = h.get("/dash/live/manifest.mpd")
        self.assertEqual(status, "HTTP/1.0 200 OK")
        template = mpd_of(body).find(".//d:SegmentTemplate", NS)
        number = int(template.get("startNumber"))
        # The same bytes under both names: one packaging, two manifests.
        self.assertEqual(h.get("/dash/live/segment_%d.m4s" % number)[2],
                         h.get("/hls/live/segment_%d.m4s" % number)[2])
        self.assertIn("segment_%d.m4s" % number, h.get("/hls/live/playlist.m3u8")[2].decode())
        # Another segment duration: DASH cuts its own.
        h.registry.configure(parse_config("mounts { live { hls { enabled true low_latency true "
                                          "segment_duration 2 } dash { enabled true segment_duration 4 } } }").config)
        self.assertIsNotNone(h.dash.output("/live"))


class LowLatencyDashTests(SynchronousTestCase):
    def test_the_segment_being_cut_is_announced_and_sent_as_it_grows(self):
        h = Harness("mounts { live { dash { enabled true segment_duration 2 low_latency true "
                    "part_duration 0.5 } } }")
        source, _ = h.source(content_type="audio/aac")
        feed_aac(source, 4.6)  # two whole segments, and a part of the third
        status, _, body = h.get("/dash/live/manifest.mpd")
        mpd = mpd_of(body)
        template = mpd.find(".//d:SegmentTemplate", NS)
        self.assertEqual((template.get("availabilityTimeOffset"), template.get("availabilityTimeComplete")),
                         ("1.5", "false"))
        self.assertEqual(mpd.find("d:ServiceDescription/d:Latency", NS).get("target"), "3000")
        timeline = template.findall(".//d:S", NS)
        growing = int(template.get("startNumber")) + len(timeline) - 1
        # The growing one is announced to its boundary on the clock.
        self.assertEqual((int(timeline[-1].get("t")) + int(timeline[-1].get("d"))) % (2 * 44100), 0)
        # Asked for while cut: what is there at once, the rest as it comes, the end with the segment.
        request = "GET /dash/live/segment_%d.m4s HTTP/1.1\r\nHost: x\r\n\r\n" % growing
        _, transport = h.connect(request.encode())
        first = transport.value()
        self.assertIn(b"Transfer-Encoding: chunked", first)
        self.assertIn(b"moof", first)
        self.assertNotIn(b"0\r\n\r\n", first[-7:])  # not finished
        feed_aac(source, 0.6)
        self.assertGreater(len(transport.value()), len(first))
        feed_aac(source, 1.5)  # the segment closes
        self.assertTrue(transport.value().endswith(b"0\r\n\r\n"))
        whole = h.get("/dash/live/segment_%d.m4s" % growing)[2]
        self.assertIn(whole, dechunk(transport.value().partition(b"\r\n\r\n")[2]))

    def test_a_segment_not_begun_waits_then_a_timeout_is_404(self):
        h = Harness("mounts { live { dash { enabled true segment_duration 2 low_latency true } } }")
        source, _ = h.source(content_type="audio/aac")
        feed_aac(source, 4.1)
        output = h.dash.output("/live")
        ahead = output.segmenter.next_sequence + 1
        _, transport = h.connect(("GET /dash/live/segment_%d.m4s HTTP/1.1\r\nHost: x\r\n\r\n" % ahead).encode())
        self.assertEqual(transport.value(), b"")
        h.clock.advance(10)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 404"))
        self.assertEqual(h.get("/dash/live/segment_%d.m4s" % (ahead + 5))[0], "HTTP/1.0 404 Not Found")


def dechunk(body):
    out, rest = b"", body
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        length = int(size, 16)
        if not length:
            break
        out, rest = out + rest[:length], rest[length + 2:]
    return out
