# -*- test-case-name: tests.test_media -*-
"""The framer for formats GoCast does not parse: bytes pass through as they come."""

from __future__ import annotations

from typing import List

from ._packet import Packet


class OpaqueFramer:
    content_type = "application/octet-stream"
    header_pages = b""

    def feed(self, data: bytes) -> List[Packet]:
        return [Packet(bytes(data))] if data else []

    def take_metadata(self) -> None:
        return None
