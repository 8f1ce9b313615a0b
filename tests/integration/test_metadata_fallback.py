"""
ICY metadata seen by a raw socket, and listeners surviving their source's
death through the fallback mount, with real ffmpeg sources.
"""

import treq
from twisted.internet import reactor, task
from twisted.trial.unittest import TestCase

from ._process import eventually, raw_request, spawn_tool, start_server, wait_for_source

MP3 = ["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "sine=frequency=%d",
       "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"]


def mp3_source(testcase, base, mount, frequency=440):
    args = [a % frequency if "%d" in a else a for a in MP3]
    url = "icecast://source:hackme@%s%s" % (base[len("http://"):], mount)
    return spawn_tool(testcase, reactor, ["ffmpeg"] + args + [url])


def deframe(body, metaint):
    audio, blocks, pos = b"", [], 0
    while pos + metaint < len(body):
        audio += body[pos : pos + metaint]
        pos += metaint
        length = body[pos] * 16
        if pos + 1 + length > len(body):
            break
        blocks.append(bytes(body[pos + 1 : pos + 1 + length]).rstrip(b"\x00"))
        pos += 1 + length
    return audio, blocks


class MetadataTests(TestCase):
    timeout = 60

    async def test_icy_metadata_on_a_raw_socket(self):
        server, base = await start_server(self, reactor, "mounts { live { metaint 8192 } }")
        mp3_source(self, base, "/live")
        await wait_for_source(reactor, base, "/live", server)
        client = await raw_request(self, reactor, base, b"GET /live HTTP/1.0\r\nIcy-MetaData: 1\r\n\r\n")
        response = await treq.get(base + "/admin/metadata", params={
            "mount": "/live", "mode": "updinfo", "song": "Artist - Title with 'quotes' é"},
            auth=("source", "hackme"), reactor=reactor, persistent=False)
        self.assertEqual(response.code, 200)
        await response.content()
        expected = "StreamTitle='Artist - Title with 'quotes' é';".encode("utf-8")
        await eventually(reactor, lambda: expected in client.data, what="the title in the stream")
        head, _, body = bytes(client.data).partition(b"\r\n\r\n")
        self.assertIn(b"icy-metaint: 8192", head)
        audio, blocks = deframe(body, 8192)
        self.assertIn(expected, blocks)
        self.assertEqual(audio[:2], b"\xff\xfb")


class FallbackTests(TestCase):
    timeout = 90

    async def test_listener_survives_source_restart(self):
        server, base = await start_server(
            self, reactor, "limits { source_timeout 3s } mounts { live { fallback /backup } backup { } }")
        mp3_source(self, base, "/backup", 220)
        live = mp3_source(self, base, "/live", 880)
        await wait_for_source(reactor, base, "/backup", server)
        await wait_for_source(reactor, base, "/live", server)
        client = await raw_request(self, reactor, base, b"GET /live HTTP/1.0\r\n\r\n")
        await eventually(reactor, lambda: len(client.data) > 70000, what="burst and live audio")

        await live.stop()
        await self.assert_served_by(base, client, "/backup")
        mp3_source(self, base, "/live", 880)
        await wait_for_source(reactor, base, "/live", server)
        await self.assert_served_by(base, client, "/live")

    async def assert_served_by(self, base, client, mount):
        """For two seconds the listener keeps receiving audio, and ``mount`` lists it."""
        before = len(client.data)
        await task.deferLater(reactor, 2.0, lambda: None)
        self.assertFalse(client.closed.called)
        # 128 kbit/s is 16 kB/s: two seconds bring at least 20 kB.
        self.assertGreater(len(client.data) - before, 20000)
        listing = await treq.get(base + "/admin/listclients?mount=" + mount, auth=("admin", "hackme"),
                                 reactor=reactor, persistent=False)
        self.assertIn(b"<listener>", await listing.content())
