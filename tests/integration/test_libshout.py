"""
ezstream, a libshout client like BUTT, Mixxx and ices: its unauthenticated
probe, the retry with credentials, and its metadata update.
"""

import json

import treq
from twisted.internet import reactor, task
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from ._process import spawn_tool, start_server, wait_for_source


class LibshoutTests(TestCase):
    timeout = 60

    async def test_ezstream(self):
        server, base = await start_server(self, reactor, "")
        folder = FilePath(self.mktemp())
        folder.makedirs()
        music = folder.child("song.mp3")
        encode = spawn_tool(self, reactor, ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=30",
                                            "-c:a", "libmp3lame", "-b:a", "128k", music.path])
        self.assertEqual(await encode.ended, (0, None))
        config = folder.child("ezstream.xml")
        config.setContent((
            "<ezstream><servers><server><hostname>127.0.0.1</hostname><port>%s</port>"
            "<password>hackme</password></server></servers>"
            "<streams><stream><mountpoint>/ez</mountpoint><format>MP3</format>"
            "<stream_name>EZ Radio</stream_name></stream></streams>"
            "<intakes><intake><filename>%s</filename></intake></intakes></ezstream>"
            % (base.rsplit(":", 1)[1], music.path)).encode())
        config.chmod(0o600)  # ezstream refuses a config others can read
        spawn_tool(self, reactor, ["ezstream", "-c", config.path])
        await wait_for_source(reactor, base, "/ez", server)

        async def status():
            response = await treq.get(base + "/status-json.xsl", reactor=reactor, persistent=False)
            return json.loads(await response.content())["icestats"]["source"]

        source = await status()
        self.assertEqual((source["server_name"], source["server_type"]), ("EZ Radio", "audio/mpeg"))
        # ezstream sets the title (the file's name) through /admin/metadata
        for _ in range(100):
            if "title" in source:
                break
            await task.deferLater(reactor, 0.1, lambda: None)
            source = await status()
        self.assertEqual(source.get("title"), "song")
