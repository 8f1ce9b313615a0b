# -*- test-case-name: tests.test_georouting -*-
"""
Geographic load balancing: which node a listener should be sent to.
Pure functions of where the listener is (its address, country and
continent, from GeoIP) and of the node records every node publishes.

First the listener's region: an override for its address block (the
longest wins), else the configured region listing its country, then its
continent; with no regions configured, node regions named like
continents (``eu``, ``us``, ``asia``, ``eu-west``...) stand for them.
Then the node: one of that region carrying the mount and not near
capacity (this node if it is one, else the lightest); where the region
does not decide, the node whose listeners of the same country have the
shortest measured round trip; else this node if it can serve, else the
lightest. A node never sends a listener to itself.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from typing import Dict, Iterable, List, Optional, Tuple

import attr

from ..config._schema import RoutingConfig
from .routing import NodeRecord

#: GeoIP's continent codes, as ``cluster.routing.regions`` names them.
CONTINENTS = {"EU": "europe", "AS": "asia", "AF": "africa", "NA": "north_america", "SA": "south_america",
              "OC": "oceania", "AN": "antarctica"}
#: With no regions configured: region names (or their first part, eu-west: eu) that stand for continents.
DEFAULT_REGIONS: Dict[str, Tuple[str, ...]] = {
    "eu": ("europe",), "europe": ("europe",),
    "us": ("north_america",), "na": ("north_america",), "northamerica": ("north_america",),
    "sa": ("south_america",), "latam": ("south_america",), "southamerica": ("south_america",),
    "asia": ("asia",), "as": ("asia",), "ap": ("asia", "oceania"), "apac": ("asia", "oceania"),
    "me": ("asia",), "oc": ("oceania",), "oceania": ("oceania",), "au": ("oceania",),
    "af": ("africa",), "africa": ("africa",),
}
#: A node whose listeners' round trip is within this of the best counts as just as near (milliseconds).
NEAR_ENOUGH_MS = 10.0


@attr.frozen
class Place:
    """Where a listener is: its address, ISO country code ("unknown") and continent ("" if unknown)."""

    address: str
    country: str = "unknown"
    continent: str = ""


@attr.frozen
class Route:
    """The answer: the node chosen (``None``: none carries the mount), the region wanted, and why."""

    node: Optional[NodeRecord]
    region: Optional[str]
    reason: str
    #: Whether the listener should go there (not this node).
    redirect: bool = False


@functools.lru_cache(maxsize=1024)
def _network(text: str) -> ipaddress._BaseNetwork:
    return ipaddress.ip_network(text, strict=False)


def default_continents(region: str) -> Tuple[str, ...]:
    """The continents a node region stands for by its name alone."""
    name = region.lower()
    for part in (name, name.replace("-", "").replace("_", ""), name.split("-")[0].split("_")[0]):
        if part in DEFAULT_REGIONS:
            return DEFAULT_REGIONS[part]
    return ()


def wanted_region(place: Place, routing: RoutingConfig, regions: Iterable[str]) -> Tuple[Optional[str], str]:
    """The listener's region and why: override, country, continent, or a region named like its continent."""
    try:
        address = ipaddress.ip_address(place.address)
    except ValueError:
        address = None
    best: Optional[Tuple[int, str, str]] = None
    for block, region in routing.overrides.items():
        network = _network(block)
        if address is not None and address.version == network.version and address in network:
            if best is None or network.prefixlen > best[0]:
                best = (network.prefixlen, block, region)
    if best is not None:
        return best[2], "override %s" % best[1]
    if routing.regions:
        for key, what in ((place.country, "country"), (place.continent, "continent")):
            for region, places in sorted(routing.regions.items()):
                if key and key in places:
                    return region, "%s %s" % (what, key)
        return None, "no region lists %s (%s)" % (place.country, place.continent or "continent unknown")
    if place.continent:
        for region in sorted(set(regions)):
            if place.continent in default_continents(region):
                return region, "continent %s (region named %s)" % (place.continent, region)
    return None, "no region for %s (%s)" % (place.country, place.continent or "continent unknown")


def choose_node(mount: str, place: Place, region: Optional[str], me: NodeRecord, nodes: Iterable[NodeRecord],
                latency: bool = True) -> Tuple[Optional[NodeRecord], str]:
    """The node to serve ``place`` on ``mount`` (see the module's docstring), and why."""
    candidates = [n for n in nodes if mount in n.mounts and (n.address or n.id == me.id) and not n.near_capacity]
    if not candidates:
        return None, "no node with room carries %s" % mount
    here = next((n for n in candidates if n.id == me.id), None)
    if region is not None:
        local = [n for n in candidates if n.region == region]
        if local:
            if here is not None and here.region == region:
                return here, "this node is in region %s" % region
            return _lightest(local), "region %s" % region
    if latency and place.country != "unknown":
        timed = [(n.rtt[place.country], n) for n in candidates if place.country in n.rtt]
        if timed:
            best_ms = min(ms for ms, _ in timed)
            if here is not None and here.rtt.get(place.country, math.inf) <= best_ms + NEAR_ENOUGH_MS:
                return here, "this node is among the nearest to %s (%.0f ms)" % (place.country, best_ms)
            ms, node = min(timed, key=lambda t: (t[0], t[1].load, t[1].id))
            return node, "nearest to %s by round trip (%.0f ms)" % (place.country, ms)
    if here is not None:
        return here, "no nearer node; this one carries %s" % mount
    return _lightest(candidates), "the lightest node carrying %s" % mount


def _lightest(nodes: List[NodeRecord]) -> NodeRecord:
    return min(nodes, key=lambda n: (n.load, n.id))


def route(mount: str, place: Place, routing: RoutingConfig, me: NodeRecord, nodes: Iterable[NodeRecord],
          asked_region: Optional[str] = None) -> Route:
    """Where a listener at ``place`` should listen to ``mount``; ``asked_region`` (``?region=``) decides the region."""
    nodes = list(nodes)
    if asked_region:
        region: Optional[str] = asked_region
        why = "asked for region %s" % asked_region
    else:
        region, why = wanted_region(place, routing, (n.region for n in nodes if n.region))
    node, chosen = choose_node(mount, place, region, me, nodes, routing.latency)
    return Route(node, region, "%s; %s" % (why, chosen), node is not None and node.id != me.id)
