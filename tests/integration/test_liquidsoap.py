"""Liquidsoap as the source, in each of its three ways to reach Icecast."""

import json

from twisted.internet import reactor
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from ._process import spawn_tool, start_server, wait_for_source


class LiquidsoapTests(TestCase):
    timeout = 90

    async def run_liquidsoap(self, options, mount):
        server, base = await start_server(self, reactor, "")
        port = int(base.rsplit(":", 1)[1])
        script = FilePath(self.mktemp())
        script.setContent((
            "settings.init.allow_root.set(true)\n"
            'output.icecast(%%mp3(bitrate=128), host="127.0.0.1", port=%d, password="hackme", '
            'name="Liquid Radio", %s, sine())\n' % (port, options)).encode())
        spawn_tool(self, reactor, ["liquidsoap", script.path])
        await wait_for_source(reactor, base, mount, server)
        probe = spawn_tool(self, reactor, ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name",
                                           "-of", "json", base + mount])
        code, _ = await probe.ended
        self.assertEqual(code, 0, probe.output.decode())
        self.assertEqual(json.loads(probe.output)["streams"][0]["codec_name"], "mp3")

    async def test_source_method(self):
        await self.run_liquidsoap('mount="radio"', "/radio")

    async def test_put_method(self):
        await self.run_liquidsoap('mount="radio", method="put"', "/radio")

    async def test_shoutcast_icy_protocol(self):
        # libshout's icy protocol connects to port + 1 and streams to shoutcast.mount
        await self.run_liquidsoap('protocol="icy", mount="ignored"', "/live")
