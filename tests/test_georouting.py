"""
Geographic routing: the region a listener belongs to (overrides, regions,
continents), the node chosen (region, round trips, capacity), the 302s of
ICY listeners and HLS playlists (path and query kept, never twice), the
API's answer, and round trips measured from real TCP connections.
"""

import json
import socket
import struct

from twisted.trial.unittest import SynchronousTestCase

from gocast.cluster.georouting import NEAR_ENOUGH_MS, Place, choose_node, default_continents, wanted_region
from gocast.cluster.latency import MAX_COUNTRIES, RoundTrips, tcp_rtt_ms
from gocast.cluster.node import ClusterNode
from gocast.cluster.routing import MountRecord, NodeRecord
from gocast.cluster.store import MemoryStore
from gocast.config import parse_config
from gocast.inputs.relay import Relays

from .streaming import Harness, feed_frames, split_response
from .test_geo import geolite2
from .test_relay import FakeConnections

BERLIN = "80.150.0.1"        # DE, Europe, in the GeoLite2 test database
NEW_YORK = "216.160.83.56"   # US, North America
SYDNEY = "1.1.1.1"           # AU, Oceania


def routing(text=""):
    return parse_config("cluster { routing { %s } }" % text).config.cluster.routing


def record(id, region, mounts=("/live",), load=0.0, rtt=None):
    return NodeRecord(id, region=region, address=id, mounts={m: MountRecord((id,)) for m in mounts},
                      listeners=int(load * 100), max_listeners=100, rtt=rtt or {})


class RegionTests(SynchronousTestCase):
    def test_overrides_first_the_longest_block_wins(self):
        config = routing('overrides { "10.0.0.0/8" us "10.1.0.0/16" eu "2001:db8::/32" asia } '
                         'regions { eu [DE] }')
        self.assertEqual(wanted_region(Place("10.1.2.3", "DE"), config, []), ("eu", "override 10.1.0.0/16"))
        self.assertEqual(wanted_region(Place("10.9.2.3", "DE"), config, []), ("us", "override 10.0.0.0/8"))
        self.assertEqual(wanted_region(Place("2001:db8::1"), config, [])[0], "asia")
        self.assertEqual(wanted_region(Place("not an address", "DE"), config, [])[0], "eu")

    def test_configured_regions_by_country_then_continent(self):
        config = routing("regions { eu [DE FR] world [europe north_america] }")
        self.assertEqual(wanted_region(Place(BERLIN, "DE", "europe"), config, []), ("eu", "country DE"))
        self.assertEqual(wanted_region(Place("1.2.3.4", "IT", "europe"), config, []),
                         ("world", "continent europe"))
        self.assertEqual(wanted_region(Place(SYDNEY, "AU", "oceania"), config, ["eu"])[0], None)

    def test_default_regions_named_like_continents(self):
        self.assertEqual(default_continents("eu-west"), ("europe",))
        self.assertEqual(default_continents("US_EAST"), ("north_america",))
        self.assertEqual(default_continents("apac"), ("asia", "oceania"))
        self.assertEqual(default_continents("mars"), ())
        nodes = ["us-east", "eu-west", "apac"]
        self.assertEqual(wanted_region(Place(BERLIN, "DE", "europe"), routing(), nodes)[0], "eu-west")
        self.assertEqual(wanted_region(Place(SYDNEY, "AU", "oceania"), routing(), nodes)[0], "apac")
        self.assertEqual(wanted_region(Place("10.0.0.1"), routing(), nodes)[0], None)


