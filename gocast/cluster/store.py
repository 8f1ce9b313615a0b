# -*- test-case-name: tests.test_cluster -*-
"""
Where nodes find each other: Redis (txredisapi). Each node keeps a JSON
record under ``gocast:node:<id>`` that expires unless its heartbeat renews
it, and its id in the ``gocast:nodes`` sorted set, scored by that expiry,
so readers list live nodes without ``KEYS``. Every call has a deadline: a
Redis that hangs is a Redis that is down, and nodes keep what they have.

:class:`MemoryStore` is the same contract in memory, for unit tests.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import unquote, urlsplit

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.logger import Logger

PREFIX = "gocast:"
#: The most one Redis call may take.
TIMEOUT = 3.0
#: The longest wait between two attempts to reach Redis again (txredisapi's default is 10 s).
RECONNECT_AT_MOST = 2.0
#: How long a channel's last messages are kept for subscribers that were away (renewed by each one).
LATEST_KEPT = 24 * 3600.0


def redis_address(url: str) -> Dict[str, Any]:
    """``redis://[user:password@]host:port/db``, ``rediss://`` (TLS) or ``unix:///path?db=N`` as connection arguments."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        raise ValueError("unix sockets are not supported by the Redis client; use redis://host:port")
    db = (parts.path or "/").strip("/")
    return dict(host=parts.hostname or "localhost", port=parts.port or 6379, dbid=int(db) if db.isdigit() else None,
                password=unquote(parts.password) if parts.password else None,
                username=unquote(parts.username) if parts.username else None,
                ssl_context_factory=parts.scheme == "rediss")


