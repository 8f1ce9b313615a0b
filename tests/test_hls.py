"""MPEG-TS packets, PTS arithmetic, segmenting and playlists; HLS through the front door."""

import re

from twisted.trial.unittest import SynchronousTestCase

from gocast.config import parse_config

from gocast.outputs.hls import regroup_adts
from gocast.media.hls import FIRST_PTS, Segmenter
from gocast.media.mpegts import (
    AUDIO_PID,
    ID3_PID,
    METADATA_POINTER,
    PACKET,
    PMT_PID,
    PTS_WRAP,
    TSMuxer,
    crc32_mpeg,
    decode_pts,
    encode_pts,
    id3_tag,
    pat,
)

from .media_builders import adts_frame, mp3_frame
from .streaming import Harness, close, feed_frames, split_response


def packets(data):
    return [data[i : i + PACKET] for i in range(0, len(data), PACKET)]


class MpegTsTests(SynchronousTestCase):
    def test_alignment_sync_and_counters(self):
        muxer = TSMuxer("aac")
        first = muxer.segment([adts_frame(300)] * 5, [0, 1920, 3840, 5760, 7680])
        second = muxer.segment([adts_frame(170)], [9600])
        self.assertEqual(len(first) % PACKET, 0)
        counters = [p[3] & 0x0F for p in packets(first + second)
                    if ((p[1] & 0x1F) << 8 | p[2]) == AUDIO_PID]
        self.assertEqual(counters, [i % 16 for i in range(len(counters))])
        for packet in packets(first):
            self.assertEqual(packet[0], 0x47)

    def test_pat_crc(self):
        section = pat()[1:]
        self.assertEqual(crc32_mpeg(section), 0)  # a section with its CRC checks to zero

    def test_pts_round_trip_and_wrap(self):
        for pts in (0, 90000, PTS_WRAP - 1, 123456789):
            self.assertEqual(decode_pts(encode_pts(pts)), pts)
        self.assertEqual(decode_pts(encode_pts(PTS_WRAP + 5)), 5)

    def test_id3_carries_the_cover_url(self):
        import io

        from mutagen.id3 import ID3

        tags = ID3(io.BytesIO(id3_tag("Tune", "Band", "/live/artwork.jpg?v=3")))
        self.assertEqual((str(tags["TIT2"]), str(tags["TPE1"])), ("Tune", "Band"))
        [cover] = tags.getall("WXXX")
        self.assertEqual((cover.desc, cover.url), ("artwork", "/live/artwork.jpg?v=3"))
        self.assertEqual(ID3(io.BytesIO(id3_tag("Tune"))).getall("WXXX"), [])

    def test_timed_id3(self):
        data = TSMuxer("mp3").segment([mp3_frame()], [FIRST_PTS], id3_tag("Tune", "Band"))
        by_pid = {}
        for packet in packets(data):
            by_pid.setdefault((packet[1] & 0x1F) << 8 | packet[2], []).append(packet)
        pmt_packet = by_pid[PMT_PID][0]
        self.assertIn(METADATA_POINTER, pmt_packet)
        self.assertIn(b"\x15\xe1\x02", pmt_packet)  # stream type 0x15 on PID 0x102
        payload = by_pid[ID3_PID][0][4:]
        payload = payload[1 + payload[0]:] if by_pid[ID3_PID][0][3] & 0x20 else payload
        self.assertEqual(payload[:4], b"\x00\x00\x01\xbd")
        self.assertEqual(decode_pts(payload[9:14]), FIRST_PTS)
        self.assertTrue(payload[14:].startswith(b"ID3\x04"))
        self.assertIn(b"TIT2", payload)
        self.assertIn(b"Tune", payload)

    def test_pes_carries_pts(self):
        data = TSMuxer("mp3").segment([mp3_frame() * 3], [FIRST_PTS])
        audio = [p for p in packets(data) if ((p[1] & 0x1F) << 8 | p[2]) == AUDIO_PID][0]
        payload = audio[4 + 1 + audio[4]:]
        self.assertEqual(payload[:4], b"\x00\x00\x01\xc0")
        self.assertEqual(decode_pts(payload[9:14]), FIRST_PTS)


