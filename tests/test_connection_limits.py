"""
Connections per client address, and the slots kept for the operator when
listeners (or an attacker) fill the rest.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from gocast.core.throttle import address_key

from .streaming import Harness, close
from .test_endpoints import proxy_factory

HEALTH = b"GET /health/live HTTP/1.0\r\n\r\n"


class PerAddressTests(SynchronousTestCase):
    def test_one_address_cannot_take_every_slot(self):
        h = Harness("limits { max_connections_per_ip 3 }")
        held = [h.connect(peer="198.51.100.7") for _ in range(3)]
        door, refused = h.connect(peer="198.51.100.7")
        self.assertIn(b"HTTP/1.0 503", refused.value())
        self.assertIn(b"too many connections from your address", refused.value())
        self.assertTrue(refused.disconnecting)
        close(door)
        _, other = h.connect(HEALTH, peer="198.51.100.8")
        h.clock.advance(0)
        self.assertIn(b"200 OK", other.value())
        close(held[0][0])  # one leaves: room for one more
        _, again = h.connect(HEALTH, peer="198.51.100.7")
        h.clock.advance(0)
        self.assertIn(b"200 OK", again.value())

    def test_ipv6_counts_by_64(self):
        self.assertEqual(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64")
        self.assertEqual(address_key("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64")
        self.assertEqual(address_key("::ffff:192.0.2.1"), "192.0.2.1")
        self.assertEqual(address_key("192.0.2.1"), "192.0.2.1")
        h = Harness("limits { max_connections_per_ip 2 }")
        h.connect(peer="2001:db8:1:2::1")
        h.connect(peer="2001:db8:1:2::2")
        _, refused = h.connect(peer="2001:db8:1:2:ffff::3")
        self.assertIn(b"503", refused.value())

    def test_trusted_proxy_clients_count_one_by_one(self):
        h = Harness("server { trusted_proxies [10.9.0.0/16] } limits { max_connections_per_ip 2 }")
        doors = []
        for client in ("192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1"):
            door, transport = h.connect(b"GET /health/live HTTP/1.0\r\nX-Forwarded-For: %s\r\n\r\n"
                                        % client.encode(), peer="10.9.0.1")
            h.clock.advance(0)
            self.assertIn(b"200 OK", transport.value())
            doors.append(door)
        self.assertEqual(h.factory.per_address, {"192.0.2.1": 2, "192.0.2.2": 1, "192.0.2.3": 1})
        _, refused = h.connect(b"GET /health/live HTTP/1.0\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n",
                               peer="10.9.0.1")
        self.assertIn(b"too many connections from your address", refused.value())
        for door in doors:
            close(door)
        self.assertEqual(h.factory.per_address, {"192.0.2.1": 1})  # the refused one is still open

    def test_proxy_protocol_clients_count_one_by_one(self):
        h = Harness("limits { max_connections_per_ip 1 }")
        doors = proxy_factory(h.factory.behind_proxy_protocol())
        answers = []
        for client in (b"192.0.2.1", b"192.0.2.2", b"192.0.2.1"):
            proto = doors.buildProtocol(IPv4Address("TCP", "10.1.1.1", 4000))
            transport = StringTransport(peerAddress=IPv4Address("TCP", "10.1.1.1", 4000))
            proto.makeConnection(transport)
            proto.dataReceived(b"PROXY TCP4 %s 10.1.1.2 5000 8000\r\nGET /health/live HTTP/1.1\r\n\r\n" % client)
            h.clock.advance(0)
            answers.append(transport.value())
        self.assertIn(b"200 OK", answers[0])
        self.assertIn(b"200 OK", answers[1])
        self.assertIn(b"too many connections from your address", answers[2])  # the first is still open


class ReserveTests(SynchronousTestCase):
    def test_operator_gets_in_when_listeners_filled_the_rest(self):
        h = Harness("limits { max_clients 2 reserved_connections 2 max_connections_per_ip 0 }")
        h.source()
        h.listener()  # the two ordinary slots are taken
        door, listener = h.listener(peer="192.0.2.50")
        self.assertIn(b"503", listener.value())
        self.assertIn(b"server full", listener.value())
        close(door)
        door, health = h.connect(HEALTH)
        h.clock.advance(0)
        self.assertIn(b"200 OK", health.value())
        close(door)
        door, admin = h.connect(b"GET /admin/stats HTTP/1.0\r\nAuthorization: Basic YWRtaW46aGFja21l\r\n\r\n")
        h.clock.advance(0)
        self.assertIn(b"200 OK", admin.value())
        close(door)
        h.connect()  # the reserve taken by connections that never say what they want
        h.connect()
        _, refused = h.connect(HEALTH)
        self.assertIn(b"503", refused.value())
