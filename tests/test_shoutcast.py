"""SHOUTcast v1 sources: password line, OK2, icy headers, then the stream."""

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from gocast.core.throttle import FAILURE_LIMIT, FAILURE_WINDOW
from gocast.protocols.shoutcast import ShoutcastFactory

from .media_builders import mp3_frame
from .streaming import Harness, close


def shoutcast(h):
    factory = ShoutcastFactory(h.registry, h.bus, h.site, h.clock, auth_failures=h.auth_failures)
    proto = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 8001))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "10.1.1.1", 5000))
    proto.makeConnection(transport)
    return proto, transport


class ShoutcastTests(SynchronousTestCase):
    def test_password_ok2_headers_stream(self):
        h = Harness()
        proto, transport = shoutcast(h)
        proto.dataReceived(b"hackme\r\n")
        self.assertEqual(transport.value(), b"OK2\r\nicy-caps:11\r\n\r\n")
        proto.dataReceived(b"icy-name:Old Encoder\r\nicy-genre:Rock\r\nicy-br:128\r\n"
                           b"content-type:audio/mpeg\r\n\r\n" + mp3_frame() * 3)
        mount = h.registry.get("/live")
        self.assertEqual(mount.source.ice["icy-name"], "Old Encoder")
        self.assertEqual(dict(mount.listener_headers())["icy-br"], "128")
        self.assertEqual(mount.bytes_received, 3 * len(mp3_frame()))
        self.assertEqual(transport.value(), b"OK2\r\nicy-caps:11\r\n\r\n")
        close(proto)
        self.assertIsNone(h.registry.get("/live"))

    def test_all_at_once_and_default_content_type(self):
        h = Harness("shoutcast { mount /radio }")
        proto, _ = shoutcast(h)
        proto.dataReceived(b"hackme\nicy-name:x\n\n" + mp3_frame())
        self.assertEqual(h.registry.get("/radio").content_type, "audio/mpeg")

    def test_bad_password(self):
        h = Harness()
        proto, transport = shoutcast(h)
        proto.dataReceived(b"wrong\r\n")
        self.assertEqual(transport.value(), b"invalid password\r\n")
        self.assertTrue(transport.disconnecting)

    def test_password_guessing_refused_for_a_minute(self):
        h = Harness()
        for _ in range(FAILURE_LIMIT):
            shoutcast(h)[0].dataReceived(b"wrong\r\n")
        proto, transport = shoutcast(h)
        proto.dataReceived(b"hackme\r\n")
        self.assertEqual(transport.value(), b"invalid password\r\n")  # SHOUTcast v1 has nothing else to say
        h.clock.advance(FAILURE_WINDOW)
        proto, transport = shoutcast(h)
        proto.dataReceived(b"hackme\r\n")
        self.assertTrue(transport.value().startswith(b"OK2"))

    def test_mount_password(self):
        h = Harness("mounts { live { password s3cret } }")
        proto, transport = shoutcast(h)
        proto.dataReceived(b"s3cret\r\n")
        self.assertTrue(transport.value().startswith(b"OK2"))

    def test_endless_password_line_cut(self):
        proto, transport = shoutcast(Harness())
        proto.dataReceived(b"x" * 2000)
        self.assertTrue(transport.disconnecting)
