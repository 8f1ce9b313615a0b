"""LL-HLS: part timing, playlists, blocking playlist reload, preload hints, bounds."""

import re

from twisted.trial.unittest import SynchronousTestCase

from gocast.config import parse_config
from gocast.media import fmp4
from gocast.media.llhls import PartSegmenter

from .media_builders import adts_frame, mp3_frame
from .streaming import Harness, close, feed_frames, split_response

FRAME = 1024 / 44100  # one AAC frame from media_builders
MP3_FRAME = 1152 / 44100


def fed(seconds, segment=2.0, part=0.5, codec="aac", **kw):
    segmenter = PartSegmenter(codec, segment, part, **kw)
    frame, length = (adts_frame(), FRAME) if codec == "aac" else (mp3_frame(), MP3_FRAME)
    for i in range(int(seconds / length)):
        segmenter.add(frame, length, 1700000000.0 + i * length)
    return segmenter


class PartTimingTests(SynchronousTestCase):
    def test_parts_never_exceed_the_target_and_fill_it(self):
        segmenter = fed(9.0)
        parts = [p for s in segmenter.segments for p in s.parts]
        self.assertTrue(all(0.85 * 0.5 <= p.duration <= 0.5 for p in parts), [p.duration for p in parts])
        self.assertEqual({len(s.parts) for s in segmenter.segments}, {4})
        for segment in segmenter.segments:
            self.assertAlmostEqual(segment.duration, 4 * 21 * FRAME)
            self.assertEqual(segment.data, b"".join(p.data for p in segment.parts))

    def test_a_part_is_cut_as_soon_as_the_next_frame_would_not_fit(self):
        segmenter = PartSegmenter("aac", 2.0, 0.5)
        segmenter.add(adts_frame(200) * 20, 20 * FRAME, 0.0)
        self.assertEqual(segmenter.parts, [])
        segmenter.add(adts_frame(200), FRAME, 0.0)  # the 21st: a 22nd would pass 0.5 s
        self.assertEqual([len(fmp4.find_box(p.data, [b"mdat"])) for p in segmenter.parts], [21 * 200])

    def test_decode_times_run_on(self):
        segmenter = fed(3.0)
        parts = [p for s in segmenter.segments for p in s.parts] + segmenter.parts
        times = [int.from_bytes(fmp4.find_box(p.data, [b"moof", b"traf", b"tfdt"])[4:], "big") for p in parts]
        self.assertEqual(times, [441000 + i * 21 * 1024 for i in range(len(parts))])

    def test_title_as_emsg_at_each_segment_start(self):
        segmenter = PartSegmenter("aac", 2.0, 0.5)
        segmenter.set_title("Tune", "Band")
        for _ in range(200):
            segmenter.add(adts_frame(), FRAME, 0.0)
        first, second = segmenter.segments[0].parts[:2]
        self.assertEqual(fmp4.boxes(first.data)[0][0], b"emsg")
        self.assertIn(b"TIT2", first.data)
        self.assertEqual(fmp4.boxes(second.data)[0][0], b"moof")

    def test_memory_bounded(self):
        segmenter = fed(120.0, playlist_length=3)
        self.assertEqual(len(segmenter.segments), 6)
        self.assertEqual(list(segmenter.inits), [0])

    def test_mp3_in_cmaf(self):
        segmenter = fed(5.0, codec="mp3")
        init = segmenter.lookup("init_0.mp4")[1]
        self.assertIn(b"\x04\x80\x80\x80\x0d\x6b", init)  # objectTypeIndication 0x6B: MPEG-1 audio
        part = segmenter.lookup("part_0_1.m4s")[1]
        self.assertEqual(fmp4.find_box(part, [b"mdat"])[:4], mp3_frame()[:4])  # whole frames, header and all

    def test_format_change_is_a_discontinuity_with_a_new_map(self):
        segmenter = PartSegmenter("aac", 2.0, 0.5, playlist_length=5)
        for _ in range(100):
            segmenter.add(adts_frame(), 1024 / 44100, 0.0)
        for _ in range(100):
            segmenter.add(adts_frame(channels=1), 1024 / 44100, 0.0)
        text = segmenter.playlist()
        self.assertEqual(text.count("#EXT-X-DISCONTINUITY\n"), 1)
        maps = re.findall(r'#EXT-X-MAP:URI="init_(\d+)\.mp4"', text)
        self.assertEqual(len(maps), 2)
        self.assertIn('#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init_%s.mp4"' % maps[1], text)
        self.assertNotEqual(segmenter.lookup("init_%s.mp4" % maps[0]), segmenter.lookup("init_%s.mp4" % maps[1]))


