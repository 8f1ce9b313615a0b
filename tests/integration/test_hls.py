"""HLS from real ffmpeg sources, decoded by ffmpeg as an HLS client."""

import json
import re

import treq
from twisted.internet import reactor, task
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from ._process import spawn_tool, start_server, wait_for_source

MP3 = ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"]
AAC = ["-c:a", "aac", "-b:a", "96k", "-f", "adts", "-content_type", "audio/aac"]
AAC_UNLABELLED = AAC[:-2]
OPUS = ["-c:a", "libopus", "-b:a", "64k", "-f", "ogg", "-content_type", "audio/ogg"]
TONE = ["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "sine=frequency=440"]


class HlsTests(TestCase):
    timeout = 120

    async def play(self, encode, low_latency=False):
        server, base = await start_server(
            self, reactor, "mounts { live { hls { enabled true segment_duration 2 playlist_length 3 "
            "low_latency %s part_duration 0.5 } } }" % ("true" if low_latency else "false"))
        spawn_tool(self, reactor, ["ffmpeg"] + TONE + encode +
                   ["icecast://source:hackme@%s/live" % base[len("http://"):]])
        await wait_for_source(reactor, base, "/live", server)
        playlist = ""
        for _ in range(150):
            response = await treq.get(base + "/hls/live/playlist.m3u8", reactor=reactor, persistent=False)
            playlist = (await response.content()).decode()
            if response.code == 200 and playlist.count("#EXTINF") >= 3:
                break
            await task.deferLater(reactor, 0.1, lambda: None)
        response = await treq.get(base + "/admin/metadata", params={
            "mount": "/live", "mode": "updinfo", "song": "Band - Tune"}, auth=("admin", "hackme"),
            reactor=reactor, persistent=False)
        await response.content()
        durations = [float(d) for d in re.findall(r"#EXTINF:([0-9.]+),", playlist)]
        self.assertEqual(len(durations), 3, playlist)
        for duration in durations:
            self.assertLess(abs(duration - 2.0), 0.2, playlist)
        parts = [float(d) for d in re.findall(r"#EXT-X-PART:DURATION=([0-9.]+),", playlist)]
        if low_latency:
            self.assertIn("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES", playlist)
            self.assertGreater(len(parts), 4, playlist)
            self.assertTrue(all(0.4 < part <= 0.5 for part in parts), playlist)
        else:
            self.assertEqual(parts, [])
        client = spawn_tool(self, reactor, ["ffmpeg", "-v", "error", "-i", base + "/hls/live/playlist.m3u8",
                                            "-t", "20", "-f", "null", "-"])
        code, _ = await client.ended
        self.assertEqual((code, client.output), (0, b""))
        response = await treq.get(base + "/hls/live/playlist.m3u8", reactor=reactor, persistent=False)
        last = re.findall(r"segment_\d+\.(?:ts|m4s)", (await response.content()).decode())[-1]
        segment = await treq.get(base + "/hls/live/" + last, reactor=reactor, persistent=False)
        self.assertIn(b"TIT2", await segment.content())  # the title, as timed ID3
        return server, base

    async def test_mp3(self):
        await self.play(MP3)

    async def test_aac(self):
        await self.play(AAC)

    async def test_aac_that_ffmpeg_labels_audio_mpeg(self):
        """Without -content_type, ffmpeg's icecast output declares audio/mpeg whatever it encodes."""
        server, base = await self.play(AAC_UNLABELLED)
        response = await treq.get(base + "/status-json.xsl", reactor=reactor, persistent=False)
        source = json.loads(await response.content())["icestats"]["source"]
        self.assertEqual(source["server_type"], "audio/aac")
        self.assertIn("source.codec_mismatch", server.output.decode())

    async def test_ogg_opus_through_the_aac_transcoder(self):
        await self.play(OPUS)

    async def test_low_latency_mp3(self):
        await self.play(MP3, low_latency=True)

    async def test_low_latency_aac(self):
        await self.play(AAC, low_latency=True)

    async def test_low_latency_ogg_opus(self):
        await self.play(OPUS, low_latency=True)

    async def test_liquidsoap_opus_tracks_go_on_without_a_discontinuity(self):
        await self.liquidsoap_tracks("%opus(bitrate=64)")

    async def test_liquidsoap_vorbis_tracks_go_on_without_a_discontinuity(self):
        await self.liquidsoap_tracks("%vorbis")

    async def liquidsoap_tracks(self, encoder):
        """
        Liquidsoap starts a chained Ogg stream at every new track; HLS goes
        on through the same transcoder, with no gap or discontinuity per track.
        """
        server, base = await start_server(
            self, reactor, "mounts { live { hls { enabled true segment_duration 2 playlist_length 3 } } }")
        script = FilePath(self.mktemp())
        script.setContent((
            "settings.init.allow_root.set(true)\n"
            "s = insert_metadata(sine())\n"
            'thread.run(every=1.5, fun () -> s.insert_metadata(new_track=true, [("title", "Track " ^ '
            "string_of(time()))]))\n"
            'output.icecast(%s, host="127.0.0.1", port=%d, password="hackme", mount="live", s)\n'
            % (encoder, int(base.rsplit(":", 1)[1]))).encode())
        spawn_tool(self, reactor, ["liquidsoap", script.path])
        await wait_for_source(reactor, base, "/live", server)
        client = spawn_tool(self, reactor, ["ffmpeg", "-v", "error", "-i", base + "/hls/live/playlist.m3u8",
                                            "-t", "12", "-f", "null", "-"])
        code, _ = await client.ended
        self.assertEqual((code, client.output), (0, b""))
        response = await treq.get(base + "/hls/live/playlist.m3u8", reactor=reactor, persistent=False)
        playlist = (await response.content()).decode()
        self.assertEqual(playlist.count("#EXTINF"), 3, playlist)
        self.assertNotIn("#EXT-X-DISCONTINUITY\n", playlist)
        response = await treq.get(base + "/status-json.xsl", reactor=reactor, persistent=False)
        status = json.loads(await response.content())["icestats"]["source"]
        self.assertIn("Track", status["title"])  # the tracks did change
