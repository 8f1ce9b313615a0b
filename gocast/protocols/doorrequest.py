# -*- test-case-name: tests.test_doorrequest -*-
"""
HLS requests answered on the front door's own connection.

Players fetch a playlist and a segment or part every few seconds each, so
HLS is most of a busy server's requests; through twisted.web each one
cost a channel, a ``Request`` with its header objects, resource
traversal and a logger event. The front door has already parsed the head
(bounded, with a deadline), so :class:`DoorRequest` gives
:class:`~gocast.resources.hls.HlsResource` the few parts of twisted.web's
``Request`` it uses, and writes the answer straight to the socket, head
and body in one ``sendmsg``. What the site does for every request is done
here too: the request ID, CORS, the Server and Date headers, HEAD, the
access-log line and the response metrics.

A response the client does not read stays the only one queued: the next
request on the connection is not read until it has gone out.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any, Dict, Iterator, List, Optional, Tuple

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET

from ..cors import cors_headers
from ._directwrite import queued, write_sequence
from ._http import MAX_HEAD, REASONS, RequestHead

_log = Logger()

#: The Server and Date headers, made once a second: (second, product, header lines).
_common: Tuple[int, str, bytes] = (0, "", b"")
#: Header names as written (the few HLS sets), by their lower-case form.
_CANONICAL: Dict[bytes, bytes] = {}
#: Status lines by version and code.
_status_lines: Dict[Tuple[bytes, int], bytes] = {}


def common_headers(product: str) -> bytes:
    """``Server`` and ``Date``, each with its CRLF."""
    global _common
    now = int(time.time())
    if _common[:2] != (now, product):
        _common = (now, product, b"Server: %s\r\nDate: %s\r\n" % (
            product.encode("latin-1"), formatdate(now, usegmt=True).encode("ascii")))
    return _common[2]


def status_line(version: bytes, code: int) -> bytes:
    line = _status_lines.get((version, code))
    if line is None:
        line = _status_lines[(version, code)] = b"%s %d %s\r\n" % (
            version, code, REASONS.get(code, "Unknown").encode("ascii"))
    return line


class _Headers:
    """``request.requestHeaders`` as far as HLS reads it."""

    __slots__ = ("head",)

    def __init__(self, head: RequestHead):
        self.head = head

    def getAllRawHeaders(self) -> Iterator[Tuple[bytes, List[bytes]]]:
        for name, value in self.head.headers:
            yield name.encode("latin-1"), [value.encode("latin-1")]


class DoorRequest:
    """One HLS request on a front-door connection, answered there."""

    _log = _log

    def __init__(self, door: Any, head: RequestHead, pipelined: bytes):
        self.door = door
        self.head = head
        self.method = head.method.encode("ascii")
        self.uri = head.target.encode("latin-1")
        self.clientproto = head.version.encode("ascii")
        self._args: Optional[Dict[bytes, List[bytes]]] = None
        self._client: Any = None
        self.requestHeaders = _Headers(head)
        self.code = 200
        self.headers: Dict[bytes, bytes] = {}
        self.private_cache = False
        self.hls_session: Optional[str] = None
        self.sentLength = 0
        self.started = time.monotonic()
        self.finished = False
        self._head_sent = False
        self._close = not head.keep_alive
        self._pipelined = pipelined
        self._finish_waiters: List[Deferred] = []

    # What HlsResource reads

    @property
    def args(self) -> Dict[bytes, List[bytes]]:
        """The query as twisted.web gives it, from the one the head parser read."""
        if self._args is None:
            self._args = {name.encode("utf-8"): [value.encode("utf-8") for value in values]
                          for name, values in self.head.query.items()}
        return self._args

    def getClientAddress(self) -> Any:
        if self._client is None:
            peer = self.door.peer
            self._client = (IPv6Address if ":" in peer else IPv4Address)("TCP", peer, 0)
        return self._client

    def getHeader(self, name: bytes) -> Optional[bytes]:
        value = self.head.get(name.decode("latin-1"))
        return value.encode("latin-1") if value is not None else None

    def setResponseCode(self, code: int, message: Optional[bytes] = None) -> None:
        self.code = code

    def setHeader(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    @staticmethod
    def header_name(name: bytes) -> bytes:
        """``content-type`` as ``Content-Type``, the way twisted.web writes names."""
        canonical = _CANONICAL.get(name)
        if canonical is None:
            canonical = b"-".join(part.capitalize() for part in name.split(b"-"))
            if len(_CANONICAL) < 100:
                _CANONICAL[name] = canonical
        return canonical

    def notifyFinish(self) -> Deferred:
        """Fires when the answer is sent; fails if the client leaves first."""
        d: Deferred = Deferred()
        self._finish_waiters.append(d)
        return d

    # Answering

    def serve(self, hls: Any, mount: str, name: str) -> None:
        """Answer with ``hls`` (a :class:`~gocast.resources.hls.HlsResource`), now or when it is ready."""
        try:
            body = hls.serve(self, mount, name)
        except Exception:
            self._log.failure("HLS request {uri} failed", uri=self.head.target[:200])
            self.code, self.headers = 500, {b"content-type": b"text/plain; charset=utf-8"}
            body = b"internal error\n"
        if body is NOT_DONE_YET:
            return
        self.headers[b"content-length"] = b"%d" % len(body)
        self.write(body)
        self.finish()

    def write(self, data: bytes) -> None:
        if self.finished:
            return
        parts = []
        if not self._head_sent:
            self._head_sent = True
            parts.append(self._response_head())
        if data and self.method != b"HEAD":
            parts.append(data)
            self.sentLength += len(data)
        if parts:
            write_sequence(self.door.transport, parts)

    def _response_head(self) -> bytes:
        door = self.door
        config = door.factory.config
        headers = self.headers
        if b"content-length" not in headers:
            self._close = True  # the end of the body is the end of the connection
        lines = [status_line(self.clientproto if self.clientproto == b"HTTP/1.1" else b"HTTP/1.0", self.code),
                 common_headers(config.server.product),
                 b"X-Request-ID: %s\r\n" % door.request_id.encode("ascii")]
        for name, value in headers.items():
            lines.append(b"%s: %s\r\n" % (self.header_name(name), value))
        origin = self.head.get("origin")
        if origin:
            for name, text in cors_headers(config.cors, origin):
                lines.append(b"%s: %s\r\n" % (name.encode("ascii"), text.encode("latin-1")))
        if self._close:
            lines.append(b"Connection: close\r\n")
        elif self.clientproto != b"HTTP/1.1":
            lines.append(b"Connection: keep-alive\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def finish(self) -> None:
        if self.finished:
            return
        if not self._head_sent:
            self.write(b"")
        self.finished = True
        door = self.door
        factory = door.factory
        factory.count_response(self.code)
        factory.access_log.record(door.peer, self.head.method, self.head.target, self.head.version, self.code,
                                  self.sentLength, self.head.get("referer") or "", self.head.get("user-agent") or "",
                                  time.monotonic() - self.started, door.request_id)
        waiters, self._finish_waiters = self._finish_waiters, []
        for d in waiters:
            d.callback(None)
        if self._close:
            door.transport.loseConnection()
        elif queued(door.transport):
            _Drained(door.transport, self.next_request)  # not read on until the client has taken this answer
        else:
            self.next_request()

    def next_request(self) -> None:
        self.door.next_request(self.head, self._pipelined)

    # The door's delegate while the answer is pending

    def dataReceived(self, data: bytes) -> None:
        """Bytes after the head: the next request, read once this one is answered (at most a head's worth)."""
        self._pipelined += data
        if len(self._pipelined) > MAX_HEAD:
            self.door.transport.loseConnection()

    def connectionLost(self, reason: Optional[Failure] = None) -> None:
        self.finished = True
        waiters, self._finish_waiters = self._finish_waiters, []
        for d in waiters:
            d.errback(reason or Failure(ConnectionError("the client left")))


class _Drained:
    """
    Stops reading from a connection until what Twisted holds for it has
    been sent, then calls ``then`` (Twisted resumes a registered pull
    producer each time its buffer empties).
    """

    def __init__(self, transport: Any, then: Any):
        self.transport = transport
        self.then = then
        transport.pauseProducing()
        transport.registerProducer(self, False)

    def resumeProducing(self) -> None:
        if queued(self.transport):
            return  # registering asks at once; the buffer is not empty yet
        self.transport.unregisterProducer()
        self.transport.resumeProducing()
        self.then()

    def stopProducing(self) -> None:
        pass
