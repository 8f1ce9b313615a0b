"""
State shared by a cluster's nodes (one in-memory store, one Clock): API
keys created on one node work on all, revoked on one are refused on all,
also across Redis outages; dashboard logins; API mounts; failed logins
counted across nodes; the first node seeds the cluster with its keys.
"""

from twisted.internet.defer import maybeDeferred
from twisted.trial.unittest import SynchronousTestCase

from gocast.api.keys import ApiKeys
from gocast.api.mounts import ApiMounts
from gocast.cluster.shared import RESYNC_EVERY, ClusterUnavailable
from gocast.core.throttle import FAILURE_LIMIT, FAILURE_WINDOW, AuthFailures
from gocast.dashboard import Sessions
from gocast.state import StateStore

from .test_cluster_sync import Cluster


class Node:
    """One node's shared parts, each with its own SQLite store."""

    def __init__(self, testcase, cluster_node, clock):
        self.store = StateStore(":memory:", maybeDeferred)
        testcase.addCleanup(self.store.close)
        self.cluster = cluster_node
        self.config = cluster_node.registry.config
        self.applied = []
        self.keys = ApiKeys(self.store, clock.seconds)
        self.keys.configure(self.config)
        self.sessions = Sessions(clock.seconds, lambda: 3600.0, self.store)
        self.mounts = ApiMounts(self.store, lambda: self.config, self.applied.append, clock.seconds)
        self.failures = AuthFailures(clock.seconds)
        cluster_node.shared.failures = self.failures
        self.failures.share = cluster_node.shared.failed_login
        for collection in (self.keys, self.sessions, self.mounts):
            cluster_node.shared.register(collection)

    def works(self, secret):
        return self.keys.find(secret) is not None


class SharedStateTests(SynchronousTestCase):
    def setUp(self):
        self.cluster = Cluster(["a:8000", "b:8000", "c:8000"])
        self.addCleanup(self.cluster.stop)
        self.a, self.b, self.c = (Node(self, n, self.cluster.clock) for n in self.cluster.nodes)
        self.cluster.heartbeats(1)

    def create_key(self, node):
        key, secret, written = node.keys.create("ci", ["read_stats"], None, "")
        self.successResultOf(written)
        return key, secret

    def test_a_key_made_on_one_node_works_on_all_and_a_revoke_is_honoured_everywhere(self):
        key, secret = self.create_key(self.a)
        self.assertEqual([n.works(secret) for n in (self.a, self.b, self.c)], [True] * 3)  # no heartbeat needed
        self.assertEqual([r["id"] for r in self.c.store.keys()], [key.id])  # kept for a restart without Redis
        self.successResultOf(self.c.keys.revoke(key.id))
        self.assertEqual([n.works(secret) for n in (self.a, self.b, self.c)], [False] * 3)
        self.assertEqual(self.a.store.keys(), [])
        self.cluster.heartbeats(int(RESYNC_EVERY) + 1)  # and a resync does not bring it back
        self.assertFalse(self.a.works(secret))

    def test_a_revoke_while_redis_is_away_waits_and_never_comes_back(self):
        key, secret = self.create_key(self.a)
        self.cluster.store.down = True
        self.successResultOf(self.c.keys.revoke(key.id))
        self.assertFalse(self.c.works(secret))
        self.assertTrue(self.a.works(secret))  # a cannot know yet
        self.cluster.heartbeats(2)
        self.cluster.store.down = False
        self.cluster.heartbeats(2)
        self.assertEqual([n.works(secret) for n in (self.a, self.b, self.c)], [False] * 3)
        self.assertEqual(self.cluster.nodes[2].shared.pending, {})

    def test_creating_a_key_without_redis_fails_and_keeps_nothing(self):
        self.cluster.store.down = True
        key, secret, written = self.a.keys.create("ci", ["read_stats"], None, "")
        self.failureResultOf(written, ClusterUnavailable)
        self.assertFalse(self.a.works(secret))
        self.assertEqual(self.a.store.keys(), [])

    def test_missed_messages_are_caught_up_by_the_resync(self):
        key, secret = self.create_key(self.a)
        self.cluster.store.subscribers.clear()  # b and c hear nothing more
        self.successResultOf(self.a.keys.revoke(key.id))
        self.assertTrue(self.b.works(secret))
        self.cluster.heartbeats(int(RESYNC_EVERY) + 1)
        self.assertFalse(self.b.works(secret))

    def test_a_node_asks_redis_for_what_it_has_not_heard_of_yet(self):
        self.cluster.store.subscribers.clear()  # the announcements are still on their way
        key, secret = self.create_key(self.a)
        self.assertIsNone(self.c.keys.find(secret))
        self.assertEqual(self.successResultOf(self.c.keys.find_shared(secret)).id, key.id)
        self.assertTrue(self.c.works(secret))
        self.assertIsNone(self.successResultOf(self.c.keys.find_shared("gck_nobody")))
        token, csrf = self.a.sessions.open()
        self.assertIsNone(self.c.sessions.find(token))
        self.successResultOf(self.c.sessions.known_elsewhere(token))
        self.assertEqual(self.c.sessions.find(token), csrf)
        self.assertIsNone(self.c.sessions.known_elsewhere(token))  # known now: nothing to ask
        self.successResultOf(self.a.keys.revoke(key.id))
        self.assertIsNone(self.successResultOf(self.a.keys.find_shared(secret)))

    def test_dashboard_logins_are_the_clusters(self):
        token, csrf = self.a.sessions.open()
        self.assertEqual(self.c.sessions.find(token), csrf)
        self.b.sessions.close(token)
        self.assertIsNone(self.a.sessions.find(token))
        self.assertIsNone(self.c.sessions.find(token))
        token, _ = self.a.sessions.open()
        self.cluster.clock.advance(3601)  # expired: gone from the cluster at the next resync
        self.cluster.heartbeats(int(RESYNC_EVERY) + 1)
        self.assertEqual(self.cluster.store.shared_records.get("sessions"), {})

    def test_api_mounts_are_the_clusters(self):
        path, written = self.a.mounts.create("news", {"max_listeners": 5})
        self.successResultOf(written)
        self.assertEqual(self.c.mounts.configs[path].max_listeners, 5)
        self.assertIn(path, self.c.mounts.overlay(self.c.config).mounts)
        self.assertTrue(self.c.applied)
        self.assertEqual(list(self.b.store.mounts()), ["news"])
        self.successResultOf(self.c.mounts.update(path, {"max_listeners": 7}))
        self.assertEqual(self.a.mounts.configs[path].max_listeners, 7)
        self.successResultOf(self.b.mounts.delete(path))
        self.assertEqual((self.a.mounts.configs, self.c.mounts.configs), ({}, {}))

    def test_hostile_shared_records_are_ignored(self):
        store = self.cluster.store
        store.publish("state", {"node": "x", "kind": "keys", "id": "k_1", "record": {"hash": "short"}})
        store.publish("state", {"node": "x", "kind": "mounts", "id": "evil", "record": {"config": {
            "fallback": {"file": "/etc/passwd"}}}})
        store.publish("state", {"node": "x", "kind": "sessions", "id": "h", "record": {"expires": "never"}})
        store.publish("state", {"node": "x", "kind": "nothing", "id": "h", "record": {}})
        store.publish("state", {"node": "x", "kind": "keys", "id": 5, "record": None})
        self.assertEqual((self.b.keys.records(), self.b.mounts.configs, self.b.sessions.records()), ({}, {}, {}))

    def test_failed_logins_count_across_nodes(self):
        for index in range(FAILURE_LIMIT):
            (self.a, self.b)[index % 2].failures.failed("203.0.113.9")
        for node in (self.a, self.b, self.c):
            self.assertAlmostEqual(node.failures.blocked("203.0.113.9"), FAILURE_WINDOW)
        self.assertIsNone(self.c.failures.blocked("203.0.113.10"))
        self.cluster.store.publish("state", {"node": "x", "kind": "block", "id": "198.51.100.1", "until": 1e12})
        self.assertLessEqual(self.c.failures.blocked("198.51.100.1"), FAILURE_WINDOW)  # never longer than a window
        self.cluster.clock.advance(FAILURE_WINDOW + 1)
        self.assertIsNone(self.c.failures.blocked("203.0.113.9"))


