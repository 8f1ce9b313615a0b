"""The health endpoints, over in-memory HTTP (treq's StubTreq) and a Clock."""

import json

from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from gocast import __version__
from gocast.resources.health import HealthResource, HealthState, disk_check, format_uptime


class HealthTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.disk = "ok"
        self.state = HealthState(self.clock, {"disk": lambda: self.disk})
        root = Resource()
        root.putChild(b"health", HealthResource(self.state))
        self.http = StubTreq(root)

    def get(self, path):
        response = self.successResultOf(self.http.get("http://gocast.test" + path))
        body = self.successResultOf(response.content())
        return response.code, response.headers.getRawHeaders("content-type"), json.loads(body)

    def test_live(self):
        self.assertEqual(self.get("/health/live"), (200, ["application/json"], {"status": "alive"}))

    def test_ready_then_draining(self):
        self.assertEqual(self.get("/health/ready")[0::2], (200, {"status": "ready"}))
        self.state.draining = True
        self.assertEqual(self.get("/health/ready")[0::2], (503, {"status": "draining"}))

    def test_summary(self):
        self.clock.advance(87300)
        code, _, body = self.get("/health")
        self.assertEqual(code, 200)
        self.assertEqual(
            body,
            {"status": "healthy", "version": __version__, "uptime": "24h15m",
             "uptime_seconds": 87300, "checks": {"disk": "ok"}},
        )
        self.assertEqual(self.get("/health/")[0], 200)

    def test_failing_check_is_503(self):
        self.disk = "low"
        code, _, body = self.get("/health")
        self.assertEqual((code, body["status"], body["checks"]), (503, "unhealthy", {"disk": "low"}))

    def test_head(self):
        response = self.successResultOf(self.http.head("http://gocast.test/health/live"))
        self.assertEqual(response.code, 200)

    def test_unknown_child(self):
        response = self.successResultOf(self.http.get("http://gocast.test/health/nope"))
        self.assertEqual(response.code, 404)


class HelperTests(SynchronousTestCase):
    def test_format_uptime(self):
        self.assertEqual([format_uptime(s) for s in (5, 65, 3600, 87300)],
                         ["5s", "1m5s", "1h0m", "24h15m"])

    def test_disk_check(self):
        self.assertEqual(disk_check(self.mktemp() + "/does/not/exist"), "unavailable")
        self.assertIn(disk_check("."), ("ok", "low"))
