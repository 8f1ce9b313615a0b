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
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote, urlsplit

from twisted.internet.defer import Deferred, inlineCallbacks, succeed

PREFIX = "gocast:"
#: The most one Redis call may take.
TIMEOUT = 3.0


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
        self.redis = txredisapi.lazyConnection(reconnect=True, connectTimeout=TIMEOUT, replyTimeout=TIMEOUT,
                                               convertNumbers=False, **redis_address(url))

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

    def close(self) -> Any:
        return self.redis.disconnect()


class MemoryStore:
    """The store's contract in memory (unit tests); ``down`` makes every call fail."""

    def __init__(self, clock: Any):
        self.clock = clock
        self.records: Dict[str, Tuple[float, Dict[str, Any]]] = {}
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

    def close(self) -> Deferred:
        return succeed(None)