class RedisStore:
    def __init__(self, url: str, clock: Any, prefix: str = PREFIX):
        import txredisapi

        self.clock = clock
        self.prefix = prefix
        self.url = url
        self._subscriber: Any = None
        self._subscriptions: Dict[str, Callable[[Dict[str, Any]], None]] = {}
        self._on_subscribed: List[Callable[[], None]] = []
        #: Whether the subscription connection is up and subscribed (messages published now arrive).
        self.subscribed = False
        self.redis = txredisapi.lazyConnection(reconnect=True, connectTimeout=TIMEOUT, replyTimeout=TIMEOUT,
                                               convertNumbers=False, **redis_address(url))
        self.redis._factory.maxDelay = RECONNECT_AT_MOST

    def _call(self, d: Deferred) -> Deferred:
        return d.addTimeout(TIMEOUT, self.clock)

    @inlineCallbacks
    def put_node(self, node_id: str, record: Dict[str, Any], ttl: float) -> Any:
        expiry = self.clock.seconds() + ttl
        yield self._call(self.redis.set(self.prefix + "node:" + node_id, json.dumps(record),
                                        pexpire=int(ttl * 1000)))
        yield self._call(self.redis.zadd(self.prefix + "nodes", expiry, node_id))

    @inlineCallbacks
    def nodes(self) -> Any:
        """The records of the live nodes."""
        key = self.prefix + "nodes"
        yield self._call(self.redis.zremrangebyscore(key, "-inf", self.clock.seconds()))
        ids = yield self._call(self.redis.zrange(key, 0, -1))
        if not ids:
            return []
        values = yield self._call(self.redis.mget([self.prefix + "node:" + i for i in ids]))
        return [json.loads(v) for v in values if v]

    @inlineCallbacks
    def remove_node(self, node_id: str) -> Any:
        yield self._call(self.redis.delete(self.prefix + "node:" + node_id))
        yield self._call(self.redis.zrem(self.prefix + "nodes", node_id))

    @inlineCallbacks
    def acquire_lease(self, name: str, holder: str, ttl: float) -> Any:
        """
        Take the lease ``name`` if nobody holds it: ``SET NX PX`` of
        ``holder|token``, the token a fencing number from ``INCR``. Returns
        the token, or ``None`` when someone else holds it.
        """
        token = yield self._call(self.redis.incr(self.prefix + "lease-fence:" + name))
        taken = yield self._call(self.redis.set(self.prefix + "lease:" + name, "%s|%s" % (holder, token),
                                                pexpire=int(ttl * 1000), only_if_not_exists=True))
        return int(token) if taken else None

    @inlineCallbacks
    def renew_lease(self, name: str, holder: str, token: int, ttl: float) -> Any:
        """Extend the lease if ``holder`` still holds it with ``token`` (one atomic script)."""
        renewed = yield self._call(self.redis.eval(_RENEW, [self.prefix + "lease:" + name],
                                                   ["%s|%s" % (holder, token), int(ttl * 1000)]))
        return bool(int(renewed or 0))

    @inlineCallbacks
    def lease_holder(self, name: str) -> Any:
        value = yield self._call(self.redis.get(self.prefix + "lease:" + name))
        return value.rpartition("|")[0] if value else None

    @inlineCallbacks
    def announce_members(self, lease: str, holder: str, token: int, live: List[str]) -> Any:
        """
        For the leader only: the members last announced against ``live``.
        One script checks the lease is still ``holder``'s with ``token``
        (fencing: a deposed leader announces nothing), replaces the set, and
        returns ``(joined, left)``; ``None`` when the lease is not ours.
        """
        found = yield self._call(self.redis.eval(_ANNOUNCE, [self.prefix + "lease:" + lease, self.prefix + "members"],
                                                 ["%s|%s" % (holder, token)] + sorted(live)))
        if not found:
            return None
        joined, left = found
        return list(joined or []), list(left or [])

    @inlineCallbacks
    def publish(self, channel: str, message: Dict[str, Any], latest: str = "") -> Any:
        """
        Send ``message`` to the channel's subscribers; with ``latest``, also
        keep it as that key's last word, for a subscriber that was away
        (:meth:`latest`).
        """
        text = json.dumps(message)
        if latest:
            key = self.prefix + "latest:" + channel
            yield self._call(self.redis.hset(key, latest, text))
            yield self._call(self.redis.expire(key, int(LATEST_KEPT)))
        count = yield self._call(self.redis.publish(self.prefix + channel, text))
        return count

    @inlineCallbacks
    def latest(self, channel: str) -> Any:
        """The last message published on ``channel`` for each key: {key: message}."""
        found = yield self._call(self.redis.hgetall(self.prefix + "latest:" + channel))
        return _records(found or {})

    @inlineCallbacks
    def cluster_secret(self, proposed: str) -> Any:
        """The cluster's secret kept in Redis: ``proposed`` if no node made one before."""
        yield self._call(self.redis.set(self.prefix + "secret", proposed, only_if_not_exists=True))
        secret = yield self._call(self.redis.get(self.prefix + "secret"))
        return str(secret or "")

    # Shared state: API keys, dashboard sessions, API mounts (hashes of JSON records by kind)

    @inlineCallbacks
    def put_shared(self, kind: str, record_id: str, record: Dict[str, Any]) -> Any:
        yield self._call(self.redis.hset(self.prefix + "shared:" + kind, record_id, json.dumps(record)))

    @inlineCallbacks
    def delete_shared(self, kind: str, record_id: str) -> Any:
        yield self._call(self.redis.hdel(self.prefix + "shared:" + kind, record_id))

    @inlineCallbacks
    def get_shared(self, kind: str, record_id: str) -> Any:
        text = yield self._call(self.redis.hget(self.prefix + "shared:" + kind, record_id))
        return _records({record_id: text}).get(record_id) if text else None

    @inlineCallbacks
    def shared(self, kind: str) -> Any:
        """Every record of ``kind``: {id: record} (unreadable ones left out)."""
        found = yield self._call(self.redis.hgetall(self.prefix + "shared:" + kind))
        return _records(found or {})

    @inlineCallbacks
    def seed_shared(self, kind: str, records: Dict[str, Dict[str, Any]]) -> Any:
        """The first node to share ``kind`` brings its records; later ones find them there. True if it did."""
        first = yield self._call(self.redis.set(self.prefix + "seeded:" + kind, "1", only_if_not_exists=True))
        if first and records:
            yield self._call(self.redis.hmset(self.prefix + "shared:" + kind,
                                              {i: json.dumps(r) for i, r in records.items()}))
        return bool(first)

    @inlineCallbacks
    def count_failure(self, client: str, window: float) -> Any:
        """One more failed login of ``client`` in the cluster; how many in the current window."""
        key = self.prefix + "failures:" + client
        count = yield self._call(self.redis.eval(_COUNT, [key], [int(window * 1000)]))
        return int(count)

    def subscribe(self, channel: str, receive: Callable[[Dict[str, Any]], None],
                  subscribed: Optional[Callable[[], None]] = None) -> None:
        """
        Call ``receive`` with each message published on ``channel`` (one
        receiver per channel and store), and ``subscribed`` each time the
        subscription is made, first or again: what was published while it
        was away is lost, so that is when to catch up. A subscribed
        connection can do nothing else, so it is a second one, which
        subscribes again each time it reconnects. Subscribe before the first
        message matters: channels are sent when that connection is made.
        """
        self._subscriptions[self.prefix + channel] = receive
        if subscribed is not None:
            self._on_subscribed.append(subscribed)
        if self._subscriber is None:
            self._subscriber = _subscriber(self)

    def _subscription_made(self) -> None:
        self.subscribed = True
        for subscribed in list(self._on_subscribed):
            subscribed()

    def close(self) -> Any:
        if self._subscriber is not None:
            self._subscriber.disconnect()
        return self.redis.disconnect()


