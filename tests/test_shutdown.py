"""Graceful shutdown: stop accepting, drain up to shutdown_timeout, then stop."""

from twisted.trial.unittest import SynchronousTestCase

from .service_harness import ServiceHarness
from .streaming import close, feed_frames

BASE = "server { listen 127.0.0.1 port 8000 shutdown_timeout 30s %s }\nshoutcast { enabled false }\n"


class ShutdownTests(SynchronousTestCase):
    def harness(self, extra=""):
        h = ServiceHarness(self, BASE % extra)
        h.clock.running = True
        return h

    def test_drain_then_stop_when_everyone_left(self):
        h = self.harness()
        source, _ = h.source()
        feed_frames(source, 20)
        listener_proto, listener = h.listener()
        h.service.shutdown()
        self.assertTrue(h.service.listeners[0].running)  # health checks still get through
        _, refused = h.listener()
        self.assertTrue(refused.value().startswith(b"HTTP/1.0 503"))
        _, refused = h.source("/other")
        self.assertTrue(refused.value().startswith(b"HTTP/1.0 503"))
        status, _, body = h.request("GET", "/health/ready")
        self.assertIn(" 503 ", status)
        self.assertIn(b"draining", body)
        listener.clear()
        feed_frames(source, 20)
        self.assertGreater(len(listener.value()), 0)  # still served while draining
        close(listener_proto)
        close(source)
        h.clock.advance(0.5)
        self.assertTrue(h.clock.hasStopped)
        self.assertFalse(h.service.listeners[0].running)

    def test_timeout_closes_the_rest(self):
        h = self.harness()
        h.source()
        _, listener = h.listener()
        h.service.shutdown()
        h.clock.advance(29)
        self.assertFalse(h.clock.hasStopped)
        self.assertFalse(listener.disconnecting)
        h.clock.advance(1)
        self.assertTrue(listener.disconnecting)
        self.assertTrue(h.clock.hasStopped)
        self.assertFalse([c for c in h.clock.getDelayedCalls() if c.active() and "drain" in repr(c.func)])

    def test_drain_listeners_false_closes_listeners_at_once(self):
        h = self.harness("drain_listeners false")
        _, source = h.source()
        _, listener = h.listener()
        h.service.shutdown()
        self.assertTrue(listener.disconnecting)
        self.assertFalse(source.disconnecting)

    def test_second_request_stops_at_once(self):
        h = self.harness()
        h.source()
        h.service.shutdown()
        self.assertFalse(h.clock.hasStopped)
        h.service.shutdown()
        self.assertTrue(h.clock.hasStopped)

    def test_hls_clients_do_not_hold_the_drain(self):
        h = ServiceHarness(self, BASE % "" + "mounts { live { hls { enabled true segment_duration 2 } } }")
        h.clock.running = True
        source, _ = h.source()
        feed_frames(source, 100)
        status, _, playlist = h.request("GET", "/hls/live/playlist.m3u8")
        self.assertIn(" 200 ", status)
        segment = [line for line in playlist.decode().split("\n") if line and not line.startswith("#")][-1]
        self.assertIn(" 200 ", h.request("GET", "/hls/live/" + segment)[0])
        self.assertEqual(h.service.registry.get("/live").listeners, 1)  # a player counts in the statistics
        h.service.shutdown()
        close(source)
        h.clock.advance(0.5)
        self.assertTrue(h.clock.hasStopped)  # but nothing to drain: no connection of theirs stays open
