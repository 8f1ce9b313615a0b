# -*- test-case-name: tests.test_cluster_state -*-
"""
State every node of a cluster shares through Redis: API keys created
through the API, dashboard logins, mounts created through the API, and
failed-login counts. The SQLite state store stays the single-node default
(and each node's copy); in a cluster, Redis is where these live.

Each collection (:class:`Collection`: ``ApiKeys``, ``Sessions``,
``ApiMounts``) is a hash of JSON records in Redis. A change made on a node
is written there and announced on the ``gocast:state`` channel, so the
other nodes apply it within the second (a key revoked on one node is
refused on all); every :data:`RESYNC_EVERY` seconds, and when Redis comes
back, each node reads the whole hash again, so a missed message costs at
most that long. The first node to share a collection brings its own
records (turning the cluster on keeps the keys you had; a Redis restarted
empty gets them back from the first node to resync). A delete made
while Redis is away is kept and retried (a revoked key must not come
back); a creation then fails, and says so.

Failed logins: each failure is counted in Redis too (a window per client
address); when a client reaches the limit anywhere, every node refuses it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Dict, Optional, Tuple

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger

from ..core.throttle import FAILURE_LIMIT, FAILURE_WINDOW

#: The pub/sub channel of changes.
STATE = "state"
#: Seconds between full reads of every collection.
RESYNC_EVERY = 10.0
#: Deletes waiting for Redis, at most (the oldest are dropped past it).
MAX_PENDING = 10000
#: The pseudo-kind of failed-login blocks on the channel.
BLOCK = "block"


class ClusterUnavailable(ConnectionError):
    """A change could not be shared: Redis did not take it."""


class Collection:
    """What a shared collection offers (``ApiKeys``, ``Sessions``, ``ApiMounts`` implement it)."""

    kind = ""
    #: The cluster's shared state, once registered (:meth:`SharedState.register`).
    shared: Any = None

    @property
    def sharing(self) -> bool:
        """Whether this node is in a cluster now: changes are to be shared."""
        return self.shared is not None and self.shared.active

    def records(self) -> Dict[str, Dict[str, Any]]:
        """This node's records, to seed an empty cluster with."""
        raise NotImplementedError

    def received(self, record_id: str, record: Optional[Dict[str, Any]]) -> None:
        """Another node changed one (``None``: deleted it)."""
        raise NotImplementedError

    def replace(self, records: Dict[str, Dict[str, Any]]) -> None:
        """The whole collection as Redis has it."""
        raise NotImplementedError


