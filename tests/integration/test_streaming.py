"""
Real clients against a real server: ffmpeg as the source (each way Icecast
sources connect) and ffmpeg/ffprobe as listeners, on loopback.
"""

import json

import treq
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from ._process import spawn_tool, start_server, wait_for_source

TONE = ["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]


class RealClientTests(TestCase):
    timeout = 120

    async def stream_and_probe(self, mount, encode, expected_codec, source_args=()):
        server, base = await start_server(self, reactor, "")
        url = "icecast://source:hackme@%s%s" % (base[len("http://"):], mount)
        source = spawn_tool(self, reactor, ["ffmpeg"] + TONE + list(encode) + list(source_args) + [url])
        await wait_for_source(reactor, base, mount, server)
        probe = spawn_tool(self, reactor, [
            "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate",
            "-of", "json", base + mount])
        code, _ = await probe.ended
        self.assertEqual(code, 0, probe.output.decode())
        streams = json.loads(probe.output)["streams"]
        self.assertEqual(streams[0]["codec_name"], expected_codec)
        decode = spawn_tool(self, reactor, ["ffmpeg", "-v", "error", "-i", base + mount, "-t", "2",
                                            "-f", "null", "-"])
        code, _ = await decode.ended
        self.assertEqual((code, decode.output), (0, b""))
        self.assertFalse(source.ended.called, source.output.decode())
        return server, base

    async def test_mp3_over_put(self):
        await self.stream_and_probe("/live", ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"], "mp3")

    async def test_mp3_legacy_source_method(self):
        await self.stream_and_probe("/legacy", ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"], "mp3",
                                    ["-legacy_icecast", "1"])

    async def test_ogg_opus(self):
        await self.stream_and_probe("/opus", ["-c:a", "libopus", "-b:a", "64k", "-f", "ogg",
                                              "-content_type", "audio/ogg"], "opus")

    async def test_ogg_vorbis(self):
        await self.stream_and_probe("/vorbis", ["-c:a", "libvorbis", "-f", "ogg",
                                                "-content_type", "application/ogg"], "vorbis")

    async def test_aac_adts(self):
        await self.stream_and_probe("/aac", ["-c:a", "aac", "-b:a", "96k", "-f", "adts",
                                             "-content_type", "audio/aac"], "aac")

    async def test_status_shows_the_source(self):
        server, base = await self.stream_and_probe(
            "/live", ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3", "-ice_name", "Test FM"], "mp3")
        response = await treq.get(base + "/status-json.xsl", reactor=reactor, persistent=False)
        source = json.loads(await response.content())["icestats"]["source"]
        self.assertEqual(source["server_name"], "Test FM")
        self.assertEqual(source["server_type"], "audio/mpeg")