class ChoiceTests(SynchronousTestCase):
    def setUp(self):
        self.me = record("us1", "us")
        self.nodes = [self.me, record("eu1", "eu", load=0.5), record("eu2", "eu", load=0.2),
                      record("asia1", "asia", mounts=("/other",))]

    def test_the_region_decides(self):
        germany = Place(BERLIN, "DE", "europe")
        self.assertEqual(choose_node("/live", germany, "eu", self.me, self.nodes)[0].id, "eu2")  # the lighter
        self.assertEqual(choose_node("/live", germany, "us", self.me, self.nodes)[0].id, "us1")
        eu1 = self.nodes[1]
        self.assertEqual(choose_node("/live", germany, "eu", eu1, self.nodes)[0].id, "eu1")  # never away from home

    def test_full_nodes_and_nodes_without_the_mount_are_skipped(self):
        nodes = [self.me, record("eu1", "eu", load=0.95), record("eu2", "eu", mounts=())]
        node, why = choose_node("/live", Place(BERLIN, "DE", "europe"), "eu", self.me, nodes)
        self.assertEqual(node.id, "us1")
        self.assertIn("no nearer node", why)
        self.assertEqual(choose_node("/nothing", Place(BERLIN), "eu", self.me, nodes), (None, "no node with room "
                                                                                            "carries /nothing"))

    def test_round_trips_decide_where_the_region_does_not(self):
        nodes = [record("us1", "us", rtt={"AU": 210.0}), record("eu1", "eu", rtt={"AU": 290.0}),
                 record("sg1", "sg", rtt={"AU": 90.0})]
        australia = Place(SYDNEY, "AU", "oceania")
        node, why = choose_node("/live", australia, None, nodes[0], nodes)
        self.assertEqual((node.id, why), ("sg1", "nearest to AU by round trip (90 ms)"))
        self.assertEqual(choose_node("/live", australia, None, nodes[0], nodes, latency=False)[0].id, "us1")
        near = record("us1", "us", rtt={"AU": 90.0 + NEAR_ENOUGH_MS})
        self.assertEqual(choose_node("/live", australia, None, near, [near] + nodes[1:])[0].id, "us1")


class RoundTripTests(SynchronousTestCase):
    def test_moving_average_per_country_and_bounds(self):
        trips = RoundTrips()
        trips.add("DE", 20.0)
        trips.add("DE", 30.0)
        trips.add("unknown", 5.0)
        trips.add("FR", None)
        self.assertEqual(trips.published(), {"DE": 22.0})
        for index in range(MAX_COUNTRIES + 10):
            trips.add("C%d" % index, 1.0)
        self.assertEqual(len(trips.average), MAX_COUNTRIES)
        self.assertEqual(len(trips.published()), 50)
        self.assertIn("DE", trips.published())  # the most measured first

    def test_read_from_the_kernel(self):
        class Handle:
            def __init__(self, info):
                self.info = info

            def getsockopt(self, *args):
                return self.info

        class Transport:
            def __init__(self, handle):
                self.getHandle = lambda: handle

        info = bytearray(104)
        struct.pack_into("I", info, 68, 12345)
        self.assertEqual(tcp_rtt_ms(Transport(Handle(bytes(info)))), 12.345)
        self.assertIsNone(tcp_rtt_ms(Transport(Handle(b"short"))))
        self.assertIsNone(tcp_rtt_ms(object()))
        # And a real loopback connection: the kernel's estimate is there, and small.
        server = socket.socket()
        self.addCleanup(server.close)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        client = socket.create_connection(server.getsockname())
        self.addCleanup(client.close)
        accepted, _ = server.accept()
        self.addCleanup(accepted.close)
        client.sendall(b"x" * 100)
        accepted.recv(100)
        accepted.sendall(b"y")
        client.recv(1)
        measured = tcp_rtt_ms(Transport(accepted))
        self.assertIsNotNone(measured)
        self.assertLess(measured, 200.0)


RELAY = """
geoip { enabled true database "%s" }
server { trusted_proxies [10.0.0.5] }
cluster { role relay secret s3cret advertise "%s" region %s heartbeat 1s node_timeout 4s
          routing { enabled %s overrides { "10.20.0.0/16" us } } sync { enabled true } }
mounts { live { } }
"""


