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

from typing import Any, Callable, Dict, Iterator

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
        for path, mount in sorted(self.registry.mounts.items()):
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
        yield from gauges.values()
        yield from counters.values()
        by_country = GaugeMetricFamily("gocast_listeners_by_country", "Listeners now, by country (GeoIP).",
                                       labels=["country"])
        countries = audience_of(self.registry.mounts.values())["listeners_by_country"]
        for country, count in sorted((countries or {UNKNOWN: 0}).items()):
            by_country.add_metric([country], count)
        yield by_country


class Metrics:
    """GoCast's Prometheus registry and the counters features feed."""

    def __init__(self, registry: MountRegistry, bus: EventBus, connections: Callable[[], int],
                 total_connections: Callable[[], int], started: float, now: Callable[[], float]):
        disable_created_metrics()  # *_created series only double what Prometheus stores
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(StateCollector(registry, connections, total_connections, started, now))
        self.listeners_total = Counter("gocast_listeners_total", "Listener connections served.",
                                       registry=self.registry)
        self.listener_duration = Histogram("gocast_listener_duration_seconds", "How long listeners stayed.",
                                           buckets=DURATION_BUCKETS, registry=self.registry)
        self.source_reconnects = Counter("gocast_source_reconnects_total",
                                         "Sources that connected to a mount that had had one before.",
                                         ["mount"], registry=self.registry)
        self.http_requests = Counter("gocast_http_requests_total", "HTTP responses by status class.",
                                     ["class"], registry=self.registry)
        self.webhook_deliveries = Counter("gocast_webhook_deliveries_total",
                                          "Webhook deliveries by webhook and result.",
                                          ["webhook", "result"], registry=self.registry)
        self.listeners_denied = Counter("gocast_listeners_denied_total",
                                        "Listeners refused by a mount's auth or IP rules.", ["mount", "status"],
                                        registry=self.registry)
        self._sourced: Dict[str, int] = {}
        self.listeners_served = 0
        bus.subscribe(self.on_event, ["listener.connect", "listener.disconnect", "source.connect",
                                      "listener.denied"])

    def on_event(self, event: Event) -> None:
        if event.name == "listener.connect":
            self.listeners_total.inc()
            self.listeners_served += 1
        elif event.name == "listener.disconnect":
            self.listener_duration.observe(event.data.get("duration", 0))
        elif event.name == "listener.denied" and event.mount:
            # Only configured mounts have auth, so the mount label stays bounded.
            self.listeners_denied.labels(event.mount, str(event.data.get("status", ""))).inc()
        elif event.name == "source.connect" and event.mount:
            seen = self._sourced.get(event.mount, 0)
            reconnects = self.source_reconnects.labels(event.mount)  # shown from the first connect
            if seen:
                reconnects.inc()
            self._sourced[event.mount] = seen + 1

    def count_webhook(self, webhook: str, result: str) -> None:
        self.webhook_deliveries.labels(webhook, result).inc()

    def show_webhook(self, webhook: str) -> None:
        """Make a webhook's series visible (at zero) before its first delivery."""
        for result in ("success", "failed", "dropped"):
            self.webhook_deliveries.labels(webhook, result)

    def count_response(self, code: int) -> None:
        self.http_requests.labels(status_class(code)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
