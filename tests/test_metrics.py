"""/metrics: the roadmap's names and labels, read from live state."""

import base64
import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from .streaming import Harness, close, feed_frames, split_response

ADMIN = base64.b64encode(b"admin:hackme").decode()

ROADMAP_NAMES = [
    "gocast_uptime_seconds", "gocast_total_connections", "gocast_active_connections",
    "gocast_mount_listeners", "gocast_mount_peak_listeners", "gocast_mount_bytes_sent_total",
    "gocast_mount_bytes_received_total", "gocast_mount_source_connected",
    "gocast_mount_source_uptime_seconds", "gocast_listeners_total", "gocast_listeners_by_country",
    "gocast_listener_duration_seconds_bucket", "gocast_buffer_usage_bytes", "gocast_buffer_overruns_total",
    "gocast_source_reconnects_total", "gocast_http_requests_total", "process_resident_memory_bytes",
]


def samples(h, auth=None):
    status, headers, body = h.get("/metrics", auth)
    assert " 200 " in status, status
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out, headers


class MetricsTests(SynchronousTestCase):
    def test_roadmap_metrics_from_live_state(self):
        h = Harness()
        source, _ = h.source()
        feed_frames(source, 40)
        listeners = [h.listener() for _ in range(3)]
        feed_frames(source, 40)
        values, headers = samples(h)
        self.assertTrue(headers["content-type"].startswith("text/plain; version=0.0.4"))
        names = {name for name, _ in values}
        for name in ROADMAP_NAMES:
            self.assertIn(name, names)
        live = (("mount", "/live"),)
        mount = h.registry.get("/live")
        self.assertEqual(values[("gocast_mount_listeners", live)], 3)
        self.assertEqual(values[("gocast_mount_source_connected", live)], 1)
        self.assertEqual(values[("gocast_mount_bytes_received_total", live)], mount.bytes_received)
        sent = sum(len(split_response(t.value())[2]) for _, t in listeners)
        self.assertEqual(values[("gocast_mount_bytes_sent_total", live)], sent)
        self.assertEqual(values[("gocast_buffer_usage_bytes", live)], mount.ring_bytes)
        self.assertEqual(values[("gocast_listeners_by_country", (("country", "unknown"),))], 3)
        self.assertEqual(values[("gocast_listeners_total", ())], 3)
        self.assertEqual(values[("gocast_active_connections", ())], 5)  # source, 3 listeners, this scrape

    def test_counters_from_events(self):
        h = Harness()
        source, _ = h.source()
        proto, _ = h.listener()
        h.clock.advance(45)
        close(proto)
        close(source)
        h.source()
        values, _ = samples(h)
        self.assertEqual(values[("gocast_listener_duration_seconds_count", ())], 1)
        self.assertEqual(values[("gocast_listener_duration_seconds_bucket", (("le", "30.0"),))], 0)
        self.assertEqual(values[("gocast_listener_duration_seconds_bucket", (("le", "60.0"),))], 1)
        self.assertEqual(values[("gocast_source_reconnects_total", (("mount", "/live"),))], 1)
        self.assertGreaterEqual(values[("gocast_http_requests_total", (("class", "2xx"),))], 3)

    def test_gone_mounts_leave_no_series(self):
        h = Harness()
        source, _ = h.source("/dyn1")
        close(source)
        source, _ = h.source("/dyn1")  # a reconnect: the counter has a series for /dyn1
        close(source)
        h.clock.advance(0)
        self.assertIsNone(h.registry.get("/dyn1"))  # idle and not configured: forgotten
        values, _ = samples(h)
        self.assertFalse([key for key in values if ("mount", "/dyn1") in key[1]])

    def test_hidden_mounts_only_with_credentials(self):
        h = Harness("mounts { secret { hidden true } }")
        h.source("/secret")
        h.source("/open")
        values, _ = samples(h)
        mounts = {dict(labels).get("mount") for _, labels in values}
        self.assertIn("/open", mounts)
        self.assertNotIn("/secret", mounts)
        h = Harness("metrics { auth_required true } mounts { secret { hidden true } }")
        h.source("/secret")
        values, _ = samples(h, ADMIN)
        self.assertIn("/secret", {dict(labels).get("mount") for _, labels in values})

    def test_bytes_sent_never_decrease_when_listeners_move(self):
        h = Harness("mounts { live { fallback /backup } backup { } }")
        live, _ = h.source("/live")
        backup, _ = h.source("/backup")
        feed_frames(live, 40)
        h.listener("/live")
        before, _ = samples(h)
        close(live)
        after, _ = samples(h)
        key = ("gocast_mount_bytes_sent_total", (("mount", "/live"),))
        self.assertGreater(before[key], 0)
        self.assertEqual(after[key], before[key])

    def test_auth_required(self):
        h = Harness("metrics { auth_required true }")
        status, headers, _ = h.get("/metrics")
        self.assertIn(" 401 ", status)
        self.assertIn("www-authenticate", headers)
        self.assertIn("gocast_uptime_seconds", str(samples(h, ADMIN)[0]))

    def test_path_and_off(self):
        self.assertIn(" 200 ", Harness("metrics { path /prom/metrics }").get("/prom/metrics")[0])
        self.assertIn(" 404 ", Harness("metrics { enabled false }").get("/metrics")[0])


class DashboardTests(SynchronousTestCase):
    def test_dashboard_queries_existing_metrics(self):
        dashboard = json.loads((Path(__file__).parent.parent / "docs" / "grafana-dashboard.json").read_text())
        h = Harness('webhooks { w { url https://x.test } }')
        h.metrics.show_webhook("w")
        h.source()
        exposed = {name for name, _ in samples(h)[0]}
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                for name in re.findall(r"\b(gocast_[a-z_]+|process_[a-z_]+)", target["expr"]):
                    self.assertIn(name, exposed, panel["title"])