class SegmenterTests(SynchronousTestCase):
    def test_segments_and_playlist(self):
        segmenter = Segmenter("mp3", segment_duration=2.0, playlist_length=3)
        now = 1700000000.0
        for i in range(40):  # 40 chunks of 0.25 s: five segments of 2 s
            segmenter.add(mp3_frame() * 10, 0.25, now + i * 0.25)
        self.assertEqual([s.sequence for s in segmenter.segments], [0, 1, 2, 3, 4])
        self.assertEqual({s.duration for s in segmenter.segments}, {2.0})
        text = segmenter.playlist()
        self.assertEqual(text.splitlines()[:5], ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2",
                                                 "#EXT-X-MEDIA-SEQUENCE:2", "#EXT-X-DISCONTINUITY-SEQUENCE:0"])
        self.assertIn("#EXTINF:2.000,\nsegment_4.ts", text)
        self.assertIn("#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:23.750Z", text)
        self.assertIsNotNone(segmenter.get(0))

    def test_memory_bounded(self):
        segmenter = Segmenter("mp3", segment_duration=1.0, playlist_length=3)
        for i in range(400):
            segmenter.add(mp3_frame(), 0.5, float(i))
        self.assertEqual(len(segmenter.segments), 6)

    def test_discontinuity(self):
        segmenter = Segmenter("aac", segment_duration=1.0, playlist_length=5)
        for i in range(4):
            segmenter.add(adts_frame(), 0.5, 0.0)
        segmenter.add(adts_frame(), 0.5, 0.0)
        segmenter.discontinuity()
        for i in range(2):
            segmenter.add(adts_frame(), 0.5, 0.0)
        text = segmenter.playlist()
        self.assertEqual(text.count("#EXT-X-DISCONTINUITY\n"), 1)
        self.assertIn("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME", text)


