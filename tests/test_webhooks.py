"""Webhooks with a fake transport and a Clock: filter, formats, signing, retries, bounds."""

import hashlib
import hmac
import json

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gocast.observe import webhooks
from gocast.config import parse_config
from gocast.core.events import Event
from gocast.observe.webhooks import Webhook, describe, payload


def config(text):
    return parse_config("webhooks { w { url https://hooks.test/x %s } }" % text).config.webhooks["w"]


class FakePost:
    """Answers each POST with the next of ``codes`` (an exception is raised)."""

    def __init__(self, *codes):
        self.codes = list(codes)
        self.calls = []

    def __call__(self, url, body, headers, timeout):
        self.calls.append((url, body, headers, timeout))
        code = self.codes.pop(0) if self.codes else 200
        if isinstance(code, Exception):
            return Deferred.fromCoroutine(self._raise(code))
        if isinstance(code, Deferred):
            return code
        return succeed(code)

    async def _raise(self, error):
        raise error


EVENT = Event("source.connect", 1700000000.0, "/live", {"source_ip": "1.2.3.4", "user_agent": "BUTT"})


class WebhookTests(SynchronousTestCase):
    def make(self, text, post):
        self.counts = []
        return Webhook("w", config(text), post, self.clock, lambda n, r: self.counts.append((n, r)))

    def setUp(self):
        self.clock = Clock()

    def test_generic_payload_signed_with_delivery_id(self):
        post = FakePost(200)
        hook = self.make('secret "k3y" headers { Authorization "Bearer t" }', post)
        hook(EVENT)
        [(url, body, headers, timeout)] = post.calls
        self.assertEqual(url, "https://hooks.test/x")
        self.assertEqual(json.loads(body), {"event": "source.connect", "timestamp": "2023-11-14T22:13:20Z",
                                            "mount": "/live",
                                            "data": {"source_ip": "1.2.3.4", "user_agent": "BUTT"}})
        expected = "sha256=" + hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
        self.assertEqual(headers["X-GoCast-Signature"], expected)
        self.assertRegex(headers["X-GoCast-Delivery"], "^[0-9a-f]{32}$")
        self.assertEqual(headers["Authorization"], "Bearer t")
        self.assertEqual(timeout, 10.0)
        self.assertEqual(self.counts, [("w", "success")])

    def test_event_filter(self):
        post = FakePost()
        hook = self.make("events [stats.milestone]", post)
        hook(EVENT)
        hook(Event("stats.milestone", 0.0, "/live", {"milestone": 100, "listeners": 100}))
        self.assertEqual(len(post.calls), 1)

    def test_retries_with_backoff_then_success(self):
        post = FakePost(500, ConnectionRefusedError(), 200)
        hook = self.make("retry 3", post)
        hook(EVENT)
        self.assertEqual(len(post.calls), 1)
        self.clock.advance(1)
        self.assertEqual(len(post.calls), 2)
        self.clock.advance(1.9)
        self.assertEqual(len(post.calls), 2)
        self.clock.advance(0.1)
        self.assertEqual(len(post.calls), 3)
        self.assertEqual(self.counts, [("w", "success")])
        self.assertEqual(len({c[2]["X-GoCast-Delivery"] for c in post.calls}), 1)

    def test_gives_up_after_retry(self):
        post = FakePost(500, 500, 500)
        hook = self.make("retry 1", post)
        hook(EVENT)
        self.clock.advance(10)
        self.assertEqual(len(post.calls), 2)
        self.assertEqual(self.counts, [("w", "failed")])

    def test_one_at_a_time_and_bounded(self):
        self.patch(webhooks, "MAX_QUEUE", 2)
        pending = Deferred()
        post = FakePost(pending)
        hook = self.make("", post)
        for _ in range(4):
            hook(EVENT)
        self.assertEqual(len(post.calls), 1)
        self.assertEqual(self.counts, [("w", "dropped")])
        pending.callback(200)
        self.assertEqual(len(post.calls), 3)
        self.assertEqual(self.counts, [("w", "dropped"), ("w", "success"), ("w", "success"),
                                       ("w", "success")])


    def test_listener_events_only_when_named(self):
        joined = Event("listener.connect", 0.0, "/live", {"id": 1, "ip": "10.0.0.1"})
        post = FakePost()
        self.make("", post)(joined)
        self.assertEqual(post.calls, [])  # the default leaves per-listener events out
        for events in ("events [listener.connect]", "events [*]"):
            post = FakePost()
            self.make(events, post)(joined)
            self.assertEqual(len(post.calls), 1, events)

    def test_source_events_are_never_dropped_for_listener_noise(self):
        self.patch(webhooks, "MAX_QUEUE", 3)
        pending = Deferred()
        post = FakePost(pending)
        hook = self.make("events [*]", post)
        hook(EVENT)  # in flight
        for n in range(10):
            hook(Event("listener.connect", 0.0, "/live", {"id": n}))
        hook(Event("source.disconnect", 0.0, "/live", {}))
        hook(Event("source.connect", 0.0, "/live", {}))
        queued = [name for _, _, name in hook.queue]
        self.assertEqual(queued.count("source.disconnect") + queued.count("source.connect"), 2)
        self.assertEqual(len(queued), 3)

class FormatTests(SynchronousTestCase):
    def test_discord_and_slack(self):
        milestone = Event("stats.milestone", 0.0, "/live", {"milestone": 100, "listeners": 101})
        discord = payload(milestone, "discord")
        self.assertEqual(discord["content"], "/live reached 100 listeners")
        self.assertEqual(discord["embeds"][0]["title"], "stats.milestone")
        slack = payload(Event("source.metadata", 0.0, "/live", {"song": "A - B"}), "slack")
        self.assertEqual(slack["text"], "*Now playing on /live: A - B* (song: A - B)")

    def test_describe_missing_field(self):
        self.assertEqual(describe(Event("stats.milestone", 0.0, "/x", {})), "stats.milestone on /x")
