"""
MPEG-DASH with real parts: ffmpeg sources in MP3, AAC and Ogg Opus, and
ffmpeg as the DASH client decoding the live MPD end to end (MP3 and Opus
reach DASH through GoCast's AAC transcoder); the roadmap's `dash {}`
snippet as written.
"""

from pathlib import Path

import treq
from lxml import etree
from twisted.internet import reactor, task
from twisted.trial.unittest import TestCase

from ._process import spawn_tool, start_server, wait_for_source
from .test_recording import SOURCES

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


class DashTests(TestCase):
    timeout = 120

    async def play(self, config, kind, manifest="/dash/live/manifest.mpd"):
        server, base = await start_server(self, reactor, config)
        spawn_tool(self, reactor, ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                                   "sine=frequency=440"] + SOURCES[kind]
                   + ["icecast://source:hackme@%s/live" % base[len("http://"):]])
        await wait_for_source(reactor, base, "/live", server)
        deadline = reactor.seconds() + 60
        while True:  # until the MPD lists four segments, as a listener of a running station finds it
            response = await treq.get(base + manifest, reactor=reactor, persistent=False)
            body = await response.content()
            if response.code == 200 and len(etree.fromstring(body).findall(".//d:S", NS)) >= 4:
                break
            self.assertLess(reactor.seconds(), deadline, body)
            await task.deferLater(reactor, 0.5, lambda: None)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/dash+xml"])
        self.assertEqual(response.headers.getRawHeaders("access-control-allow-origin"), ["*"])
        player = spawn_tool(self, reactor, ["ffmpeg", "-hide_banner", "-v", "error", "-t", "6", "-i",
                                            base + manifest, "-f", "null", "-"])
        code, _ = await player.ended
        self.assertEqual((code, player.output.decode()[:3000]), (0, ""))
        return etree.fromstring(body)

    async def test_aac(self):
        await self.play("mounts { live { dash { enabled true segment_duration 2 } } }", "aac")

    async def test_mp3_through_the_aac_transcoder(self):
        mpd = await self.play("mounts { live { dash { enabled true segment_duration 2 } } }", "mp3")
        self.assertEqual(mpd.find(".//d:Representation", NS).get("codecs"), "mp4a.40.2")

    async def test_opus_through_the_aac_transcoder(self):
        await self.play("mounts { live { dash { enabled true segment_duration 2 } } }", "ogg")

    async def test_the_roadmaps_snippet_as_written(self):
        snippet = Path(__file__).resolve().parent.parent / "roadmap" / "02-mounts-dash.vibe"
        mpd = await self.play(snippet.read_text(), "aac")
        self.assertEqual(mpd.get("minimumUpdatePeriod"), "PT4S")