class HlsServingTests(SynchronousTestCase):
    def harness(self):
        return Harness("mounts { live { hls { enabled true segment_duration 2 } } }")

    def test_playlist_and_segments(self):
        h = self.harness()
        source, _ = h.source()
        feed_frames(source, 300)  # about 7.8 s
        self.assertEqual(h.registry.get("/live").listeners, 0)  # the HLS output is no listener
        status, headers, body = h.get("/hls/live/playlist.m3u8")
        self.assertIn(" 200 ", status)
        self.assertEqual(headers["content-type"], "application/vnd.apple.mpegurl")
        self.assertIn(b"segment_2.ts", body)
        status, headers, body = h.get("/hls/live/segment_2.ts")
        self.assertEqual(headers["content-type"], "video/mp2t")
        self.assertEqual((len(body) % PACKET, body[0]), (0, 0x47))
        self.assertIn(" 404 ", h.get("/hls/live/segment_99.ts")[0])
        self.assertIn(" 404 ", h.get("/hls/other/playlist.m3u8")[0])

    def test_aac_source_labelled_mp3_still_gets_hls(self):
        """ffmpeg's icecast output says audio/mpeg for AAC unless told otherwise."""
        h = self.harness()
        source, _ = h.source(content_type="audio/mpeg")
        source.dataReceived(adts_frame() * 400)  # about 9 s at 44.1 kHz
        mount = h.registry.get("/live")
        self.assertEqual(mount.content_type, "audio/aac")
        h.clock.advance(0)
        mismatch = [e for e in h.events if e.name == "source.codec_mismatch"]
        self.assertEqual([(e.data["declared"], e.data["found"]) for e in mismatch], [("audio/mpeg", "audio/aac")])
        status, _, body = h.get("/hls/live/playlist.m3u8")
        self.assertIn(" 200 ", status)
        self.assertIn(b"segment_0.ts", body)
        self.assertIn(" 200 ", h.get("/hls/live/segment_0.ts")[0])
        _, headers, _ = split_response(h.listener()[1].value())
        self.assertEqual(headers["content-type"], "audio/aac")

    def test_a_removed_mount_takes_its_hls_output_along(self):
        h = self.harness()
        source, _ = h.source()
        feed_frames(source, 100)
        self.assertIn("/live", h.hls.outputs)
        h.registry.configure(parse_config("").config)  # /live is gone from the config
        self.assertNotIn("/live", h.hls.outputs)
        close(source)
        self.assertIsNone(h.registry.get("/live"))

    def test_custom_path_prefix(self):
        h = Harness("mounts { live { hls { enabled true segment_duration 2 path /radio/stream } } }")
        source, _ = h.source()
        feed_frames(source, 300)
        status, _, body = h.get("/radio/stream/playlist.m3u8")
        self.assertIn(" 200 ", status)
        self.assertIn(b"segment_", body)
        self.assertIn(" 200 ", h.get("/hls/live/playlist.m3u8")[0])

    def test_no_source_is_404(self):
        self.assertIn(" 404 ", self.harness().get("/hls/live/playlist.m3u8")[0])

    def test_playlist_waits_for_the_first_segment_of_a_new_source(self):
        h = self.harness()
        source, _ = h.source()
        _, transport = h.connect(b"GET /hls/live/playlist.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n")
        feed_frames(source, 40)  # about 1 s: no segment yet
        self.assertEqual(transport.value(), b"")
        self.assertIn(" 404 ", h.get("/hls/live/segment_0.ts")[0])
        feed_frames(source, 50)
        status, _, body = split_response(transport.value())
        self.assertIn(" 200 ", status)
        self.assertIn(b"segment_0.ts", body)

    def test_playlist_wait_times_out(self):
        h = self.harness()
        h.source()
        _, transport = h.connect(b"GET /hls/live/playlist.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n")
        h.clock.advance(6.1)  # three target durations
        self.assertIn(" 503 ", split_response(transport.value())[0])


class RegroupTests(SynchronousTestCase):
    def test_transcoder_bursts_become_short_chunks(self):
        frames = adts_frame(200) * 20  # 20 x 1024 samples at 44.1 kHz: 0.46 s
        groups = regroup_adts(frames, 0.1)
        self.assertEqual(b"".join(data for data, _ in groups), frames)
        self.assertTrue(all(duration < 0.13 for _, duration in groups))
        self.assertAlmostEqual(sum(d for _, d in groups), 20 * 1024 / 44100)


def play(h, query="", extra="", mount="live", peer="10.0.0.5"):
    """
    What a player does: fetch the playlist, then the newest segment by the
    URI the playlist gives. The status of the last answer.
    """
    status, _, body = h.get("/hls/%s/playlist.m3u8%s" % (mount, query), extra=extra, peer=peer)
    if " 200 " not in status:
        return status
    uri = [line for line in body.decode().split("\n") if line and not line.startswith("#")][-1]
    return h.get("/hls/%s/%s" % (mount, uri), extra=extra, peer=peer)[0]


