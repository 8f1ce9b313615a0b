"""
Writing straight to a listener's socket: one send when Twisted has nothing
queued, the rest (or everything) through Twisted's buffer otherwise, and
never around it for a transport that is not plain TCP. A real socket pair
and Twisted's TCP transport on a MemoryReactor: nothing waits.
"""

import socket

from twisted.internet.protocol import Protocol
from twisted.internet.tcp import Server
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from gocast.protocols._directwrite import write, write_sequence


class DirectWriteTests(SynchronousTestCase):
    def setUp(self):
        self.ours, self.theirs = socket.socketpair()
        self.addCleanup(self.ours.close)
        self.addCleanup(self.theirs.close)
        self.ours.setblocking(False)
        self.reactor = MemoryReactor()
        self.transport = Server(self.ours, Protocol(), ("127.0.0.1", 1), None, 1, self.reactor)

    def received(self):
        self.theirs.setblocking(False)
        data = b""
        while True:
            try:
                more = self.theirs.recv(1 << 20)
            except BlockingIOError:
                return data
            if not more:
                return data
            data += more

    def test_idle_socket_gets_one_send_and_no_epoll_registration(self):
        write(self.transport, b"chunk-1")
        write_sequence(self.transport, [b"a", b"", b"bc"])
        self.assertEqual(self.received(), b"chunk-1abc")
        self.assertEqual((self.transport._tempDataBuffer, self.transport.dataBuffer), ([], b""))
        self.assertNotIn(self.transport, self.reactor.getWriters())

    def test_queued_data_keeps_its_place(self):
        self.transport.write(b"first")  # queued in Twisted, waiting for writability
        write(self.transport, b"second")
        write_sequence(self.transport, [b"third"])
        self.assertEqual(self.received(), b"")  # nothing jumped the queue
        self.assertEqual(self.transport._tempDataBuffer, [b"first", b"second", b"third"])
        self.transport.doWrite()
        self.assertEqual(self.received(), b"firstsecondthird")

    def test_what_the_kernel_does_not_take_goes_to_twisted(self):
        self.ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        big = bytes(range(256)) * 4096  # 1 MB: more than any send buffer
        write_sequence(self.transport, [b"head", big, b"tail"])
        queued = b"".join(self.transport._tempDataBuffer)
        self.assertTrue(queued.endswith(b"tail"))
        self.assertIn(self.transport, self.reactor.getWriters())
        got = self.received()
        self.assertEqual(got + queued, b"head" + big + b"tail")  # in order, nothing lost or doubled
        write(self.transport, b"more")  # queued behind, not sent around the queue
        self.assertEqual(self.transport._tempDataBuffer[-1], b"more")

    def test_other_transports_and_closed_ones_use_twisted(self):
        fake = StringTransport()
        write(fake, b"x")
        write_sequence(fake, [b"y", b"z"])
        self.assertEqual(fake.value(), b"xyz")
        self.transport.connected = False
        write(self.transport, b"late")
        self.assertEqual(self.received(), b"")

    def test_a_broken_connection_is_left_to_twisted(self):
        self.theirs.close()
        write(self.transport, b"to nobody")  # EPIPE: handed to Twisted, which reports the loss its way
        write(self.transport, b"again")
        self.assertEqual(self.transport._tempDataBuffer, [b"to nobody", b"again"])

    def test_lighten_shares_twisteds_strings(self):
        from gocast.protocols._directwrite import lighten

        other = Server(socket.socketpair()[0], Protocol(), ("127.0.0.2", 2), None, 2, self.reactor)
        self.addCleanup(other.socket.close)
        for transport in (self.transport, other):
            lighten(transport)
        self.assertIs(self.transport.logstr, other.logstr)
        lighten(StringTransport())  # anything else is left alone


class KeptTests(SynchronousTestCase):
    def test_a_listener_keeps_only_what_its_access_log_line_needs(self):
        from .streaming import Harness

        h = Harness("mounts { live { } }")
        h.source("/live")
        proto, _ = h.listener("/live?token=x", extra="User-Agent: VLC/3\r\nReferer: https://radio.test/\r\n"
                                                      "X-Other: y\r\n")
        session = proto.delegate
        self.assertEqual(session.head.headers, [("user-agent", "VLC/3"), ("referer", "https://radio.test/")])
        self.assertEqual((session.head.target, session.head.query), ("/live?token=x", {}))
        self.assertEqual(session.admission.request.headers, {})  # no credentials kept for an open mount
        self.assertEqual(session.user_agent, "VLC/3")
