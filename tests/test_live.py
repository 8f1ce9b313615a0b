"""The live stats stream: coalescing, listener events on request, slow clients, who may connect."""

import base64
import json

from autobahn.websocket.types import ConnectionDeny
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from gocast.dashboard.live import (FLUSH_EVERY, MAX_EVENTS, MAX_STREAMS_PER_CREDENTIAL, SLOW_TIMEOUT,
                                   LiveStatsResource, StatsFactory, StatsHub, StatsProtocol)

from .streaming import Harness, feed_frames


class Client:
    """Stands in for a connection: keeps what it is sent."""

    def __init__(self, listener_events=False):
        self.sent = []
        self.listener_events = listener_events

    def send(self, message):
        self.sent.append(message)


class HubTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness("mounts { live { } }")
        self.hub = StatsHub(self.h.registry, self.h.bus, self.h.clock, self.h.clock.seconds, 0.0)

    def run_for(self, seconds):
        for _ in range(int(seconds / FLUSH_EVERY)):
            self.h.clock.advance(FLUSH_EVERY)

    def test_snapshot_on_connect(self):
        client = Client()
        self.hub.add(client)
        [snapshot] = client.sent
        self.assertEqual(snapshot["type"], "snapshot")
        self.assertEqual([m["path"] for m in snapshot["mounts"]], ["/live"])
        self.assertEqual(snapshot["server"]["listeners"], 0)

    def test_ten_thousand_joins_make_a_few_frames(self):
        quiet, curious = Client(), Client(listener_events=True)
        self.hub.add(quiet)
        self.hub.add(curious)
        source, _ = self.h.source()
        feed_frames(source, 20)
        for _ in range(10000):
            self.h.bus.publish("listener.connect", "/live", id=1, ip="10.0.0.1", listeners=1)
        self.run_for(1.0)
        frames = quiet.sent[1:]
        self.assertLessEqual(len(frames), int(1.0 / FLUSH_EVERY))
        self.assertGreater(len(frames), 0)
        events = [e for f in frames for e in f["events"]]
        self.assertIn("source.connect", [e["event"] for e in events])
        self.assertNotIn("listener.connect", [e["event"] for e in events])  # not asked for
        joins = [e for f in curious.sent[1:] for e in f["events"] if e["event"] == "listener.connect"]
        self.assertEqual(len(joins), MAX_EVENTS)  # bounded; the rest counted as dropped
        self.assertEqual(sum(f["dropped_events"] for f in curious.sent[1:]), 10000 - MAX_EVENTS)
        self.assertEqual(sum(f["dropped_events"] for f in frames), 0)  # it dropped nothing it asked for

    def test_listener_counts_and_metadata_arrive_within_a_flush(self):
        client = Client()
        self.hub.add(client)
        source, _ = self.h.source()
        feed_frames(source, 20)
        self.run_for(1.0)
        _, listener = self.h.listener()
        self.h.registry.get("/live").set_metadata(song="Band - Tune")
        self.h.clock.advance(FLUSH_EVERY)
        last = client.sent[-1]
        [live] = [m for m in last["mounts"] if m["path"] == "/live"]
        self.assertEqual((live["listeners"], live["song"], last["server"]["listeners"]), (1, "Band - Tune", 1))

    def test_figures_every_second_without_changes(self):
        client = Client()
        self.hub.add(client)
        self.run_for(3.0)
        self.assertEqual(len(client.sent), 1 + 3)

    def test_a_failing_client_is_dropped_and_the_others_go_on(self):
        class Broken(Client):
            dropped = False

            def send(self, message):
                if len(self.sent) >= 1:
                    raise ValueError("cannot send")
                self.sent.append(message)

            def drop(self):
                self.dropped = True

        broken, fine = Broken(), Client()
        self.hub.add(broken)
        self.hub.add(fine)
        self.run_for(2.0)
        self.assertTrue(broken.dropped)
        self.assertNotIn(broken, self.hub.clients)
        self.assertEqual(len(fine.sent), 1 + 2)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_loop_runs_only_with_clients(self):
        client = Client()
        self.hub.add(client)
        self.hub.remove(client)
        self.assertEqual(self.h.clock.getDelayedCalls(), [])


class ProtocolTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness("mounts { live { } }")
        self.hub = StatsHub(self.h.registry, self.h.bus, self.h.clock, self.h.clock.seconds, 0.0)
        self.allowed = True
        self.factory = StatsFactory(self.hub, lambda headers, params: self.allowed)
        self.protocol = StatsProtocol()
        self.protocol.factory = self.factory
        self.protocol.transport = StringTransport()
        self.frames = []
        self.protocol.sendMessage = self.frames.append

    def test_handshake_refused_without_credentials(self):
        self.allowed = False
        with self.assertRaises(ConnectionDeny) as caught:
            self.protocol.onConnect(type("Request", (), {"headers": {}, "params": {}})())
        self.assertEqual(caught.exception.code, 401)

    def test_streams_per_credential_are_capped(self):
        self.allowed = "key:k_1"
        request = type("Request", (), {"headers": {}, "params": {}})()
        opened = []
        for _ in range(MAX_STREAMS_PER_CREDENTIAL):
            protocol = StatsProtocol()
            protocol.factory = self.factory
            protocol.onConnect(request)
            opened.append(protocol)
        with self.assertRaises(ConnectionDeny) as caught:
            self.protocol.onConnect(request)
        self.assertEqual(caught.exception.code, 429)
        self.allowed = "key:k_2"
        self.protocol.onConnect(request)  # another key is not held back
        opened[0].onClose(True, 1000, None)  # one of the first key's closes: room for one more
        self.allowed = "key:k_1"
        another = StatsProtocol()
        another.factory = self.factory
        another.onConnect(request)
        self.assertEqual(self.factory.streams["key:k_1"], MAX_STREAMS_PER_CREDENTIAL)

    def test_wrong_credentials_count_as_failed_logins(self):
        self.allowed = False
        self.factory.failures = self.h.auth_failures
        self.protocol.client = "198.51.100.7"
        refused = [({}, {}), ({"authorization": "Basic d3Jvbmc6d3Jvbmc="}, {}), ({"x-api-key": "gck_no"}, {}),
                   ({}, {"key": ["gck_no"]})]
        for headers, params in refused * 3:
            with self.assertRaises(ConnectionDeny):
                self.protocol.onConnect(type("Request", (), {"headers": headers, "params": params})())
        # Nine failed logins: the three tries without credentials are none.
        self.assertIsNone(self.h.auth_failures.blocked("198.51.100.7"))
        self.h.auth_failures.failed("198.51.100.7")
        self.assertIsNotNone(self.h.auth_failures.blocked("198.51.100.7"))
        request = DummyRequest([b""])
        request.client = IPv4Address("TCP", "198.51.100.7", 5000)
        self.assertEqual(LiveStatsResource(self.factory).render(request), b"too many failed logins from your "
                         b"address; wait a minute\n")
        self.assertEqual((request.responseCode, request.responseHeaders.getRawHeaders(b"retry-after")),
                         (429, [b"60"]))

    def test_handshake_refused_from_another_origin(self):
        self.factory.origin_allowed = lambda headers: False
        with self.assertRaises(ConnectionDeny) as caught:
            self.protocol.onConnect(type("Request", (), {"headers": {"origin": "https://evil.example"},
                                                         "params": {}})())
        self.assertEqual(caught.exception.code, 403)

    def test_a_full_socket_is_skipped_then_dropped(self):
        self.hub.add(self.protocol)
        self.assertEqual(len(self.frames), 1)
        self.protocol.pauseProducing()
        self.protocol.send({"type": "delta"})
        self.assertEqual(len(self.frames), 1)  # skipped, not buffered
        self.protocol.resumeProducing()
        self.assertEqual(len(self.frames), 2)
        self.assertIn(b'"type":"snapshot"', self.frames[-1])  # catches up from the whole
        self.protocol.pauseProducing()
        self.h.clock.advance(SLOW_TIMEOUT + 1)
        self.protocol.send({"type": "delta"})
        self.assertTrue(self.protocol.transport.disconnecting)
        self.assertNotIn(self.protocol, self.hub.clients)

    def test_message_limit_fits_a_busy_frame(self):
        """Autobahn's size limit applies to sent messages too: a frame of 50 + 50 events and the mounts fits."""
        from gocast.dashboard.live import MAX_MESSAGE

        self.assertEqual((self.factory.maxMessagePayloadSize, self.factory.maxFramePayloadSize),
                         (MAX_MESSAGE, MAX_MESSAGE))
        event = {"event": "listener.connect", "mount": "/live", "time": 0.0,
                 "data": {"id": 123456, "ip": "2001:db8::1234:5678", "user_agent": "x" * 256, "listeners": 10000}}
        self.assertLess(len(json.dumps({"events": [event] * (2 * MAX_EVENTS)})), MAX_MESSAGE / 10)

    def test_asks_for_listener_events(self):
        self.protocol.onMessage(b'{"listener_events": true}', False)
        self.assertTrue(self.protocol.listener_events)
        self.protocol.onMessage(b"not json", False)
        self.protocol.onMessage(b"x" * 5000, False)
        self.assertTrue(self.protocol.listener_events)


