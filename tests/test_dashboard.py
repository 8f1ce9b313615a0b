"""The dashboard's HTTP side: the page, logging in, the CSRF rule, history, listeners and actions."""

import json

from twisted.trial.unittest import SynchronousTestCase

from .service_harness import ServiceHarness
from .streaming import feed_frames, split_response


class DashboardTests(SynchronousTestCase):
    def setUp(self):
        self.data_dir = self.mktemp()
        self.start()

    def start(self):
        """The server, on the same data directory as before (a restart)."""
        self.h = ServiceHarness(self, 'server { data_dir "%s" } mounts { live { } backup { } }' % self.data_dir)
        self.addCleanup(self.h.service.state.close)

    def restart(self):
        self.h.service.state.close()
        self.start()

    def call(self, method, path, body=None, cookie=None, csrf=None):
        head = "%s /admin/dashboard/%s HTTP/1.0\r\nHost: radio.test\r\n" % (method, path)
        data = json.dumps(body).encode() if body is not None else b""
        if data:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(data)
        if cookie:
            head += "Cookie: gocast_dashboard=%s\r\n" % cookie
        if csrf:
            head += "X-CSRF-Token: %s\r\n" % csrf
        _, transport = self.h.connect((head + "\r\n").encode() + data)
        self.h.clock.advance(0)
        status, headers, payload = split_response(transport.value())
        return int(status.split()[1]), headers, payload

    def log_in(self):
        status, headers, payload = self.call("POST", "login", {"user": "admin", "password": "hackme"})
        self.assertEqual(status, 200, payload)
        cookie = headers["set-cookie"]
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=strict", cookie)
        self.assertIn("Path=/admin", cookie)
        return cookie.split(";")[0].split("=", 1)[1], json.loads(payload)["csrf"]

    def test_recordings_listed_to_a_session_and_never_by_path(self):
        self.assertEqual(self.call("GET", "recordings")[0], 401)
        self.assertEqual(self.call("GET", "recording?id=x.mp3")[0], 401)
        cookie, _ = self.log_in()
        status, _, payload = self.call("GET", "recordings", cookie=cookie)
        self.assertEqual((status, json.loads(payload)), (200, {"recordings": []}))
        for hostile in ("..%2Fgocast.db", "%2Fetc%2Fpasswd", ""):
            self.assertEqual(self.call("GET", "recording?id=" + hostile, cookie=cookie)[0], 404, hostile)

    def test_page_is_served_with_a_content_security_policy(self):
        status, headers, page = self.call("GET", "")
        self.assertEqual(status, 200)
        self.assertIn(b'<script src="static/dashboard.js"></script>', page)
        self.assertIn("default-src 'self'", headers["content-security-policy"])

    def test_login_takes_json_only(self):
        """A form another site's page posts is not JSON: it cannot log the browser in (login CSRF)."""
        body = b"user=admin&password=hackme"
        head = ("POST /admin/dashboard/login HTTP/1.0\r\nHost: radio.test\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % len(body))
        _, transport = self.h.connect(head.encode() + body)
        self.h.clock.advance(0)
        status, headers, payload = split_response(transport.value())
        self.assertIn(" 415 ", status)
        self.assertNotIn("set-cookie", headers)
        text = b'{"user": "admin", "password": "hackme"}'
        head = ("POST /admin/dashboard/login HTTP/1.0\r\nHost: radio.test\r\nContent-Type: text/plain\r\n"
                "Content-Length: %d\r\n\r\n" % len(text))
        _, transport = self.h.connect(head.encode() + text)
        self.h.clock.advance(0)
        self.assertIn(" 415 ", split_response(transport.value())[0])

    def test_login_wrong_and_rate_limited(self):
        for _ in range(10):
            self.assertEqual(self.call("POST", "login", {"user": "admin", "password": "nope"})[0], 401)
        self.assertEqual(self.call("POST", "login", {"user": "admin", "password": "hackme"})[0], 429)

    def test_session_history_listeners_and_logout(self):
        self.assertEqual(self.call("GET", "session")[0], 401)
        self.assertEqual(self.call("GET", "history")[0], 401)
        cookie, csrf = self.log_in()
        self.assertEqual(json.loads(self.call("GET", "session", cookie=cookie)[2]), {"csrf": csrf})
        source, _ = self.h.source()
        feed_frames(source, 20)
        self.h.listener()
        self.h.clock.advance(10)
        status, _, payload = self.call("GET", "history?range=1h", cookie=cookie)
        self.assertEqual(status, 200)
        self.assertIn("/live", {p["mount"] for p in json.loads(payload)["points"]})
        status, headers, payload = self.call("GET", "history?range=1d&format=csv", cookie=cookie)
        self.assertEqual((status, headers["content-type"]), (200, "text/csv; charset=utf-8"))
        [listener] = json.loads(self.call("GET", "listeners?mount=/live", cookie=cookie)[2])["listeners"]
        self.assertEqual((listener["ip"], listener["country"]), ("10.0.0.9", "unknown"))
        self.assertEqual(self.call("POST", "logout", cookie=cookie)[0], 403)  # no CSRF token
        self.assertEqual(self.call("POST", "logout", cookie=cookie, csrf=csrf)[0], 200)
        self.assertEqual(self.call("GET", "session", cookie=cookie)[0], 401)

    def test_a_login_survives_a_restart_and_a_logout_too(self):
        cookie, csrf = self.log_in()
        self.restart()
        self.assertEqual(json.loads(self.call("GET", "session", cookie=cookie)[2]), {"csrf": csrf})
        with open(self.h.service.state.path, "rb") as db:
            self.assertNotIn(cookie.encode(), db.read())  # only its hash is kept
        self.assertEqual(self.call("POST", "logout", cookie=cookie, csrf=csrf)[0], 200)
        self.restart()
        self.assertEqual(self.call("GET", "session", cookie=cookie)[0], 401)

    def test_logins_expire_across_restarts(self):
        cookie, _ = self.log_in()
        self.restart()
        self.h.clock.advance(self.h.service.config.admin.session_timeout + 1)
        self.assertEqual(self.call("GET", "session", cookie=cookie)[0], 401)

    def test_actions_need_the_csrf_token(self):
        cookie, csrf = self.log_in()
        live, _ = self.h.source("/live")
        backup, _ = self.h.source("/backup")
        feed_frames(live, 20)
        feed_frames(backup, 20)
        _, listener = self.h.listener("/live")
        song = {"action": "metadata", "mount": "/live", "song": "Band - Tune"}
        self.assertEqual(self.call("POST", "action", song)[0], 401)
        self.assertEqual(self.call("POST", "action", song, cookie=cookie)[0], 403)
        self.assertEqual(self.call("POST", "action", song, cookie=cookie, csrf="guess")[0], 403)
        status, _, payload = self.call("POST", "action", song, cookie=cookie, csrf=csrf)
        self.assertEqual((status, json.loads(payload)), (200, {"song": "Band - Tune"}))
        self.assertEqual(self.h.service.registry.get("/live").song, "Band - Tune")
        move = {"action": "move", "mount": "/live", "destination": "/backup"}
        self.assertEqual(json.loads(self.call("POST", "action", move, cookie=cookie, csrf=csrf)[2]), {"moved": 1})
        [listener_id] = [l["id"] for l in json.loads(self.call("GET", "listeners?mount=/backup",
                                                               cookie=cookie)[2])["listeners"]]
        kick = {"action": "kick", "mount": "/backup", "id": listener_id}
        self.assertEqual(self.call("POST", "action", kick, cookie=cookie, csrf=csrf)[0], 200)
        self.assertTrue(listener.disconnecting)
        kill = {"action": "kill_source", "mount": "/backup"}
        self.assertEqual(json.loads(self.call("POST", "action", kill, cookie=cookie, csrf=csrf)[2]), {"killed": True})
        self.assertEqual(self.call("POST", "action", {"action": "explode", "mount": "/live"}, cookie=cookie,
                                   csrf=csrf)[0], 400)
        self.assertEqual(self.call("POST", "action", {"action": "kick", "mount": "/nope"}, cookie=cookie,
                                   csrf=csrf)[0], 404)
