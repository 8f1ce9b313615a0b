"""
Now playing and covers against a real server fed by ffmpeg: metadata.json
follows updates made through the API, and artwork.jpg serves a cover
fetched from a local web server of an allowed host (fitted to the
configured size), the placeholder for a reply too large or not an image,
and never fetches from a host it was not told of.
"""

import io
import json

import treq
from PIL import Image
from twisted.internet import reactor
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from ._process import eventually, free_port, spawn_tool, start_server, wait_for_source
from .test_hls import MP3, TONE
from .test_relay import eventually_async


class Covers(Resource):
    """A web server of covers that counts what it was asked."""

    def __init__(self):
        super().__init__()
        self.asked = []
        cover = io.BytesIO()
        Image.new("RGB", (800, 600), (20, 160, 60)).save(cover, "PNG")
        for name, body, kind in (("cover.png", cover.getvalue(), "image/png"),
                                 ("huge.png", b"\x89PNG" + b"\x00" * (9 * 1024 * 1024), "image/png"),
                                 ("page.html", b"<html>not a cover</html>", "text/html")):
            self.putChild(name.encode(), Data(body, kind))

    def getChildWithDefault(self, path, request):
        self.asked.append(path.decode())
        return super().getChildWithDefault(path, request)


async def get(url):
    response = await treq.get(url, reactor=reactor, persistent=False)
    return response, await response.content()


async def set_track(base, **fields):
    response = await treq.post(base + "/api/v1/mounts/live/metadata", json=fields, auth=("admin", "hackme"),
                               reactor=reactor, persistent=False)
    body = await response.content()
    assert response.code == 200, body


class NowPlayingTests(TestCase):
    timeout = 120

    async def test_metadata_json_and_covers(self):
        covers = Covers()
        port = free_port("127.0.0.2")
        web = reactor.listenTCP(port, Site(covers), interface="127.0.0.2")
        self.addCleanup(web.stopListening)
        stranger = Covers()
        other = reactor.listenTCP(0, Site(stranger), interface="127.0.0.3")
        self.addCleanup(other.stopListening)
        process, base = await start_server(self, reactor, 'mounts { live { metadata { artwork_enabled true '
                                                          'artwork_size 200x200 artwork_hosts [127.0.0.2] } } }')
        spawn_tool(self, reactor, ["ffmpeg"] + TONE + MP3 + ["-content_type", "audio/mpeg",
                                                             "icecast://source:hackme@%s/live" % base[7:]])
        await wait_for_source(reactor, base, "/live", process)
        _, placeholder = await get(base + "/live/artwork.jpg")
        self.assertEqual(Image.open(io.BytesIO(placeholder)).size, (200, 200))

        await set_track(base, title="Bohemian Rhapsody", artist="Queen", album="A Night at the Opera",
                        genre="Rock", year=1975, duration=354, artwork="http://127.0.0.2:%d/cover.png" % port)
        response, body = await get(base + "/live/metadata.json")
        self.assertEqual(response.headers.getRawHeaders("cache-control"), ["no-cache"])
        document = json.loads(body)
        self.assertEqual({k: document[k] for k in ("title", "artist", "album", "duration", "genre", "year")},
                         {"title": "Bohemian Rhapsody", "artist": "Queen", "album": "A Night at the Opera",
                          "duration": 354, "genre": "Rock", "year": 1975})
        self.assertTrue(document["artwork"].startswith(base + "/live/artwork.jpg?v="), document["artwork"])

        async def cover():
            _, data = await get(document["artwork"])
            return data

        covered = []

        async def fetched():
            data = await cover()
            covered[:] = [data]
            return data != placeholder

        await eventually_async(fetched, "the cover fetched and fitted")
        fitted = Image.open(io.BytesIO(covered[0]))
        self.assertEqual((fitted.format, fitted.size), ("JPEG", (200, 150)))
        self.assertEqual(covers.asked, ["cover.png"])

        for name in ("huge.png", "page.html"):
            await set_track(base, title=name, artwork="http://127.0.0.2:%d/%s" % (port, name))
            await eventually(reactor, lambda: name in covers.asked, what="the fetch of " + name)
            _, data = await get(base + "/live/artwork.jpg")
            self.assertEqual(data, placeholder, name)
        elsewhere = "http://127.0.0.3:%d/cover.png" % other.getHost().port
        await set_track(base, title="Elsewhere", artwork=elsewhere)
        _, body = await get(base + "/live/metadata.json")
        self.assertEqual(json.loads(body)["artwork"], elsewhere)  # shown as given, never fetched
        self.assertEqual(stranger.asked, [])
        history = json.loads(body)["history"]
        self.assertEqual([entry["title"] for entry in history][:3], ["page.html", "huge.png", "Bohemian Rhapsody"])
        self.assertIn(b"no cover for", process.output)

