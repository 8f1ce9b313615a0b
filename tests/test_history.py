"""The stats history: the sampler, downsampling, pruning, the views and the API."""

import csv
import io

from twisted.internet.defer import maybeDeferred
from twisted.trial.unittest import SynchronousTestCase

from gocast.observe.history import COARSE, KEEP_COARSE, KEEP_FINE, SAMPLE_EVERY, StatsHistory, rate, to_csv, with_rates
from gocast.state import StateStore

from .streaming import Harness, close, feed_frames
from .test_api import ApiTestCase, CONFIG_KEY

START = 1795000200.0  # a multiple of COARSE


class HistoryTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness("mounts { live { } news { } }")
        self.h.clock.advance(START)
        self.store = StateStore(":memory:", maybeDeferred)
        self.addCleanup(self.store.close)
        self.history = StatsHistory(self.h.registry, self.store, self.h.bus, self.h.clock, self.h.clock.seconds)
        self.history.start()
        self.addCleanup(self.history.stop)

    def points(self, span="1h", mount=None):
        out = []
        self.history.history(span, mount).addCallback(out.append)
        return out[0]

    def test_samples_every_ten_seconds_with_peak_and_rates(self):
        source, _ = self.h.source("/live")
        feed_frames(source, 40)
        listeners = [self.h.listener("/live") for _ in range(3)]
        self.h.clock.advance(0)  # the bus delivers the joins
        close(listeners[0][0])
        close(listeners[1][0])
        self.h.clock.advance(SAMPLE_EVERY)
        feed_frames(source, 400)
        self.h.clock.advance(SAMPLE_EVERY)
        live = [p for p in self.points() if p["mount"] == "/live"]
        self.assertEqual([(p["ts"], p["listeners"], p["peak"]) for p in live],
                         [(START + 10, 1, 3), (START + 20, 1, 1)])
        self.assertIsNone(live[0]["send_bps"])
        self.assertGreater(live[1]["receive_bps"], 0)
        self.assertEqual(live[1]["receive_bps"],
                         (live[1]["bytes_received"] - live[0]["bytes_received"]) * 8 // SAMPLE_EVERY)
        self.assertEqual({p["mount"] for p in self.points()}, {"/live", "/news"})
        self.assertEqual({p["mount"] for p in self.points(mount="/news")}, {"/news"})

    def test_downsampled_and_pruned(self):
        source, _ = self.h.source("/live")
        feed_frames(source, 10)
        for _ in range(int(COARSE / SAMPLE_EVERY)):  # one bucket: 30 samples
            self.h.clock.advance(SAMPLE_EVERY)
        self.h.listener("/live")
        self.h.clock.advance(SAMPLE_EVERY)  # the first sample of the next bucket closes the first
        day = [p for p in self.points("1d") if p["mount"] == "/live"]
        self.assertEqual(len(day), 1)
        self.assertEqual(day[0]["ts"], START)
        self.assertAlmostEqual(day[0]["listeners"], 0.0)  # 29 samples of 0 listeners, in the first bucket
        # Hours later, old fine samples are gone; coarse rows stay for KEEP_COARSE.
        for _ in range(int(KEEP_FINE // COARSE) + 2):
            self.h.clock.advance(COARSE)
        self.assertTrue(all(p["ts"] >= self.h.clock.seconds() - 3600 for p in self.points("1h")))
        self.assertEqual(self.points("1d")[0]["ts"], START)
        self.h.clock.pump([COARSE] * int(KEEP_COARSE // COARSE + 2))
        self.assertGreater(min(p["ts"] for p in self.points("1d")), START)

    def test_unknown_range(self):
        self.assertRaises(ValueError, self.history.history, "1y")

    def test_rates_across_a_restart_and_csv(self):
        rows = [{"ts": 10.0, "mount": "/a", "listeners": 1.0, "peak": 1, "bytes_sent": 1000, "bytes_received": 10,
                 "places": '{"listeners_by_country": {"GB": 1}, "listeners_by_city": {"London": 1}}'},
                {"ts": 20.0, "mount": "/a", "listeners": 2.0, "peak": 2, "bytes_sent": 11000, "bytes_received": 5,
                 "places": None}]
        points = with_rates(rows)
        self.assertEqual((points[1]["send_bps"], points[1]["receive_bps"]), (8000, None))
        self.assertEqual((points[0]["listeners_by_country"], points[0]["listeners_by_city"]),
                         ({"GB": 1}, {"London": 1}))
        self.assertEqual(points[1]["listeners_by_country"], {})
        self.assertIsNone(rate(-1, 10))
        table = list(csv.DictReader(io.StringIO(to_csv(points, lambda t: "T%d" % t))))
        self.assertEqual(table[1], {"time": "T20", "mount": "/a", "listeners": "2.0", "peak": "2",
                                    "bytes_sent": "11000", "bytes_received": "5", "send_bps": "8000",
                                    "receive_bps": ""})


class HistoryApiTests(ApiTestCase):
    def test_json_and_csv(self):
        source, _ = self.h.source()
        feed_frames(source, 20)
        self.h.listener()
        for _ in range(3):
            self.h.clock.advance(SAMPLE_EVERY)
        status, _, body = self.h.api("GET", "/api/v1/stats/history?range=1h&mount=live", key=CONFIG_KEY)
        self.assertEqual(status, 200, body)
        points = body["data"]["points"]
        self.assertGreaterEqual(len(points), 3)
        self.assertEqual({(p["mount"], p["listeners"]) for p in points[-2:]}, {("/live", 1)})
        self.assertRegex(points[-1]["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        status, headers, text = self.h.api("GET", "/api/v1/stats/history?format=csv", key=CONFIG_KEY)
        self.assertEqual((status, headers["content-type"]), (200, "text/csv; charset=utf-8"))
        self.assertEqual(headers["content-disposition"], 'attachment; filename="gocast-history-1h.csv"')
        self.assertEqual(text.decode().splitlines()[0],
                         "time,mount,listeners,peak,bytes_sent,bytes_received,send_bps,receive_bps")
        for bad in ("range=1y", "format=xml", "mount=nothing"):
            status, _, body = self.h.api("GET", "/api/v1/stats/history?" + bad, key=CONFIG_KEY)
            self.assertIn(status, (400, 404), bad)
