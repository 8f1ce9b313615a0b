"""
The cluster with a Clock and an in-memory store: tokens, the choice of
upstreams (region, hops, load, loops, capacity), failover, listeners held
while a relay switches, node pulls, redirects of full nodes, and Redis
going away.
"""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from gocast.cluster.node import ClusterNode
from gocast.cluster.routing import MountRecord, NodeRecord, choose_upstream, sibling_for, wanted_mounts
from gocast.cluster.store import MemoryStore, redis_address
from gocast.cluster.token import check_token, make_token
from gocast.config import parse_config
from gocast.inputs.relay import HOLD_SECONDS, Relays

from .media_builders import mp3_frame
from .streaming import Harness, close, split_response
from .test_relay import FakeConnections, lost

OK_MP3 = b"HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n"


def node(id, region="eu", mounts=None, load=0.0, **kw):
    mounts = {m: MountRecord(tuple(path)) for m, path in (mounts or {}).items()}
    return NodeRecord(id, region=region, address=id, mounts=mounts, listeners=int(load * 100), max_listeners=100,
                      **kw)


class TokenTests(SynchronousTestCase):
    def test_round_trip_and_refusals(self):
        token = make_token("s3cret", "10.0.0.2:8000", "/live", now=1000.0)
        self.assertEqual(check_token("s3cret", token, "/live", 1030.0), "10.0.0.2:8000")
        self.assertIsNone(check_token("s3cret", token, "/other", 1030.0))  # opens one mount only
        self.assertIsNone(check_token("s3cret", token, "/live", 1061.0))  # expired
        self.assertIsNone(check_token("other", token, "/live", 1030.0))
        self.assertIsNone(check_token("", token, "/live", 1030.0))
        forged = token.replace(".1060.", ".9999.")
        self.assertIsNone(check_token("s3cret", forged, "/live", 1030.0))
        self.assertIsNone(check_token("s3cret", "x" * 600, "/live", 1030.0))
        self.assertIsNone(check_token("s3cret", "garbage", "/live", 1030.0))


class RoutingTests(SynchronousTestCase):
    def test_prefers_region_then_hops_then_load(self):
        me = node("relay-z", "eu")
        origin = node("origin", "us", {"/live": ["origin"]})
        near = node("near", "eu", {"/live": ["origin", "near"]}, load=0.5)
        near_light = node("light", "eu", {"/live": ["origin", "light"]}, load=0.1)
        nodes = [me, origin, near, near_light]
        self.assertEqual(choose_upstream("/live", me, nodes, 3).id, "light")
        self.assertEqual(choose_upstream("/live", me, [me, origin, near], 3).id, "near")
        self.assertEqual(choose_upstream("/live", node("relay-z", "us"), nodes, 3).id, "origin")

    def test_two_relays_deciding_at_once_cannot_loop(self):
        """Both pull from the far origin; each sees the other in its region: only the larger id cascades."""
        origin = node("origin", "us", {"/live": ["origin"]})
        r1 = node("eu-1", "eu", {"/live": ["origin", "eu-1"]})
        r2 = node("eu-2", "eu", {"/live": ["origin", "eu-2"]})
        nodes = [origin, r1, r2]
        self.assertEqual(choose_upstream("/live", r1, nodes, 3, current="origin").id, "origin")
        self.assertEqual(choose_upstream("/live", r2, nodes, 3, current="origin").id, "eu-1")

    def test_sticky_while_valid(self):
        me = node("relay-z")
        a = node("a", mounts={"/live": ["o", "a"]}, load=0.5)
        b = node("b", mounts={"/live": ["o", "b"]}, load=0.1)
        self.assertEqual(choose_upstream("/live", me, [me, a, b], 3, current="a").id, "a")
        self.assertEqual(choose_upstream("/live", me, [me, a, b], 3, current="gone").id, "b")
        # A relay of our own region appears: better rank than the far origin we had.
        origin = node("o", "us", {"/live": ["o"]})
        self.assertEqual(choose_upstream("/live", me, [me, origin], 3, current=None).id, "o")
        self.assertEqual(choose_upstream("/live", me, [me, origin, b], 3, current="o").id, "b")

    def test_no_loops_hop_bound_and_capacity(self):
        me = node("me")
        through_me = node("x", mounts={"/live": ["o", "me", "x"]})
        far = node("far", mounts={"/live": ["o", "r1", "r2", "far"]})
        full = node("full", mounts={"/live": ["o", "full"]}, load=0.95)
        self.assertIsNone(choose_upstream("/live", me, [me, through_me, far, full], 3))
        self.assertEqual(choose_upstream("/live", me, [me, far], 4).id, "far")
        self.assertIsNone(choose_upstream("/live", me, [me, node("o", mounts={"/live": ["o"]})], 3,
                                          avoid=["o"]))

    def test_wanted_mounts_and_siblings(self):
        me = node("me", mounts={"/mine": ["me"]})
        nodes = [me, node("a", mounts={"/live": ["a"], "/talk": ["a"]}), node("b", "us", mounts={"/x": ["b"]})]
        self.assertEqual(wanted_mounts("me", nodes), ["/live", "/talk", "/x"])
        self.assertEqual(wanted_mounts("me", nodes, ["/talk"]), ["/talk"])
        siblings = [me, node("a", mounts={"/live": ["a"]}, load=0.5), node("c", mounts={"/live": ["a", "c"]}),
                    node("us1", "us", mounts={"/live": ["a", "us1"]}), node("f", mounts={"/live": ["a"]}, load=1)]
        self.assertEqual(sibling_for("/live", me, siblings).id, "c")
        self.assertIsNone(sibling_for("/none", me, siblings))

    def test_records_from_json(self):
        record = node("n", mounts={"/live": ["o", "n"]})
        self.assertEqual(NodeRecord.from_json(record.as_json()), record)
        self.assertIsNone(NodeRecord.from_json({"id": "x"}))
        self.assertIsNone(NodeRecord.from_json({"id": "x", "address": "a", "mounts": {"/l": {"path": 5}}}))
        self.assertIsNone(NodeRecord.from_json("nonsense"))

    def test_redis_urls(self):
        self.assertEqual(redis_address("redis://:pw@10.0.0.1:6380/2"),
                         dict(host="10.0.0.1", port=6380, dbid=2, password="pw", username=None,
                              ssl_context_factory=False))
        self.assertTrue(redis_address("rediss://r.example")["ssl_context_factory"])


