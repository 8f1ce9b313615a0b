"""
The cluster as one station, with a shared in-memory store and one Clock:
cluster events announced once by the leader (also across a takeover),
webhooks gated so each event goes out from one node, now-playing shared
between nodes without echoes, and the stats history sampled by the leader
for the whole cluster.
"""

from twisted.internet.defer import maybeDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gocast.cluster.node import ClusterNode
from gocast.cluster.store import MemoryStore
from gocast.config import parse_config
from gocast.core.events import Event
from gocast.core.track import TrackInfo
from gocast.inputs.relay import Relays
from gocast.observe.history import SAMPLE_EVERY, StatsHistory
from gocast.observe.webhooks import Webhook
from gocast.state import StateStore

from .streaming import Harness, feed_frames
from .test_cluster import RELAY
from .test_relay import FakeConnections
from .test_webhooks import FakePost, config


class Cluster:
    """Nodes sharing one store and clock; ``heartbeats`` advances them one second at a time."""

    def __init__(self, names, mounts="mounts { live { } }"):
        self.clock = Clock()
        self.clock.advance(1795000200.0)
        self.store = MemoryStore(self.clock)
        self.harnesses, self.nodes = [], []
        for name in names:
            h = Harness(RELAY.replace("me:8000", name).replace("auto_relay true", "auto_relay false") + mounts)
            node = ClusterNode(h.registry, Relays(h.registry, self.clock, FakeConnections()), self.clock,
                               lambda url: self.store, now=self.clock.seconds)
            h.factory.cluster = node
            self.harnesses.append(h)
            self.nodes.append(node)
        for node in self.nodes:
            node.configure(node.registry.config)

    def heartbeats(self, count):
        for _ in range(count):
            self.clock.advance(1)

    def leader(self):
        leading = [n for n in self.nodes if n.leads()]
        assert len(leading) <= 1, leading
        return leading[0] if leading else None

    def events(self, name):
        return [(h.registry.config.cluster.advertise, e.data.get("node")) for h in self.harnesses
                for e in h.events if e.name == name]

    def stop(self):
        for node in self.nodes:
            node.stop()


class LeaderDutiesTests(SynchronousTestCase):
    def setUp(self):
        self.cluster = Cluster(["a:8000", "b:8000", "c:8000"])
        self.addCleanup(self.cluster.stop)

    def test_membership_announced_once_and_across_a_takeover(self):
        cluster = self.cluster
        cluster.heartbeats(2)
        a = cluster.leader()
        self.assertEqual(a.id, "a:8000")
        self.assertEqual(sorted(cluster.events("cluster.node_joined")),
                         [("a:8000", "a:8000"), ("a:8000", "b:8000"), ("a:8000", "c:8000")])
        cluster.heartbeats(3)
        self.assertEqual(len(cluster.events("cluster.node_joined")), 3)  # not again at each heartbeat
        # a freezes (SIGSTOP): its record and lease expire; another node takes over and says a left, once
        cluster.nodes.remove(a)
        a._loop.stop()
        cluster.heartbeats(6)
        b = cluster.leader()
        self.assertIn(b.id, ("b:8000", "c:8000"))
        self.assertEqual(cluster.events("cluster.node_left"), [(b.id, "a:8000")])
        # a wakes: it steps down before doing anything as leader, announces nothing, and rejoins as a follower
        cluster.nodes.append(a)
        a._loop.start(1, now=True)
        cluster.heartbeats(2)
        self.assertFalse(a.lease.leading)
        self.assertIs(cluster.leader(), b)
        self.assertEqual(cluster.events("cluster.node_left"), [(b.id, "a:8000")])
        self.assertEqual(cluster.events("cluster.node_joined")[-1], (b.id, "a:8000"))

    def test_a_deposed_leader_announces_nothing(self):
        cluster = self.cluster
        cluster.heartbeats(2)
        a = cluster.nodes[0]
        cluster.store.leases.clear()  # the lease went to someone else behind a's back
        cluster.store.acquire_lease("leader", "b:8000", 4.0)
        before = cluster.store.members
        self.assertIsNone(self.successResultOf(
            cluster.store.announce_members("leader", a.id, a.lease.token, ["a:8000"])))
        self.assertEqual(cluster.store.members, before)
        cluster.heartbeats(1)
        self.assertFalse(a.lease.leading)

    def test_webhooks_deliver_each_event_from_one_node(self):
        cluster = self.cluster
        cluster.heartbeats(2)
        a, b, _ = cluster.nodes
        posts = {}
        for node in (a, b):
            posts[node.id] = FakePost()
            hook = Webhook("w", config('events ["*"]'), posts[node.id], cluster.clock, lambda n, r: None, node)
            hook(Event("cluster.node_left", 1.0, None, {"node": "x:8000"}))
            hook(Event("source.metadata", 1.0, "/live", {"song": "A - B", "from_node": "c:8000"}))
            hook(Event("listener.connect", 1.0, "/live", {}))
        self.assertEqual([c[2]["X-GoCast-Event"] for c in posts["a:8000"].calls],
                         ["cluster.node_left", "listener.connect"])
        self.assertEqual([c[2]["X-GoCast-Event"] for c in posts["b:8000"].calls], ["listener.connect"])

    def test_a_leader_that_stops_leading_stops_sending(self):
        cluster = self.cluster
        cluster.heartbeats(2)
        a = cluster.nodes[0]
        post = FakePost(500, 500, 500, 500)
        results = []
        hook = Webhook("w", config('events ["*"] retry 3'), post, cluster.clock, lambda n, r: results.append(r), a)
        cluster.store.down = True  # a loses Redis: it leads at most 2 s more (half the lease)
        hook(Event("cluster.node_left", 1.0, None, {"node": "x:8000"}))
        cluster.heartbeats(10)  # retries due at +1, +3 and +7 s
        self.assertEqual((len(post.calls), results), (2, ["dropped"]))


