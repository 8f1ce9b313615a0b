"""Icecast-compatible status and admin endpoints, and their auth matrix."""

import base64
import json
from xml.etree import ElementTree

from twisted.trial.unittest import SynchronousTestCase

from gocast.core.throttle import FAILURE_LIMIT, FAILURE_WINDOW

from .media_builders import opus_stream
from .streaming import Harness, close, feed_frames, split_response

ADMIN = base64.b64encode(b"admin:hackme").decode()
SOURCE = base64.b64encode(b"source:hackme").decode()
LISTENER = base64.b64encode(b"alice:secret").decode()


def xml(body):
    return ElementTree.fromstring(body)


class StatusJsonTests(SynchronousTestCase):
    def test_one_source_is_an_object(self):
        h = Harness("server { hostname radio.test }")
        h.source("/live", extra="ice-name: Radio One\r\nice-bitrate: 128\r\n"
                 "ice-audio-info: samplerate=44100;channels=2\r\n")
        h.registry.get("/live").set_metadata(song="Band - Tune")
        h.listener("/live")
        status, headers, body = h.get("/status-json.xsl")
        self.assertEqual(headers["access-control-allow-origin"], "*")
        stats = json.loads(body)["icestats"]
        source = stats["source"]
        self.assertIsInstance(source, dict)
        self.assertEqual(source["listenurl"], "http://radio.test:8000/live")
        self.assertEqual((source["bitrate"], source["samplerate"], source["channels"]), (128, 44100, 2))
        self.assertEqual((source["title"], source["artist"]), ("Band - Tune", "Band"))
        self.assertEqual((source["listeners"], source["listener_peak"]), (1, 1))
        self.assertEqual(source["server_name"], "Radio One")
        self.assertEqual(source["server_type"], "audio/mpeg")
        for key in ("admin", "host", "location", "server_id", "server_start", "server_start_iso8601"):
            self.assertIn(key, stats)

    def test_ogg_title_and_artist_apart(self):
        h = Harness()
        source, _ = h.source("/ogg", content_type="audio/ogg")
        headers, audio = opus_stream(title="Tune")
        source.dataReceived(headers + b"".join(audio))
        entry = json.loads(h.get("/status-json.xsl")[2])["icestats"]["source"]
        self.assertEqual((entry["title"], entry["artist"]), ("Tune", "Band"))
        self.assertIn(b"<title>Tune</title>", h.get("/admin/stats", ADMIN)[2])

    def test_several_sources_are_a_list_and_hidden_ones_skipped(self):
        h = Harness("mounts { secret { hidden true } }")
        for path in ("/a", "/b", "/secret"):
            h.source(path)
        source = json.loads(h.get("/status-json.xsl")[2])["icestats"]["source"]
        self.assertEqual([s["listenurl"][-2:] for s in source], ["/a", "/b"])

    def test_no_source(self):
        self.assertNotIn("source", json.loads(Harness().get("/status-json.xsl")[2])["icestats"])


class AdminAuthTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness()
        self.h.source("/live")

    def test_matrix(self):
        for action in ("stats", "listmounts", "listclients?mount=/live", "moveclients?mount=/live",
                       "killsource?mount=/live", "killclient?mount=/live&id=1"):
            for auth in (None, SOURCE, LISTENER):
                status, headers, _ = self.h.get("/admin/" + action, auth)
                self.assertIn(" 401 ", status, (action, auth))
                self.assertEqual(headers["www-authenticate"], 'Basic realm="Icecast2 Server"')
        for auth in (ADMIN, SOURCE):
            status = self.h.get("/admin/metadata?mount=/live&mode=updinfo&song=x", auth)[0]
            self.assertIn(" 200 ", status, auth)
        self.assertIn(" 401 ", self.h.get("/admin/metadata?mount=/live&mode=updinfo&song=x", LISTENER)[0])

    def test_missing_mount_is_400(self):
        for action in ("listclients", "metadata?mode=updinfo&song=x", "killsource"):
            status, _, body = self.h.get("/admin/" + action, ADMIN)
            self.assertIn(" 400 ", status, action)
            self.assertEqual(xml(body).find("return").text, "0")


class AdminActionTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness("mounts { live { } backup { } }")
        self.live, _ = self.h.source("/live")
        self.backup, _ = self.h.source("/backup")
        feed_frames(self.live, 10)
        self.listener_proto, self.listener = self.h.listener("/live", "User-Agent: mpv\r\n")

    def test_metadata(self):
        status, _, body = self.h.get(
            "/admin/metadata?mount=/live&mode=updinfo&song=Caf%E9+-+Ol%E9&charset=ISO-8859-1", SOURCE)
        self.assertEqual(xml(body).find("message").text, "Metadata update successful")
        mount = self.h.registry.get("/live")
        self.assertEqual((mount.artist, mount.title), ("Café", "Olé"))
        self.assertEqual(self.h.events[-1].name, "source.metadata")
        self.h.get("/admin/metadata?mount=/live&mode=updinfo&title=T&artist=A", ADMIN)
        self.assertEqual(mount.song, "A - T")

    def test_metadata_from_a_posted_form(self):
        form = b"mount=/live&mode=updinfo&song=Posted+Song"
        _, transport = self.h.connect(b"POST /admin/metadata HTTP/1.0\r\nHost: radio.test\r\nAuthorization: Basic "
                                      + ADMIN.encode() + b"\r\nContent-Type: application/x-www-form-urlencoded"
                                      b"\r\nContent-Length: %d\r\n\r\n" % len(form) + form)
        _, _, body = split_response(transport.value())
        self.assertEqual(xml(body).find("message").text, "Metadata update successful")
        self.assertEqual(self.h.registry.get("/live").song, "Posted Song")

    def test_listclients_and_killclient(self):
        root = xml(self.h.get("/admin/listclients?mount=/live", ADMIN)[2])
        listener = root.find("source/listener")
        self.assertEqual(root.find("source").get("mount"), "/live")
        self.assertEqual(listener.find("UserAgent").text, "mpv")
        self.assertEqual(listener.find("IP").text, "10.0.0.5")
        wanted = listener.find("ID").text
        body = self.h.get("/admin/killclient?mount=/live&id=%s" % wanted, ADMIN)[2]
        self.assertEqual(xml(body).find("return").text, "1")
        self.assertTrue(self.listener.disconnecting)
        self.assertEqual((self.h.events[-1].name, self.h.events[-1].data["id"]),
                         ("listener.kicked", int(wanted)))

    def test_listmounts_and_stats(self):
        root = xml(self.h.get("/admin/listmounts", ADMIN)[2])
        self.assertEqual([s.get("mount") for s in root.findall("source")], ["/backup", "/live"])
        self.assertEqual(root.find("source[@mount='/live']/listeners").text, "1")
        stats = xml(self.h.get("/admin/stats", ADMIN)[2])
        self.assertEqual(stats.find("sources").text, "2")
        self.assertEqual(stats.find("source[@mount='/live']/listener/UserAgent").text, "mpv")

    def test_moveclients(self):
        body = self.h.get("/admin/moveclients?mount=/live&destination=/backup", ADMIN)[2]
        self.assertEqual(xml(body).find("return").text, "1")
        self.assertEqual(self.h.registry.get("/backup").listeners, 1)
        self.assertFalse(self.listener.disconnecting)

    def test_killsource_moves_listeners_to_fallback(self):
        self.h.get("/admin/fallbacks?mount=/live&fallback=/backup", ADMIN)
        self.h.get("/admin/killsource?mount=/live", ADMIN)
        self.assertTrue(self.h.registry.get("/live").source is not None)  # until the socket closes
        close(self.live)
        self.assertEqual(self.h.registry.get("/backup").listeners, 1)

    def test_actions_are_not_taken_from_another_sites_page(self):
        for extra in ("Sec-Fetch-Site: cross-site\r\n", "Origin: https://evil.example\r\n",
                      "Sec-Fetch-Site: same-site\r\nOrigin: https://sub.radio.test\r\n"):
            status, _, body = self.h.get("/admin/killsource?mount=/live", ADMIN, extra=extra)
            self.assertIn(" 403 ", status, extra)
            self.assertIn(b"another site", body)
        self.assertIsNotNone(self.h.registry.get("/live").source)
        same = "Sec-Fetch-Site: same-origin\r\nOrigin: http://radio.test:8000\r\n"
        self.assertIn(" 200 ", self.h.get("/admin/metadata?mount=/live&mode=updinfo&song=x", ADMIN, extra=same)[0])
        self.assertIn(" 200 ", self.h.get("/admin/stats", ADMIN, extra="Sec-Fetch-Site: cross-site\r\n")[0])

    def test_shoutcast_admin_cgi(self):
        status, _, _ = self.h.get("/admin.cgi?mode=updinfo&song=Old+School&pass=hackme&mount=/live")
        self.assertIn(" 200 ", status)
        self.assertEqual(self.h.registry.get("/live").title, "Old School")
        self.assertIn(" 401 ", self.h.get("/admin.cgi?mode=updinfo&song=x&pass=wrong")[0])

    def test_shoutcast_admin_cgi_without_mount_is_for_the_shoutcast_mount(self):
        h = Harness("shoutcast { mount /dj } mounts { live { } dj { } }")
        h.source("/live")
        h.source("/dj")
        self.assertIn(" 200 ", h.get("/admin.cgi?mode=updinfo&song=DJ+Set&pass=hackme")[0])
        self.assertEqual((h.registry.get("/dj").title, h.registry.get("/live").title), ("DJ Set", ""))


