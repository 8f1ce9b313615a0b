"""
Recordings with real parts: ffmpeg sends MP3 and Ogg Opus to a GoCast that
records with a short size rotation; when the source is done every file is
closed (no .part left), and each one decodes end to end with ffmpeg (no
broken first frame: every Ogg file starts with its headers, every MP3 file
with a whole frame).
"""

import os

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from ._process import eventually, spawn_tool, start_server

SOURCES = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-content_type", "audio/mpeg", "-f", "mp3"],
    "ogg": ["-c:a", "libopus", "-b:a", "96k", "-content_type", "application/ogg", "-f", "ogg"],
}


class RecordingTests(TestCase):
    timeout = 120

    async def record(self, kind, seconds=7):
        folder = os.path.abspath(self.mktemp())
        process, base = await start_server(self, reactor, 'mounts { live { recording { enabled true path "%s" '
                                                          'rotation size:24KB } } }' % folder)
        url = "icecast://source:hackme@%s/live" % base[len("http://"):]
        source = spawn_tool(self, reactor, ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
                                            "-i", "sine=frequency=440:duration=%d" % seconds] + SOURCES[kind] + [url])
        code, _ = await source.ended
        self.assertEqual(code, 0, source.output.decode())

        def closed():
            names = os.listdir(folder) if os.path.isdir(folder) else []
            return names and not any(name.endswith(".part") for name in names)

        await eventually(reactor, closed, timeout=20, what="every recording closed after the source left")
        names = sorted(os.listdir(folder))
        self.assertGreater(len(names), 2, names)  # rotated
        self.assertTrue(all(name.startswith("live-") and name.endswith("." + kind) for name in names), names)
        for name in names:
            player = spawn_tool(self, reactor, ["ffmpeg", "-hide_banner", "-v", "error", "-i",
                                                os.path.join(folder, name), "-f", "null", "-"])
            code, _ = await player.ended
            self.assertEqual((code, player.output.decode()), (0, ""), name)  # decodes, without one error
        self.assertIn(b"recording.finished", process.output)
        return folder, names

    async def test_mp3_recording_rotates_and_every_file_decodes(self):
        await self.record("mp3")

    async def test_ogg_opus_files_each_start_with_the_headers(self):
        folder, names = await self.record("ogg")
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                start = f.read(64)
            self.assertTrue(start.startswith(b"OggS") and b"OpusHead" in start, name)
