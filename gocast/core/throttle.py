# -*- test-case-name: tests.test_icecast_admin, tests.test_api, tests.test_live -*-
"""
Failed authentication, limited per client address, wherever a password or
key is checked: sources (and the SHOUTcast port), the REST API, the
dashboard's login and live stream, the Icecast admin, ``/metrics``,
SHOUTcast's ``admin.cgi``. After :data:`FAILURE_LIMIT`
failures within :data:`FAILURE_WINDOW` seconds an address is refused (429)
until the oldest of them is that old, so guessing the admin password takes
years, while someone who mistyped waits a minute.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from typing import Callable, List, Optional

FAILURE_LIMIT = 10
FAILURE_WINDOW = 60.0
#: Client addresses remembered (the oldest forgotten first).
MAX_TRACKED_CLIENTS = 10000
#: What a refused address is told.
TOO_MANY = "too many failed logins from your address; wait a minute"


def address_key(host: str) -> str:
    """
    Who a limit counts: an IPv4 address as itself, an IPv6 address by its
    /64 (one home or phone is given a whole /64, and picks addresses in it
    at will), anything else as it is.
    """
    if ":" not in host:
        return host  # IPv4 (or a name): itself, without parsing it on every request
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.ip_network("%s/64" % host, strict=False))
    return host


class AuthFailures:
    """Failed logins by client (:func:`address_key`: an IPv6 client is its /64)."""

    def __init__(self, now: Callable[[], float]):
        self.now = now
        self._failures: "OrderedDict[str, List[float]]" = OrderedDict()
        #: Clients the cluster blocked (they failed too often across its nodes), until when.
        self._blocked: "OrderedDict[str, float]" = OrderedDict()
        #: In a cluster, also counts each failure there (:meth:`gocast.cluster.shared.SharedState.failed_login`).
        self.share: Optional[Callable[[str], None]] = None

    def blocked(self, client: str) -> Optional[float]:
        """Seconds ``client`` must wait before trying again, or None."""
        key = address_key(client)
        failures = self._recent(key)
        if len(failures) >= FAILURE_LIMIT:
            return failures[0] + FAILURE_WINDOW - self.now()
        until = self._blocked.get(key)
        if until is not None:
            if until > self.now():
                return until - self.now()
            del self._blocked[key]
        return None

    def block(self, client: str, until: float) -> None:
        """The cluster counted too many failures of ``client`` (an address key) on its nodes."""
        self._blocked[client] = max(until, self._blocked.get(client, 0.0))
        self._blocked.move_to_end(client)
        while len(self._blocked) > MAX_TRACKED_CLIENTS:
            self._blocked.popitem(last=False)

    def failed(self, client: str) -> None:
        client = address_key(client)
        if self.share is not None:
            self.share(client)
        failures = self._recent(client)
        failures.append(self.now())
        self._failures[client] = failures
        self._failures.move_to_end(client)
        while len(self._failures) > MAX_TRACKED_CLIENTS:
            self._failures.popitem(last=False)

    def _recent(self, client: str) -> List[float]:
        horizon = self.now() - FAILURE_WINDOW
        failures = [t for t in self._failures.get(client, ()) if t > horizon]
        if failures:
            self._failures[client] = failures
        else:
            self._failures.pop(client, None)
        return failures


def retry_after(wait: float) -> int:
    """Whole seconds for a ``Retry-After`` header: at least 1."""
    return max(1, int(math.ceil(wait)))