class PlaylistTests(SynchronousTestCase):
    def test_playlist_text(self):
        segmenter = fed(7.2, playlist_length=3)  # three segments and a part or two of the fourth
        lines = segmenter.playlist().splitlines()
        self.assertEqual(lines[:7], [
            "#EXTM3U", "#EXT-X-VERSION:6", "#EXT-X-TARGETDURATION:2",
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500",
            "#EXT-X-PART-INF:PART-TARGET=0.500", "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-DISCONTINUITY-SEQUENCE:0"])
        self.assertEqual(lines[7], '#EXT-X-MAP:URI="init_0.mp4"')
        self.assertEqual(lines[8], "#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:19.976Z")  # first sample in
        self.assertEqual(lines[9], "#EXTINF:1.950,")  # parts are listed only near the live edge
        self.assertIn('#EXT-X-PART:DURATION=0.488,URI="part_1_0.m4s",INDEPENDENT=YES', lines)
        self.assertIn("#EXTINF:1.950,\nsegment_2.m4s\n#EXT-X-PROGRAM-DATE-TIME", "\n".join(lines))
        current, parts = segmenter.newest()
        self.assertEqual(current, 3)
        self.assertEqual(lines[-1], '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part_3_%d.m4s"' % (parts + 1))
        self.assertEqual(lines.count("#EXT-X-MAP:URI=\"init_0.mp4\""), 1)

    def test_playlist_rendered_once_per_change(self):
        segmenter = fed(7.2, playlist_length=3)
        first = segmenter.playlist()
        self.assertIs(segmenter.playlist(), first)  # asked again: the same text, not rendered again
        newest = segmenter.newest()
        while segmenter.newest() == newest:  # until the next part is cut
            segmenter.add(adts_frame(), 1024 / 44100, 1700000010.0)
        again = segmenter.playlist()
        self.assertNotEqual(again, first)
        self.assertEqual(again, segmenter.render_playlist())
        segmenter.discontinuity()
        self.assertIn("#EXT-X-DISCONTINUITY", segmenter.playlist())
        self.assertEqual(segmenter.playlist(), segmenter.render_playlist())

    def test_parts_only_for_the_last_three_target_durations(self):
        segmenter = fed(30.0, playlist_length=6)
        text = segmenter.playlist()
        first_listed = int(re.search(r'URI="part_(\d+)_0', text).group(1))
        self.assertGreater(first_listed, segmenter.live()[0].sequence)
        self.assertIn("segment_%d.m4s" % segmenter.live()[0].sequence, text)

    def test_lookup(self):
        segmenter = fed(5.0)
        self.assertEqual(segmenter.lookup("segment_1.m4s"), ("audio/mp4", segmenter.segments[1].data))
        self.assertEqual(segmenter.lookup("part_1_2.m4s"), ("audio/mp4", segmenter.segments[1].parts[2].data))
        self.assertEqual(segmenter.lookup("init_0.mp4")[1][4:8], b"ftyp")
        for name in ("part_1_9.m4s", "segment_x.m4s", "part_1.m4s", "init_0.ts", "segment_99.m4s"):
            self.assertIsNone(segmenter.lookup(name), name)

    def test_has_and_too_far(self):
        segmenter = fed(2.3)  # segment 0 complete, segment 1 has no part yet
        self.assertEqual(segmenter.newest(), (0, 3))
        self.assertTrue(segmenter.has(0, None))
        self.assertTrue(segmenter.has(0, 3))
        self.assertFalse(segmenter.has(0, 4))  # the part after the last of segment 0: not out
        self.assertFalse(segmenter.has(1, 0))
        self.assertFalse(segmenter.has(1, None))
        self.assertFalse(segmenter.too_far(2, 0))
        self.assertTrue(segmenter.too_far(3, 0))
        self.assertTrue(segmenter.too_far(0, 7))


LL = "mounts { live { hls { enabled true low_latency true segment_duration 2 part_duration 0.5 } } }"


class BlockingReloadTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness(LL)
        self.source, _ = self.h.source(content_type="audio/aac")
        self.feed(115)  # 2.7 s: segment 0 and part 0 of segment 1
        self.segmenter = self.h.hls.output("/live").segmenter

    def feed(self, frames):
        feed_frames(self.source, frames, adts_frame())

    def request(self, target):
        _, transport = self.h.connect(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target).encode())
        return transport

    def test_playlist_and_cache_headers(self):
        status, headers, body = self.h.get("/hls/live/playlist.m3u8")
        self.assertIn(" 200 ", status)
        self.assertEqual(headers["cache-control"], "max-age=0")  # half a part
        self.assertIn(b"#EXT-X-PART-INF", body)
        status, headers, body = self.h.get("/hls/live/part_0_1.m4s")
        self.assertEqual((headers["content-type"], headers["cache-control"]),
                         ("audio/mp4", "public, max-age=31536000, immutable"))
        self.assertEqual(body, self.segmenter.part(0, 1).data)
        self.assertEqual(self.h.get("/hls/live/init_0.mp4")[2][4:8], b"ftyp")

    def test_blocks_until_the_part_exists(self):
        sequence, part = self.segmenter.newest()
        transport = self.request("/hls/live/playlist.m3u8?_HLS_msn=%d&_HLS_part=%d" % (sequence, part + 1))
        self.feed_until_answered(transport, lambda: self.segmenter.has(sequence, part + 1))
        status, _, body = split_response(transport.value())
        self.assertIn(" 200 ", status)
        self.assertIn(b'URI="part_%d_%d.m4s"' % (sequence, part + 1), body)
        self.assertEqual(self.h.hls.output("/live")._waiters, {})

    def feed_until_answered(self, transport, ready):
        """Feed frame by frame: no answer while not ``ready()``, an answer once it is."""
        for _ in range(60):
            if transport.value():
                break
            self.assertFalse(ready())
            self.feed(1)
        self.assertTrue(ready())

    def test_already_there_answers_at_once(self):
        status, _, _ = split_response(self.request("/hls/live/playlist.m3u8?_HLS_msn=0&_HLS_part=1").value())
        self.assertIn(" 200 ", status)

    def test_timeout_is_503(self):
        transport = self.request("/hls/live/playlist.m3u8?_HLS_msn=2&_HLS_part=0")
        self.h.clock.advance(5.9)
        self.assertEqual(transport.value(), b"")
        self.h.clock.advance(0.2)  # three target durations
        self.assertIn(" 503 ", split_response(transport.value())[0])

    def test_bad_requests(self):
        for query, reason in (("_HLS_msn=9", b"too far ahead"), ("_HLS_msn=1&_HLS_part=9", b"too far ahead"),
                              ("_HLS_part=1", b"needs _HLS_msn"), ("_HLS_msn=-1", b"non-negative integer"),
                              ("_HLS_msn=x", b"non-negative integer")):
            status, _, body = self.h.get("/hls/live/playlist.m3u8?" + query)
            self.assertIn(" 400 ", status, query)
            self.assertIn(reason, body)

    def test_client_leaving_forgets_the_wait(self):
        proto, _ = self.h.connect(b"GET /hls/live/playlist.m3u8?_HLS_msn=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(len(self.h.hls.output("/live")._waiters), 1)
        close(proto)
        self.assertEqual(self.h.hls.output("/live")._waiters, {})
        self.assertEqual(self.h.clock.getDelayedCalls(), [c for c in self.h.clock.getDelayedCalls()
                                                         if c.active()])

    def test_preload_hint_blocks_until_cut(self):
        hint = re.search(rb'PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', self.h.get("/hls/live/playlist.m3u8")[2])
        name = hint.group(1).decode()
        transport = self.request("/hls/live/" + name)
        self.feed_until_answered(transport, lambda: self.segmenter.lookup(name) is not None)
        status, headers, body = split_response(transport.value())
        self.assertIn(" 200 ", status)
        self.assertEqual(fmp4.boxes(body)[-1][0], b"mdat")
        self.assertIn(" 404 ", self.h.get("/hls/live/part_9_9.m4s")[0])  # not the hint: no wait

    def test_waiters_are_bounded(self):
        self.patch(__import__("gocast.outputs.hls", fromlist=["MAX_WAITERS"]), "MAX_WAITERS", 2)
        for _ in range(2):
            self.request("/hls/live/playlist.m3u8?_HLS_msn=2")
        self.assertIn(" 503 ", self.h.get("/hls/live/playlist.m3u8?_HLS_msn=2")[0])

    def test_hundreds_waiting_are_released_together(self):
        sequence, part = self.segmenter.newest()
        target = "/hls/live/playlist.m3u8?_HLS_msn=%d&_HLS_part=%d" % (sequence, part + 1)
        transports = [self.h.connect(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target).encode(),
                                     "10.1.%d.%d" % divmod(i, 250))[1] for i in range(900)]
        early = self.request("/hls/live/playlist.m3u8?_HLS_msn=%d&_HLS_part=%d" % (sequence + 1, 0))
        self.feed_until_answered(transports[0], lambda: self.segmenter.has(sequence, part + 1))
        self.assertEqual({split_response(t.value())[0] for t in transports}, {"HTTP/1.1 200 OK"})
        self.assertEqual(early.value(), b"")  # a later part: still waiting
        self.assertEqual(list(self.h.hls.output("/live")._waiters.values())[0][0](), False)
        self.assertEqual(len(self.h.hls.output("/live")._waiters), 1)

    def test_standard_mode_ignores_blocking_parameters(self):
        h = Harness("mounts { live { hls { enabled true segment_duration 2 } } }")
        source, _ = h.source()
        feed_frames(source, 100)
        status, headers, body = h.get("/hls/live/playlist.m3u8?_HLS_msn=99")
        self.assertIn(" 200 ", status)
        self.assertEqual(headers["cache-control"], "max-age=1")  # half a segment
        self.assertNotIn(b"EXT-X-PART", body)

    def test_switching_mode_on_reload(self):
        self.h.registry.configure(parse_config(LL.replace("low_latency true", "low_latency false")).config)
        self.feed(40)
        segmenter = self.h.hls.output("/live").segmenter
        self.assertFalse(segmenter.low_latency)
        self.assertGreater(segmenter.next_sequence, self.segmenter.next_sequence)  # names are not reused
