# -*- test-case-name: tests.test_logs -*-
"""
The twisted.web site behind the front door: every request gets a request
ID (the client's ``X-Request-ID`` when well formed, else a new one), sent
back in the response and carried by its access-log line; every response's
status class is counted for the metrics. A request's client address is the
one ``server.trusted_proxies`` vouch for.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any, Callable, Optional, Sequence
from urllib.parse import parse_qs

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.web.http import HTTPChannel
from twisted.web.server import Request, Site
from twisted.web.static import File

from .._version import __version__
from ..auth.address import client_address, host_of

from ..config._schema import CorsConfig
from ..cors import cors_headers
from ..observe.logs import AccessLog

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: The largest request body the web side reads. twisted.web would spool a
#: body of any size to a temporary file; the API's JSON, the admin's forms
#: and the dashboard's actions are far smaller.
MAX_REQUEST_BODY = 1024 * 1024
_TOO_LARGE = (b"HTTP/1.1 413 Payload Too Large\r\nServer: %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
              b"Connection: close\r\nContent-Length: %d\r\n\r\n%s")
#: Fresh request IDs: a random prefix per process and a counter (a uuid4
#: per request cost 7% of a busy HLS server's CPU).
_ID_PREFIX = os.urandom(4).hex()
_ID_COUNTER = itertools.count(1)


def request_id_from(header: Optional[str]) -> str:
    """The client's request ID if it is safe to echo and log, else a fresh one."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return "%s%08x" % (_ID_PREFIX, next(_ID_COUNTER) & 0xFFFFFFFF)


_MISSING_REASONS = {426: b"Upgrade Required", 429: b"Too Many Requests"}


