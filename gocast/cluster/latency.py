# -*- test-case-name: tests.test_georouting -*-
"""
How near this node is to listeners of each country: the kernel's
round-trip estimate of each new listener's TCP connection (``TCP_INFO``,
Linux), averaged per country. Nodes publish the figures in their records
so routing can send a listener to the node its compatriots reach fastest.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Dict, Optional

#: Offset of ``tcpi_rtt`` (microseconds) in Linux's ``struct tcp_info``, and the bytes to read.
_RTT_OFFSET = 68
_INFO_SIZE = 104
#: Weight of a new measurement in a country's average.
WEIGHT = 0.2
#: Countries kept (the most measured), and published per node.
MAX_COUNTRIES = 250
PUBLISHED = 50


def tcp_rtt_ms(transport: Any) -> Optional[float]:
    """The smoothed round trip of a connected TCP transport, in ms; ``None`` where the system does not say."""
    handle = getattr(transport, "getHandle", None)
    option = getattr(socket, "TCP_INFO", None)
    if handle is None or option is None:
        return None
    try:
        info = handle().getsockopt(socket.IPPROTO_TCP, option, _INFO_SIZE)
    except (OSError, AttributeError, TypeError):
        return None
    if len(info) < _RTT_OFFSET + 4:
        return None
    micros = struct.unpack_from("I", info, _RTT_OFFSET)[0]
    return micros / 1000.0 if micros else None


class RoundTrips:
    """Per country, a moving average of listeners' round trips, and how many were measured."""

    def __init__(self) -> None:
        self.average: Dict[str, float] = {}
        self.count: Dict[str, int] = {}

    def add(self, country: str, ms: Optional[float]) -> None:
        if ms is None or not country or country == "unknown":
            return
        if country not in self.average and len(self.average) >= MAX_COUNTRIES:
            return
        before = self.average.get(country)
        self.average[country] = ms if before is None else before + WEIGHT * (ms - before)
        self.count[country] = self.count.get(country, 0) + 1

    def published(self) -> Dict[str, float]:
        """The most measured countries, rounded, for the node's record."""
        most = sorted(self.average, key=lambda c: (-self.count[c], c))[:PUBLISHED]
        return {country: round(self.average[country], 1) for country in sorted(most)}