def _records(found: Dict[str, str]) -> Dict[str, Dict[str, Any]]:
    records = {}
    for record_id, text in found.items():
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if isinstance(record, dict):
            records[record_id] = record
    return records


def _subscriber(store: RedisStore) -> Any:
    import txredisapi
    from twisted.internet import reactor
    from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
    from twisted.internet.ssl import optionsForClientTLS

    class Subscriber(txredisapi.SubscriberProtocol):
        _log = Logger()

        @inlineCallbacks
        def connectionMade(self) -> Any:
            yield txredisapi.SubscriberProtocol.connectionMade(self)
            if self.connected:
                yield self.subscribe(list(store._subscriptions))
                store._subscription_made()

        def connectionLost(self, why: Any) -> None:
            store.subscribed = False
            txredisapi.SubscriberProtocol.connectionLost(self, why)

        def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:
            receive = store._subscriptions.get(channel)
            try:
                data = json.loads(message)
            except ValueError:
                data = None
            if receive is None or not isinstance(data, dict):
                self._log.warn("cluster: a message on {channel} that is not ours, ignored", channel=channel)
                return
            receive(data)

    where = redis_address(store.url)
    factory = txredisapi.RedisFactory(None, where["dbid"], 1, True, txredisapi.ConnectionHandler, "utf-8",
                                      where["password"], None, False, where["username"])
    factory.protocol = Subscriber
    factory.maxDelay = RECONNECT_AT_MOST
    endpoint = HostnameEndpoint(reactor, where["host"], where["port"], timeout=TIMEOUT)
    if where["ssl_context_factory"]:
        endpoint = wrapClientTLS(optionsForClientTLS(where["host"]), endpoint)
    factory.startConnecting(endpoint)
    return factory.handler


#: Renew a lease only while it is still ours.
_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
          "else return 0 end")

#: One more in a counter that lives for a window from its first.
_COUNT = ("local n = redis.call('incr', KEYS[1]) "
          "if n == 1 then redis.call('pexpire', KEYS[1], ARGV[1]) end return n")

#: Compare the live nodes with the members last announced, while the lease is ours; returns {joined, left}.
_ANNOUNCE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return false end
local live, seen, joined, left = {}, {}, {}, {}
for i = 2, #ARGV do live[ARGV[i]] = true end
for _, id in ipairs(redis.call('smembers', KEYS[2])) do
  seen[id] = true
  if not live[id] then table.insert(left, id) end
