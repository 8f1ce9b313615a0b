# -*- test-case-name: tests.test_cluster -*-
"""
This node's membership of the cluster (``cluster { sync { enabled true } }``).

Every ``cluster.heartbeat`` the node writes its record to Redis (id,
role, region, address, the mounts it carries with the chain of nodes each
came through, listeners, bandwidth and capacity), with a time to live of
``cluster.node_timeout``, and reads everyone else's. From those records a
relay with ``auto_relay`` decides which mounts to carry and from whom
(:mod:`gocast.cluster.routing`); when an upstream fails it switches at
once to the next best, and avoids the failed one until the cluster has had
time to notice. A full node redirects new listeners to a sibling, and
with ``cluster.routing`` every node sends new listeners to the node of
their region (:mod:`gocast.cluster.georouting`).

The node also holds what makes the cluster one station: the leader's
lease and duties (:mod:`gocast.cluster.leader`: membership events once,
the stats history), one now-playing (:mod:`gocast.cluster.nowplaying`),
shared keys, logins and mounts (:mod:`gocast.cluster.shared`), and the
webhook gate that sends each event from one node only.

Redis is where nodes meet, not what keeps audio flowing: when it is down,
relays keep what they have and the node retries every heartbeat.
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qsl, urlencode

import attr
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ..config import Config
from ..config._kinds import redact_url
from ..core.events import Event
from ..core.registry import MountRegistry
from ..inputs.relay import RelaySpec, Relays
from ..observe.geo import audience, mount_locations
from .georouting import CONTINENTS, Place, Route
from .georouting import route as georoute
from .latency import RoundTrips, tcp_rtt_ms
from .leader import LEASE, LeaderLease
from .nowplaying import NowPlaying
from .routing import MountRecord, NodeRecord, by_id, choose_upstream, sibling_for, wanted_mounts
from .shared import SharedState


#: The most countries and cities a node tells per mount (the largest).
PLACES = 50
#: The query parameter a routed request carries (routed once, never again), and what ``?region=`` may name.
HOP = "gocast_hop"
REGION_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
#: Events about the cluster itself, which the leader delivers.
CLUSTER_EVENTS = "cluster."


def advertised(config: Config) -> str:
    """
    This node's address and id: ``cluster.advertise``; else its entry of
    ``sync.nodes`` (the one naming this machine's host name or its listen
    address, with ``server.port``); else that address (the host name when
    it listens everywhere) and the port. No DNS: names are compared as written.
    """
    cluster, server = config.cluster, config.server
    if cluster.advertise:
        return cluster.advertise
    wildcard = server.listen in ("", "0.0.0.0", "::")
    names = {socket.gethostname().lower()} | (set() if wildcard else {server.listen.lower()})
    for entry in cluster.sync.nodes:
        host, _, port = entry.rpartition(":")
        if port == str(server.port) and host.strip("[]").lower() in names:
            return entry
    host = socket.gethostname() if wildcard else server.listen
    return "%s:%d" % ("[%s]" % host if ":" in host else host, server.port)


class ClusterNode:
    _log = Logger()

    def __init__(self, registry: MountRegistry, relays: Relays, clock: Any,
                 store_for: Callable[[str], Any], now: Callable[[], float] = time.time):
        """
        :param store_for: makes the store for a Redis URL
            (:class:`gocast.cluster.store.RedisStore`, or a memory store in tests).
        """
        self.registry = registry
        self.relays = relays
        self.clock = clock
        self.store_for = store_for
        self.now = now
        self.config: Optional[Config] = None
        self.store: Any = None
        self._store_url = ""
        self._joined_as = ""
        #: The lease of the cluster's leader, while this node is in a cluster.
        self.lease: Optional[LeaderLease] = None
        self._loop: Optional[LoopingCall] = None
        self._beating = False
        #: The cluster as last read from Redis, this node included.
        self.nodes: Dict[str, NodeRecord] = {}
        #: The node each relayed mount comes from, and nodes avoided after failing, until when.
        self.upstreams: Dict[str, str] = {}
        self.avoiding: Dict[str, float] = {}
        self.redis_error = ""
        self._sent = (0.0, 0)
        self._redis_secret = ""
        self.bandwidth = 0.0
        #: Looks listeners up (:class:`gocast.observe.geo.GeoLocator`), for routing; set by the service.
        self.geo: Any = None
        self.round_trips = RoundTrips()
        #: API keys, dashboard logins, API mounts and failed logins, shared with the cluster.
        self.shared = SharedState(clock, lambda: self.id)
        relays.failover = self.failover
        registry.route_listener = self.routed_url
        registry.routed_elsewhere = self.routed_elsewhere
        #: The mounts the other nodes carry, as last read.
        self.remote_mounts: Set[str] = set()
        self.now_playing = NowPlaying(self)
        registry.elsewhere = lambda: self.elsewhere() if self.enabled else None

    @property
    def enabled(self) -> bool:
        return self.config is not None and self.config.cluster.discovery

    @property
    def id(self) -> str:
        """This node's id in the cluster: its advertised address (kept from joining until it leaves)."""
        if self._joined_as:
            return self._joined_as
        return advertised(self.config) if self.config is not None else ""

    @property
    def secret(self) -> str:
        """The cluster's secret: the configured one, else the one the cluster keeps in Redis (once read)."""
        configured = self.config.cluster.secret if self.config is not None else ""
        return configured or (self._redis_secret if self.enabled else "")

    def configure(self, config: Config) -> None:
        cluster = config.cluster
        same = (self._loop is not None and (cluster.sync.redis_url, cluster.heartbeat, advertised(config)) ==
                (self._store_url, self.config.cluster.heartbeat, self._joined_as))
        if same and cluster.discovery:
            self.config = config
            return
        self.stop()
        self.config = config
        if not self.enabled:
            return
        try:
            self.store = self.store_for(cluster.sync.redis_url)
        except (ImportError, ValueError) as e:
            self._log.error("cluster: cannot use {url}: {why}; this node runs standalone", url=cluster.sync.redis_url,
                            why=str(e))
            return
        self._store_url = cluster.sync.redis_url
        self._joined_as = advertised(config)
        self._redis_secret = ""
        self._log.info("cluster: joining as {role} {id} (region {region}) through {url}", role=cluster.node_role,
                       id=self.id, region=cluster.region or "-", url=redact_url(cluster.sync.redis_url))
        self.now_playing.attach(self.store)
        self.shared.attach(self.store)
        self.lease = LeaderLease(self.store, self._joined_as, self.clock, cluster.node_timeout,
                                 self.registry.bus.publish)
        self._loop = LoopingCall(self.beat)
        self._loop.clock = self.clock
        self._loop.start(cluster.heartbeat, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self.lease is not None:
            self.lease.step_down("this node leaves the cluster")
            self.lease = None
        self.shared.detach()
        if self.store is not None:
            store, self.store = self.store, None
            store.remove_node(self.id).addErrback(lambda _: None).addBoth(lambda _: store.close())
        self._store_url = ""
        self._joined_as = ""
        self.nodes = {}
        self.upstreams = {}
        self.relays.set("cluster", [])

    # The heartbeat

    def beat(self) -> None:
        if self._beating or self.store is None or self.config is None:
            return  # the last one has not finished (Redis is slow): skip, never pile up
        self._beating = True
        lease = self.lease
        lease.check()
        self.measure_bandwidth()
        me = self.describe()
        store = self.store
        d = store.put_node(me.id, me.as_json(), self.config.cluster.node_timeout)
        if not self.secret:
            d.addCallback(lambda _: store.cluster_secret(secrets.token_urlsafe(32)))
            d.addCallback(lambda secret: setattr(self, "_redis_secret", secret))
        d.addCallback(lambda _: store.nodes())
        d.addCallback(self.read)
        d.addCallback(lambda _: lease.tick())
        d.addCallback(lambda _: self.shared.tick())
        d.addErrback(self.redis_failed)
        d.addBoth(self._beaten)

    def _beaten(self, _: Any) -> None:
        self._beating = False

    def redis_failed(self, failure: Any) -> None:
        why = failure.getErrorMessage() or failure.type.__name__
        if not self.redis_error:
            self._log.warn("cluster: Redis at {url} is unreachable ({why}); relays keep their upstreams, retrying "
                           "every {seconds}s", url=self._store_url, why=why, seconds=self.config.cluster.heartbeat)
        self.redis_error = why

    def read(self, records: List[Any]) -> None:
        if self.redis_error:
            self._log.info("cluster: Redis at {url} is back", url=self._store_url)
            self.redis_error = ""
            self.shared.redis_back()
        nodes = by_id(filter(None, map(NodeRecord.from_json, records)))
        for gone in sorted(set(self.nodes) - set(nodes) - {self.id}):
            self._log.info("cluster: node {node} left", node=gone)
        for new in sorted(set(nodes) - set(self.nodes) - {self.id}):
            self._log.info("cluster: node {node} joined ({role}, region {region})", node=new, role=nodes[new].role,
                           region=nodes[new].region or "-")
        self.nodes = nodes
        self.remote_mounts = {path for node_id, record in nodes.items() if node_id != self.id for path in record.mounts}
        if (self.config is not None and self.config.cluster.role == "relay" and self.config.cluster.auto_relay
                and self.secret):
            self.place_relays()
        if self.leads():
            return self.announce()
        return None

    def announce(self) -> Any:
        """
        The leader's duty: ``cluster.node_joined``/``node_left`` once for the
        whole cluster, against the members the last leader announced (kept
        in Redis, so a takeover neither repeats nor misses one).
        """
        lease, nodes = self.lease, self.nodes

        def announced(found: Any) -> None:
            if found is None:
                lease.step_down("another node holds the lease")
                return
            joined, left = found
            for gone in left:
                self.registry.bus.publish("cluster.node_left", None, node=gone)
            for new in joined:
                record = nodes.get(new)
                if record is not None:
                    self.registry.bus.publish("cluster.node_joined", None, node=new, role=record.role,
                                              region=record.region)

        d = self.store.announce_members(LEASE, lease.holder, lease.token, list(nodes))
        return d.addCallback(announced)

    def leads(self) -> bool:
        """Whether this node is the cluster's leader now (checked against the clock, not only the last renewal)."""
        lease = self.lease
        if lease is None:
            return False
        lease.check()
        return lease.leading

    # What this node tells the others

    def measure_bandwidth(self) -> None:
        """Bytes per second sent to listeners since the last heartbeat."""
        now = self.now()
        sent = self.registry.total_bytes()[0]
        then, before = self._sent
        if then and now > then:
            self.bandwidth = max(0.0, (sent - before) / (now - then))
        self._sent = (now, sent)

    def describe(self) -> NodeRecord:
        cluster = self.config.cluster
        now = self.now()
        mounts = {}
        for path, mount in self.registry.mounts.items():
            if mount.source is None or mount.config.hidden:
                continue
            places = audience(mount_locations(mount), PLACES) if mount.listeners else {}
            mounts[path] = MountRecord(self.path_of(path), mount.listeners, mount.content_type,
                                       mount.total_bytes_sent, mount.bytes_received, places)
        listeners = sum(m.listeners for m in self.registry.mounts.values())
        return NodeRecord(self.id, cluster.node_role, cluster.region, self.id, mounts, listeners,
                          self.bandwidth, float(cluster.max_bandwidth), cluster.max_listeners, now,
                          self.round_trips.published())

    def path_of(self, mount: str) -> tuple:
        """The nodes ``mount`` came through to reach this one (just this one for its origin)."""
        upstream = self.nodes.get(self.upstreams.get(mount, ""))
        relay = self.relays.running.get(mount)
        if upstream is not None and mount in upstream.mounts and relay is not None and relay.state == "streaming":
            return upstream.mounts[mount].path + (self.id,)
        return (self.id,)

    @property
    def me(self) -> NodeRecord:
        return self.nodes.get(self.id) or self.describe()

    # Relays the cluster places

    def avoided(self) -> List[str]:
        now = self.clock.seconds()
        self.avoiding = {node: until for node, until in self.avoiding.items() if until > now}
        return list(self.avoiding)

    def place_relays(self) -> None:
        cluster = self.config.cluster
        me = self.me
        nodes = list(self.nodes.values())
        specs = []
        for mount in wanted_mounts(me.id, nodes, cluster.mounts):
            local = self.registry.get(mount)
            if local is not None and local.source is not None and mount not in self.relays.running:
                continue  # a source streams here: this node is an origin of it
            node = choose_upstream(mount, me, nodes, cluster.max_hops, self.upstreams.get(mount), self.avoided())
            if node is None:
                continue
            if self.upstreams.get(mount) not in (None, node.id):
                self._log.info("cluster: {mount} now from {node}", mount=mount, node=node.id)
            self.upstreams[mount] = node.id
            specs.append(self.spec_for(mount, node))
        placed = {s.mount for s in specs}
        for mount in set(self.upstreams) - placed:
            relay = self.relays.running.get(mount)
            if relay is not None and relay.state == "streaming":
                # Gone from the cluster's view (a late heartbeat), but the upstream still streams
                # to us: its pull, not Redis, says when it ends.
                specs.append(relay.spec)
            else:
                del self.upstreams[mount]
        self.relays.set("cluster", specs)

    def spec_for(self, mount: str, node: NodeRecord) -> RelaySpec:
        cluster = self.config.cluster
        return RelaySpec("http://%s%s" % (node.address, mount), mount, timeout=cluster.stall_timeout,
                         node_id=self.id, cluster_secret=self.secret)

    def failover(self, spec: RelaySpec, why: str) -> Optional[RelaySpec]:
        """A relay's upstream failed: avoid it a while, and name the next best (``None``: none)."""
        if self.config is None:
            return None
        failed = self.upstreams.get(spec.mount)
        if failed is not None:
            self.avoiding[failed] = self.clock.seconds() + 2 * self.config.cluster.node_timeout
        node = choose_upstream(spec.mount, self.me, list(self.nodes.values()), self.config.cluster.max_hops,
                               None, self.avoided())
        if node is None:
            return None
        self.upstreams[spec.mount] = node.id
        return attr.evolve(spec, url=self.spec_for(spec.mount, node).url)

    def elsewhere(self) -> Dict[str, int]:
        """Listeners per mount on the other nodes, from their last records (a vanished node's expire with it)."""
        counts: Dict[str, int] = {}
        for node_id, record in self.nodes.items():
            if node_id == self.id:
                continue
            for path, mount in record.mounts.items():
                counts[path] = counts.get(path, 0) + mount.listeners
        return counts

    def other_mounts(self) -> List[Tuple[str, MountRecord]]:
        """The mounts of the other nodes, each with its figures there (for the leader's stats history)."""
        return [(path, mount) for node_id, record in sorted(self.nodes.items()) if node_id != self.id
                for path, mount in sorted(record.mounts.items())]

    def totals(self) -> Dict[str, Any]:
        """The cluster's listeners: this node's now, the others' as last told; by mount and by node."""
        mounts = dict(self.elsewhere())
        here = 0
        for path, mount in self.registry.mounts.items():
            if mount.listeners:
                mounts[path] = mounts.get(path, 0) + mount.listeners
                here += mount.listeners
        nodes = {node_id: record.listeners for node_id, record in self.nodes.items() if node_id != self.id}
        if self.id:
            nodes[self.id] = here
        return {"listeners": sum(nodes.values()), "mounts": dict(sorted(mounts.items())),
                "nodes": dict(sorted(nodes.items()))}

    def dashboard(self) -> Dict[str, Any]:
        """The station's listeners and one row per node, for the dashboard's live stream."""
        totals = self.totals()
        leader = self.lease.current if self.lease is not None else None
        nodes = [{"id": record.id, "region": record.region, "role": record.role,
                  "listeners": totals["nodes"].get(record.id, record.listeners), "load": round(record.load, 3),
                  "leader": record.id == leader, "self": record.id == self.id}
                 for record in sorted(self.nodes.values(), key=lambda n: (n.region, n.id))]
        return {"listeners": totals["listeners"], "leader": leader, "nodes": nodes}

    def status(self) -> Dict[str, Any]:
        """What ``GET /api/v1/cluster`` and ``gocast cluster status`` show."""
        config = self.config
        cluster = config.cluster if config is not None else None
        nodes = []
        for record in sorted(self.nodes.values(), key=lambda n: (n.region, n.id)):
            nodes.append({"id": record.id, "role": record.role, "region": record.region, "address": record.address,
                          "listeners": record.listeners, "bandwidth": int(record.bandwidth),
                          "max_bandwidth": int(record.max_bandwidth), "max_listeners": record.max_listeners,
                          "load": round(record.load, 3), "updated": record.updated, "self": record.id == self.id,
                          "mounts": [{"path": path, "hops": m.hops, "via": list(m.path[:-1]),
                                      "listeners": m.listeners}
                                     for path, m in sorted(record.mounts.items())]})
        lease = self.lease
        return {"enabled": self.enabled, "id": self.id or None,
                "leader": lease.current if lease is not None else None,
                "is_leader": lease is not None and lease.leading,
                "role": cluster.node_role if cluster and self.enabled else "standalone",
                "region": cluster.region if cluster else "",
                "redis": {"url": redact_url(self._store_url) if self._store_url else None,
                          "connected": bool(self._store_url) and not self.redis_error and bool(self.nodes),
                          "subscribed": bool(getattr(self.store, "subscribed", False)),
                          "error": self.redis_error or None},
                "nodes": nodes, "totals": self.totals() if self.enabled else None}

    # Webhooks: each event from one node only (a gocast.observe.webhooks.Gate)

    def accepts(self, event: Event) -> bool:
        if not self.enabled:
            return True
        if event.data.get("from_node"):
            return False  # delivered by the node it was made on
        return self.sends(event.name)

    def sends(self, name: str) -> bool:
        return not self.enabled or not name.startswith(CLUSTER_EVENTS) or self.leads()

    @property
    def node_name(self) -> str:
        return self.id if self.enabled else ""

    # Listeners: geographic routing

    def place_of(self, address: str) -> Place:
        geo = self.geo
        if geo is None:
            return Place(address)
        country, continent = geo.country_and_continent(address)
        return Place(address, country, CONTINENTS.get(continent, ""))

    def route(self, mount: str, address: str, asked_region: Optional[str] = None) -> Optional[Route]:
        """Where a listener at ``address`` should listen to ``mount`` (``None``: not in a cluster)."""
        if not self.enabled:
            return None
        return georoute(mount, self.place_of(address), self.config.cluster.routing, self.me,
                        list(self.nodes.values()), asked_region)

    def routed_url(self, mount: str, address: str, target: str) -> Optional[str]:
        """
        With ``cluster.routing.enabled``, the URL on a better node for a new
        listener's request ``target`` (path and query kept, a token
        included), or ``None`` to serve it here. A request routed once
        (``gocast_hop``) is never routed again, so nodes cannot loop.
        """
        if not self.enabled or not self.config.cluster.routing.enabled:
            return None
        path, _, query = target.partition("?")
        params = parse_qsl(query, keep_blank_values=True)
        asked = dict(params)
        if HOP in asked:
            return None
        region = asked.get("region", "")
        found = self.route(mount, address, region if REGION_NAME.fullmatch(region) else None)
        if found is None or not found.redirect or found.node is None:
            return None
        return "http://%s%s?%s" % (found.node.address, path, urlencode(params + [(HOP, "1")]))

    def routed_elsewhere(self, mount: str) -> bool:
        """A mount only other nodes carry is still a listener's path here: routing sends them there."""
        return self.enabled and self.config.cluster.routing.enabled and mount in self.remote_mounts

    def measured(self, country: str, transport: Any) -> None:
        """A listener started here: its round trip counts towards this node's nearness to its country."""
        if self.enabled:
            self.round_trips.add(country, tcp_rtt_ms(transport))

    # Listeners: a full node

    def redirect_for(self, mount: str) -> Optional[str]:
        """Where a full node sends a new listener of ``mount``, if a sibling of its region can take them."""
        if not self.enabled or not self.config.cluster.redirect_when_full:
            return None
        sibling = sibling_for(mount, self.me, list(self.nodes.values()))
        return "http://%s%s" % (sibling.address, mount) if sibling is not None else None

    def full(self) -> bool:
        """Whether this node holds ``cluster.max_listeners`` listeners already."""
        limit = self.config.cluster.max_listeners if self.config is not None else 0
        return bool(limit) and sum(m.listeners for m in self.registry.mounts.values()) >= limit