class GocastRequest(Request):
    """
    A request with an ID, CORS headers, and its own reading of form bodies
    (the site turns twisted.web's off, see :class:`GocastSite`).
    """

    request_id = ""
    started = 0.0
    _client: Any = None
    _body_read = 0
    _refused = False

    def gotLength(self, length: Optional[int]) -> None:
        if length is not None and length > MAX_REQUEST_BODY:
            self._refuse_body()
        super().gotLength(length if not self._refused else 0)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._body_read += len(data)
        if self._body_read > MAX_REQUEST_BODY:  # a chunked body that goes on
            self._refuse_body()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)

    def _refuse_body(self) -> None:
        """413 with the reason, and close: the body is not read (nor answered by a resource)."""
        self._refused = True
        reason = b"the request body is larger than %d KiB\n" % (MAX_REQUEST_BODY // 1024)
        transport = self.channel.transport
        transport.write(_TOO_LARGE % (self.channel.site.product().encode("ascii"), len(reason), reason))
        transport.loseConnection()
        self.channel.site.count_response(413)

    def getClientAddress(self) -> Any:
        """The peer, or the client a trusted proxy vouches for (worked out once per request)."""
        if self._client is None:
            self._client = self._find_client()
        return self._client

    def _find_client(self) -> Any:
        peer = super().getClientAddress()
        host = getattr(peer, "host", None)
        trusted = self.channel.site.trusted_proxies()
        if host is None or not trusted:
            return peer
        headers = self.requestHeaders
        real = client_address(host, [v.decode("latin-1") for v in headers.getRawHeaders(b"forwarded", [])],
                              [v.decode("latin-1") for v in headers.getRawHeaders(b"x-forwarded-for", [])],
                              trusted)
        if real == host:
            return peer
        return (IPv6Address if ":" in real else IPv4Address)("TCP", real, 0)

    def process(self) -> None:
        if self.method == b"POST" and _media_type(self.getHeader(b"content-type")) == \
                b"application/x-www-form-urlencoded":
            self.args.update(parse_qs(self.content.read(), 1))
            self.content.seek(0, 0)
        self.started = time.monotonic()
        ranges = self.getHeader(b"range")
        if ranges is not None and b"," in ranges:
            # Several ranges at once (twisted.web would answer each, overlaps and
            # all, as one multipart body many times the file's size): the whole
            # file instead, as a server may.
            self.requestHeaders.removeHeader(b"range")
        header = self.getHeader(b"x-request-id")
        self.request_id = request_id_from(header.decode("latin-1") if header else None)
        self.setHeader(b"x-request-id", self.request_id.encode("ascii"))
        origin = self.getHeader(b"origin")
        site = self.channel.site
        for name, value in cors_headers(site.cors(), origin.decode("latin-1") if origin else None):
            self.setHeader(name.encode("ascii"), value.encode("latin-1"))
        super().process()

    def setResponseCode(self, code: int, message: Optional[bytes] = None) -> None:
        # twisted.web knows no phrase for these and would say "Unknown Status".
        super().setResponseCode(code, message or _MISSING_REASONS.get(code))

    def write(self, data: bytes) -> None:
        if not self.startedWriting:
            # twisted.web names itself (TwistedWeb/x.y) in process(); the
            # operator's product token replaces it just before the head goes.
            self.responseHeaders.setRawHeaders(b"server", [self.channel.site.product().encode("ascii")])
        super().write(data)

    def render(self, resrc: Any) -> None:
        if self.method == b"HEAD":
            resrc = _HeadOnly(resrc)
        super().render(resrc)


class _HeadOnly:
    """
    A resource as HEAD sees it: what its GET would answer, measured for
    Content-Length and left unsent (twisted.web would log a warning for
    every HEAD whose resource returned a body, as most do).
    """

    def __init__(self, resource: Any):
        self.resource = resource

    def render(self, request: Request) -> Any:
        body = self.resource.render(request)
        if isinstance(body, bytes) and request.method == b"HEAD":
            if body:
                request.setHeader(b"content-length", b"%d" % len(body))
            return b""
        return body

    def __repr__(self) -> str:
        return repr(self.resource)


class GocastChannel(HTTPChannel):
    """
    twisted.web's channel, for one request at a time from the front door.

    twisted.web would read the next request on a kept-alive connection
    itself: then a stream request after a status request got a 404, and the
    next head had no deadline at all (its idle timeout restarts with every
    byte, so one byte every few seconds held a slot for ever). Instead, the
    :class:`~gocast.protocols.frontdoor.FrontDoor` that handed the connection
    over (:attr:`owner`) is told when the request has fully arrived (it
    bounds head and body with an absolute deadline) and when it is
    answered, with whatever the client sent after it: the front door reads
    the next head, so every request on a connection goes through it.
    """

    owner: Any = None

    def allContentReceived(self) -> None:
        if self.owner is not None:
            self.owner.web_request_received()
        super().allContentReceived()

    def requestDone(self, request: Request) -> None:
        if self.owner is None or not self.persistent:
            super().requestDone(request)
            return
        del self.requests[0]
        self.setTimeout(None)
        pipelined, self._dataBuffer = b"".join(self._dataBuffer), []
        owner, self.owner = self.owner, None
        # The channel is done with this connection: it no longer feeds it,
        # nor holds back its reading.
        self._networkProducer.resumeProducing()
        self.transport.unregisterProducer()
        # A request answered at once is answered while LineReceiver still
        # holds the bytes after it: they go to the front door too, in order.
        self.rawDataReceived = owner.dataReceived  # type: ignore[method-assign]
        owner.web_request_done(pipelined)


class GocastSite(Site):
    """
    twisted.web answers a malformed multipart body with a bare 400 before
    any resource sees it, so the site does not parse bodies: requests parse
    URL-encoded forms (the Icecast admin's) themselves, and a multipart body
    reaches the resource, which refuses it with a reason (the REST API: 415,
    its bodies are JSON).
    """

    requestFactory = GocastRequest
    protocol = GocastChannel

    def __init__(self, resource: Any, reactor: Any, access_log: AccessLog,
                 count_response: Callable[[int], None], cors: Callable[[], CorsConfig],
                 trusted_proxies: Callable[[], Sequence[Any]] = tuple,
                 product: Callable[[], str] = lambda: "GoCast/" + __version__):
        """:param product: the Server header's product token (``server.server_id``)."""
        super().__init__(resource, reactor=reactor, parsePOSTFormSubmission=False)
        self.access_log = access_log
        self.count_response = count_response
        self.cors = cors
        self.trusted_proxies = trusted_proxies
        self.product = product

    def log(self, request: Request) -> None:
        self.count_response(request.code)
        started = getattr(request, "started", 0.0)
        seconds = time.monotonic() - started if started else 0.0
        self.access_log.record(
            self.getClientAddress(request), request.method.decode("latin-1", "replace"),
            request.uri.decode("latin-1", "replace"), request.clientproto.decode("latin-1", "replace"),
            request.code, request.sentLength, header_text(request, b"referer"), header_text(request, b"user-agent"),
            seconds, getattr(request, "request_id", ""))

    @staticmethod
    def getClientAddress(request: Request) -> str:
        peer = request.getClientAddress()
        return host_of(peer)


def send_download(request: Request, path: str, content_type: str, filename: str) -> Any:
    """
    A file sent as it is, to be saved as ``filename`` (a recording): never
    cached, and twisted.web's static file answers Range (206) and HEAD.
    """
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"content-disposition", b'attachment; filename="%s"' % filename.encode("utf-8"))
    file = File(path)
    file.type, file.encoding = content_type, None
    return file.render(request)


def request_arg(request: Request, name: bytes) -> Optional[str]:
    """The last value of query parameter ``name``, as text."""
    values = request.args.get(name)
    return values[-1].decode("utf-8", "replace") if values else None


#: A Host header fit to repeat in a URL: a name or an address, and a port.
_PLAIN_HOST = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?")


def public_base(request: Request, server: Any) -> str:
    """
    ``scheme://host[:port]`` the client used, when its Host header is a
    plain host; else ``server.hostname`` and ``server.port``: what a URL
    GoCast hands out (a snippet, a cover link) starts with.
    """
    host = header_text(request, b"host")
    if not _PLAIN_HOST.fullmatch(host):
        host = "%s:%d" % (server.hostname, server.port)
    return "%s://%s" % ("https" if request.isSecure() else "http", host)


def header_text(request: Request, name: bytes) -> str:
    """Header ``name`` as text, empty when absent."""
    value = request.getHeader(name)
    return value.decode("latin-1", "replace") if value else ""


def _media_type(header: Optional[bytes]) -> bytes:
    return header.split(b";", 1)[0].strip().lower() if header else b""
