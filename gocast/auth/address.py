# -*- test-case-name: tests.test_auth_address -*-
"""
The client's address, as auth, logs, limits and GeoIP must see it.

Behind a reverse proxy every connection comes from the proxy. Only when the
connection comes from one of ``server.trusted_proxies`` are its
``Forwarded`` (RFC 7239) or ``X-Forwarded-For`` headers believed, and then
only hop by hop from the right: each address a trusted proxy vouches for is
taken, until one that is not itself trusted. Anybody can send those
headers, so from any other peer they are ignored.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable, List, Optional, Sequence

from twisted.internet.address import UNIXAddress

#: At most this many hops are read from the headers (a bound on work).
MAX_HOPS = 32

_FOR = re.compile(r'(?:^|[;,\s])for\s*=\s*("[^"]*"|[^;,\s]*)', re.IGNORECASE)


#: The client address of a connection on a Unix socket (``server.endpoints
#: ["unix:..."]``): the peer has no name, so all share this one.
UNIX_PEER = "unix"


def host_of(address: Any) -> str:
    """The host of a Twisted address (its repr only for the odd kind without one: it is slow)."""
    host = getattr(address, "host", None)
    if host:
        return host
    if isinstance(address, UNIXAddress):
        return UNIX_PEER
    return str(address)


def parse_ip(text: str) -> Optional[Any]:
    """An address from a header hop (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``); None if it is not one."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]  # IPv4 with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def normalise(host: str) -> str:
    """``::ffff:10.0.0.1`` → ``10.0.0.1``; anything that is not an address is left as it is."""
    if ":" not in host:
        return host  # IPv4 (or a name): nothing to normalise, and this runs for every request
    address = parse_ip(host)
    return str(address) if address is not None else host


def forwarded_hops(forwarded: Sequence[str], x_forwarded_for: Sequence[str]) -> List[str]:
    """The addresses proxies added, client first: from ``Forwarded`` if sent, else ``X-Forwarded-For``."""
    hops: List[str] = []
    if forwarded:
        for value in forwarded:
            hops += [m.group(1) for m in _FOR.finditer(value)]
    else:
        for value in x_forwarded_for:
            hops += [part for part in value.split(",")]
    return hops[-MAX_HOPS:]


def in_networks(address: Any, networks: Iterable[Any]) -> bool:
    """Whether ``address`` (from :func:`parse_ip`, or None) is in one of ``networks``."""
    return address is not None and any(address.version == net.version and address in net for net in networks)


def client_address(peer: str, forwarded: Sequence[str], x_forwarded_for: Sequence[str],
                   trusted: Sequence[Any]) -> str:
    """
    :param peer: the address the connection comes from.
    :param forwarded: the values of every ``Forwarded`` header.
    :param x_forwarded_for: the values of every ``X-Forwarded-For`` header.
    :param trusted: the networks of ``server.trusted_proxies``.
    """
    current = normalise(peer)
    if not trusted or not in_networks(parse_ip(current), trusted):
        return current
    for hop in reversed(forwarded_hops(forwarded, x_forwarded_for)):
        address = parse_ip(hop)
        if address is None:
            break  # "unknown", an obfuscated name, or garbage: stop at the last proxy
        current = str(address)
        if not in_networks(address, trusted):
            break
    return current
