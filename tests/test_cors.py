"""CORS on streams, status, metrics: preflight, explicit origins, credentials."""

from twisted.trial.unittest import SynchronousTestCase

from gocast.config import parse_config
from gocast.cors import cors_headers

from .streaming import Harness, split_response

EXPLICIT = 'cors { allowed_origins ["https://player.example"] allow_credentials true max_age 10m }'


def cors(text=""):
    return parse_config(text).config.cors


class HeaderTests(SynchronousTestCase):
    def test_wildcard_never_with_credentials(self):
        headers = dict(cors_headers(cors("cors { allow_credentials true }"), "https://a.example"))
        self.assertEqual(headers["Access-Control-Allow-Origin"], "*")
        self.assertNotIn("Access-Control-Allow-Credentials", headers)

    def test_explicit_origin_with_credentials(self):
        headers = dict(cors_headers(cors(EXPLICIT), "https://player.example"))
        self.assertEqual(headers["Access-Control-Allow-Origin"], "https://player.example")
        self.assertEqual(headers["Access-Control-Allow-Credentials"], "true")
        self.assertEqual(headers["Vary"], "Origin")
        self.assertEqual(cors_headers(cors(EXPLICIT), "https://evil.example"), [])

    def test_disabled(self):
        self.assertEqual(cors_headers(cors("cors { enabled false }"), "https://a.example"), [])


class PreflightTests(SynchronousTestCase):
    def preflight(self, h, path, origin):
        _, transport = h.connect(("OPTIONS %s HTTP/1.1\r\nOrigin: %s\r\n"
                                  "Access-Control-Request-Method: GET\r\n"
                                  "Access-Control-Request-Headers: icy-metadata\r\n\r\n"
                                  % (path, origin)).encode())
        return split_response(transport.value()), transport

    def test_preflight_for_streams_status_and_metrics(self):
        h = Harness(EXPLICIT)
        h.source()
        for path in ("/live", "/status-json.xsl", "/metrics"):
            (status, headers, _), transport = self.preflight(h, path, "https://player.example")
            self.assertEqual(status, "HTTP/1.1 204 No Content")
            self.assertEqual(headers["access-control-allow-origin"], "https://player.example")
            self.assertEqual(headers["access-control-max-age"], "600")
            self.assertIn("Icy-MetaData", headers["access-control-allow-headers"])
            self.assertIn("GET", headers["access-control-allow-methods"])
            self.assertFalse(transport.disconnecting)

    def test_preflight_from_unlisted_origin(self):
        (status, _, _), _ = self.preflight(Harness(EXPLICIT), "/live", "https://evil.example")
        self.assertIn(" 403 ", status)

    def test_actual_responses_carry_cors(self):
        h = Harness(EXPLICIT)
        h.source()
        for path in ("/status-json.xsl", "/metrics", "/health"):
            _, headers, _ = h.get(path, extra="Origin: https://player.example\r\n")
            self.assertEqual(headers["access-control-allow-origin"], "https://player.example", path)
            self.assertEqual(headers["access-control-allow-credentials"], "true", path)
        _, transport = h.listener(extra="Origin: https://player.example\r\n")
        headers = split_response(transport.value())[1]
        self.assertEqual(headers["access-control-allow-origin"], "https://player.example")
        self.assertIn("icy-metaint", headers["access-control-expose-headers"])
