# -*- test-case-name: tests.test_cluster -*-
"""
Who relays from whom, and where a full node sends listeners: pure
functions of the node records every node publishes in Redis
(:mod:`gocast.cluster.node`).

A relay takes a mount from the healthiest upstream it can: its own region
first, then fewer hops (the origin is hop 0), then the lighter load. A
node already relaying through us is never our upstream (no loops), within
a region a relay cascades only from relays of a smaller id (no two-node
loop when both decide at once), chains stay within ``max_hops``, and a
node near its capacity takes no more.
Once chosen, an upstream is kept while it stays valid, so relays do not
flap between equals.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import attr

#: A node at this share of its bandwidth or listener capacity is "near capacity".
NEAR_CAPACITY = 0.9


@attr.frozen
class MountRecord:
    """A mount a node carries: the chain of nodes from its origin to this node, and its listeners."""

    path: Tuple[str, ...]
    listeners: int = 0
    content_type: str = ""
    #: Bytes sent to listeners and received from the source so far, on this node.
    sent: int = 0
    received: int = 0
    #: ``{"listeners_by_country": {..}, "listeners_by_city": {..}}`` of this node's listeners (GeoIP).
    places: Dict[str, Dict[str, int]] = attr.Factory(dict)

    @property
    def hops(self) -> int:
        return len(self.path) - 1


@attr.frozen
class NodeRecord:
    id: str
    role: str = "relay"
    region: str = ""
    address: str = ""
    mounts: Dict[str, MountRecord] = attr.Factory(dict)
    listeners: int = 0
    #: Bytes per second sent to listeners now, and the most the node may send (0: no limit).
    bandwidth: float = 0.0
    max_bandwidth: float = 0.0
    max_listeners: int = 0
    updated: float = 0.0
    #: Country: the typical round trip of this node's listeners there, in milliseconds (measured, TCP).
    rtt: Dict[str, float] = attr.Factory(dict)

    @property
    def load(self) -> float:
        """The larger share of capacity in use (0 when no capacity is set)."""
        shares = [0.0]
        if self.max_bandwidth:
            shares.append(self.bandwidth / self.max_bandwidth)
        if self.max_listeners:
            shares.append(self.listeners / self.max_listeners)
        return max(shares)

    @property
    def near_capacity(self) -> bool:
        return self.load >= NEAR_CAPACITY

    def as_json(self) -> Dict[str, Any]:
        data = attr.asdict(self, recurse=False)
        data["mounts"] = {path: attr.asdict(m, recurse=False, value_serializer=_listed)
                          for path, m in self.mounts.items()}
        return data

    @classmethod
    def from_json(cls, data: Any) -> Optional["NodeRecord"]:
        """A record read from Redis; ``None`` if it is not one (another version, a stray key)."""
        try:
            mounts = {str(path): MountRecord(tuple(str(n) for n in m["path"]), int(m.get("listeners", 0)),
                                             str(m.get("content_type", "")), int(m.get("sent", 0)),
                                             int(m.get("received", 0)), _places(m.get("places")))
                      for path, m in dict(data.get("mounts", {})).items()}
            return cls(str(data["id"]), str(data.get("role", "relay")), str(data.get("region", "")),
                       str(data["address"]), mounts, int(data.get("listeners", 0)),
                       float(data.get("bandwidth", 0)), float(data.get("max_bandwidth", 0)),
                       int(data.get("max_listeners", 0)), float(data.get("updated", 0)),
                       {str(country)[:16]: float(ms) for country, ms in dict(data.get("rtt") or {}).items()})
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def _listed(_: Any, __: Any, value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _places(data: Any) -> Dict[str, Dict[str, int]]:
    """The GeoIP breakdown of a record, checked (another node's JSON is not trusted blindly)."""
    places = {}
    for key in ("listeners_by_country", "listeners_by_city"):
        counts = dict((data or {}).get(key) or {})
        if counts:
            places[key] = {str(name)[:80]: int(count) for name, count in counts.items()}
    return places


def wanted_mounts(me: str, nodes: Iterable[NodeRecord], only: Iterable[str] = ()) -> List[str]:
    """The mounts other nodes carry that this node should relay (all, or those of ``only``)."""
    allowed = set(only)
    found: Set[str] = set()
    for node in nodes:
        if node.id != me:
            found.update(path for path in node.mounts if not allowed or path in allowed)
    return sorted(found)


def upstream_candidates(mount: str, me: NodeRecord, nodes: Iterable[NodeRecord], max_hops: int,
                        avoid: Iterable[str] = ()) -> List[NodeRecord]:
    """The nodes ``me`` may relay ``mount`` from, best first."""
    avoid = set(avoid)
    found = []
    for node in nodes:
        record = node.mounts.get(mount)
        if node.id == me.id or node.id in avoid or record is None:
            continue
        if me.id in record.path or record.hops + 1 > max_hops or node.near_capacity:
            continue
        if node.region == me.region and record.hops > 0 and node.id > me.id:
            # Within a region, relays pull only from relays of a smaller id: two that would
            # each pick the other in the same heartbeat (their records not yet showing it)
            # cannot loop.
            continue
        found.append(node)
    return sorted(found, key=lambda n: _rank(mount, me, n) + (n.load, n.id))


def _rank(mount: str, me: NodeRecord, node: NodeRecord) -> Tuple[bool, int]:
    """What makes an upstream better, load aside: its region is ours, then it is nearer the origin."""
    return node.region != me.region, node.mounts[mount].hops


def choose_upstream(mount: str, me: NodeRecord, nodes: Iterable[NodeRecord], max_hops: int,
                    current: Optional[str] = None, avoid: Iterable[str] = ()) -> Optional[NodeRecord]:
    """
    The upstream for ``mount``: the current one while it stays valid and
    no candidate is of a better rank (our region, fewer hops), else the
    best candidate. Load alone never moves a relay.
    """
    candidates = upstream_candidates(mount, me, nodes, max_hops, avoid)
    if not candidates:
        return None
    best = candidates[0]
    for node in candidates:
        if node.id == current and _rank(mount, me, node) <= _rank(mount, me, best):
            return node
    return best


def sibling_for(mount: str, me: NodeRecord, nodes: Iterable[NodeRecord]) -> Optional[NodeRecord]:
    """Where a full node sends a new listener of ``mount``: the lightest sibling of its region carrying it."""
    siblings = [n for n in nodes if n.id != me.id and n.region == me.region and mount in n.mounts
                and not n.near_capacity and n.address]
    return min(siblings, key=lambda n: (n.load, n.id), default=None)


def by_id(nodes: Iterable[NodeRecord]) -> Dict[str, NodeRecord]:
    return {node.id: node for node in nodes}