class SharedState:
    _log = Logger()

    def __init__(self, clock: Any, node_id: Callable[[], str]):
        self.clock = clock
        self.node_id = node_id
        self.collections: Dict[str, Collection] = {}
        self.store: Any = None
        #: Deletes not yet in Redis: (kind, id).
        self.pending: "OrderedDict[Tuple[str, str], None]" = OrderedDict()
        self._synced_at: Optional[float] = None
        #: Where failed-login blocks from other nodes go (:class:`gocast.core.throttle.AuthFailures`).
        self.failures: Any = None

    @property
    def active(self) -> bool:
        return self.store is not None

    def register(self, collection: Collection) -> None:
        self.collections[collection.kind] = collection
        collection.shared = self

    def attach(self, store: Any) -> None:
        """The node joined a cluster through ``store``: subscribe, and read everything at the next tick."""
        self.store = store
        self._synced_at = None
        store.subscribe(STATE, self.received)

    def detach(self) -> None:
        self.store = None
        self.pending.clear()

    def redis_back(self) -> None:
        """Redis came back: read everything again (messages were missed meanwhile)."""
        self._synced_at = None

    # Every heartbeat

    def tick(self) -> Deferred:
        store = self.store
        if store is None:
            return succeed(None)
        d = self._flush_deletes(store)
        now = self.clock.seconds()
        if self._synced_at is None or now - self._synced_at >= RESYNC_EVERY:
            for kind in sorted(self.collections):
                d.addCallback(lambda _, kind=kind: self._resync(store, kind))
            d.addCallback(lambda _: setattr(self, "_synced_at", now))
        return d

    def _flush_deletes(self, store: Any) -> Deferred:
        d = succeed(None)
        for kind, record_id in list(self.pending):
            d.addCallback(lambda _, k=kind, i=record_id: store.delete_shared(k, i))
            d.addCallback(lambda _, k=kind, i=record_id: self._announce(store, k, i, None))
            d.addCallback(lambda _, k=kind, i=record_id: self.pending.pop((k, i), None))
        return d

    def _resync(self, store: Any, kind: str) -> Deferred:
        # Seeding is asked each time: after a Redis that lost its data (restarted without
        # persistence), the first node to resync brings the records back instead of wiping them.
        collection = self.collections[kind]
        d = store.seed_shared(kind, collection.records())
        d.addCallback(lambda _: store.shared(kind))
        d.addCallback(lambda records: self._replace(collection, {i: r for i, r in records.items()
                                                                 if (kind, i) not in self.pending}))
        return d

    def _replace(self, collection: Collection, records: Dict[str, Dict[str, Any]]) -> None:
        try:
            collection.replace(records)
        except Exception:  # a bug here must not pass for Redis being down
            self._log.failure("cluster: the shared {kind} could not be applied", kind=collection.kind)

    # Changes made here

    def share(self, kind: str, record_id: str, record: Dict[str, Any]) -> Deferred:
        """Write a record to Redis and tell the others; fails when Redis cannot be reached."""
        store = self.store
        if store is None:
            return fail(ClusterUnavailable("this node left the cluster"))
        self.pending.pop((kind, record_id), None)
        d = store.put_shared(kind, record_id, record)
        d.addCallback(lambda _: self._announce(store, kind, record_id, record))

        def unavailable(failure: Any) -> None:
            raise ClusterUnavailable("Redis did not take the %s (%s)" % (kind.rstrip("s"), failure.getErrorMessage()
                                                                       or failure.type.__name__))

        return d.addErrback(unavailable)

    def fetch(self, kind: str, record_id: str) -> Deferred:
        """One record as Redis has it now (``None``: none, or Redis away, or a delete of it waits here)."""
        store = self.store
        if store is None or (kind, record_id) in self.pending:
            return succeed(None)
        d = store.get_shared(kind, record_id)
        return d.addErrback(lambda f: self._log.warn("cluster: a shared {kind} could not be looked up ({why})",
                                                     kind=kind, why=f.getErrorMessage()))

    def unshare(self, kind: str, record_id: str) -> None:
        """Delete a record everywhere: now if Redis answers, else at a later heartbeat."""
        if self.store is None:
            return
        self.pending[(kind, record_id)] = None
        while len(self.pending) > MAX_PENDING:
            self.pending.popitem(last=False)
        self._flush_deletes(self.store).addErrback(
            lambda f: self._log.warn("cluster: a delete of a shared {kind} waits for Redis ({why})", kind=kind,
                                     why=f.getErrorMessage()))

    def _announce(self, store: Any, kind: str, record_id: str, record: Optional[Dict[str, Any]]) -> Deferred:
        return store.publish(STATE, {"node": self.node_id(), "kind": kind, "id": record_id, "record": record})

    def failed_login(self, client: str) -> None:
        """Count a failed login of ``client`` (an address key) in the cluster; at the limit, block it everywhere."""
        store = self.store
        if store is None:
            return

        def counted(count: int) -> Any:
            if count < FAILURE_LIMIT:
                return None
            until = self.clock.seconds() + FAILURE_WINDOW
            if self.failures is not None:
                self.failures.block(client, until)
            return store.publish(STATE, {"node": self.node_id(), "kind": BLOCK, "id": client, "until": until})

        store.count_failure(client, FAILURE_WINDOW).addCallback(counted).addErrback(
            lambda f: self._log.warn("cluster: a failed login not counted in Redis ({why})", why=f.getErrorMessage()))

    # Changes made elsewhere

    def received(self, message: Dict[str, Any]) -> None:
        kind, record_id, record = message.get("kind"), message.get("id"), message.get("record")
        if self.store is None or message.get("node") == self.node_id() or not isinstance(record_id, str):
            return
        if kind == BLOCK:
            until = message.get("until")
            if self.failures is not None and isinstance(until, (int, float)):
                # Never longer than a window from now, whatever the message says.
                self.failures.block(record_id, min(float(until), self.clock.seconds() + FAILURE_WINDOW))
            return
        collection = self.collections.get(kind) if isinstance(kind, str) else None
        if collection is None or (record is not None and not isinstance(record, dict)):
            return
        try:
            collection.received(record_id, record)
        except Exception:
            self._log.failure("cluster: a shared {kind} change could not be applied", kind=kind)
