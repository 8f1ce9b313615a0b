# -*- test-case-name: tests.test_shoutcast -*-
"""
SHOUTcast v1 sources (BUTT's and Liquidsoap's ``icy`` protocol, hardware
encoders), on their own port like Icecast's shoutcast-mount socket:

1. the source sends its password alone on a line;
2. GoCast answers ``OK2`` and ``icy-caps:11`` (or ``invalid password``);
3. the source sends ``icy-*`` and ``content-type`` header lines, a blank
   line, then the stream, which goes to ``shoutcast.mount``.

From the headers on, it is an ordinary source: the same session, limits
and refusals as on the main port. Titles come through
``/admin.cgi?mode=updinfo&song=...&pass=...``.
"""

from __future__ import annotations

import base64
from typing import Any, Optional

from twisted.internet.interfaces import IAddress

from ..config import MountConfig
from ..core.text import scrub
from ._http import RequestHead, find_head_end
from .frontdoor import FrontDoor, FrontDoorFactory
from .source import SourceSession, source_authorised

MAX_PASSWORD_LINE = 1024
MAX_HEADERS = 16 * 1024


class ShoutcastDoor(FrontDoor):
    """Reads the password line and the icy headers, then runs a source session."""

    def __init__(self, factory: "ShoutcastFactory"):
        super().__init__(factory)
        self.mount_path = factory.config.shoutcast.mount
        self._password: Optional[str] = None

    def dataReceived(self, data: bytes) -> None:
        if self.delegate is not None:
            self.delegate.dataReceived(data)
            return
        self._buffer += data
        if self._password is None and not self.read_password():
            return
        found = find_head_end(b"\n" + self._buffer)
        if found is None:
            if len(self._buffer) > MAX_HEADERS:
                self.transport.loseConnection()
            return
        end, body = found
        header_text, rest = self._buffer[: max(end - 1, 0)], self._buffer[body - 1 :]
        self._buffer = b""
        self.hand_over(SourceSession(self, self.head(header_text)), rest)

    def read_password(self) -> bool:
        newline = self._buffer.find(b"\n")
        if newline < 0:
            if len(self._buffer) > MAX_PASSWORD_LINE:
                self.transport.loseConnection()
            return False
        password = self._buffer[:newline].rstrip(b"\r").decode("utf-8", "replace")
        self._buffer = self._buffer[newline + 1 :]
        probe = self.head(b"", password)
        config = self.factory.config
        mount_config = config.mounts.get(self.mount_path) or MountConfig()
        failures = self.factory.auth_failures
        if failures.blocked(self.peer) is not None:
            # SHOUTcast v1 has no status codes: the source is told what it would hear for a wrong one.
            self._log.info("SHOUTcast source from {peer} refused: too many failed logins", peer=self.peer)
            self.transport.write(b"invalid password\r\n")
            self.transport.loseConnection()
            return False
        if not source_authorised(probe, mount_config, config.auth.source_password):
            failures.failed(self.peer)
            self._log.info("SHOUTcast source from {peer} refused: bad password", peer=self.peer)
            self.transport.write(b"invalid password\r\n")
            self.transport.loseConnection()
            return False
        self._password = password
        self.transport.write(b"OK2\r\nicy-caps:11\r\n\r\n")
        return True

    def head(self, header_text: bytes, password: Optional[str] = None) -> RequestHead:
        """The source's request, as if it had come as ``SOURCE /mount``."""
        password = self._password if password is None else password
        config = self.factory.config
        username = (config.mounts.get(self.mount_path) or MountConfig()).username
        token = base64.b64encode(("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")
        headers = [("authorization", "Basic " + token)]
        for line in header_text.decode("iso-8859-1").splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip():
                headers.append((scrub(name.strip().lower()), scrub(value).strip()))
        if not any(name == "content-type" for name, _ in headers):
            headers.append(("content-type", "audio/mpeg"))
        return RequestHead("SOURCE", self.mount_path, "ICY", headers, self.mount_path)


class ShoutcastFactory(FrontDoorFactory):
    def buildProtocol(self, addr: IAddress) -> Any:
        return ShoutcastDoor(self)