class MetadataTests(SynchronousTestCase):
    def setUp(self):
        self.cluster = Cluster(["a:8000", "b:8000", "c:8000"], "mounts { live { } news { } }")
        self.addCleanup(self.cluster.stop)
        self.sources = [h.source("/live")[0] for h in self.cluster.harnesses]

    def mounts(self):
        return [h.registry.get("/live") for h in self.cluster.harnesses]

    def test_an_update_on_any_node_reaches_the_others_once(self):
        a, b, c = self.mounts()
        b.set_metadata(song="Artist - Song")  # e.g. the admin API of relay b
        self.assertEqual([m.song for m in (a, b, c)], ["Artist - Song"] * 3)
        self.assertEqual([(m.title, m.artist) for m in (a, c)], [("Song", "Artist")] * 2)
        sources = [[e.data.get("from_node") for e in h.events if e.name == "source.metadata"]
                   for h in self.cluster.harnesses]
        self.assertEqual(sources, [["b:8000"], [None], ["b:8000"]])  # one local event; echoes are marked
        a.set_metadata(song="Artist - Song")  # the same title again from a's source changes nothing elsewhere
        self.assertEqual(len([e for e in self.cluster.harnesses[2].events if e.name == "source.metadata"]), 1)

    def test_album_and_cover_travel_with_the_title(self):
        a, b, c = self.mounts()
        b.set_metadata(song="Queen - Bohemian Rhapsody", info=TrackInfo(
            album="A Night at the Opera", year=1975, duration=354.0, artwork="https://covers.example/q.jpg"))
        self.assertEqual([(m.track.album, m.track.year, m.track.duration, m.track.artwork) for m in (a, c)],
                         [("A Night at the Opera", 1975, 354.0, "https://covers.example/q.jpg")] * 2)

    def test_only_nodes_carrying_the_mount_apply_it(self):
        news = [h.registry.get("/news") for h in self.cluster.harnesses]
        self.cluster.harnesses[0].source("/news")
        news[0].set_metadata(song="Bulletin")
        self.assertEqual([m.song for m in news], ["Bulletin", "", ""])

    def test_a_node_that_was_away_catches_up_without_undoing_newer_titles(self):
        a, b, c = self.mounts()
        store = self.cluster.store
        receivers = store.subscribers["metadata"]
        away = receivers.pop(2)  # c's subscription dropped: pub/sub gives it nothing
        b.set_metadata(song="Missed - Song")
        self.assertEqual([m.song for m in (a, c)], ["Missed - Song", ""])
        self.cluster.clock.advance(1)
        receivers.append(away)
        store.resubscribed()  # c subscribed again
        self.assertEqual(c.song, "Missed - Song")
        self.assertEqual([e.data.get("from_node") for e in self.cluster.harnesses[2].events
                          if e.name == "source.metadata"], ["b:8000"])

        receivers.remove(away)
        self.cluster.clock.advance(1)
        b.set_metadata(song="Older - Song")
        self.cluster.clock.advance(1)
        c.set_metadata(song="Newer - Local")  # made on c while away, after b's
        receivers.append(away)
        store.resubscribed()
        self.assertEqual(c.song, "Newer - Local")
        self.assertEqual([m.song for m in (a, b)], ["Newer - Local"] * 2)  # its own update was still shared
        store.resubscribed()  # nothing new: nothing applied again
        self.assertEqual(len([e for e in self.cluster.harnesses[0].events if e.name == "source.metadata"]), 3)

    def test_hostile_messages_are_bounded_or_ignored(self):
        a, b, c = self.mounts()
        self.cluster.store.publish("metadata", {"node": "x", "mount": "/live", "title": "T" * 5000 + "\r\nX"})
        self.assertEqual(len(a.title), 1024)
        self.cluster.store.publish("metadata", {"node": "x", "mount": "/nowhere", "title": "T"})
        self.cluster.store.publish("metadata", {"mount": "/live", "title": "no node"})
        self.assertTrue(a.title.startswith("TTT"))


