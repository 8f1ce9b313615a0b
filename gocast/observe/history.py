# -*- test-case-name: tests.test_history -*-
"""
The stats history: every :data:`SAMPLE_EVERY` seconds a sampler records,
per mount, the listeners, the peak since the last sample (listener joins
between samples count), the bytes sent and received so far, and the
listeners by country and city (GeoIP), into the state store. Each
:data:`COARSE` seconds the samples are averaged into one coarse row; fine
rows are kept :data:`KEEP_FINE`, coarse rows :data:`KEEP_COARSE`.

Two views: ``1h`` (the fine samples) and ``1d`` (the coarse rows), each
point with the send and receive rates worked out from the byte counts.
The REST API (``GET /api/v1/stats/history``) and the dashboard read them;
:func:`to_csv` is the export.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Callable, Dict, List, Optional

import attr
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ..core.events import Event
from .geo import audience, merged, mount_locations

SAMPLE_EVERY = 10.0
COARSE = 300.0
KEEP_FINE = 2 * 3600.0
KEEP_COARSE = 2 * 86400.0
#: Range name: (seconds back, table).
RANGES = {"1h": (3600.0, "history_fine"), "1d": (86400.0, "history_coarse")}
CSV_COLUMNS = ("time", "mount", "listeners", "peak", "bytes_sent", "bytes_received", "send_bps", "receive_bps")


@attr.s(auto_attribs=True)
class Figures:
    """One mount's figures at a sample, summed over the nodes that carry it."""

    listeners: int = 0
    sent: int = 0
    received: int = 0
    #: Each node's GeoIP breakdown (:func:`gocast.observe.geo.audience`), added up by :meth:`places`.
    audiences: List[Dict[str, Dict[str, int]]] = attr.Factory(list)

    def places(self) -> Dict[str, Dict[str, int]]:
        return merged(self.audiences)


class StatsHistory:
    """
    In a cluster (``cluster`` is the :class:`gocast.cluster.node.ClusterNode`)
    only the leader samples, and its samples cover every node: the history
    of the station, not of one server.
    """

    _log = Logger()
    cluster: Any = None

    def __init__(self, registry: Any, store: Any, bus: Any, clock: Any, now: Callable[[], float]):
        self.registry = registry
        self.store = store
        self.now = now
        self._peaks: Dict[str, int] = {}
        self._bucket: Optional[int] = None
        self._loop = LoopingCall(self.sample)
        self._loop.clock = clock
        bus.subscribe(self.joined, ["listener.connect"])

    def start(self) -> None:
        self._loop.start(SAMPLE_EVERY, now=False).addErrback(
            lambda failure: self._log.failure("the stats sampler stopped", failure))

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def joined(self, event: Event) -> None:
        """A listener joined: the peak of the interval may be higher than either sample."""
        if event.mount:
            listeners = int(event.data.get("listeners") or 0)
            self._peaks[event.mount] = max(self._peaks.get(event.mount, 0), listeners)

    def figures(self) -> Dict[str, Figures]:
        """Each mount's figures now: this node's, plus the other nodes' as last told in a cluster."""
        found = {}
        for path, mount in self.registry.mounts.items():
            places = [audience(mount_locations(mount))] if mount.listeners else []
            found[path] = Figures(mount.listeners, mount.total_bytes_sent, mount.bytes_received, places)
        cluster = self.cluster
        for path, record in (cluster.other_mounts() if cluster is not None and cluster.enabled else ()):
            mine = found.setdefault(path, Figures())
            mine.listeners += record.listeners
            mine.sent += record.sent
            mine.received += record.received
            mine.audiences.append(record.places)
        return found

    def sample(self) -> Deferred:
        """Record one sample of every mount (the writes happen off the reactor); in a cluster, the leader's duty."""
        cluster = self.cluster
        if cluster is not None and cluster.enabled and not cluster.leads():
            self._peaks.clear()
            return succeed(None)
        now = self.now()
        rows = []
        for path, figures in sorted(self.figures().items()):
            listeners = figures.listeners
            here = self.registry.mounts[path].listeners if path in self.registry.mounts else 0
            places = figures.places() if listeners else None
            peak = max(listeners, self._peaks.pop(path, 0) + listeners - here)
            rows.append((now, path, listeners, peak, figures.sent, figures.received,
                         json.dumps(places) if places else None))
        written = self.store.add_samples(rows)
        bucket = int(now // COARSE)
        if self._bucket is not None and bucket != self._bucket:
            start = self._bucket * COARSE
            written.addCallback(lambda _: self.store.downsample(start, bucket * COARSE, now - KEEP_FINE,
                                                                now - KEEP_COARSE))
        self._bucket = bucket
        return written.addErrback(lambda failure: self._log.failure("stats sample not stored", failure))

    def history(self, span: str, mount: Optional[str] = None) -> Deferred:
        """Deferred list of points, oldest first; ValueError for an unknown span."""
        if span not in RANGES:
            raise ValueError("range must be one of %s" % ", ".join(RANGES))
        seconds, table = RANGES[span]
        return self.store.stats_rows(table, self.now() - seconds, mount).addCallback(with_rates)


def with_rates(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Points with ``send_bps``/``receive_bps`` from each mount's previous row, and the places (GeoIP)."""
    previous: Dict[str, Dict[str, Any]] = {}
    points = []
    for row in rows:
        before = previous.get(row["mount"])
        places = json.loads(row.pop("places") or "{}")
        point = dict(row, listeners=round(row["listeners"], 2),
                     listeners_by_country=places.get("listeners_by_country", {}),
                     listeners_by_city=places.get("listeners_by_city", {}), send_bps=None, receive_bps=None)
        if before is not None and row["ts"] > before["ts"]:
            elapsed = row["ts"] - before["ts"]
            point["send_bps"] = rate(row["bytes_sent"] - before["bytes_sent"], elapsed)
            point["receive_bps"] = rate(row["bytes_received"] - before["bytes_received"], elapsed)
        previous[row["mount"]] = row
        points.append(point)
    return points


def rate(delta: int, seconds: float) -> Optional[int]:
    """Bits per second; None across a restart (the byte counts start again)."""
    if delta < 0 or not math.isfinite(seconds) or seconds <= 0:
        return None
    return int(delta * 8 / seconds)


def as_document(points: List[Dict[str, Any]], span: str, iso: Callable[[float], str]) -> Dict[str, Any]:
    """The JSON answer: the range and the points, each with its time as ISO 8601."""
    return {"range": span, "points": [dict(p, time=iso(p["ts"])) for p in points]}


def to_csv(points: List[Dict[str, Any]], iso: Callable[[float], str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for point in points:
        writer.writerow([iso(point["ts"])] + ["" if point[c] is None else point[c] for c in CSV_COLUMNS[1:]])
    return out.getvalue()