RELAY = """
cluster { role relay secret s3cret advertise "me:8000" region eu auto_relay true stall_timeout 3s
          heartbeat 1s node_timeout 4s sync { enabled true } }
"""


class ClusterNodeTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness(RELAY + "mounts { live { } }")
        self.net = FakeConnections()
        self.relays = Relays(self.h.registry, self.h.clock, self.net)
        self.relays.start()
        self.store = MemoryStore(self.h.clock)
        self.node = ClusterNode(self.h.registry, self.relays, self.h.clock, lambda url: self.store,
                                now=self.h.clock.seconds)
        self.h.factory.cluster = self.node
        self.h.clock.advance(1000)

    def publish(self, *records):
        for record in records:
            self.store.put_node(record.id, record.as_json(), 4.0)

    def test_registers_and_relays_from_the_best_upstream(self):
        self.publish(node("origin:8000", "us", {"/live": ["origin:8000"]}),
                     node("eu1:8000", "eu", {"/live": ["origin:8000", "eu1:8000"]}))
        self.node.configure(self.h.config)
        me = self.store.records["me:8000"][1]
        self.assertEqual((me["role"], me["region"], me["address"]), ("relay", "eu", "me:8000"))
        self.assertEqual(self.node.upstreams, {"/live": "eu1:8000"})
        host, port, _, _, _ = self.net.attempts[0]
        self.assertEqual((host, port), ("eu1", 8000))
        proto, transport = self.net.accept()
        request = transport.value().decode()
        self.assertIn("X-GoCast-Cluster: ", request)
        token = request.split("X-GoCast-Cluster: ")[1].split("\r\n")[0]
        self.assertEqual(check_token("s3cret", token, "/live", self.h.clock.seconds()), "me:8000")
        proto.dataReceived(OK_MP3)
        self.h.clock.advance(1)
        self.assertEqual(self.store.records["me:8000"][1]["mounts"]["/live"]["path"],
                         ["origin:8000", "eu1:8000", "me:8000"])
        self.assertIn("cluster.node_joined", self.h.event_names())
        self.h.metrics.state.cluster_nodes = lambda: len(self.node.nodes)
        self.assertIn("gocast_cluster_nodes 3.0", self.h.metrics.render().decode())

    def test_failover_keeps_listeners(self):
        self.publish(node("origin:8000", "us", {"/live": ["origin:8000"]}),
                     node("eu1:8000", "eu", {"/live": ["origin:8000", "eu1:8000"]}))
        self.node.configure(self.h.config)
        proto, _ = self.net.accept()
        proto.dataReceived(OK_MP3)
        listener_proto, listener = self.h.listener("/live")
        proto.dataReceived(mp3_frame() * 20)
        lost(proto)  # eu1 died (kill -9)
        self.assertFalse(listener.disconnecting)  # held on the mount, no fallback needed
        self.assertEqual(self.net.attempts[-1][:2], ("origin", 8000))  # at once, no backoff
        self.assertIn("relay.failover", self.h.event_names())
        proto, _ = self.net.accept()
        proto.dataReceived(OK_MP3)
        before = len(listener.value())
        proto.dataReceived(mp3_frame() * 20)
        self.assertGreater(len(listener.value()), before)
        self.assertEqual(self.h.registry.get("/live").listeners, 1)
        # eu1 still in Redis (its record has not expired): it stays avoided.
        self.publish(node("eu1:8000", "eu", {"/live": ["origin:8000", "eu1:8000"]}))
        self.h.clock.advance(1)
        self.assertEqual(self.node.upstreams["/live"], "origin:8000")
        close(listener_proto)

    def test_held_listeners_released_when_nothing_comes(self):
        self.publish(node("origin:8000", "us", {"/live": ["origin:8000"]}))
        self.node.configure(self.h.config)
        proto, _ = self.net.accept()
        proto.dataReceived(OK_MP3)
        _, listener = self.h.listener("/live")
        lost(proto)  # the only upstream: nothing to fail over to
        self.assertFalse(listener.disconnecting)
        self.h.clock.advance(HOLD_SECONDS)
        self.assertTrue(listener.disconnecting)

    def test_redis_down_keeps_relays(self):
        self.publish(node("origin:8000", "us", {"/live": ["origin:8000"]}))
        self.node.configure(self.h.config)
        proto, _ = self.net.accept()
        proto.dataReceived(OK_MP3)
        self.store.down = True
        for _ in range(5):
            self.h.clock.advance(1)
            proto.dataReceived(mp3_frame())
        self.assertEqual(self.relays.running["/live"].state, "streaming")
        self.assertIn("down", self.node.redis_error)
        self.store.down = False
        self.publish(node("origin:8000", "us", {"/live": ["origin:8000"]}))
        self.h.clock.advance(1)
        self.assertEqual(self.node.redis_error, "")

    def test_nodes_leaving(self):
        self.publish(node("other:8000", "eu"))
        self.node.configure(self.h.config)
        for _ in range(5):  # other's record expires
            self.h.clock.advance(1)
        self.assertIn("cluster.node_left", self.h.event_names())
        self.assertNotIn("other:8000", self.node.nodes)

    def test_full_node_redirects(self):
        h = Harness(RELAY.replace("auto_relay true", "auto_relay false max_listeners 1"))
        store = MemoryStore(h.clock)
        node_ = ClusterNode(h.registry, Relays(h.registry, h.clock, FakeConnections()), h.clock, lambda url: store,
                            now=h.clock.seconds)
        h.factory.cluster = node_
        store.put_node("eu2:8000", node("eu2:8000", "eu", {"/live": ["eu2:8000"]}).as_json(), 4.0)
        node_.configure(h.config)
        h.source("/live")
        h.listener("/live")
        _, second = h.listener("/live?x=1")
        status, headers, _ = split_response(second.value())
        self.assertEqual(status, "HTTP/1.0 302 Found")
        self.assertEqual(headers["location"], "http://eu2:8000/live?x=1")
        store.records.pop("eu2:8000")  # no sibling left: a plain refusal
        h.clock.advance(1)
        _, third = h.listener("/live")
        self.assertTrue(third.value().startswith(b"HTTP/1.0 503"))
        self.assertIn(b"this server is full", third.value())
        node_.stop()

    def test_node_pulls_need_a_good_token(self):
        self.h.source("/live")
        _, bad = self.h.listener("/live", extra="X-GoCast-Cluster: forged.1.x\r\n")
        self.assertTrue(bad.value().startswith(b"HTTP/1.0 401"), bad.value()[:100])
        token = make_token("s3cret", "other:8000", "/live", self.h.clock.seconds())
        proto, good = self.h.listener("/live", extra="X-GoCast-Cluster: %s\r\n" % token)
        self.assertTrue(good.value().startswith(b"HTTP/1.0 200"))
        # It carries listeners counted on the other node: not one here.
        self.assertEqual(self.h.registry.get("/live").listeners, 0)
        close(proto)
        self.assertNotIn("listener.connect", self.h.event_names())

    def test_node_pull_skips_listener_auth(self):
        h = Harness(RELAY + "mounts { live { auth { type basic users { a b } } } }")
        h.source("/live")
        _, plain = h.listener("/live")
        self.assertTrue(plain.value().startswith(b"HTTP/1.0 401"))
        token = make_token("s3cret", "other:8000", "/live", h.clock.seconds())
        _, pulled = h.listener("/live", extra="X-GoCast-Cluster: %s\r\n" % token)
        self.assertTrue(pulled.value().startswith(b"HTTP/1.0 200"))

    def test_cluster_totals(self):
        import json

        h = Harness(RELAY.replace("sync { enabled true }", "sync { enabled true status_totals true }"))
        store = MemoryStore(h.clock)
        node_ = ClusterNode(h.registry, Relays(h.registry, h.clock, FakeConnections()), h.clock, lambda url: store,
                            now=h.clock.seconds)
        h.source("/live")
        h.listener("/live")
        other = node("eu2:8000", "eu", {"/live": ["me:8000", "eu2:8000"]})
        other = NodeRecord(other.id, region="eu", address=other.id, mounts={"/live": MountRecord(
            ("me:8000", "eu2:8000"), listeners=5)}, listeners=5)
        store.put_node(other.id, other.as_json(), 4.0)
        node_.configure(h.config)
        self.assertEqual(node_.totals(), {"listeners": 6, "mounts": {"/live": 6},
                                          "nodes": {"eu2:8000": 5, "me:8000": 1}})
        _, _, body = h.get("/status-json.xsl")
        self.assertEqual(json.loads(body)["icestats"]["source"]["listeners"], 6)
        from gocast.api.routes import ApiContext, stats

        figures = stats(ApiContext(h.registry, None, None, None, h.clock.seconds, 0.0, cluster=node_), None)
        self.assertEqual((figures["total_listeners"], figures["cluster"]["listeners"]), (1, 6))
        store.records.clear()  # the other node vanished: its listeners with it
        h.clock.advance(1)
        _, _, body = h.get("/status-json.xsl")
        self.assertEqual(json.loads(body)["icestats"]["source"]["listeners"], 1)
        node_.stop()

    def test_stop_leaves_the_cluster(self):
        self.node.configure(self.h.config)
        self.assertIn("me:8000", self.store.records)
        self.node.configure(parse_config("").config)
        self.assertNotIn("me:8000", self.store.records)
        self.assertEqual(self.h.clock.getDelayedCalls(), [])