class ClusterHistoryTests(SynchronousTestCase):
    def setUp(self):
        self.cluster = Cluster(["a:8000", "b:8000"])
        self.addCleanup(self.cluster.stop)
        self.histories = []
        for h, node in zip(self.cluster.harnesses, self.cluster.nodes):
            store = StateStore(":memory:", maybeDeferred)
            self.addCleanup(store.close)
            history = StatsHistory(h.registry, store, h.bus, self.cluster.clock, self.cluster.clock.seconds)
            history.cluster = node
            self.histories.append(history)

    def points(self, history):
        out = []
        history.history("1h").addCallback(out.append)
        return [(p["mount"], p["listeners"], p["listeners_by_country"]) for p in out[0]]

    def test_the_leader_samples_the_whole_cluster(self):
        for h, listeners in zip(self.cluster.harnesses, (1, 2)):
            source, _ = h.source("/live")
            feed_frames(source, 10)
            for _ in range(listeners):
                h.listener("/live")
        self.cluster.heartbeats(2)
        for history in self.histories:
            history.start()
        self.cluster.heartbeats(int(SAMPLE_EVERY))
        leader, follower = self.histories
        self.assertEqual(self.points(leader), [("/live", 3, {"unknown": 3})])
        self.assertEqual(self.points(follower), [])

    def test_standalone_samples_alone(self):
        h = Harness("mounts { live { } }")
        node = ClusterNode(h.registry, Relays(h.registry, h.clock, FakeConnections()), h.clock,
                           lambda url: None)
        node.configure(parse_config("").config)
        self.assertTrue(node.accepts(Event("cluster.leader", 1.0)))
        history = self.histories[1]
        history.cluster = node
        history.registry = h.registry
        h.source("/live")
        h.listener("/live")
        history.sample()
        self.assertEqual(self.points(history), [("/live", 1, {"unknown": 1})])


class ClusterFiguresTests(SynchronousTestCase):
    """The dashboard's cluster table and /metrics's node label."""

    def setUp(self):
        self.cluster = Cluster(["a:8000", "b:8000"])
        self.addCleanup(self.cluster.stop)

    def listening_on_both(self):
        """A source on each node, one listener on a and two on b, told in Redis; returns a's harness."""
        a, b = self.cluster.harnesses
        for h, count in ((a, 1), (b, 2)):
            h.source("/live")
            for _ in range(count):
                h.listener("/live")
        self.cluster.heartbeats(2)
        return a

    def test_dashboard_stream_carries_the_station_and_each_node(self):
        from gocast.dashboard.live import StatsHub

        a = self.listening_on_both()
        hub = StatsHub(a.registry, a.bus, self.cluster.clock, self.cluster.clock.seconds, 0.0)
        self.assertNotIn("cluster", hub.server())
        hub.cluster = self.cluster.nodes[0]
        figures = hub.server()
        self.assertEqual(figures["listeners"], 1)
        self.assertEqual(figures["cluster"]["listeners"], 3)
        self.assertEqual([(n["id"], n["listeners"], n["leader"], n["self"]) for n in figures["cluster"]["nodes"]],
                         [("a:8000", 1, True, True), ("b:8000", 2, False, False)])

    def test_metrics_name_the_node(self):
        a, _ = self.cluster.harnesses
        a.source("/live")
        a.metrics.node = lambda: self.cluster.nodes[0].node_name
        text = a.metrics.render().decode()
        self.assertIn('gocast_mount_listeners{mount="/live",node="a:8000"} 0.0', text)
        self.assertIn('gocast_listeners_total{node="a:8000"}', text)
        samples = [line for line in text.splitlines() if not line.startswith("#")]
        self.assertEqual([line for line in samples if 'node="a:8000"' not in line], [])
        self.cluster.nodes[0].configure(parse_config("").config)  # alone again: no label
        self.assertIn('gocast_mount_listeners{mount="/live"} 0.0', a.metrics.render().decode())

    def test_geo_breakdown_of_the_station(self):
        from gocast.api.routes import ApiContext, Call, geo_stats

        a = self.listening_on_both()
        ctx = ApiContext(a.registry, None, None, None, self.cluster.clock.seconds, 0.0, cluster=self.cluster.nodes[0])
        answer = geo_stats(ctx, Call({}, {}, None, "r1"))
        self.assertEqual((answer["listeners_by_country"], answer["cluster"]["listeners_by_country"]),
                         ({"unknown": 1}, {"unknown": 3}))
