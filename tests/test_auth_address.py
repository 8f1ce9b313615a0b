"""The client's address behind trusted proxies (server.trusted_proxies)."""

import ipaddress

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.trial.unittest import SynchronousTestCase

from gocast.auth.address import MAX_HOPS, client_address, forwarded_hops, host_of

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8:ffff::/48"))


class ClientAddressTests(SynchronousTestCase):
    def test_untrusted_peer_headers_ignored(self):
        self.assertEqual(client_address("198.51.100.9", [], ["203.0.113.7"], TRUSTED), "198.51.100.9")
        self.assertEqual(client_address("198.51.100.9", ["for=203.0.113.7"], [], TRUSTED), "198.51.100.9")

    def test_no_trusted_proxies_configured(self):
        self.assertEqual(client_address("10.0.0.1", [], ["203.0.113.7"], ()), "10.0.0.1")

    def test_trusted_proxy_vouches_for_the_client(self):
        self.assertEqual(client_address("10.0.0.1", [], ["203.0.113.7"], TRUSTED), "203.0.113.7")

    def test_client_supplied_hops_left_of_the_proxy_are_not_believed(self):
        # The client sent "X-Forwarded-For: 192.0.2.66"; the proxy appended the real address.
        self.assertEqual(client_address("10.0.0.1", [], ["192.0.2.66, 203.0.113.7"], TRUSTED), "203.0.113.7")

    def test_chain_of_trusted_proxies(self):
        self.assertEqual(client_address("10.0.0.1", [], ["203.0.113.7, 10.0.0.2"], TRUSTED), "203.0.113.7")
        self.assertEqual(client_address("10.0.0.1", [], ["203.0.113.7", "10.0.0.2"], TRUSTED), "203.0.113.7")

    def test_only_trusted_proxies_in_the_chain(self):
        self.assertEqual(client_address("10.0.0.1", [], ["10.0.0.3, 10.0.0.2"], TRUSTED), "10.0.0.3")

    def test_forwarded_header_preferred_and_ipv6(self):
        forwarded = ['for="[2001:db8::7]:4711";proto=https, for=10.0.0.2']
        self.assertEqual(client_address("10.0.0.1", forwarded, ["192.0.2.66"], TRUSTED), "2001:db8::7")

    def test_ipv6_proxy(self):
        self.assertEqual(client_address("2001:db8:ffff::1", [], ["203.0.113.7"], TRUSTED), "203.0.113.7")

    def test_unknown_hop_stops_at_the_proxy(self):
        self.assertEqual(client_address("10.0.0.1", ["for=unknown"], [], TRUSTED), "10.0.0.1")
        self.assertEqual(client_address("10.0.0.1", [], ["not-an-address"], TRUSTED), "10.0.0.1")

    def test_ports_and_mapped_addresses(self):
        self.assertEqual(client_address("10.0.0.1", [], ["203.0.113.7:5555"], TRUSTED), "203.0.113.7")
        self.assertEqual(client_address("::ffff:10.0.0.1", [], ["203.0.113.7"], TRUSTED), "203.0.113.7")
        self.assertEqual(client_address("::ffff:198.51.100.9", [], [], TRUSTED), "198.51.100.9")

    def test_hops_are_bounded(self):
        hops = forwarded_hops([], [", ".join("203.0.113.%d" % i for i in range(200))])
        self.assertEqual(len(hops), MAX_HOPS)
        self.assertEqual(hops[-1].strip(), "203.0.113.199")


class HostOfTests(SynchronousTestCase):
    def test_kinds_of_address(self):
        self.assertEqual(host_of(IPv4Address("TCP", "192.0.2.1", 5000)), "192.0.2.1")
        self.assertEqual(host_of(IPv6Address("TCP", "2001:db8::1", 5000)), "2001:db8::1")
        self.assertEqual(host_of(UNIXAddress(None)), "unix")  # a unix: endpoint's peer has no name
