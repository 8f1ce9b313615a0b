"""
Every request on a connection goes through the front door: a stream after a
status request, a second head with its own deadline, bodies with theirs.
"""

import re

from twisted.trial.unittest import SynchronousTestCase

from .streaming import Harness, feed_frames


def responses(data):
    """The status lines in ``data``, in order (a body may run into the next one)."""
    return re.findall(rb"HTTP/1\.[01] \d{3} [^\r]*", data)


class KeepAliveTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness("limits { header_timeout 5s body_timeout 10s }")

    def test_stream_after_a_status_request_on_one_connection(self):
        source, _ = self.h.source()
        feed_frames(source, 3)
        proto, transport = self.h.connect(b"GET /status-json.xsl HTTP/1.1\r\nHost: x\r\n\r\n")
        self.h.clock.advance(0)
        self.assertEqual(responses(transport.value()), [b"HTTP/1.1 200 OK"])
        transport.clear()
        proto.dataReceived(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 200 OK\r\n"), transport.value()[:200])
        self.assertIn(b"Content-Type: audio/mpeg\r\n", transport.value())
        self.assertEqual(self.h.registry.get("/live").listeners, 1)

    def test_pipelined_web_requests_are_all_answered(self):
        _, transport = self.h.connect(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"
                                      b"GET /health/ready HTTP/1.1\r\nHost: x\r\n\r\n"
                                      b"GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.h.clock.advance(0)
        self.assertEqual(responses(transport.value()),
                         [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK", b"HTTP/1.1 404 Not Found"])
        self.assertTrue(transport.disconnecting)

    def test_second_head_has_a_deadline_however_it_trickles(self):
        proto, transport = self.h.connect(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        self.h.clock.advance(0)
        transport.clear()
        for byte in b"GET /health/live HTTP/1.1\nHost":  # bare LF lines, one byte a second
            proto.dataReceived(bytes([byte]))
            self.h.clock.advance(1)
            if transport.disconnecting:
                break
        self.assertTrue(transport.disconnecting)
        self.assertIn(b"408", transport.value())
        self.assertIn(b"request head not received in time", transport.value())

    def test_body_has_a_deadline_however_it_trickles(self):
        proto, transport = self.h.connect(b"POST /api/v1/mounts HTTP/1.1\r\nHost: x\r\n"
                                          b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(15):
            proto.dataReceived(b"{")
            self.h.clock.advance(1)
        self.assertTrue(transport.disconnecting)
        self.assertIn(b"HTTP/1.0 408 Request Timeout", transport.value())
        self.assertIn(b"request body not received in time", transport.value())

    def test_options_with_a_body_does_not_smuggle_a_request(self):
        smuggled = b"GET /status-json.xsl HTTP/1.1\r\nHost: x\r\n\r\n"
        _, transport = self.h.connect(b"OPTIONS * HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                                      % len(smuggled) + smuggled)
        self.h.clock.advance(0)
        self.assertEqual(responses(transport.value()), [b"HTTP/1.1 200 OK"])
        self.assertTrue(transport.disconnecting)

    def test_each_head_has_its_full_deadline_with_one_timer(self):
        """The deadline moves with each request; the connection keeps one timer for it, not one per request."""
        source, _ = self.h.source()
        feed_frames(source, 3)
        proto, transport = self.h.connect()

        def timers():
            return [c for c in self.h.clock.getDelayedCalls() if getattr(c.func, "__self__", None) is proto]

        for _ in range(3):  # a request every 4 s: never 5 s idle
            proto.dataReceived(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(len(timers()), 1)
            self.h.clock.advance(4)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(responses(transport.value()), [b"HTTP/1.1 200 OK"] * 3)
        self.h.clock.advance(0.9)  # 4.9 s since the last request
        self.assertFalse(transport.disconnecting)
        self.h.clock.advance(0.2)
        self.assertTrue(transport.disconnecting)
        self.assertIn(b"request head not received in time", transport.value())
