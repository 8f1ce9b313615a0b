"""GeoIP with the GeoLite2 City database the PyPI package maxminddb-geolite2 ships."""

import os

from twisted.logger import globalLogPublisher
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from gocast.config import parse_config
from gocast.observe.geo import NOWHERE, GeoLocator, Location, audience

from .test_hls import play
from .streaming import Harness, feed_frames


def geolite2():
    """The path of the GeoLite2-City database in the test dependencies."""
    import _maxminddb_geolite2

    return os.path.join(os.path.dirname(_maxminddb_geolite2.__file__), "GeoLite2-City.mmdb")


def geoip(precision="city", database=None):
    return parse_config('geoip { enabled true database "%s" precision %s }'
                        % (database or geolite2(), precision)).config.geoip


#: Public addresses and where that database puts them.
LONDON = "81.2.69.160"       # GB, ENG, Willesden
STOCKHOLM = "89.160.20.112"  # SE, AB, Stockholm
GOOGLE = "8.8.8.8"           # US, no city


class LocatorTests(SynchronousTestCase):
    def locator(self, config):
        locator = GeoLocator()
        locator.configure(config)
        self.addCleanup(locator._close)
        return locator

    def test_precision_limits_what_is_kept(self):
        self.assertEqual(self.locator(geoip("city")).locate(LONDON), Location("GB", "ENG", "Willesden"))
        self.assertEqual(self.locator(geoip("region")).locate(LONDON), Location("GB", "ENG"))
        self.assertEqual(self.locator(geoip("country")).locate(LONDON), Location("GB"))
        self.assertEqual(self.locator(geoip("city")).locate(GOOGLE), Location("US"))

    def test_unlocatable_addresses(self):
        locator = self.locator(geoip())
        for address in ("203.0.113.9", "127.0.0.1", "not an address", "::1"):
            self.assertEqual(locator.locate(address), NOWHERE)

    def test_disabled(self):
        self.assertEqual(self.locator(parse_config("").config.geoip).locate(LONDON), NOWHERE)

    def test_missing_or_unreadable_database_warns_and_locates_nobody(self):
        warnings = []
        globalLogPublisher.addObserver(warnings.append)
        self.addCleanup(globalLogPublisher.removeObserver, warnings.append)
        garbage = FilePath(self.mktemp())
        garbage.setContent(b"this is not a MaxMind database")
        for database in ("/nonexistent/GeoLite2-City.mmdb", garbage.path):
            locator = self.locator(geoip(database=database))
            self.assertEqual(locator.locate(LONDON), NOWHERE)
        messages = [e.get("log_format", "").format(**e) for e in warnings if "geoip" in e.get("log_format", "")]
        self.assertEqual(len(messages), 2, messages)
        self.assertTrue(all("listener locations will be 'unknown'" in m for m in messages), messages)

    def test_reload_to_another_database_and_off(self):
        locator = self.locator(geoip(database="/nonexistent.mmdb"))
        self.assertEqual(locator.locate(LONDON), NOWHERE)
        locator.configure(geoip())
        self.assertEqual(locator.locate(LONDON).country, "GB")
        locator.configure(parse_config("").config.geoip)
        self.assertEqual(locator.locate(LONDON), NOWHERE)

    def test_audience(self):
        counts = audience([Location("GB", "ENG", "Willesden"), Location("GB"), Location("SE", "AB", "Stockholm")])
        self.assertEqual(counts, {"listeners_by_country": {"GB": 2, "SE": 1},
                                  "listeners_by_city": {"Willesden": 1, "Stockholm": 1}})


class ListenersByPlaceTests(SynchronousTestCase):
    """Listeners behind a trusted proxy, located by the address it vouches for."""

    def harness(self):
        h = Harness('server { trusted_proxies [10.0.0.0/8] } geoip { enabled true database "%s" precision city } '
                    'mounts { live { hls { enabled true segment_duration 2 } } }' % geolite2())
        self.addCleanup(h.factory.geo._close)
        source, _ = h.source("/live")
        feed_frames(source, 300)
        return h

    def test_icy_and_hls_listeners_counted_by_country(self):
        from gocast.observe.geo import mount_locations

        h = self.harness()
        for address in (LONDON, LONDON, STOCKHOLM):
            h.listener("/live", "X-Forwarded-For: %s\r\n" % address)
        h.listener("/live", "X-Forwarded-For: %s\r\n" % GOOGLE, peer="198.51.100.1")  # untrusted: not believed
        play(h, extra="X-Forwarded-For: %s\r\nUser-Agent: hls.js\r\n" % GOOGLE)
        counts = audience(mount_locations(h.registry.get("/live")))
        self.assertEqual(counts["listeners_by_country"], {"GB": 2, "SE": 1, "unknown": 1, "US": 1})
        self.assertEqual(counts["listeners_by_city"], {"Willesden": 2, "Stockholm": 1})
        metrics = h.get("/metrics")[2].decode()
        self.assertIn('gocast_listeners_by_country{country="GB"} 2.0', metrics)
        self.assertIn('gocast_listeners_by_country{country="US"} 1.0', metrics)
