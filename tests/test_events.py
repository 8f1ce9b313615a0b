"""The event bus: isolation, deferred delivery, bounds; milestones and kicks."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gocast.core import events
from gocast.core.events import EventBus

from .streaming import Harness, close


class EventBusTests(SynchronousTestCase):
    def test_failing_subscriber_is_isolated(self):
        bus = EventBus(lambda: 5.0)
        seen = []

        def broken(event):
            raise RuntimeError("boom")

        bus.subscribe(broken)
        bus.subscribe(seen.append)
        bus.publish("source.connect", "/live", source_ip="1.2.3.4")
        self.assertEqual([(e.name, e.mount, e.timestamp, e.data) for e in seen],
                         [("source.connect", "/live", 5.0, {"source_ip": "1.2.3.4"})])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_filter_and_unsubscribe(self):
        bus = EventBus(lambda: 0.0)
        seen = []
        unsubscribe = bus.subscribe(seen.append, ["listener.connect"])
        bus.publish("source.connect")
        bus.publish("listener.connect")
        unsubscribe()
        bus.publish("listener.connect")
        self.assertEqual([e.name for e in seen], ["listener.connect"])

    def test_deferred_delivery(self):
        clock = Clock()
        bus = EventBus(clock.seconds, lambda f: clock.callLater(0, f))
        seen = []
        bus.subscribe(seen.append)
        bus.publish("a")
        bus.publish("b")
        self.assertEqual(seen, [])
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(0)
        self.assertEqual([e.name for e in seen], ["a", "b"])

    def test_bounded_queue(self):
        self.patch(events, "MAX_PENDING", 3)
        clock = Clock()
        bus = EventBus(clock.seconds, lambda f: clock.callLater(0, f))
        seen = []
        bus.subscribe(seen.append)
        for name in "abcde":
            bus.publish(name)
        clock.advance(0)
        self.assertEqual([e.name for e in seen], ["c", "d", "e"])
        self.assertEqual(bus.dropped, 2)


class MilestoneTests(SynchronousTestCase):
    def test_first_crossing_only(self):
        h = Harness()
        h.source()
        listeners = [h.listener()[0] for _ in range(12)]
        for proto in listeners[:5]:
            close(proto)
        for _ in range(5):
            h.listener()
        milestones = [e for e in h.events if e.name == "stats.milestone"]
        self.assertEqual([(e.mount, e.data["milestone"], e.data["listeners"]) for e in milestones],
                         [("/live", 10, 10)])