end
for i = 2, #ARGV do if not seen[ARGV[i]] then table.insert(joined, ARGV[i]) end end
redis.call('del', KEYS[2])
for i = 2, #ARGV do redis.call('sadd', KEYS[2], ARGV[i]) end
return {joined, left}
"""


class MemoryStore:
    """The store's contract in memory (unit tests); ``down`` makes every call fail."""

    def __init__(self, clock: Any):
        self.clock = clock
        self.records: Dict[str, Tuple[float, Dict[str, Any]]] = {}
        self.leases: Dict[str, Tuple[str, int, float]] = {}
        self.fence = 0
        self.members: Set[str] = set()
        #: Channel: the receivers of every store sharing this one (nodes in tests share a store).
        self.subscribers: Dict[str, List[Callable[[Dict[str, Any]], None]]] = {}
        self.on_subscribed: List[Callable[[], None]] = []
        self.latest_messages: Dict[str, Dict[str, str]] = {}
        self.subscribed = True
        self.shared_records: Dict[str, Dict[str, str]] = {}
        self.seeded: Set[str] = set()
        self.secret = ""
        self.failures: Dict[str, Tuple[int, float]] = {}
        self.down = False

    def _check(self) -> Optional[Deferred]:
        if self.down:
            from twisted.internet.defer import fail

            return fail(ConnectionError("Redis is down"))
        return None

    def put_node(self, node_id: str, record: Dict[str, Any], ttl: float) -> Deferred:
        failed = self._check()
        if failed is None:
            self.records[node_id] = (self.clock.seconds() + ttl, json.loads(json.dumps(record)))
        return failed or succeed(None)

    def nodes(self) -> Deferred:
        now = self.clock.seconds()
        live: List[Dict[str, Any]] = [r for expiry, r in self.records.values() if expiry > now]
        return self._check() or succeed(live)

    def remove_node(self, node_id: str) -> Deferred:
        failed = self._check()
        if failed is None:
            self.records.pop(node_id, None)
        return failed or succeed(None)

    def acquire_lease(self, name: str, holder: str, ttl: float) -> Deferred:
        failed = self._check()
        if failed is not None:
            return failed
        self.fence += 1
        current = self.leases.get(name)
        if current is not None and current[2] > self.clock.seconds():
            return succeed(None)
        self.leases[name] = (holder, self.fence, self.clock.seconds() + ttl)
        return succeed(self.fence)

    def renew_lease(self, name: str, holder: str, token: int, ttl: float) -> Deferred:
        failed = self._check()
        if failed is not None:
            return failed
        current = self.leases.get(name)
        if current is None or current[:2] != (holder, token) or current[2] <= self.clock.seconds():
            return succeed(False)
        self.leases[name] = (holder, token, self.clock.seconds() + ttl)
        return succeed(True)

    def lease_holder(self, name: str) -> Deferred:
        current = self.leases.get(name)
        holder = current[0] if current is not None and current[2] > self.clock.seconds() else None
        return self._check() or succeed(holder)

    def announce_members(self, lease: str, holder: str, token: int, live: List[str]) -> Deferred:
        failed = self._check()
        if failed is not None:
            return failed
        current = self.leases.get(lease)
        if current is None or current[:2] != (holder, token) or current[2] <= self.clock.seconds():
            return succeed(None)
        joined, left = sorted(set(live) - self.members), sorted(self.members - set(live))
        self.members = set(live)
        return succeed((joined, left))

    def publish(self, channel: str, message: Dict[str, Any], latest: str = "") -> Deferred:
        failed = self._check()
        if failed is None:
            if latest:
                self.latest_messages.setdefault(channel, {})[latest] = json.dumps(message)
            for receive in list(self.subscribers.get(channel, [])):
                receive(json.loads(json.dumps(message)))
        return failed or succeed(len(self.subscribers.get(channel, [])))

    def latest(self, channel: str) -> Deferred:
        return self._check() or succeed(_records(self.latest_messages.get(channel, {})))

    def subscribe(self, channel: str, receive: Callable[[Dict[str, Any]], None],
                  subscribed: Optional[Callable[[], None]] = None) -> None:
        self.subscribers.setdefault(channel, []).append(receive)
        if subscribed is not None:
            self.on_subscribed.append(subscribed)
            subscribed()

    def resubscribed(self) -> None:
        """As after Redis came back: every subscriber catches up."""
        for subscribed in list(self.on_subscribed):
            subscribed()

    def cluster_secret(self, proposed: str) -> Deferred:
        failed = self._check()
        if failed is None:
            self.secret = self.secret or proposed
        return failed or succeed(self.secret)

    def put_shared(self, kind: str, record_id: str, record: Dict[str, Any]) -> Deferred:
        failed = self._check()
        if failed is None:
            self.shared_records.setdefault(kind, {})[record_id] = json.dumps(record)
        return failed or succeed(None)

    def delete_shared(self, kind: str, record_id: str) -> Deferred:
        failed = self._check()
        if failed is None:
            self.shared_records.get(kind, {}).pop(record_id, None)
        return failed or succeed(None)

    def shared(self, kind: str) -> Deferred:
        return self._check() or succeed(_records(self.shared_records.get(kind, {})))

    def get_shared(self, kind: str, record_id: str) -> Deferred:
        return self._check() or succeed(_records(self.shared_records.get(kind, {})).get(record_id))

    def seed_shared(self, kind: str, records: Dict[str, Dict[str, Any]]) -> Deferred:
        failed = self._check()
        if failed is not None:
            return failed
        first = kind not in self.seeded
        self.seeded.add(kind)
        if first:
            self.shared_records.setdefault(kind, {}).update({i: json.dumps(r) for i, r in records.items()})
        return succeed(first)

    def count_failure(self, client: str, window: float) -> Deferred:
        failed = self._check()
        if failed is not None:
            return failed
        now = self.clock.seconds()
        count, until = self.failures.get(client, (0, 0.0))
        count, until = (count + 1, until) if until > now else (1, now + window)
        self.failures[client] = (count, until)
        return succeed(count)

    def close(self) -> Deferred:
        return succeed(None)
