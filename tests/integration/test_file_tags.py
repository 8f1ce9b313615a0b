"""
Fallback files tagged at test time (ffmpeg writes the audio and the text
tags, mutagen adds a cover), played by a real server to a listener: the
file's title reaches the listener's ICY metadata, and its title, album,
year and cover appear in metadata.json and artwork.jpg, for MP3 (ID3) and
Ogg Opus (Vorbis comments with METADATA_BLOCK_PICTURE).
"""

import base64
import io
import json
import os

import treq
from PIL import Image
from twisted.internet import reactor, task
from twisted.trial.unittest import TestCase

from ._process import eventually, raw_request, spawn_tool, start_server

TAGS = ["-metadata", "title=Night Loop", "-metadata", "artist=The Automation", "-metadata", "album=Overnight",
        "-metadata", "date=2024", "-metadata", "genre=Ambient"]
ENCODERS = {"mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-id3v2_version", "3"],
            "opus": ["-c:a", "libopus", "-b:a", "64k"]}
COLOUR = (30, 200, 90)


def cover_png():
    out = io.BytesIO()
    Image.new("RGB", (400, 400), COLOUR).save(out, "PNG")
    return out.getvalue()


def add_cover(path, kind):
    """The front cover, as each format keeps it."""
    from mutagen.flac import Picture
    from mutagen.id3 import APIC, ID3
    from mutagen.oggopus import OggOpus

    if kind == "mp3":
        tags = ID3(path)
        tags.add(APIC(encoding=3, mime="image/png", type=3, desc="front", data=cover_png()))
        tags.save(path)
        return
    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/png", cover_png()
    picture.width = picture.height = 400
    picture.depth = 24
    audio = OggOpus(path)
    audio["metadata_block_picture"] = [base64.b64encode(picture.write()).decode("ascii")]
    audio.save()


class FileTagsTests(TestCase):
    timeout = 120

    async def tagged_fallback(self, kind):
        path = os.path.abspath(self.mktemp() + (".mp3" if kind == "mp3" else ".opus"))
        make = spawn_tool(self, reactor, ["ffmpeg", "-hide_banner", "-v", "error", "-f", "lavfi", "-i",
                                          "sine=frequency=330:duration=8"] + ENCODERS[kind] + TAGS + [path])
        code, _ = await make.ended
        self.assertEqual(code, 0, make.output)
        add_cover(path, kind)
        process, base = await start_server(self, reactor, 'mounts { live { fallback { file "%s" loop true } '
                                                          'metadata { artwork_enabled true artwork_size 100x100 } } }'
                                                          % path)
        listener = await raw_request(self, reactor, base, b"GET /live HTTP/1.0\r\nIcy-MetaData: 1\r\n\r\n")
        return process, base, listener

    async def check(self, kind):
        process, base, listener = await self.tagged_fallback(kind)
        if kind == "mp3":  # (Ogg carries its titles in the stream: no ICY metadata)
            await eventually(reactor, lambda: b"StreamTitle='The Automation - Night Loop';" in listener.data,
                             timeout=15, what="the file's title in the ICY metadata")
        else:
            await eventually(reactor, lambda: len(listener.data) > 4096, timeout=15, what="the file streaming")
        response = await treq.get(base + "/live/metadata.json", reactor=reactor, persistent=False)
        document = json.loads(await response.content())
        self.assertEqual({k: document[k] for k in ("title", "artist", "album", "year", "genre", "playing_from")},
                         {"title": "Night Loop", "artist": "The Automation", "album": "Overnight", "year": 2024,
                          "genre": "Ambient", "playing_from": "/live#fallback-file"})
        self.assertLess(abs(document["duration"] - 8.0), 0.2, document["duration"])
        covers = []

        async def covered():
            response = await treq.get(document["artwork"], reactor=reactor, persistent=False)
            image = Image.open(io.BytesIO(await response.content()))
            covers[:] = [image]
            return image.getpixel((50, 50))

        deadline = reactor.seconds() + 15
        while True:
            pixel = await covered()
            if all(abs(a - b) < 12 for a, b in zip(pixel, COLOUR)):
                break
            self.assertLess(reactor.seconds(), deadline, "the cover never came: %r" % (pixel,))
            await task.deferLater(reactor, 0.3, lambda: None)
        self.assertEqual((covers[0].format, covers[0].size), ("JPEG", (100, 100)))

    async def test_mp3_with_id3_and_a_cover(self):
        await self.check("mp3")

    async def test_ogg_opus_with_comments_and_a_cover(self):
        await self.check("opus")