class RoutedListenerTests(SynchronousTestCase):
    """A US node with routing on, an EU and an Oceania node in the same (memory) store, and a Clock."""

    def setUp(self):
        self.h = Harness(RELAY % (geolite2(), "us1:8000", "us", "true"))
        self.h.clock.advance(1000)
        self.store = MemoryStore(self.h.clock)
        self.node = ClusterNode(self.h.registry, Relays(self.h.registry, self.h.clock, FakeConnections()),
                                self.h.clock, lambda url: self.store, now=self.h.clock.seconds)
        self.node.geo = self.h.factory.geo
        self.h.factory.cluster = self.node
        self.addCleanup(self.node.stop)
        source, _ = self.h.source("/live")
        feed_frames(source, 20)
        self.publish(record("eu1:8000", "eu"), record("oc1:8000", "oceania"))
        self.node.configure(self.h.config)

    def publish(self, *records):
        for one in records:
            self.store.put_node(one.id, one.as_json(), 4.0)

    def listen(self, target, address):
        """A listener whose address the trusted proxy (10.0.0.5) passes in X-Forwarded-For."""
        proto, transport = self.h.listener(target, extra="X-Forwarded-For: %s\r\n" % address)
        return split_response(transport.value())

    def test_a_german_listener_goes_to_the_eu_node_with_path_and_query(self):
        status, headers, body = self.listen("/live?token=abc&x=1", BERLIN)
        self.assertIn("302", status)
        self.assertEqual(headers["location"], "http://eu1:8000/live?token=abc&x=1&gocast_hop=1")
        self.assertIn(b"nearer", body)
        status, _, _ = self.listen("/live", NEW_YORK)
        self.assertIn("200", status)  # at home here
        status, headers, _ = self.listen("/live", SYDNEY)
        self.assertEqual(headers["location"], "http://oc1:8000/live?gocast_hop=1")  # region named oceania

    def test_a_mount_only_other_nodes_carry_is_routed_too(self):
        self.publish(record("eu1:8000", "eu", mounts=("/live", "/talk")), record("oc1:8000", "oceania"))
        self.h.clock.advance(1)
        status, headers, _ = self.listen("/talk?token=t", NEW_YORK)
        self.assertIn("302", status)
        self.assertEqual(headers["location"], "http://eu1:8000/talk?token=t&gocast_hop=1")
        status, _, _ = self.listen("/talk?gocast_hop=1", NEW_YORK)
        self.assertIn("404", status)  # routed once already: not here, and not again
        self.assertIn("404", self.listen("/nowhere", NEW_YORK)[0])

    def test_routed_once_never_again_and_region_asked(self):
        status, _, _ = self.listen("/live?gocast_hop=1", BERLIN)
        self.assertIn("200", status)
        status, headers, _ = self.listen("/live?region=oceania", NEW_YORK)
        self.assertEqual(headers["location"], "http://oc1:8000/live?region=oceania&gocast_hop=1")
        status, _, _ = self.listen("/live?region=%0d%0a", NEW_YORK)
        self.assertIn("200", status)

    def test_overrides_and_a_stopped_node(self):
        status, _, _ = self.listen("/live", "10.20.1.1")
        self.assertIn("200", status)  # the override says us: here
        for _ in range(5):  # eu1 stops: its record expires with its heartbeat
            self.publish(record("oc1:8000", "oceania"))
            self.h.clock.advance(1)
        status, _, _ = self.listen("/live", BERLIN)
        self.assertIn("200", status)  # no node in Europe any more: served here

    def test_hls_playlists_are_routed_too(self):
        status, headers, _ = self.h.get("/hls/live/playlist.m3u8?token=t", extra="X-Forwarded-For: %s\r\n" % BERLIN)
        self.assertIn("302", status)
        self.assertEqual(headers["location"], "http://eu1:8000/hls/live/playlist.m3u8?token=t&gocast_hop=1")

    def test_off_unless_enabled(self):
        self.node.configure(parse_config(RELAY % (geolite2(), "us1:8000", "us", "false")).config)
        status, _, _ = self.listen("/live", BERLIN)
        self.assertIn("200", status)

    def test_the_api_answers_the_route(self):
        from gocast.api.routes import ApiContext, ApiError, Call, cluster_route

        ctx = ApiContext(self.h.registry, None, None, None, self.h.clock.seconds, 0.0, cluster=self.node)

        def ask(**query):
            return cluster_route(ctx, Call({}, query, None, "r1"))

        answer = ask(ip=BERLIN, mount="live")
        self.assertEqual((answer["node"], answer["url"], answer["redirect"], answer["country"], answer["region"]),
                         ("eu1:8000", "http://eu1:8000/live", True, "DE", "eu"))
        self.assertFalse(ask(ip=NEW_YORK, mount="/live")["redirect"])
        for bad in (dict(ip="nope", mount="/live"), dict(ip=BERLIN, mount="live now"),
                    dict(ip=BERLIN, mount="/live", region="a b")):
            error = self.assertRaises(ApiError, ask, **bad)
            self.assertEqual(error.status, 400)
        json.dumps(answer)
