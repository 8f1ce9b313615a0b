"""A real ffmpeg source and listener over TLS, with a certificate made at test time."""

import json

from twisted.internet import reactor
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from ..tls_certs import self_signed
from ._process import free_port, spawn_tool, start_server, wait_for_source


class TLSTests(TestCase):
    timeout = 60

    async def test_source_and_listener_over_tls(self):
        cert, key = self_signed(FilePath(self.mktemp()))
        tls_port = free_port()
        server, base = await start_server(
            self, reactor, 'ssl { enabled true port %d cert "%s" key "%s" }' % (tls_port, cert, key))
        spawn_tool(self, reactor, [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "sine",
            "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3", "-tls", "1",
            "icecast://source:hackme@127.0.0.1:%d/secure" % tls_port])
        await wait_for_source(reactor, base, "/secure", server)
        probe = spawn_tool(self, reactor, [
            "ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json",
            "https://127.0.0.1:%d/secure" % tls_port])
        code, _ = await probe.ended
        self.assertEqual(code, 0, probe.output.decode())
        self.assertEqual(json.loads(probe.output)["streams"][0]["codec_name"], "mp3")
