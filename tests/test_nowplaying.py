"""Now playing beyond ICY: metadata.json, the track history, and covers at /<mount>/artwork.jpg."""

import io
import json
import os

from PIL import Image
from twisted.trial.unittest import SynchronousTestCase

from gocast.core.track import TrackInfo, host_allowed
from gocast.media.artwork import MAX_PIXELS, NotAnImage, fit_jpeg
from gocast.outbound import HttpReply

from .streaming import Harness, feed_frames

COVERS = 'metadata { artwork_enabled true  artwork_size 120x120  artwork_hosts [covers.example "*.cdn.example"] }'


def image(size=(640, 480), kind="PNG", colour=(200, 30, 30)):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, kind)
    return out.getvalue()


def png_reply(body, kind="image/png", code=200):
    return HttpReply(code, {"content-type": kind}, body)


class MetadataJsonTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness("mounts { live { } }")
        self.source, _ = self.h.source()
        feed_frames(self.source, 10)
        self.mount = self.h.registry.get("/live")

    def document(self, path="/live/metadata.json"):
        status, headers, body = self.h.get(path)
        return status, headers, json.loads(body)

    def test_the_roadmaps_fields_then_history(self):
        self.mount.set_metadata(song="Queen - Bohemian Rhapsody", info=TrackInfo(
            album="A Night at the Opera", genre="Rock", year=1975, duration=354,
            artwork="https://covers.example/queen.jpg"))
        self.h.clock.advance(354)
        self.mount.set_metadata(song="Queen - You're My Best Friend")
        status, headers, document = self.document()
        self.assertEqual(status, "HTTP/1.0 200 OK")
        self.assertEqual((headers["content-type"], headers["cache-control"]), ("application/json", "no-cache"))
        self.assertEqual(headers["access-control-allow-origin"], "*")
        self.assertEqual((document["title"], document["artist"], document["album"], document["artwork"]),
                         ("You're My Best Friend", "Queen", None, None))
        self.assertEqual(document["started_at"], "1970-01-01T00:05:54Z")
        [before] = document["history"]
        self.assertEqual(before, {"title": "Bohemian Rhapsody", "artist": "Queen", "album": "A Night at the Opera",
                                  "song": "Queen - Bohemian Rhapsody", "started_at": None,
                                  "ended_at": "1970-01-01T00:05:54Z"})

    def test_a_track_given_in_full(self):
        self.mount.set_metadata(title="Bohemian Rhapsody", artist="Queen", info=TrackInfo(
            album="A Night at the Opera", genre="Rock", year=1975, duration=354.0,
            artwork="https://covers.example/queen.jpg"))
        document = self.document()[2]
        self.assertEqual({k: document[k] for k in ("title", "artist", "album", "artwork", "duration", "genre",
                                                   "year")},
                         {"title": "Bohemian Rhapsody", "artist": "Queen", "album": "A Night at the Opera",
                          "artwork": "https://covers.example/queen.jpg", "duration": 354.0, "genre": "Rock",
                          "year": 1975})  # artwork not served here: the URL given, as it is

    def test_history_is_bounded_and_repeats_are_one_track(self):
        for n in range(30):
            self.mount.set_metadata(title="Song %d" % n)
            self.mount.set_metadata(title="Song %d" % n)  # the same title again: the same track
        history = self.document()[2]["history"]
        self.assertEqual([entry["title"] for entry in history], ["Song %d" % n for n in range(28, 18, -1)])

    def test_unknown_mounts_and_a_mount_without_artwork(self):
        self.assertIn("404", self.h.get("/nothing/metadata.json")[0])
        status, _, body = self.h.get("/live/artwork.jpg")
        self.assertIn("404", status)
        self.assertIn(b"artwork_enabled", body)

    def test_the_api_and_the_admin_set_album_and_cover(self):
        status, _, _ = self.h.get("/admin/metadata?mount=/live&mode=updinfo&song=A%20-%20B&album=Rec"
                                  "&artwork=https://covers.example/b.jpg", "YWRtaW46aGFja21l")
        self.assertIn("200", status)
        self.assertEqual((self.mount.track.album, self.mount.track.artwork), ("Rec", "https://covers.example/b.jpg"))
        status, _, _ = self.h.get("/admin/metadata?mount=/live&mode=updinfo&song=x&artwork=file:///etc/passwd",
                                  "YWRtaW46aGFja21l")
        self.assertIn("400", status)