class SeedTests(SynchronousTestCase):
    def test_the_first_node_brings_its_keys(self):
        cluster = Cluster(["a:8000", "b:8000"])
        self.addCleanup(cluster.stop)
        for node in cluster.nodes:
            node.stop()  # not yet in the cluster: make keys alone first
        a, b = (Node(self, n, cluster.clock) for n in cluster.nodes)
        _, old_a, written = a.keys.create("old-a", ["read_stats"], None, "")
        _, old_b, written_b = b.keys.create("old-b", ["read_stats"], None, "")
        self.successResultOf(written)
        self.successResultOf(written_b)
        cluster.nodes[0].configure(cluster.nodes[0].registry.config)
        cluster.heartbeats(1)
        cluster.nodes[1].configure(cluster.nodes[1].registry.config)
        cluster.heartbeats(1)
        self.assertEqual((a.works(old_a), b.works(old_a)), (True, True))
        self.assertEqual((a.works(old_b), b.works(old_b)), (False, False))  # the cluster's keys are a's

    def test_a_redis_that_lost_its_data_gets_the_keys_back(self):
        cluster = Cluster(["a:8000", "b:8000"])
        self.addCleanup(cluster.stop)
        a, b = (Node(self, n, cluster.clock) for n in cluster.nodes)
        cluster.heartbeats(1)
        _, secret, written = a.keys.create("ci", ["read_stats"], None, "")
        self.successResultOf(written)
        cluster.store.shared_records.clear()  # restarted without persistence, between two heartbeats
        cluster.store.seeded.clear()
        cluster.heartbeats(int(RESYNC_EVERY) + 1)
        self.assertEqual((a.works(secret), b.works(secret)), (True, True))
        self.assertIn("keys", cluster.store.shared_records)
