"""
Every answer names GoCast (or the operator's ``server.server_id``), never
TwistedWeb; HEAD answers with GET's length and no body, quietly.
"""

from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from gocast import __version__
from gocast.config import parse_config

from .service_harness import ServiceHarness
from .streaming import Harness, split_response


def answer(harness, request):
    _, transport = harness.connect(request.encode())
    return split_response(transport.value())


class ServerHeaderTests(SynchronousTestCase):
    def test_default_product_token_everywhere(self):
        h = Harness()
        expected = "GoCast/" + __version__
        web = h.get("/health/live")  # twisted.web
        missing = h.get("/nothing-here")  # twisted.web's 404 page
        stream = answer(h, "GET /offline HTTP/1.0\r\n\r\n")  # the front door's own reply
        source = h.source()[1].value()  # a source accepted
        for status, headers, _ in (web, missing, stream, split_response(source)):
            self.assertEqual(headers["server"], expected, status)

    def test_operator_token_and_status_server_id(self):
        h = Harness('server { server_id "MyRadio/2.0" }')
        self.assertEqual(h.get("/health/live")[1]["server"], "MyRadio/2.0")
        self.assertEqual(answer(h, "GET /offline HTTP/1.0\r\n\r\n")[1]["server"], "MyRadio/2.0")
        self.assertIn(b'"server_id": "MyRadio/2.0"', h.get("/status-json.xsl")[2])

    def test_request_too_large_names_the_product(self):
        h = Harness()
        status, headers, _ = answer(h, "POST /api/v1/mounts HTTP/1.1\r\nHost: x\r\n"
                                       "Content-Length: 99999999\r\n\r\n")
        self.assertIn("413", status)
        self.assertEqual(headers["server"], "GoCast/" + __version__)

    def test_token_is_checked(self):
        for bad in ('"Evil\\r\\nSet-Cookie: x=1"', '"a b c d e"', '"é"'):
            with self.assertRaises(Exception, msg=bad):
                parse_config("server { server_id %s }" % bad)

    def test_websocket_handshake_and_reload(self):
        h = ServiceHarness(self, "server { }")
        self.assertEqual(h.service.stats_factory.server, "GoCast/" + __version__)
        h.rewrite('server { server_id "Station/1" }')
        self.successResultOf(h.service.reloader.reload())
        self.assertEqual(h.service.stats_factory.server, "Station/1")
        _, transport = h.connect(b"GET /health/live HTTP/1.0\r\n\r\n")
        h.clock.advance(0)
        self.assertEqual(split_response(transport.value())[1]["server"], "Station/1")


class HeadTests(SynchronousTestCase):
    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def test_head_has_get_length_and_no_body_nor_warning(self):
        h = Harness()
        for path in ("/health", "/health/live", "/status-json.xsl", "/nothing-here"):
            get_status, get_headers, get_body = h.get(path)
            head_status, head_headers, head_body = answer(h, "HEAD %s HTTP/1.0\r\n\r\n" % path)
            self.assertEqual(head_status, get_status, path)
            self.assertEqual(head_body, b"", path)
            self.assertEqual(int(head_headers["content-length"]), len(get_body), path)
        text = " ".join(str(e.get("log_format", "")) for e in self.events)
        self.assertNotIn("I think I'll eat it", text)
