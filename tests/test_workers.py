"""
Worker processes without processes: the control channel's framing and
socket passing (a real socket pair), and the main process's bookkeeping
of what workers report (counts, bytes, departures, kicks, crashes).
"""

import os
import socket

from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gocast.cluster.channel import MAX_PENDING_FDS, Channel
from gocast.cluster.workers import Handed, Worker, WorkerPool

from .streaming import Harness, close


class ChannelTests(SynchronousTestCase):
    def channel(self):
        got, lost = [], []
        channel = Channel(lambda c, m: got.append(m), lost.append)
        channel.makeConnection(StringTransport())
        return channel, got, lost

    def test_messages_round_trip(self):
        sender, _, _ = self.channel()
        receiver, got, _ = self.channel()
        sender.send({"type": "counts", "mounts": {"/live": {"listeners": 3}}})
        sender.send({"type": "left", "id": 7})
        data = sender.transport.value()
        for i in range(len(data)):  # any split
            receiver.dataReceived(data[i:i + 1])
        self.assertEqual(got, [{"type": "counts", "mounts": {"/live": {"listeners": 3}}}, {"type": "left", "id": 7}])

    def test_garbage_ends_the_channel(self):
        channel, got, _ = self.channel()
        channel.dataReceived(b"\x00\x00\x00\x03abc")
        self.assertTrue(channel.transport.disconnecting)
        channel, _, _ = self.channel()
        channel.dataReceived(b"\x7f\xff\xff\xff")
        self.assertTrue(channel.transport.disconnecting)

    def test_unclaimed_sockets_are_bounded_and_closed(self):
        from gocast.cluster import channel as module

        self.assertGreaterEqual(MAX_PENDING_FDS, 1024)  # a burst of hand-overs is not a misbehaving peer
        self.patch(module, "MAX_PENDING_FDS", 8)
        channel, _, lost = self.channel()
        pairs = [socket.socketpair() for _ in range(9)]
        for a, _ in pairs:
            channel.fileDescriptorReceived(os.dup(a.fileno()))
        self.assertEqual(len(channel.fds), 8)
        self.assertTrue(channel.transport.disconnecting)
        fd = channel.take_fd()
        os.close(fd)
        channel.connectionLost(Failure(Exception("gone")))
        self.assertEqual(len(channel.fds), 0)
        self.assertEqual(len(lost), 1)
        for a, b in pairs:
            a.close()
            b.close()


class FakeSession:
    def __init__(self, id, home="/live"):
        from gocast.protocols._http import RequestHead

        self.id = id
        self.home = home
        self.peer = "10.0.0.%d" % id
        self.admission = None
        self.listener_id = None
        self.user_agent = "player"
        self.head = RequestHead("GET", home, "HTTP/1.0", [])
        self.door = type("Door", (), {"request_id": "r%d" % id})()


class PoolTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness("mounts { live { } }")
        self.h.source("/live")
        self.pool = WorkerPool(self.h.registry, self.h.bus, self.h.clock, "", "secret", self.h.factory)
        self.workers = [Worker(self.pool, 0), Worker(self.pool, 1)]
        self.pool.workers = list(self.workers)
        self.sent = {0: [], 1: []}
        for worker in self.workers:
            worker.channel = type("C", (), {"send": lambda s, m, fd=None, i=worker.index: self.sent[i].append(m)})()

    def hand(self, worker, listener):
        session = FakeSession(listener)
        self.pool.handed[listener] = Handed.of(session, worker, self.h.clock.seconds(), None)
        worker.in_flight[listener] = session.home  # as take() does
        self.h.factory.remote_connections += 1
        return session

    def test_counts_bytes_and_in_flight(self):
        mount = self.h.registry.get("/live")
        self.pool.message(self.workers[0], {"type": "counts", "mounts": {"/live": {"listeners": 4, "bytes": 1000}},
                                            "last_id": 9})
        self.pool.message(self.workers[1], {"type": "counts", "mounts": {"/live": {"listeners": 2, "bytes": 500}},
                                            "last_id": 0})
        self.assertEqual(mount.listeners, 6)
        self.assertEqual(mount.bytes_sent, 1500)
        self.assertEqual(mount.peak_listeners, 6)
        # Handed after the worker's count: still counted until it counts it itself.
        self.hand(self.workers[0], 10)
        self.pool.message(self.workers[0], {"type": "counts", "mounts": {"/live": {"listeners": 4}}, "last_id": 9})
        self.assertEqual(mount.listeners, 7)
        self.pool.message(self.workers[0], {"type": "counts", "mounts": {}, "last_id": 10})
        self.assertEqual(mount.listeners, 2)

    def test_status(self):
        self.workers[1].ready = True
        self.pool.message(self.workers[1], {"type": "counts", "mounts": {"/live": {"listeners": 2}}, "last_id": 0})
        self.assertEqual(self.pool.status(), [{"index": 0, "pid": None, "ready": False, "listeners": 0},
                                              {"index": 1, "pid": None, "ready": True, "listeners": 2}])

    def test_departure(self):
        logged = []
        self.h.factory.access_log = type("Log", (), {"record": lambda s, *a, **k: logged.append((a, k))})()
        self.hand(self.workers[0], 5)
        self.pool.message(self.workers[0], {"type": "left", "id": 5, "duration": 12.5, "bytes": 4096,
                                            "mount": "/live"})
        self.assertNotIn(5, self.pool.handed)
        self.assertEqual(self.h.factory.remote_connections, 0)
        [event] = [e for e in self.h.events if e.name == "listener.disconnect"]
        self.assertEqual((event.data["duration"], event.data["bytes_sent"]), (12.5, 4096))
        [(fields, extra)] = logged
        self.assertEqual(fields, ("10.0.0.5", "GET", "/live", "HTTP/1.0", 200, 4096, "", "player", 12.5, "r5",
                                  "/live"))
        self.pool.message(self.workers[0], {"type": "left", "id": 5})  # twice: nothing more
        self.assertEqual(len([e for e in self.h.events if e.name == "listener.disconnect"]), 1)

    def test_kick_goes_to_the_right_worker(self):
        self.hand(self.workers[1], 8)
        self.assertTrue(self.pool.kick("/live", "8"))
        self.assertEqual(self.sent[1], [{"type": "kick", "id": 8}])
        self.assertFalse(self.pool.kick("/other", "8"))
        self.assertFalse(self.pool.kick("/live", "99"))
        self.assertFalse(self.pool.kick("/live", "x"))

    def test_crash_lets_its_listeners_go_and_restarts(self):
        self.hand(self.workers[0], 3)
        self.hand(self.workers[1], 4)
        self.pool.message(self.workers[0], {"type": "counts", "mounts": {"/live": {"listeners": 1}}, "last_id": 3})
        restarted = []
        self.pool.start_worker = lambda index, replace=None: restarted.append(index)
        mine, theirs = socket.socketpair()
        self.addCleanup(mine.close)
        self.addCleanup(theirs.close)
        on_its_way = os.dup(mine.fileno())
        self.pool._pending_fds[3] = (on_its_way, self.workers[0])
        self.pool.worker_ended(self.workers[0], Failure(Exception("killed")))
        self.assertEqual(list(self.pool.handed), [4])
        self.assertEqual(self.pool._pending_fds, {})
        self.assertRaises(OSError, os.fstat, on_its_way)  # our copy of its socket closed
        self.assertEqual(self.h.registry.get("/live").remote_listeners, 0)
        self.h.clock.advance(1.0)
        self.assertEqual(restarted, [0])

    def test_only_plain_tcp_moves(self):
        _, transport = self.h.listener("/live")
        self.workers[0].ready = True
        session = next(iter(self.h.registry.get("/live").subscribers))
        self.assertFalse(self.pool.take(session, self.h.registry.get("/live")))  # not a TCP socket
        close(session.door)