class HlsSessionTests(SynchronousTestCase):
    def test_playing_clients_count_as_listeners(self):
        h = Harness("mounts { live { hls { enabled true segment_duration 2 } } }")
        source, _ = h.source()
        feed_frames(source, 100)
        for agent in ("hls.js", "AppleCoreMedia", "hls.js"):
            self.assertIn(" 200 ", play(h, extra="User-Agent: %s\r\n" % agent))
        self.assertIn(" 200 ", play(h, "?session=abc"))
        self.assertIn(" 200 ", play(h, "?session=abc"))
        mount = h.registry.get("/live")
        self.assertEqual(mount.listeners, 3)
        self.assertEqual(mount.peak_listeners, 3)
        h.listener()
        self.assertEqual(mount.listeners, 4)
        h.clock.advance(4.1)  # two target durations without a segment fetched
        self.assertEqual(mount.listeners, 1)

    def test_players_are_listeners_in_events_and_bytes(self):
        h = Harness("mounts { live { hls { enabled true segment_duration 2 } } }")
        source, _ = h.source()
        feed_frames(source, 100)
        self.assertIn(" 200 ", play(h, "?session=p1", extra="User-Agent: hls.js\r\n"))
        self.assertIn(" 200 ", play(h, "?session=p1", extra="User-Agent: hls.js\r\n"))
        mount = h.registry.get("/live")
        self.assertGreater(mount.total_bytes_sent, 0)
        h.clock.advance(1)
        self.assertEqual(mount.listeners, 1)
        h.clock.advance(4)
        self.assertEqual(mount.listeners, 0)  # it stopped fetching segments
        h.clock.advance(0)
        [joined] = [e for e in h.events if e.name == "listener.connect"]
        [left] = [e for e in h.events if e.name == "listener.disconnect"]
        self.assertEqual((joined.data["protocol"], joined.data["ip"], joined.data["user_agent"]),
                         ("hls", "10.0.0.5", "hls.js"))
        self.assertEqual(left.data["id"], joined.data["id"])
        self.assertEqual(left.data["bytes_sent"], mount.total_bytes_sent)
        self.assertEqual(left.data["duration"], 0)  # both segments were fetched at once
        metrics = h.get("/metrics")[2].decode()
        self.assertIn("gocast_listeners_total 1.0", metrics)

    def test_playlists_alone_count_for_nothing(self):
        """Anyone can ask for playlists with a new ?session= each time: only playing counts."""
        h = Harness("mounts { live { max_listeners 2 hls { enabled true segment_duration 2 } } }")
        source, _ = h.source()
        feed_frames(source, 100)
        for n in range(50):
            self.assertIn(" 200 ", h.get("/hls/live/playlist.m3u8?session=fake%d" % n)[0])
        self.assertEqual(h.registry.get("/live").listeners, 0)
        self.assertIn(b"HTTP/1.0 200 OK", h.listener()[1].value())  # real listeners still get in

    def test_sessions_per_address_are_capped(self):
        h = Harness("limits { max_connections_per_ip 3 } mounts { live { hls { enabled true segment_duration 2 } } }")
        source, _ = h.source()
        feed_frames(source, 100)
        for n in range(3):
            self.assertIn(" 200 ", play(h, "?session=s%d" % n))
        status = play(h, "?session=s3")
        self.assertIn(" 503 ", status)
        self.assertIn(" 200 ", play(h, "?session=s0"))  # one already playing goes on
        self.assertIn(" 200 ", play(h, "?session=other", peer="10.0.0.6"))  # another address is not held back

    def test_a_client_that_comes_back_is_not_forgotten(self):
        h = Harness("mounts { live { hls { enabled true segment_duration 2 } } }")
        source, _ = h.source()
        feed_frames(source, 100)
        play(h, "?session=a")
        play(h, "?session=b")
        h.clock.advance(3)
        play(h, "?session=a")
        h.clock.advance(1.5)  # b last seen 4.5 s ago, a 1.5 s ago
        self.assertEqual(h.registry.get("/live").listeners, 1)
        self.assertEqual(list(h.hls.outputs["/live"].sessions), ["s:a"])

    def test_hls_clients_count_towards_max_listeners(self):
        h = Harness("mounts { live { max_listeners 2 hls { enabled true segment_duration 2 } } }")
        source, _ = h.source()
        feed_frames(source, 100)
        h.listener()
        self.assertIn(" 200 ", play(h, "?session=a"))
        status, _, body = h.get("/hls/live/playlist.m3u8?session=b")
        self.assertIn(" 503 ", status)
        self.assertIn(b"mount /live is full (2 listeners)", body)
        self.assertIn(" 200 ", play(h, "?session=a"))  # one already in goes on
        self.assertIn(b" 503 ", h.listener()[1].value().split(b"\r\n")[0])  # and ICY counts it too
        h.clock.advance(4.1)  # session a went away
        self.assertIn(" 200 ", play(h, "?session=b"))


