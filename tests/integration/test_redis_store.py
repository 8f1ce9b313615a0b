"""
The cluster store's contract, held by both implementations: RedisStore
against Debian's redis-server, and the MemoryStore the unit tests stand on
(so a unit test cannot pass on behaviour Redis does not have). Ends with
what only the real one can show: a subscription that comes back, and
tells its owner to catch up, after Redis restarts.
"""

from twisted.internet import reactor, task
from twisted.trial.unittest import TestCase

from gocast.cluster.store import MemoryStore, RedisStore

from ._process import eventually
from ._redis import RedisServer


class StoreContract:
    """What every store does; ``make_store`` gives a fresh one."""

    timeout = 60

    async def test_node_records_are_listed_until_removed(self):
        store = await self.make_store()
        await store.put_node("a:8000", {"id": "a:8000", "listeners": 3}, ttl=30)
        await store.put_node("b:8000", {"id": "b:8000"}, ttl=30)
        self.assertEqual(sorted(r["id"] for r in await store.nodes()), ["a:8000", "b:8000"])
        await store.remove_node("b:8000")
        self.assertEqual(await store.nodes(), [{"id": "a:8000", "listeners": 3}])

    async def test_a_lease_has_one_holder_and_fences_the_last(self):
        store = await self.make_store()
        token = await store.acquire_lease("leader", "a", ttl=30)
        self.assertIsNotNone(token)
        self.assertIsNone(await store.acquire_lease("leader", "b", ttl=30))
        self.assertEqual(await store.lease_holder("leader"), "a")
        self.assertTrue(await store.renew_lease("leader", "a", token, ttl=30))
        self.assertFalse(await store.renew_lease("leader", "a", token + 1, ttl=30))
        self.assertEqual(await store.announce_members("leader", "a", token, ["a", "b"]), (["a", "b"], []))
        self.assertEqual(await store.announce_members("leader", "a", token, ["a"]), ([], ["b"]))
        self.assertIsNone(await store.announce_members("leader", "b", token, ["b"]))  # not the holder

    async def test_shared_records_secret_and_failure_counts(self):
        store = await self.make_store()
        self.assertTrue(await store.seed_shared("keys", {"k1": {"name": "first"}}))
        self.assertFalse(await store.seed_shared("keys", {"k2": {"name": "late"}}))
        await store.put_shared("keys", "k3", {"name": "third"})
        self.assertEqual(await store.shared("keys"), {"k1": {"name": "first"}, "k3": {"name": "third"}})
        self.assertEqual(await store.get_shared("keys", "k3"), {"name": "third"})
        await store.delete_shared("keys", "k3")
        self.assertIsNone(await store.get_shared("keys", "k3"))
        self.assertEqual(await store.cluster_secret("mine"), "mine")
        self.assertEqual(await store.cluster_secret("theirs"), "mine")
        self.assertEqual([await store.count_failure("192.0.2.1", 60) for _ in range(3)], [1, 2, 3])

    async def test_published_messages_and_the_last_word_of_each_key(self):
        store = await self.make_store()
        got, caught_up = [], []
        store.subscribe("metadata", got.append, subscribed=lambda: caught_up.append(True))
        await eventually(reactor, lambda: store.subscribed and caught_up, what="the subscription")
        await store.publish("metadata", {"mount": "/live", "title": "One"}, latest="/live")
        await store.publish("metadata", {"mount": "/live", "title": "Two"}, latest="/live")
        await store.publish("metadata", {"mount": "/news", "title": "Bulletin"}, latest="/news")
        await store.publish("metadata", {"mount": "/live", "title": "Not kept"})
        await eventually(reactor, lambda: len(got) == 4, what="four messages")
        self.assertEqual([m["title"] for m in got], ["One", "Two", "Bulletin", "Not kept"])
        self.assertEqual(await store.latest("metadata"), {"/live": {"mount": "/live", "title": "Two"},
                                                          "/news": {"mount": "/news", "title": "Bulletin"}})


class MemoryStoreTests(StoreContract, TestCase):
    async def make_store(self):
        return MemoryStore(reactor)


class RedisStoreTests(StoreContract, TestCase):
    async def make_store(self):
        self.redis = RedisServer(self, reactor)
        await self.redis.start()
        store = RedisStore(self.redis.url, reactor)
        self.addCleanup(store.close)
        return store

    async def test_the_subscription_comes_back_after_redis_restarts(self):
        store = await self.make_store()
        got, subscriptions = [], []
        store.subscribe("metadata", got.append, subscribed=lambda: subscriptions.append(reactor.seconds()))
        await eventually(reactor, lambda: store.subscribed, what="the subscription")
        await self.redis.stop()
        await eventually(reactor, lambda: not store.subscribed, what="the subscription noticed gone")
        await task.deferLater(reactor, 5, lambda: None)  # several reconnection attempts fail meanwhile
        await self.redis.start()
        restarted = reactor.seconds()
        await eventually(reactor, lambda: store.subscribed and len(subscriptions) == 2, timeout=15,
                         what="subscribed again, and told so")
        self.assertLess(subscriptions[1] - restarted, 5)  # retries are at most 2 s apart, not txredisapi's 10
        deadline = reactor.seconds() + 15
        while True:  # the other connection reconnects on its own schedule, also at most 2 s apart
            try:
                await store.publish("metadata", {"title": "Back"})
                break
            except Exception:
                if reactor.seconds() > deadline:
                    raise
                await task.deferLater(reactor, 0.2, lambda: None)
        await eventually(reactor, lambda: got == [{"title": "Back"}], what="the message after the restart")
