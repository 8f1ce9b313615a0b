# -*- test-case-name: tests.test_auth -*-
"""``auth { type ip allowed [...] denied [...] }``, and a mount's own ``allowed_ips``/``denied_ips``."""

from __future__ import annotations

from typing import Any, Sequence

from zope.interface import implementer

from .address import in_networks, parse_ip
from .base import AuthRequest, AuthenticatorBase, Decision, IAuthenticator

REFUSED = "your address may not listen to this stream"


@implementer(IAuthenticator)
class IpAuthenticator(AuthenticatorBase):
    """Denied networks win; an empty allow list allows every address not denied."""

    def __init__(self, allowed: Sequence[Any], denied: Sequence[Any]):
        self.allowed = tuple(allowed)
        self.denied = tuple(denied)

    def authorize(self, request: AuthRequest) -> Decision:
        address = parse_ip(request.ip)
        if address is None:
            return Decision.deny(403, REFUSED, "not an IP address: %s" % request.ip[:64])
        if in_networks(address, self.denied):
            return Decision.deny(403, REFUSED, "address %s is denied" % address)
        if self.allowed and not in_networks(address, self.allowed):
            return Decision.deny(403, REFUSED, "address %s is not in the allowed networks" % address)
        return Decision.allow()