class ArtworkTests(SynchronousTestCase):
    def setUp(self):
        self.folder = os.path.abspath(self.mktemp())
        self.h = Harness('mounts { live { %s } }' % COVERS.replace("artwork_enabled true",
                                                                   'artwork_enabled true artwork_cache covers'))
        self.h.data_dir = self.folder
        self.source, _ = self.h.source()
        feed_frames(self.source, 10)
        self.mount = self.h.registry.get("/live")

    def cover(self, extra=""):
        status, headers, body = self.h.get("/live/artwork.jpg", extra=extra)
        return status, headers, body

    def test_a_placeholder_until_there_is_a_cover(self):
        status, headers, body = self.cover()
        self.assertEqual((status, headers["content-type"]), ("HTTP/1.0 200 OK", "image/jpeg"))
        self.assertEqual(Image.open(io.BytesIO(body)).size, (120, 120))
        self.assertEqual(json.loads(self.h.get("/live/metadata.json")[2])["artwork"],
                         "http://radio.test:8000/live/artwork.jpg?v=%d" % self.mount.metadata_version)
        status, _, body = self.cover("If-None-Match: %s\r\n" % headers["etag"])
        self.assertEqual((status, body), ("HTTP/1.0 304 Not Modified", b""))

    def test_a_cover_url_of_an_allowed_host_is_fetched_fitted_and_cached(self):
        url = "https://img.cdn.example/a.png"
        self.h.web[url] = png_reply(image((640, 480)))
        self.mount.set_metadata(song="A - B", info=TrackInfo(artwork=url))
        self.h.clock.advance(1)
        _, headers, body = self.cover()
        fitted = Image.open(io.BytesIO(body))
        self.assertEqual((fitted.format, fitted.size), ("JPEG", (120, 90)))  # fitted, its shape kept
        self.assertEqual(fitted.getpixel((60, 45))[0] > 150, True)
        self.assertEqual(len(os.listdir(os.path.join(self.folder, "covers"))), 1)
        document = json.loads(self.h.get("/live/metadata.json")[2])
        self.assertTrue(document["artwork"].startswith("http://radio.test:8000/live/artwork.jpg?v="))
        # The same cover again: from the cache on disk, not fetched again... once the track changes back.
        del self.h.web[url]
        self.mount.set_metadata(song="C - D")
        self.assertNotEqual(self.cover()[2], body)  # no cover: the placeholder
        self.h.web[url] = png_reply(b"not used: the cache has it")
        self.mount.set_metadata(song="A - B", info=TrackInfo(artwork=url))
        self.assertEqual(self.cover()[2], body)

    def test_other_hosts_are_never_fetched(self):
        for url in ("https://evil.example/a.png", "http://127.0.0.1:6379/", "https://covers.example.evil.example/a"):
            self.mount.set_metadata(song="A - " + url, info=TrackInfo(artwork=url))
            self.assertEqual(json.loads(self.h.get("/live/metadata.json")[2])["artwork"], url)
        self.assertEqual(self.h.fetched, [])

    def test_what_is_not_a_cover_leaves_the_placeholder(self):
        placeholder = self.cover()[2]
        for name, reply in (("text", png_reply(b"<html>", "text/html")), ("404", png_reply(image(), code=404)),
                            ("junk", png_reply(b"\x89PNG junk")), ("huge", png_reply(b"x" * (9 * 1024 * 1024)))):
            url = "https://covers.example/%s.png" % name
            self.h.web[url] = reply
            self.mount.set_metadata(song="A - " + name, info=TrackInfo(artwork=url))
            self.assertEqual(self.cover()[2], placeholder, name)
        self.assertEqual(len(self.h.fetched), 4)

    def test_a_cover_for_a_track_gone_meanwhile_is_dropped(self):
        from twisted.internet.defer import Deferred

        waiting = Deferred()
        self.h.artworks.fetch = lambda *args, **kw: waiting
        self.mount.set_metadata(song="A - B", info=TrackInfo(artwork="https://covers.example/slow.png"))
        self.mount.set_metadata(song="C - D")
        waiting.callback(png_reply(image()))
        self.assertIsNone(self.mount.cover)

    def test_hosts(self):
        hosts = ("covers.example", "*.cdn.example")
        self.assertTrue(host_allowed("https://covers.example/x.jpg", hosts))
        self.assertTrue(host_allowed("https://a.b.cdn.example/x.jpg", hosts))
        self.assertFalse(host_allowed("https://cdn.example.evil/x.jpg", hosts))
        self.assertFalse(host_allowed("https://xcovers.example/x.jpg", hosts))


class FitTests(SynchronousTestCase):
    def test_formats_and_refusals(self):
        for kind in ("PNG", "JPEG", "GIF", "WEBP"):
            self.assertEqual(Image.open(io.BytesIO(fit_jpeg(image(kind=kind), (100, 100)))).size, (100, 75), kind)
        with self.assertRaises(NotAnImage):
            fit_jpeg(b"GIF89a not really", (100, 100))
        side = int(MAX_PIXELS ** 0.5) + 10
        with self.assertRaises(NotAnImage):
            fit_jpeg(image((side, side), kind="PNG", colour=(0, 0, 0)), (100, 100))