class PlaylistTests(SynchronousTestCase):
    def test_playlists(self):
        h = Harness()
        h.source("/radio/jazz", extra="ice-name: Jazz FM\r\n")
        status, headers, body = h.get("/radio/jazz.m3u")
        self.assertEqual((headers["content-type"], body), ("audio/x-mpegurl", b"http://radio.test:8000/radio/jazz\n"))
        body = h.get("/radio/jazz.pls")[2].decode()
        self.assertIn("File1=http://radio.test:8000/radio/jazz", body)
        self.assertIn("Title1=Jazz FM", body)
        root = xml(h.get("/radio/jazz.xspf")[2])
        self.assertTrue(root.tag.endswith("playlist"))
        self.assertIn(" 404 ", h.get("/nothing.m3u")[0])

    def test_health_through_front_door(self):
        status, _, body = Harness().get("/health/live")
        self.assertIn(" 200 ", status)
        self.assertEqual(json.loads(body), {"status": "alive"})


class AdminFailedLoginTests(SynchronousTestCase):
    """Guessing the admin password: ten wrong tries a minute per address, then 429."""

    def setUp(self):
        self.h = Harness("metrics { auth_required true }")
        self.h.source("/live")
        self.wrong = base64.b64encode(b"admin:guess").decode()

    def test_wrong_passwords_then_429_everywhere_until_the_window_passes(self):
        for _ in range(FAILURE_LIMIT):
            self.assertIn(" 401 ", self.h.get("/admin/stats", self.wrong)[0])
        for target in ("/admin/stats", "/metrics", "/admin.cgi?mode=updinfo&song=x&pass=hackme"):
            status, headers, body = self.h.get(target, ADMIN)  # even the right password, for now
            self.assertIn(" 429 Too Many Requests", status, target)
            self.assertEqual(headers["retry-after"], "60")
            self.assertIn(b"too many failed logins", body)
        self.assertIn(" 200 ", self.h.get("/admin/stats", ADMIN, peer="10.0.0.6")[0])  # another address
        self.h.clock.advance(FAILURE_WINDOW)
        self.assertIn(" 200 ", self.h.get("/admin/stats", ADMIN)[0])

    def test_what_is_not_a_failed_login(self):
        for _ in range(FAILURE_LIMIT + 5):
            self.assertIn(" 401 ", self.h.get("/admin/stats")[0])  # no credentials: the challenge
            self.assertIn(" 401 ", self.h.get("/admin/stats", SOURCE)[0])  # a source's, on admin's action
        self.assertIn(" 200 ", self.h.get("/admin/stats", ADMIN)[0])

    def test_metrics_and_admin_cgi_count_too(self):
        for _ in range(FAILURE_LIMIT // 2):
            self.assertIn(" 401 ", self.h.get("/metrics", self.wrong)[0])
            self.assertIn(" 401 ", self.h.get("/admin.cgi?mode=updinfo&song=x&pass=wrong")[0])
        self.assertIn(" 429 ", self.h.get("/admin/stats", ADMIN)[0])
