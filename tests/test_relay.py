"""
Relays, with a Clock and StringTransports: the pull's request and
parsing, metadata, backoff, stalls, redirects, fallback, on-demand
starts, reloads, the primary's stream list and following it.
"""

import base64

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gocast.cluster.streamlist import StreamListFollower, parse_stream_list
from gocast.config import parse_config
from gocast.core.mount import icy_metadata
from gocast.inputs.relay import ON_DEMAND_LINGER, Relay, Relays, RelaySpec
from gocast.media.icy import IcyDemuxer, parse_metadata
from gocast.outbound import HttpReply
from gocast.protocols._http import BadRequest, parse_response_head

from .media_builders import mp3_frame, opus_stream
from .streaming import Harness, close, split_response

OK_MP3 = (b"ICY 200 OK\r\nContent-Type: audio/mpeg\r\nicy-name: Upstream FM\r\nicy-br: 128\r\n"
          b"icy-metaint: 1000\r\nServer: Icecast 2.4.4\r\n\r\n")


class FakeConnections:
    """Stands in for TCP: records each attempt; the test connects or refuses it."""

    def __init__(self):
        self.attempts = []

    def __call__(self, host, port, tls, factory, timeout):
        d = Deferred()
        self.attempts.append((host, port, tls, factory, d))
        return d

    def accept(self, index=-1):
        host, port, tls, factory, d = self.attempts[index]
        proto = factory.buildProtocol(IPv4Address("TCP", host, port))
        transport = StringTransport()
        proto.makeConnection(transport)
        d.callback(proto)
        return proto, transport

    def refuse(self, index=-1):
        self.attempts[index][4].errback(Failure(ConnectionRefusedError()))


def lost(proto):
    proto.connectionLost(Failure(ConnectionDone()))


def interleave(audio, metaint, blocks):
    """``audio`` with a metadata block (from ``blocks``, else empty) after every ``metaint`` bytes."""
    out = b""
    blocks = list(blocks)
    for start in range(0, len(audio), metaint):
        piece = audio[start:start + metaint]
        out += piece
        if len(piece) == metaint:
            out += blocks.pop(0) if blocks else b"\x00"
    return out


class IcyTests(SynchronousTestCase):
    def test_demux_any_split(self):
        audio = bytes(range(256)) * 20
        block = icy_metadata("Artist - Song")
        stream = interleave(audio, 1000, [block, b"\x00", block])
        for size in (1, 7, 999, 1000, 1001, len(stream)):
            demuxer = IcyDemuxer(1000)
            got, blocks = b"", []
            for start in range(0, len(stream), size):
                a, b = demuxer.feed(stream[start:start + size])
                got += a
                blocks += b
            self.assertEqual(got, audio, size)
            self.assertEqual([parse_metadata(b) for b in blocks], [{"StreamTitle": "Artist - Song"}] * 2)

    def test_metadata_fields(self):
        self.assertEqual(parse_metadata(b"StreamTitle='Rock 'n' Roll';StreamUrl='http://x/';"),
                         {"StreamTitle": "Rock 'n' Roll", "StreamUrl": "http://x/"})
        self.assertEqual(parse_metadata("StreamTitle='Café';".encode("latin-1")), {"StreamTitle": "Café"})

    def test_bad_metaint(self):
        self.assertRaises(ValueError, IcyDemuxer, 0)
        self.assertRaises(ValueError, IcyDemuxer, 10 ** 9)

    def test_response_heads(self):
        head, start = parse_response_head(OK_MP3 + b"xyz")
        self.assertEqual((head.version, head.status, head.get("icy-name")), ("ICY", 200, "Upstream FM"))
        self.assertEqual(start, len(OK_MP3))
        head, _ = parse_response_head(b"HTTP/1.0 404 Not Found\r\n\r\n")
        self.assertEqual((head.status, head.reason), (404, "Not Found"))
        self.assertIsNone(parse_response_head(b"HTTP/1.0 200 OK\r\n"))
        self.assertRaises(BadRequest, parse_response_head, b"<html>\r\n\r\n")
        self.assertRaises(BadRequest, parse_response_head, b"HTTP/1.0 200 OK\r\n" + b"x" * 20000)


class RelayTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness("mounts { relayed { fallback /backup } }")
        self.net = FakeConnections()
        self.spec = RelaySpec("http://up.example:8000/live", "/relayed", username="relay", password="pw")
        self.relay = Relay(self.spec, self.h.registry, self.h.clock, self.net, jitter=lambda: 0.0)

    def streaming(self, answer=OK_MP3):
        self.relay.start()
        proto, transport = self.net.accept()
        proto.dataReceived(answer)
        return proto, transport

    def test_request(self):
        self.relay.start()
        host, port, tls, _, _ = self.net.attempts[0]
        self.assertEqual((host, port, tls), ("up.example", 8000, False))
        _, transport = self.net.accept()
        request = transport.value().decode()
        self.assertTrue(request.startswith("GET /live HTTP/1.0\r\nHost: up.example:8000\r\n"), request)
        self.assertIn("Icy-MetaData: 1\r\n", request)
        self.assertIn("Authorization: Basic %s\r\n" % base64.b64encode(b"relay:pw").decode(), request)

    def test_stream_headers_and_metadata(self):
        proto, _ = self.streaming()
        mount = self.h.registry.get("/relayed")
        self.assertEqual(mount.source.content_type, "audio/mpeg")
        self.assertEqual(mount.source.peer, "up.example")
        self.assertIn(("icy-name", "Upstream FM"), mount.listener_headers())
        audio = mp3_frame() * 40
        proto.dataReceived(interleave(audio, 1000, [icy_metadata("Band - First")]))
        self.assertEqual(mount.song, "Band - First")
        self.assertEqual(mount.bytes_received, len(audio))
        self.assertIn("relay.connected", self.h.event_names())
        # The same title again is not a change.
        version = mount.metadata_version
        proto.dataReceived(interleave(audio[:2000], 1000, [icy_metadata("Band - First")]))
        self.assertEqual(mount.metadata_version, version)

    def test_dashboard_shows_the_upstream(self):
        from gocast.dashboard.live import mount_figures

        self.streaming()
        figures = mount_figures(self.h.registry.get("/relayed"))
        self.assertEqual(figures["relay"], "http://up.example:8000/live")
        self.h.source("/backup")
        self.assertIsNone(mount_figures(self.h.registry.get("/backup"))["relay"])

    def test_listener_hears_the_relay(self):
        proto, _ = self.streaming()
        _, listener = self.h.listener("/relayed", extra="Icy-MetaData: 1\r\n")
        proto.dataReceived(interleave(mp3_frame() * 40, 1000, [icy_metadata("Band - Live")]))
        status, headers, body = split_response(listener.value())
        self.assertEqual(status, "HTTP/1.0 200 OK")
        self.assertEqual(headers["icy-name"], "Upstream FM")
        self.assertIn(b"StreamTitle='Band - Live';", body)

    def test_ogg_headers_kept(self):
        heads, pages = opus_stream(title="Ogg Song")
        proto, _ = self.streaming(b"HTTP/1.0 200 OK\r\nContent-Type: audio/ogg\r\n\r\n")
        proto.dataReceived(heads + b"".join(pages))
        mount = self.h.registry.get("/relayed")
        self.assertEqual(mount.header_pages, heads)
        self.assertEqual(mount.title, "Ogg Song")

    def test_refused_answers_back_off(self):
        self.relay.start()
        delays = []
        for _ in range(4):
            proto, _ = self.net.accept()
            proto.dataReceived(b"HTTP/1.0 404 Not Found\r\n\r\n")
            lost(proto)
            self.assertEqual(self.relay.state, "waiting")
            self.assertIn("404", self.relay.last_error)
            delay = self.h.clock.getDelayedCalls()[0].getTime() - self.h.clock.seconds()
            delays.append(delay)
            self.h.clock.advance(delay)
        self.assertEqual(delays, [1.0, 2.0, 4.0, 8.0])
        self.net.refuse()
        self.assertEqual(len(self.net.attempts), 5)

    def test_not_audio_refused(self):
        proto, transport = self.streaming(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>")
        self.assertTrue(transport.disconnecting)
        self.assertIsNone(self.h.registry.get("/relayed").source)

    def test_stall_reconnects_and_listeners_go_to_fallback(self):
        backup, _ = self.h.source("/backup")
        proto, transport = self.streaming()
        _, listener = self.h.listener("/relayed")
        self.h.clock.advance(self.spec.timeout)
        self.assertTrue(transport.disconnecting)  # aborted: silent too long
        lost(proto)
        backup_mount = self.h.registry.get("/backup")
        self.assertEqual(backup_mount.listeners, 1)
        self.assertFalse(listener.disconnecting)
        self.assertIn("relay.disconnected", self.h.event_names())
        self.h.clock.advance(1.0)
        proto, _ = self.net.accept()
        proto.dataReceived(OK_MP3)
        self.assertEqual(self.h.registry.get("/relayed").listeners, 1)  # back home
        self.assertEqual(self.relay.reconnects, 1)
        close(backup)

    def test_long_stream_resets_backoff(self):
        proto, _ = self.streaming()
        for _ in range(30):
            self.h.clock.advance(1)
            proto.dataReceived(mp3_frame())
        lost(proto)
        self.assertEqual(self.relay.failures, 1)  # counted from zero again
        self.assertEqual(self.h.clock.getDelayedCalls()[0].getTime() - self.h.clock.seconds(), 1.0)

    def test_redirects(self):
        proto, _ = self.streaming(b"HTTP/1.0 302 Found\r\nLocation: http://other.example:9000/live\r\n\r\n")
        lost(proto)
        self.assertEqual(self.net.attempts[-1][:2], ("other.example", 9000))
        _, transport = self.net.accept()
        self.assertNotIn(b"Authorization", transport.value())  # credentials stay with the configured host
        self.assertEqual(self.relay.state, "connecting")

    def test_redirect_loop_bounded(self):
        self.relay.start()
        for _ in range(7):
            if self.relay.state != "connecting":
                break
            proto, _ = self.net.accept()
            proto.dataReceived(b"HTTP/1.0 302 Found\r\nLocation: /live\r\n\r\n")
            lost(proto)
        self.assertEqual(self.relay.state, "waiting")
        self.assertEqual(self.relay.last_error, "more than 5 redirects")

    def test_local_source_keeps_the_mount(self):
        source, _ = self.h.source("/relayed")
        proto, transport = self.streaming()
        self.assertTrue(transport.disconnecting)
        lost(proto)
        self.assertIn("a source is streaming", self.relay.last_error)
        self.assertEqual(self.h.registry.get("/relayed").source.user_agent, "")
        close(source)

    def test_stop(self):
        proto, transport = self.streaming()
        self.relay.stop()
        self.assertTrue(transport.disconnecting)
        lost(proto)
        self.assertIsNone(self.h.registry.get("/relayed").source)
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def test_kill_source_reconnects(self):
        proto, transport = self.streaming()
        self.h.registry.get("/relayed").source.disconnect()
        self.assertTrue(transport.disconnecting)
        lost(proto)
        self.assertEqual(self.relay.state, "waiting")


class OnDemandTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness()
        self.net = FakeConnections()
        spec = RelaySpec("http://up.example:8000/live", "/ondemand", on_demand=True)
        self.relay = Relay(spec, self.h.registry, self.h.clock, self.net, jitter=lambda: 0.0)
        self.h.registry.on_demand["/ondemand"] = self.relay.demand
        self.relay.start()

    def test_first_listener_waits_then_hears(self):
        self.assertEqual(self.net.attempts, [])
        _, listener = self.h.listener("/ondemand")
        self.assertEqual(len(self.net.attempts), 1)
        self.assertEqual(listener.value(), b"")  # waiting for the upstream
        proto, _ = self.net.accept()
        proto.dataReceived(OK_MP3)
        self.assertTrue(listener.value().startswith(b"HTTP/1.0 200 OK"))
        self.assertEqual(self.h.registry.get("/ondemand").listeners, 1)

    def test_unreachable_upstream_answers_404(self):
        proto, listener = self.h.listener("/ondemand")
        self.net.refuse()
        self.assertTrue(listener.value().startswith(b"HTTP/1.0 404 Not Found"), listener.value())
        self.assertTrue(listener.disconnecting)
        close(proto)
        self.assertEqual(self.relay.state, "idle")  # nobody is waiting: no retries
        self.assertEqual(self.h.clock.getDelayedCalls(), [])

    def test_hangs_up_without_listeners(self):
        listener_proto, _ = self.h.listener("/ondemand")
        proto, transport = self.net.accept()
        proto.dataReceived(OK_MP3)
        for _ in range(int(ON_DEMAND_LINGER)):
            self.h.clock.advance(1)
            proto.dataReceived(mp3_frame())
        self.assertFalse(transport.disconnecting)  # still listened to
        close(listener_proto)
        for _ in range(int(ON_DEMAND_LINGER)):
            self.h.clock.advance(1)
            proto.dataReceived(mp3_frame())
        self.assertTrue(transport.disconnecting)
        lost(proto)
        self.assertEqual(self.relay.state, "idle")
        self.assertEqual(self.h.clock.getDelayedCalls(), [])
        self.h.listener("/ondemand")
        self.assertEqual(len(self.net.attempts), 2)

    def test_hls_player_starts_it(self):
        h = Harness("mounts { ondemand { hls { enabled true } } }")
        relay = Relay(RelaySpec("http://up.example:8000/live", "/ondemand", on_demand=True), h.registry, h.clock,
                      self.net, jitter=lambda: 0.0)
        h.registry.on_demand["/ondemand"] = relay.demand
        status, _, _ = h.get("/hls/ondemand/playlist.m3u8")
        self.assertIn("404", status)  # nothing yet: the player tries again
        self.assertEqual(len(self.net.attempts), 1)
        self.assertEqual(relay.state, "connecting")

    def test_listener_gone_while_waiting(self):
        listener_proto, _ = self.h.listener("/ondemand")
        close(listener_proto)
        proto, _ = self.net.accept()
        proto.dataReceived(OK_MP3)
        self.assertEqual(self.h.registry.get("/ondemand").listeners, 0)


class RelaysTests(SynchronousTestCase):
    def test_reload_keeps_unchanged_relays(self):
        h = Harness()
        net = FakeConnections()
        relays = Relays(h.registry, h.clock, net)
        relays.configure(parse_config("relays { a { url http://up:8000/a }\n b { url http://up:8000/b } }").config)
        relays.start()
        self.assertEqual(len(net.attempts), 2)
        a, b = relays.running["/a"], relays.running["/b"]
        relays.configure(parse_config("relays { a { url http://up:8000/a }\n"
                                      " b { url http://up:8000/b2 mount /b on_demand true } }").config)
        self.assertIs(relays.running["/a"], a)
        self.assertIsNot(relays.running["/b"], b)
        self.assertEqual(b.state, "stopped")
        self.assertIn("/b", h.registry.on_demand)
        relays.set("primary", [RelaySpec("http://p:8000/a", "/a"), RelaySpec("http://p:8000/c", "/c")])
        self.assertIs(relays.running["/a"], a)  # the config's relay wins
        self.assertEqual(relays.running["/c"].spec.url, "http://p:8000/c")
        relays.stop()
        self.assertEqual(relays.running, {})
        self.assertEqual(h.registry.on_demand, {})


class FakeHttp:
    def __init__(self):
        self.requests = []
        self.answers = []

    def request(self, method, url, timeout, data=None, headers=None, max_body=0):
        self.requests.append((method, url, headers))
        return self.answers.pop(0)


class StreamListTests(SynchronousTestCase):
    CONFIG = ("auth { relay_user r relay_password secret }\n"
              "cluster { role relay primary \"primary.example:8000\" update_interval 60 }\n")

    def test_parse(self):
        self.assertEqual(parse_stream_list(b"/live\n/music\r\n\n/live\nnot a mount\n/admin/x\n/no space\n"),
                         ["/live", "/music"])

    def test_follows_the_primary(self):
        h = Harness()
        relays = Relays(h.registry, h.clock, FakeConnections())
        relays.start()
        http = FakeHttp()
        follower = StreamListFollower(relays, http, h.clock)
        http.answers.append(succeed(HttpReply(200, {}, b"/live\n/music\n")))
        follower.configure(parse_config(self.CONFIG).config)
        method, url, headers = http.requests[0]
        self.assertEqual(url, "http://primary.example:8000/admin/streamlist.txt")
        self.assertEqual(headers["Authorization"], "Basic " + base64.b64encode(b"r:secret").decode())
        self.assertEqual(sorted(relays.running), ["/live", "/music"])
        spec = relays.running["/live"].spec
        self.assertEqual((spec.url, spec.username, spec.password), ("http://primary.example:8000/live", "r",
                                                                    "secret"))
        # The primary is away: relays keep what they have.
        http.answers.append(fail(ConnectionRefusedError()))
        h.clock.advance(60)
        self.assertEqual(sorted(relays.running), ["/live", "/music"])
        self.assertIn("primary.example:8000", follower.last_error)
        # A mount left the list.
        http.answers.append(succeed(HttpReply(200, {}, b"/music\n")))
        h.clock.advance(60)
        self.assertEqual(sorted(relays.running), ["/music"])
        # Refused credentials keep the relays too.
        http.answers.append(succeed(HttpReply(401, {}, b"")))
        h.clock.advance(60)
        self.assertEqual(sorted(relays.running), ["/music"])
        self.assertIn("401", follower.last_error)
        follower.configure(parse_config("").config)
        self.assertEqual(relays.running, {})
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_only_listed_mounts(self):
        h = Harness()
        relays = Relays(h.registry, h.clock, FakeConnections())
        relays.start()
        http = FakeHttp()
        http.answers.append(succeed(HttpReply(200, {}, b"/live\n/music\n")))
        follower = StreamListFollower(relays, http, h.clock)
        follower.configure(parse_config(self.CONFIG.replace("60 }", "60 mounts [/music] on_demand true }")).config)
        self.assertEqual(list(relays.running), ["/music"])
        self.assertTrue(relays.running["/music"].spec.on_demand)
        follower.stop()


class StreamListResourceTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness("auth { relay_password relaypw }\nmounts { secret { hidden true } }")

    def auth(self, user, password):
        return base64.b64encode(("%s:%s" % (user, password)).encode()).decode()

    def test_lists_live_mounts(self):
        for path in ("/live", "/secret"):
            self.h.source(path)
        self.h.registry.on_demand["/sleeping"] = lambda: None
        for credentials in (("relay", "relaypw"), ("admin", "hackme")):
            status, headers, body = self.h.get("/admin/streamlist.txt", auth=self.auth(*credentials))
            self.assertEqual(status, "HTTP/1.0 200 OK")
            self.assertEqual(headers["content-type"], "text/plain; charset=utf-8")
            self.assertEqual(body, b"/live\n/sleeping\n")

    def test_refuses_others(self):
        for credentials in (("relay", "wrong"), ("source", "hackme")):
            status, headers, _ = self.h.get("/admin/streamlist.txt", auth=self.auth(*credentials))
            self.assertEqual(status, "HTTP/1.0 401 Unauthorized")
            self.assertIn("www-authenticate", headers)
        status, _, _ = self.h.get("/admin/streamlist.txt")
        self.assertEqual(status, "HTTP/1.0 401 Unauthorized")

    def test_no_relay_password_no_relay_access(self):
        h = Harness()
        status, _, _ = h.get("/admin/streamlist.txt", auth=self.auth("relay", ""))
        self.assertEqual(status, "HTTP/1.0 401 Unauthorized")


class RelayMetricsTests(SynchronousTestCase):
    def test_relay_series(self):
        h = Harness("mounts { hidden { hidden true } }")
        net = FakeConnections()
        relays = Relays(h.registry, h.clock, net)
        relays.configure(parse_config('relays { a { url "http://u:p@up:8000/a" }\n'
                                      ' h { url http://up:8000/h mount /hidden } }').config)
        relays.start()
        h.metrics.state.relays = lambda: relays.running.values()
        proto, _ = net.accept(0)
        proto.dataReceived(OK_MP3)
        lost(proto)
        h.clock.advance(2)
        net.accept(-1)[0].dataReceived(OK_MP3)
        text = h.metrics.render().decode()
        self.assertIn('gocast_relay_connected{mount="/a",upstream="http://u:<redacted>@up:8000/a"} 1.0', text)
        self.assertIn('gocast_relay_reconnects_total{mount="/a",upstream="http://u:<redacted>@up:8000/a"} 1.0', text)
        self.assertNotIn("/hidden", text)
        self.assertNotIn(":p@", text)
