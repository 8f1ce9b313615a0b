# -*- test-case-name: tests.test_cluster -*-
"""
One leader for the cluster's once-only duties: a Redis lease, not a
consensus of our own. The leader holds ``gocast:lease:leader`` (``SET NX
PX``, with a fencing token from ``INCR``) and renews it every heartbeat;
a node that has not renewed for half the lease steps down by itself, so it
has stopped its duties before the lease can pass to another node.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.logger import Logger

LEASE = "leader"


class LeaderLease:
    _log = Logger()

    def __init__(self, store: Any, holder: str, clock: Any, ttl: float, publish: Callable[..., Any]):
        self.store = store
        self.holder = holder
        self.clock = clock
        self.ttl = ttl
        self.publish = publish
        self.token: Optional[int] = None
        self.renewed_at = 0.0
        #: Who holds the lease, as last read (this node included).
        self.current: Optional[str] = None

    @property
    def leading(self) -> bool:
        return self.token is not None

    def check(self) -> None:
        """Every heartbeat, Redis or not: a leader that could not renew for half the lease steps down."""
        if self.leading and self.clock.seconds() - self.renewed_at > self.ttl / 2:
            self.step_down("the lease could not be renewed for %gs" % (self.ttl / 2))

    def tick(self) -> Any:
        """Renew (or try to take) the lease, and read who holds it."""
        if self.leading:
            d = self.store.renew_lease(LEASE, self.holder, self.token, self.ttl)
            d.addCallback(self._renewed)
        else:
            d = self.store.acquire_lease(LEASE, self.holder, self.ttl)
            d.addCallback(self._acquired)
        d.addCallback(lambda _: self.store.lease_holder(LEASE))
        d.addCallback(self._holder)
        return d

    def _renewed(self, renewed: bool) -> None:
        if renewed:
            self.renewed_at = self.clock.seconds()
        elif self.leading:
            self.step_down("another node holds the lease")

    def _acquired(self, token: Optional[int]) -> None:
        if token is None:
            return
        self.token = token
        self.renewed_at = self.clock.seconds()
        self._log.info("cluster: this node ({holder}) leads the cluster (fencing token {token})",
                       holder=self.holder, token=token)
        self.publish("cluster.leader", None, node=self.holder, leading=True, what="leads the cluster",
                     token=token)

    def _holder(self, holder: Optional[str]) -> None:
        self.current = holder

    def step_down(self, why: str) -> None:
        if not self.leading:
            return
        self._log.warn("cluster: this node ({holder}) stops leading: {why}", holder=self.holder, why=why)
        self.token = None
        self.publish("cluster.leader", None, node=self.holder, leading=False,
                     what="stopped leading the cluster (%s)" % why)