class MemoryStoreTests(SynchronousTestCase):
    def test_expiry(self):
        from twisted.internet.task import Clock

        clock = Clock()
        store = MemoryStore(clock)
        store.put_node("a", {"id": "a"}, 2.0)
        got = []
        store.nodes().addCallback(got.append)
        clock.advance(3)
        store.nodes().addCallback(got.append)
        self.assertEqual(got, [[{"id": "a"}], []])
        self.assertIsInstance(store.close(), Deferred)


class LeaderTests(SynchronousTestCase):
    """One leader at a time over a shared store; a leader that cannot renew steps down before others take over."""

    def setUp(self):
        from twisted.internet.task import Clock

        self.clock = Clock()
        self.clock.advance(1000)
        self.store = MemoryStore(self.clock)
        self.nodes = []
        for name in ("a:8000", "b:8000"):
            h = Harness(RELAY.replace("me:8000", name))
            h.clock = self.clock
            node = ClusterNode(h.registry, Relays(h.registry, self.clock, FakeConnections()), self.clock,
                               lambda url: self.store, now=self.clock.seconds)
            node.events = h.events
            self.nodes.append(node)
        self.nodes[0].configure(self.nodes[0].registry.config)
        self.nodes[1].configure(self.nodes[1].registry.config)

    def leaders(self):
        return [n.id for n in self.nodes if n.lease is not None and n.lease.leading]

    def test_one_leader_and_takeover(self):
        a, b = self.nodes
        self.assertEqual(self.leaders(), ["a:8000"])
        self.clock.advance(1)
        self.assertEqual((a.status()["leader"], b.status()["leader"]), ("a:8000", "a:8000"))
        self.assertTrue(a.status()["is_leader"])
        token = a.lease.token
        self.store.down = True  # a loses Redis: it stops leading within half the lease, before anyone can take it
        for _ in range(3):
            self.clock.advance(1)
        self.assertEqual(self.leaders(), [])
        self.assertIn("cluster.leader", [e.name for e in a.events])
        self.store.down = False
        self.store.leases.clear()  # its lease expired meanwhile (4 s)
        self.clock.advance(1)
        self.assertEqual(len(self.leaders()), 1)
        leader = next(n for n in self.nodes if n.lease.leading)
        self.assertGreater(leader.lease.token, token)  # fencing: a newer token

    def test_leaving_steps_down(self):
        a, b = self.nodes
        a.configure(parse_config("").config)
        self.assertEqual(self.leaders(), [])
        self.clock.advance(4)  # a's lease expires in Redis
        self.clock.advance(1)
        self.assertEqual(self.leaders(), ["b:8000"])
