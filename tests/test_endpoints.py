"""
``server.endpoints``: Twisted endpoint strings for the front door (socket
activation, the PROXY protocol), and the client address a PROXY header gives.
"""

import io
import sys

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.internet.defer import succeed
from twisted.protocols.haproxy import proxyEndpoint
from twisted.trial.unittest import SynchronousTestCase

from gocast import tap
from gocast.config import ConfigError, find_config, parse_config

from .streaming import AUTH, Harness, close, feed_frames


class Captured:
    """An endpoint that keeps the factory it is asked to listen with."""

    def listen(self, factory):
        self.factory = factory
        return succeed(None)


def proxy_factory(factory):
    """The factory Twisted's haproxy: endpoint puts in front of ``factory``."""
    captured = Captured()
    proxyEndpoint(captured).listen(factory)
    return captured.factory


class ConfigTests(SynchronousTestCase):
    def test_accepted(self):
        text = ('server { endpoints ["tcp:8000:interface=0.0.0.0" "tcp6:port=8000:interface=\\\\:\\\\:" '
                '"systemd:domain=INET:index=0" "systemd:domain=INET6:name=web" "haproxy:tcp:8001" '
                '"unix:/run/gocast.sock:mode=660"] }')
        self.assertEqual(len(parse_config(text).config.server.endpoints), 6)

    def test_refused_with_the_reason(self):
        cases = {
            "tcp:0": "needs a port from 1 to 65535",
            "ssl:8443": "the type must be tcp, tcp6, unix or systemd",
            "haproxy:haproxy:tcp:1": "wraps one endpoint",
            "systemd:domain=INET:index=0:name=x": "not both",
            "systemd:domain=IPX:index=0": "domain=INET, INET6 or UNIX",
            "tcp:80:backlog=many": "backlog is a number",
            "tcp:80:port=81": "port given twice",
            "tcp:80:reuse=yes": "unknown option reuse",
        }
        for endpoint, reason in cases.items():
            with self.assertRaises(ConfigError, msg=endpoint) as caught:
                parse_config('server {\n  endpoints ["%s"]\n}\n' % endpoint)
            [issue] = caught.exception.issues
            self.assertEqual((issue.line, issue.column), (2, 14), endpoint)
            self.assertIn(reason, str(issue), endpoint)


class ListeningTests(SynchronousTestCase):
    def setUp(self):
        self.patch(tap, "find_config", lambda explicit, environ: find_config(
            explicit, environ, exists=lambda path: False))
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def service(self, endpoints):
        reactor = MemoryReactorClock()
        options = {"loaded": parse_config('server { data_dir "%s" endpoints [%s] }' % (
            self.mktemp(), " ".join('"%s"' % e for e in endpoints)))}
        service = tap.makeService(options, reactor=reactor)
        return service, reactor

    def test_endpoints_replace_listen_and_port(self):
        service, reactor = self.service(["tcp:9001:interface=127.0.0.1", "haproxy:tcp:9002"])
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        ports = {port: (factory, interface) for port, factory, _, interface in reactor.tcpServers}
        self.assertEqual(ports[9001], (service.front_door, "127.0.0.1"))
        wrapped, _ = ports[9002]
        self.assertIs(type(wrapped), type(proxy_factory(service.front_door)))
        self.assertIs(wrapped.wrappedFactory.doors, service.front_door)
        door = wrapped.wrappedFactory.buildProtocol(None)
        self.assertTrue(door.behind_proxy_protocol)
        self.assertNotIn(8000, ports)
        self.assertIn(8001, ports)  # the SHOUTcast port stays where it was

    def test_systemd_socket_missing_exits_78(self):
        with self.assertRaises(SystemExit) as caught:
            self.service(["systemd:domain=INET:index=3"])
        self.assertEqual(caught.exception.code, tap.EX_CONFIG)
        self.assertIn("systemd:domain=INET:index=3: systemd passed no such socket (it passed none)", self.stderr.getvalue())


class ProxyProtocolTests(SynchronousTestCase):
    """The address in the PROXY header is the client's, for every use of it."""

    def setUp(self):
        self.h = Harness()
        self.proxy = proxy_factory(self.h.factory)

    def through_balancer(self, client, request):
        proto = self.proxy.buildProtocol(IPv4Address("TCP", "10.1.1.1", 40000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "10.1.1.1", 40000))
        proto.makeConnection(transport)
        proto.dataReceived(b"PROXY TCP4 %s 10.1.1.2 51000 8000\r\n" % client.encode() + request)
        return proto, transport

    def test_source_listener_and_web_requests(self):
        logged = []
        record = lambda client, *rest, **more: logged.append(client)  # noqa: E731
        self.h.factory.access_log.record = self.h.site.access_log.record = record
        source, _ = self.through_balancer("198.51.100.20", (
            "SOURCE /live HTTP/1.0\r\n%sContent-Type: audio/mpeg\r\n\r\n" % AUTH).encode())
        feed_frames(source, 3)
        self.assertEqual(self.h.registry.mounts["/live"].source.peer, "198.51.100.20")
        listener, _ = self.through_balancer("203.0.113.7", b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
        self.h.clock.advance(1)
        [connect] = [e for e in self.h.events if e.name == "listener.connect"]
        self.assertEqual(connect.data["ip"], "203.0.113.7")
        close(listener)
        _, web = self.through_balancer("192.0.2.9", b"GET /health/live HTTP/1.0\r\n\r\n")
        self.h.clock.advance(0)
        self.assertIn(b"200 OK", web.value())
        self.assertEqual(logged, ["203.0.113.7", "192.0.2.9"])

    def test_no_header_is_cut_off(self):
        proto = self.proxy.buildProtocol(IPv4Address("TCP", "10.1.1.1", 40000))
        transport = StringTransport()
        proto.makeConnection(transport)
        proto.dataReceived(b"GET /health/live HTTP/1.0\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
