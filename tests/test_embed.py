"""The embeddable player's pages, code snippets and files, with hostile names and bad options."""

import json
import re

from twisted.trial.unittest import SynchronousTestCase

from .streaming import Harness, feed_frames


class EmbedTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness('mounts { live { hls { enabled true } }  talk { } }')
        self.source, _ = self.h.source(extra='ice-name: <script>alert(1)</script>"Radio\r\n')
        feed_frames(self.source, 20)

    def config_of(self, body):
        found = re.search(rb'<script type="application/json" id="gocast-player-config">(.*?)</script>', body, re.S)
        return json.loads(found.group(1))

    def test_full_player_page(self):
        status, headers, body = self.h.get("/embed/live?theme=dark&color=ff6600&listeners=true")
        self.assertEqual(status, "HTTP/1.0 200 OK")
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertIn("script-src 'self'", headers["content-security-policy"])
        self.assertNotIn("frame-ancestors", headers["content-security-policy"])  # any site may embed it
        self.assertNotIn("x-frame-options", headers)
        self.assertIn(b'class="full" data-theme="dark"', body)
        self.assertIn(b'aria-label="Play"', body)
        self.assertIn(b'aria-label="Volume"', body)
        self.assertIn(b'aria-live="polite"', body)
        config = self.config_of(body)
        self.assertEqual((config["mount"], config["stream"], config["hls"], config["ws"]),
                         ("/live", "/live", "/hls/live/playlist.m3u8", "/ws/live"))
        self.assertEqual((config["color"], config["listeners"], config["autoplay"]), ("ff6600", True, False))
        self.assertIn(b'src="/embed/-/hls.light.min.js"', body)

    def test_hostile_names_are_escaped(self):
        self.h.registry.get("/live").set_metadata(song='</script><img src=x onerror=alert(2)> - "Tune"')
        _, _, body = self.h.get("/embed/live")
        self.assertNotIn(b"<script>alert(1)", body)
        self.assertNotIn(b"<img src=x", body)
        self.assertEqual(body.count(b"</script>"), 3)  # the config block, hls.js and the player's own
        self.assertEqual(self.config_of(body)["name"], '<script>alert(1)</script>"Radio')

    def test_mini_and_a_mount_without_hls(self):
        _, _, body = self.h.get("/embed/talk/mini")
        self.assertIn(b'class="mini"', body)
        self.assertIsNone(self.config_of(body)["hls"])
        self.assertNotIn(b"hls.light.min.js", body)

    def test_code_snippets(self):
        status, headers, body = self.h.get("/embed/live/code?format=json&theme=dark&color=f60")
        snippets = json.loads(body)
        self.assertEqual(snippets["iframe"],
                         '<iframe src="http://radio.test:8000/embed/live?theme=dark&amp;color=f60" width="300" '
                         'height="150" frameborder="0" allow="autoplay" title="&lt;script&gt;alert(1)&lt;/script&gt;'
                         '&quot;Radio player" style="border:0;max-width:100%"></iframe>')
        self.assertIn('src="http://radio.test:8000/embed/live/mini?theme=dark&amp;color=f60"', snippets["mini"])
        self.assertEqual(snippets["script"], '<script src="http://radio.test:8000/embed/-/embed.js" data-mount="/live" '
                                             'data-theme="dark" data-color="f60" async></script>')
        _, headers, page = self.h.get("/embed/live/code")
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertIn(b"&lt;iframe src=", page)

    def test_a_hostile_host_is_not_echoed(self):
        _, _, body = self.h.get("/embed/live/code?format=json", extra="")
        proto, transport = self.h.connect(b"GET /embed/live/code?format=json HTTP/1.0\r\n"
                                          b"Host: evil.example/\"><script>\r\n\r\n")
        answer = transport.value().partition(b"\r\n\r\n")[2]
        self.assertIn(b"http://localhost:8000/embed/live", answer)
        self.assertNotIn(b"evil", answer)
        self.assertTrue(json.loads(body))

    def test_bad_options_and_unknown_mounts(self):
        for query, reason in (("theme=neon", b"theme must be"), ("color=red", b"color must be"),
                              ("color=%23ff6600", b"color must be"), ("autoplay=maybe", b"must be true or false")):
            status, _, body = self.h.get("/embed/live?" + query)
            self.assertIn("400", status, query)
            self.assertIn(reason, body)
        self.assertIn("404", self.h.get("/embed/nothing")[0])
        self.assertIn("404", self.h.get("/embed/nothing/mini")[0])
        self.assertIn("404", self.h.get("/embed/")[0])

    def test_player_files(self):
        for name, kind in (("player.js", "javascript"), ("player.css", "text/css"), ("embed.js", "javascript")):
            status, headers, body = self.h.get("/embed/-/" + name)
            self.assertEqual(status, "HTTP/1.0 200 OK", name)
            self.assertIn(kind, headers["content-type"])
            self.assertTrue(body)
        self.assertIn("404", self.h.get("/embed/-/../__init__.py")[0])
        self.assertIn("404", self.h.get("/embed/-/nothing.js")[0])