class HlsFallbackTests(SynchronousTestCase):
    CONFIG = ("mounts { live { fallback /backup hls { enabled true segment_duration 1 playlist_length 10 } } "
              "backup { } }")

    def test_follows_the_fallback_and_comes_home(self):
        h = Harness(self.CONFIG)
        backup, _ = h.source("/backup")
        live, _ = h.source("/live")
        feed_frames(live, 100)
        close(live)
        h.clock.advance(1)
        feed_frames(backup, 100, mp3_frame(fill=b"\x02"))
        status, _, body = h.get("/hls/live/playlist.m3u8")
        self.assertIn(" 200 ", status)  # the fallback keeps it alive
        self.assertEqual(body.count(b"#EXT-X-DISCONTINUITY\n"), 1)
        output = h.hls.output("/live")
        self.assertIs(output.feeding, h.registry.get("/backup"))
        self.assertEqual(h.registry.get("/backup").listeners, 0)  # an output is no listener
        live, _ = h.source("/live")
        feed_frames(live, 100)
        self.assertIs(output.feeding, h.registry.get("/live"))
        body = h.get("/hls/live/playlist.m3u8")[2]
        self.assertEqual(body.count(b"#EXT-X-DISCONTINUITY\n"), 2)
        self.assertEqual(h.registry.get("/backup").subscribers, {})

    def test_a_fallback_in_another_codec_is_a_discontinuity_in_the_same_playlist(self):
        h = Harness(self.CONFIG)
        backup, _ = h.source("/backup", content_type="audio/aac")
        live, _ = h.source("/live")
        feed_frames(live, 100)  # MP3, about 2.6 s
        before = h.get("/hls/live/playlist.m3u8")[2].decode()
        close(live)
        h.clock.advance(1)
        feed_frames(backup, 150, adts_frame())  # AAC, about 3.5 s
        playlist = h.get("/hls/live/playlist.m3u8")[2].decode()
        first_mp3 = re.search(r"segment_\d+\.ts", before).group(0)
        self.assertIn(first_mp3, playlist)  # the same window goes on
        self.assertEqual(playlist.count("#EXT-X-DISCONTINUITY\n"), 1)
        self.assertIn("#EXT-X-DISCONTINUITY-SEQUENCE:0", playlist)

        def audio_stream_type(name):
            segment = h.get("/hls/live/" + name)[2]
            pmt = next(p for p in packets(segment) if ((p[1] & 0x1F) << 8 | p[2]) == PMT_PID)
            # The audio entry: stream type, then the PID and no descriptors (the PCR PID field has some after it).
            return pmt[pmt.index(bytes([0xE0 | AUDIO_PID >> 8, AUDIO_PID & 0xFF, 0xF0, 0x00])) - 1]

        self.assertEqual(audio_stream_type(first_mp3), 0x03)  # MPEG audio
        self.assertEqual(audio_stream_type(re.findall(r"segment_\d+\.ts", playlist)[-1]), 0x0F)  # AAC

    def test_no_live_fallback_is_404(self):
        h = Harness(self.CONFIG)
        live, _ = h.source("/live")
        feed_frames(live, 100)
        close(live)
        self.assertIn(" 404 ", h.get("/hls/live/playlist.m3u8")[0])
        live, _ = h.source("/live")
        feed_frames(live, 100)
        self.assertIn(b"#EXT-X-DISCONTINUITY", h.get("/hls/live/playlist.m3u8")[2])