class AccessTests(SynchronousTestCase):
    def setUp(self):
        from .service_harness import ServiceHarness

        self.h = ServiceHarness(self, 'server { data_dir "%s" } api_keys { '
                                      'reader { key "gck_reader-key-0123456789" permissions [read_stats] } '
                                      'writer { key "gck_writer-key-0123456789" permissions [write_mounts] } }'
                                % self.mktemp())
        self.addCleanup(self.h.service.state.close)
        self.access = self.h.service.site.resource.children[b"admin"].children[b"dashboard"].access

    def test_who_may_open_the_stream(self):
        websocket = self.access.websocket
        admin = "Basic " + base64.b64encode(b"admin:hackme").decode()
        self.assertTrue(websocket({"authorization": admin}, {}))
        self.assertFalse(websocket({"authorization": "Basic " + base64.b64encode(b"admin:nope").decode()}, {}))
        self.assertTrue(websocket({"authorization": "Bearer gck_reader-key-0123456789"}, {}))
        self.assertTrue(websocket({"x-api-key": "gck_reader-key-0123456789"}, {}))
        self.assertTrue(websocket({}, {"key": ["gck_reader-key-0123456789"]}))
        self.assertFalse(websocket({}, {"key": ["gck_writer-key-0123456789"]}))  # no read_stats
        self.assertFalse(websocket({}, {}))
        token, _ = self.access.sessions.open()
        self.assertTrue(websocket({"cookie": "other=1; gocast_dashboard=%s" % token}, {}))
        self.assertFalse(websocket({"cookie": "gocast_dashboard=forged"}, {}))
        # A page of another site may not ride on the admin's credentials.
        origin_allowed = self.access.origin_allowed
        self.assertTrue(origin_allowed({"host": "radio.example.com:8000"}))  # not a browser
        self.assertTrue(origin_allowed({"host": "radio.example.com:8000", "origin": "http://radio.example.com:8000"}))
        self.assertFalse(origin_allowed({"host": "radio.example.com:8000", "origin": "https://evil.example"}))

    def test_a_plain_get_is_told_what_this_is(self):
        status, headers, body = self.h.request("GET", "/admin/ws/stats")
        self.assertEqual(status, "HTTP/1.0 426 Upgrade Required")
        self.assertEqual(headers["upgrade"], "websocket")
        self.assertIn(b"this is the live stats WebSocket", body)
        self.assertNotIn(b"<html", body.lower())
