# -*- test-case-name: tests.test_metrics -*-
"""
Prometheus metrics, with the roadmap's names.

Nothing here runs per audio chunk: gauges and byte counters are read from
the mounts and listeners when Prometheus scrapes (a custom collector), and
the few true counters are fed by the event bus (listener connects and
durations, source reconnects) or once per request (HTTP status classes) or
per webhook delivery.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Iterator, Tuple

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector

from ..core.events import Event, EventBus
from ..core.registry import MountRegistry
from .geo import UNKNOWN, audience_of

#: Radio listening lasts from seconds to a working day: 10 s to 24 h.
DURATION_BUCKETS = (10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 43200, 86400)


def status_class(code: int) -> str:
    return "%dxx" % (code // 100) if 100 <= code < 600 else "other"


class StateCollector:
    """Gauges and byte counters read from the live state at scrape time."""

    def __init__(self, registry: MountRegistry, connections: Callable[[], int],
                 total_connections: Callable[[], int], started: float, now: Callable[[], float]):
        self.registry = registry
        self.connections = connections
        self.total_connections = total_connections
        self.started = started
        self.now = now
        self.mount_counters = MountCounters()
        #: The server's relays (:class:`gocast.inputs.relay.Relay`), read at scrape time, and the
        #: nodes of its cluster as last read from Redis (``None``: not in a cluster).
        self.relays: Callable[[], Iterable[Any]] = lambda: ()
        self.cluster_nodes: Callable[[], Any] = lambda: None
        #: The recorders (:class:`gocast.outputs.recorder.Recorder`) and their uploads, read at scrape time.
        self.recorders: Callable[[], Iterable[Any]] = lambda: ()
        self.uploads: Callable[[], Any] = lambda: None
        #: The transcoding ladders (:class:`gocast.outputs.ladder.Ladder`), read at scrape time.
        self.ladders: Callable[[], Iterable[Any]] = lambda: ()

    def collect(self) -> Iterator[Any]:
        now = self.now()
        yield GaugeMetricFamily("gocast_uptime_seconds", "Seconds since the server started.",
                                value=now - self.started)
        yield GaugeMetricFamily("gocast_total_connections", "Connections accepted since start.",
                                value=self.total_connections())
        yield GaugeMetricFamily("gocast_active_connections", "Connections open now.",
                                value=self.connections())
        gauges = {
            "listeners": GaugeMetricFamily("gocast_mount_listeners", "Listeners now.", labels=["mount"]),
            "peak": GaugeMetricFamily("gocast_mount_peak_listeners", "Most listeners at once.",
                                      labels=["mount"]),
            "connected": GaugeMetricFamily("gocast_mount_source_connected", "1 while a source streams.",
                                           labels=["mount"]),
            "uptime": GaugeMetricFamily("gocast_mount_source_uptime_seconds",
                                        "Seconds the current source has streamed.", labels=["mount"]),
            "buffer": GaugeMetricFamily("gocast_buffer_usage_bytes", "Bytes in the mount's queue.",
                                        labels=["mount"]),
        }
        counters = {
            "sent": CounterMetricFamily("gocast_mount_bytes_sent", "Bytes sent to listeners.",
                                        labels=["mount"]),
            "received": CounterMetricFamily("gocast_mount_bytes_received", "Bytes received from sources.",
                                            labels=["mount"]),
            "overruns": CounterMetricFamily("gocast_buffer_overruns", "Listeners dropped for falling "
                                            "more than queue_size behind.", labels=["mount"]),
        }
        shown = self.shown_mounts()
        for path, mount in sorted(shown.items()):
            labels = [path]
            listeners = mount.listeners
            source = mount.source
            gauges["listeners"].add_metric(labels, listeners)
            gauges["peak"].add_metric(labels, mount.peak_listeners)
            gauges["connected"].add_metric(labels, 1 if source is not None else 0)
            gauges["uptime"].add_metric(labels, now - source.connected_at if source is not None else 0)
            gauges["buffer"].add_metric(labels, mount.ring_bytes)
            counters["sent"].add_metric(labels, mount.total_bytes_sent)
            counters["received"].add_metric(labels, mount.bytes_received)
            counters["overruns"].add_metric(labels, mount.slow_listeners)
        reconnects = CounterMetricFamily("gocast_source_reconnects", "Sources that connected to a mount that "
                                         "had had one before.", labels=["mount"])
        denied = CounterMetricFamily("gocast_listeners_denied", "Listeners refused by a mount's auth or IP "
                                     "rules.", labels=["mount", "status"])
        for path, count in sorted(self.mount_counters.reconnects.items()):
            if path in shown:
                reconnects.add_metric([path], count)
        for (path, status), count in sorted(self.mount_counters.refusals.items()):
            if path in shown:
                denied.add_metric([path, status], count)
        counters.update(reconnects=reconnects, denied=denied)
        yield from gauges.values()
        yield from counters.values()
        yield from self.relay_metrics(shown)
        yield from self.recording_metrics()
        yield from self.transcoder_metrics()
        by_country = GaugeMetricFamily("gocast_listeners_by_country", "Listeners now, by country (GeoIP).",
                                       labels=["country"])
        countries = audience_of(shown.values())["listeners_by_country"]
        for country, count in sorted((countries or {UNKNOWN: 0}).items()):
            by_country.add_metric([country], count)
        yield by_country

    def recording_metrics(self) -> Iterator[Any]:
        active = GaugeMetricFamily("gocast_recordings_active", "1 while a mount's recording file is being "
                                   "written.", labels=["mount"])
        written = CounterMetricFamily("gocast_recording_bytes", "Bytes written to recordings.", labels=["mount"])
        failures = CounterMetricFamily("gocast_recording_failures", "Recording files given up because they "
                                       "could not be written.", labels=["mount"])
        for recorder in sorted(self.recorders(), key=lambda r: r.home):
            labels = [recorder.home]
            active.add_metric(labels, 1 if recorder.file is not None else 0)
            written.add_metric(labels, recorder.bytes_written)
            failures.add_metric(labels, recorder.failures)
        yield active
        yield written
        yield failures
        uploads = self.uploads()
        if uploads is not None:
            tries = CounterMetricFamily("gocast_recording_uploads", "Uploads of recordings tried, by result.",
                                        labels=["result"])
            for result, count in sorted(uploads.results.items()):
                tries.add_metric([result], count)
            yield tries

    def transcoder_metrics(self) -> Iterator[Any]:
        restarts = CounterMetricFamily("gocast_transcoder_restarts", "Times a mount's transcoder (ffmpeg) died "
                                       "and was started again.", labels=["mount"])
        cpu = CounterMetricFamily("gocast_transcoder_cpu_seconds", "CPU time a mount's transcoders (ffmpeg) used, "
                                  "from /proc.", labels=["mount"])
        running = GaugeMetricFamily("gocast_transcoder_outputs_running", "A mount's transcoding outputs being "
                                    "encoded now.", labels=["mount"])
        for ladder in sorted(self.ladders(), key=lambda ladder: ladder.home):
            labels = [ladder.home]
            restarts.add_metric(labels, ladder.restarts)
            cpu.add_metric(labels, ladder.cpu_seconds())
            running.add_metric(labels, sum(1 for output in ladder.describe() if output["running"]))
        yield restarts
        yield cpu
        yield running

    def relay_metrics(self, shown: Dict[str, Any]) -> Iterator[Any]:
        connected = GaugeMetricFamily("gocast_relay_connected", "1 while a relay's upstream feeds its mount.",
                                      labels=["mount", "upstream"])
        reconnects = CounterMetricFamily("gocast_relay_reconnects", "Times a relay's upstream went away and "
                                         "it connected again.", labels=["mount", "upstream"])
        hidden = {path for path, mount in self.registry.mounts.items() if path not in shown}
        for relay in self.relays():
            if relay.spec.mount in hidden:
                continue
            labels = [relay.spec.mount, relay.upstream]
            connected.add_metric(labels, 1 if relay.state == "streaming" else 0)
            reconnects.add_metric(labels, relay.reconnects)
        yield connected
        yield reconnects
        nodes = self.cluster_nodes()
        if nodes is not None:
            yield GaugeMetricFamily("gocast_cluster_nodes", "Nodes of the cluster this node sees in Redis, "
                                    "itself included.", value=nodes)

    def shown_mounts(self) -> Dict[str, Any]:
        """The mounts /metrics tells of: hidden ones only when it needs credentials."""
        mounts = self.registry.mounts
        if self.registry.config.metrics.auth_required:
            return dict(mounts)
        return {path: mount for path, mount in mounts.items() if not mount.config.hidden}


class MountCounters:
    """Counts per mount that only events tell: source reconnects, refused listeners."""

    def __init__(self) -> None:
        #: Sources seen per mount (kept when the mount is forgotten: coming back is a reconnect).
        self.sources: Dict[str, int] = {}
        #: Shown from a mount's first source: reconnects since.
        self.reconnects: Dict[str, int] = {}
        self.refusals: Dict[Tuple[str, str], int] = {}

    def source_connected(self, mount: str) -> None:
        seen = self.sources.get(mount, 0)
        self.reconnects[mount] = self.reconnects.get(mount, 0) + (1 if seen else 0)
        self.sources[mount] = seen + 1

    def denied(self, mount: str, status: str) -> None:
        # Only configured mounts have auth, so the labels stay bounded.
        self.refusals[(mount, status)] = self.refusals.get((mount, status), 0) + 1

    def forget(self, mount: str) -> None:
        """A mount that is gone leaves no series (dynamic mounts come and go by the thousand)."""
        self.reconnects.pop(mount, None)
        for key in [key for key in self.refusals if key[0] == mount]:
            del self.refusals[key]


class Metrics:
    """GoCast's Prometheus registry and the counters features feed."""

    def __init__(self, registry: MountRegistry, bus: EventBus, connections: Callable[[], int],
                 total_connections: Callable[[], int], started: float, now: Callable[[], float]):
        disable_created_metrics()  # *_created series only double what Prometheus stores
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        state = StateCollector(registry, connections, total_connections, started, now)
        self.registry.register(state)
        self.listeners_total = Counter("gocast_listeners_total", "Listener connections served.",
                                       registry=self.registry)
        self.listener_duration = Histogram("gocast_listener_duration_seconds", "How long listeners stayed.",
                                           buckets=DURATION_BUCKETS, registry=self.registry)
        self.http_requests = Counter("gocast_http_requests_total", "HTTP responses by status class.",
                                     ["class"], registry=self.registry)
        #: Status code (the server's own, so a few dozen at most): its class's counter.
        self._response_counters: Dict[int, Any] = {}
        self.webhook_deliveries = Counter("gocast_webhook_deliveries_total",
                                          "Webhook deliveries by webhook and result.",
                                          ["webhook", "result"], registry=self.registry)
        self.listeners_served = 0
        #: Per-mount counts the event bus feeds; shown (at scrape) with the
        #: mounts /metrics tells of, and gone with their mount.
        self.mount_counters = state.mount_counters
        self.state = state
        #: In a cluster, this node's id: every sample gets a ``node`` label.
        self.node: Callable[[], str] = lambda: ""
        bus.subscribe(self.on_event, ["listener.connect", "listener.disconnect", "source.connect",
                                      "listener.denied", "mount.removed"])

    def on_event(self, event: Event) -> None:
        if event.name == "listener.connect":
            self.listeners_total.inc()
            self.listeners_served += 1
        elif event.name == "listener.disconnect":
            self.listener_duration.observe(event.data.get("duration", 0))
        elif event.name == "listener.denied" and event.mount:
            self.mount_counters.denied(event.mount, str(event.data.get("status", "")))
        elif event.name == "source.connect" and event.mount:
            self.mount_counters.source_connected(event.mount)
        elif event.name == "mount.removed" and event.mount:
            self.mount_counters.forget(event.mount)

    def count_webhook(self, webhook: str, result: str) -> None:
        self.webhook_deliveries.labels(webhook, result).inc()

    def show_webhook(self, webhook: str) -> None:
        """Make a webhook's series visible (at zero) before its first delivery."""
        for result in ("success", "failed", "dropped"):
            self.webhook_deliveries.labels(webhook, result)

    def count_response(self, code: int) -> None:
        # Every request is counted: the labelled child is looked up once per status class, not per request.
        child = self._response_counters.get(code)
        if child is None:
            child = self._response_counters[code] = self.http_requests.labels(status_class(code))
        child.inc()

    def render(self) -> bytes:
        node = self.node()
        return generate_latest(NodeLabelled(self.registry, node) if node else self.registry)


class NodeLabelled:
    """
    A registry's metrics with a ``node`` label on every sample: in a
    cluster each node's figures stay apart when one Prometheus scrapes
    them all, and ``sum without (node)`` gives the station's.
    """

    def __init__(self, registry: CollectorRegistry, node: str):
        self.registry = registry
        self.node = node

    def collect(self) -> Iterator[Any]:
        for family in self.registry.collect():  # each scrape builds new families: changing them is safe
            family.samples = [sample._replace(labels=dict(sample.labels, node=self.node))
                              for sample in family.samples]
            yield family
