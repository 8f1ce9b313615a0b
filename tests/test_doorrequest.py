"""
HLS answered on the front door's connection (gocast.protocols.doorrequest):
what twisted.web did for every request still happens (request ID, Server
and Date, CORS, HEAD, access log, metrics), kept-alive and pipelined
requests are read in order without recursion, a slow reader holds back
its next request rather than a growing buffer, and TLS still goes through
twisted.web.
"""

from unittest import mock

from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import directlyProvides

from gocast.protocols import doorrequest

from .media_builders import adts_frame
from .streaming import Harness, feed_frames, split_response

CONFIG = """
cors { allowed_origins ["https://player.example"] }
mounts { live { hls { enabled true segment_duration 2 } } }
"""


def responses(data):
    """Each (status line, headers, body) in a stream of responses with Content-Length."""
    found = []
    while data:
        status, headers, rest = split_response(data)
        length = int(headers["content-length"])
        found.append((status, headers, rest[:length]))
        data = rest[length:]
    return found


class DoorRequestTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness(CONFIG)
        source, _ = self.h.source(content_type="audio/aac")
        feed_frames(source, 400, adts_frame())  # about 9 s: segments 0-3
        self.lines = []
        self.h.factory.access_log.record = lambda *args, **kw: self.lines.append(args)

    def pipelined(self, targets, version="HTTP/1.1", extra=""):
        data = b"".join(("GET %s %s\r\nHost: x\r\n%s\r\n" % (t, version, extra)).encode() for t in targets)
        return self.h.connect(data)

    def test_kept_alive_requests_answered_in_order_with_the_sites_headers(self):
        successes = self.h.metrics.http_requests.labels("2xx")._value.get()
        proto, transport = self.pipelined(["/hls/live/playlist.m3u8", "/hls/live/segment_1.ts",
                                           "/hls/live/segment_99.ts"], extra="X-Request-ID: abc-1\r\n")
        answers = responses(transport.value())
        self.assertEqual([a[0] for a in answers], ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 404 Not Found"])
        self.assertIn(b"\r\nContent-Type: application/vnd.apple.mpegurl\r\nCache-Control: ", transport.value())
        playlist, segment, missing = answers
        self.assertIn(b"segment_1.ts", playlist[2])
        self.assertEqual(segment[2], self.h.hls.output("/live").segmenter.lookup("segment_1.ts")[1])
        for _, headers, _ in answers:
            self.assertEqual(headers["x-request-id"], "abc-1")
            self.assertTrue(headers["server"].startswith("GoCast"))
            self.assertTrue(headers["date"].endswith(" GMT"))
            self.assertNotIn("connection", headers)  # HTTP/1.1 stays open
        self.assertEqual(segment[1]["cache-control"], "public, max-age=31536000, immutable")
        self.assertEqual(missing[2], b"no such HLS stream or segment\n")
        self.assertFalse(transport.disconnecting)
        self.assertEqual([(line[1], line[2], line[4], line[5]) for line in self.lines],
                         [("GET", "/hls/live/playlist.m3u8", 200, len(playlist[2])),
                          ("GET", "/hls/live/segment_1.ts", 200, len(segment[2])),
                          ("GET", "/hls/live/segment_99.ts", 404, len(missing[2]))])
        self.assertEqual(self.h.metrics.http_requests.labels("2xx")._value.get() - successes, 2)

    def test_http10_closes_unless_kept_alive(self):
        _, transport = self.pipelined(["/hls/live/playlist.m3u8"], version="HTTP/1.0")
        self.assertEqual(responses(transport.value())[0][1]["connection"], "close")
        self.assertTrue(transport.disconnecting)
        _, transport = self.pipelined(["/hls/live/playlist.m3u8"] * 2, version="HTTP/1.0",
                                      extra="Connection: keep-alive\r\n")
        answers = responses(transport.value())
        self.assertEqual([a[1]["connection"] for a in answers], ["keep-alive", "keep-alive"])
        self.assertFalse(transport.disconnecting)

    def test_head_is_measured_not_sent(self):
        _, transport = self.h.connect(b"HEAD /hls/live/segment_1.ts HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = split_response(transport.value())
        self.assertEqual((status, body), ("HTTP/1.1 200 OK", b""))
        self.assertEqual(int(headers["content-length"]),
                         len(self.h.hls.output("/live").segmenter.lookup("segment_1.ts")[1]))
        self.assertEqual(self.lines[0][5], 0)  # no body bytes sent

    def test_cors_for_allowed_origins_only(self):
        _, transport = self.pipelined(["/hls/live/playlist.m3u8"], extra="Origin: https://player.example\r\n")
        self.assertEqual(responses(transport.value())[0][1]["access-control-allow-origin"], "https://player.example")
        _, transport = self.pipelined(["/hls/live/playlist.m3u8"], extra="Origin: https://evil.example\r\n")
        self.assertNotIn("access-control-allow-origin", responses(transport.value())[0][1])

    def test_many_pipelined_requests_without_recursion(self):
        _, transport = self.pipelined(["/hls/live/segment_99.ts"] * 3000)  # one read of 120 KB
        self.assertEqual(len(responses(transport.value())), 3000)

    def test_a_slow_reader_holds_back_its_next_request(self):
        queued = [True]
        with mock.patch.object(doorrequest, "queued", lambda transport: queued[0]):
            proto, transport = self.pipelined(["/hls/live/segment_1.ts", "/hls/live/segment_2.ts"])
            self.assertEqual(len(responses(transport.value())), 1)  # the second waits for the first to go
            self.assertEqual(transport.producerState, "paused")  # not reading meanwhile
            drain = transport.producer
            self.assertFalse(transport.streaming)
            drain.resumeProducing()  # the kernel took some, not all
            self.assertEqual(len(responses(transport.value())), 1)
            queued[0] = False
            drain.resumeProducing()  # Twisted's buffer is empty
        self.assertEqual(len(responses(transport.value())), 2)
        self.assertIsNone(transport.producer)
        self.assertEqual(transport.producerState, "producing")

    def test_a_named_page_is_not_taken_for_hls(self):
        h = Harness("mounts { live { hls { enabled true segment_duration 2 path /health/x } } }")
        status, headers, _ = h.get("/health")
        self.assertIn(" 200 ", status)
        self.assertIsNone(h.site.resource.hls_target("/health/x/playlist.m3u8"))
        self.assertEqual(h.site.resource.hls_target("/hls/radio/live/segment_1.ts"),
                         ("/radio/live", "segment_1.ts"))
        self.assertIsNone(h.site.resource.hls_target("/hls/playlist.m3u8"))

    def test_tls_connections_go_through_twisted_web(self):
        proto = self.h.factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.5", 40000))
        directlyProvides(transport, ISSLTransport)
        transport.setTcpNoDelay = lambda enabled: None  # an ISSLTransport is a TCP transport
        proto.makeConnection(transport)
        with mock.patch.object(doorrequest.DoorRequest, "serve", side_effect=AssertionError("not on TLS")):
            proto.dataReceived(b"GET /hls/live/playlist.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = split_response(transport.value())
        self.assertIn(" 200 ", status)
        self.assertIn(b"segment_1.ts", body)
