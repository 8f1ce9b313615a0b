# -*- test-case-name: tests.test_source, tests.test_listener -*-
"""
The front door: every connection on the shared port starts here.

It reads the request head with GoCast's own bounded parser (twisted.web
would refuse ``ICE/1.0`` and buffer a never-ending source body), then routes:

- ``SOURCE`` or ``PUT``: source ingestion (:mod:`gocast.protocols.source`);
- ``GET``/``HEAD`` on a mount: an ICY listener (:mod:`gocast.protocols.listener`);
- ``GET /ws/<mount>``: a WebSocket listener (:mod:`gocast.protocols.wsaudio`);
- ``GET``/``HEAD`` of an HLS playlist, segment or part, on a plain
  connection: answered here (:mod:`gocast.protocols.doorrequest`);
- ``OPTIONS``: answered here, as libshout and browsers expect;
- anything else: handed, with the bytes read so far, to a twisted.web
  ``HTTPChannel`` built from the site (admin, status, health, API).

A client has ``limits.header_timeout`` to send its head; the head is at
most 16 KiB. Connections past ``limits.max_clients`` get a 503. Once the
head is read, the client's address is the one ``server.trusted_proxies``
vouch for (:mod:`gocast.auth.address`).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Optional, Set

from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import IAddress, ISSLTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..auth.address import client_address, host_of, in_networks, normalise, parse_ip
from ..auth.gate import ListenerGate
from ..config import Config
from ..core.events import EventBus
from ..core.registry import MountRegistry
from ..core.throttle import AuthFailures, address_key
from ._directwrite import lighten
from ._http import BadRequest, RequestHead, declares_body, parse_head, reply_version, response_head
from ..cors import cors_headers
from ..observe.geo import GeoLocator
from ..observe.logs import AccessLog
from ..outbound import OutboundHttp
from ..outputs.pcm import PcmDecoders
from ..resources.site import request_id_from
from .doorrequest import DoorRequest
from .listener import ListenerSession
from .source import SourceSession
from .wsaudio import AudioSocketFactory, WebSocketListener, mount_of

#: Sent on every reply GoCast writes itself, as Icecast does: libshout reads
#: them to learn what the server supports. The Server header comes first,
#: from ``server.server_id``.
COMMON_HEADERS = [
    ("Allow", "GET, PUT, OPTIONS, SOURCE"),
    ("Accept-Encoding", "identity"),
]

_CRLF = re.compile(rb"\r?\n")

#: Extensions that ask for a playlist pointing at a mount.
PLAYLIST_SUFFIXES = (".m3u", ".pls", ".xspf")


class LazyTimeout:
    """
    ``TimeoutMixin.setTimeout`` without a new timer for each call: a
    kept-alive connection sets and clears its deadline at every request, so
    the deadline is a number, and one timer, when it fires, either acts or
    waits again for what is left. Calls :meth:`timeoutConnection`.
    """

    _deadline: Optional[float] = None
    _timer: Any = None

    def setTimeout(self, seconds: Optional[float]) -> None:
        if seconds is None:
            self._deadline = None
            return
        now = self.seconds()
        self._deadline = now + seconds
        if self._timer is None:
            self._timer = self.callLater(seconds, self._deadline_reached)
        elif self._timer.getTime() > self._deadline:
            self._timer.reset(seconds)

    def _deadline_reached(self) -> None:
        self._timer = None
        if self._deadline is None:
            return
        left = self._deadline - self.seconds()
        if left > 0:
            self._timer = self.callLater(left, self._deadline_reached)
            return
        self._deadline = None
        self.timeoutConnection()

    def stop_timeout(self) -> None:
        """No deadline, and no timer left behind (the connection is gone, or handed over for good)."""
        self._deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def seconds(self) -> float:
        raise NotImplementedError

    def callLater(self, delay: float, f: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        raise NotImplementedError

    def timeoutConnection(self) -> None:
        raise NotImplementedError


class FrontDoor(Protocol, LazyTimeout):
    """Reads one request head, then hands the connection to its handler."""

    _log = Logger()
    #: Set on doors of a ``haproxy:`` endpoint: the peer is the balancer
    #: until the PROXY header names the client.
    behind_proxy_protocol = False

    def __init__(self, factory: "FrontDoorFactory"):
        self.factory = factory
        self._buffer = b""
        self.delegate: Optional[Any] = None
        self.peer = ""
        self.request_id = ""
        self._reading = False
        #: The client key this connection is counted under (limits.max_connections_per_ip).
        self.counted_as: Optional[str] = None

    def callLater(self, delay: float, f: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """The reactor's; a method, not a bound method kept per connection."""
        return self.factory.reactor.callLater(delay, f, *args, **kw)

    def seconds(self) -> float:
        return self.factory.reactor.seconds()

    def connectionMade(self) -> None:
        lighten(self.transport)
        peer = self.transport.getPeer()
        self.peer = host_of(peer)
        factory = self.factory
        factory.connections += 1
        factory.total_connections += 1
        factory.open.add(self)
        limits = factory.config.limits
        if factory.connections + factory.remote_connections > limits.max_clients + limits.reserved_connections:
            self.reply(503, "server full: too many clients")
            return
        # A load balancer's connections count by the client each one carries,
        # once its PROXY header or its Forwarded header says who that is.
        if not self.behind_proxy_protocol and not self.from_trusted_proxy():
            if not self.count_address():
                return
        self.setTimeout(limits.header_timeout)

    def from_trusted_proxy(self) -> bool:
        address = parse_ip(self.peer)
        return address is not None and in_networks(address, self.factory.config.server.trusted_proxies)

    def count_address(self) -> bool:
        """
        Count this connection for its client (``self.peer``); refuse it (503)
        when that client has ``limits.max_connections_per_ip`` already.
        """
        key = address_key(self.peer)
        if key == self.counted_as:
            return True
        self.uncount_address()
        counts = self.factory.per_address
        counts[key] = counts.get(key, 0) + 1
        self.counted_as = key
        limit = self.factory.config.limits.max_connections_per_ip
        if limit and counts[key] > limit:
            self.reply(503, "too many connections from your address (limits.max_connections_per_ip is %d)"
                       % limit, headers=[("Retry-After", "10")])
            return False
        return True

    def uncount_address(self) -> None:
        if self.counted_as is not None:
            counts = self.factory.per_address
            counts[self.counted_as] -= 1
            if not counts[self.counted_as]:
                del counts[self.counted_as]
            self.counted_as = None

    def timeoutConnection(self) -> None:
        """
        Armed while reading a head, and while twisted.web reads a request's
        body: handing the connection over for good cancels it.
        """
        if self.delegate is not None:
            # twisted.web is still reading the request: it never answered, so answer here.
            self.reply(408, "request body not received in time")
            return
        self.reply(408, "request head not received in time")

    def dataReceived(self, data: bytes) -> None:
        if self.delegate is not None:
            self.delegate.dataReceived(data)
            return
        self._buffer += data
        if self._reading:
            return  # a request answered at once hands back what followed it: the loop below reads it
        self._reading = True
        try:
            # Pipelined requests are read one after the other here, not by recursion.
            while (self.delegate is None and self._buffer and not self.transport.disconnecting
                   and self.read_head()):
                pass
        finally:
            self._reading = False

    def read_head(self) -> bool:
        """Route the request whose head is at the start of the buffer; False until it is whole."""
        try:
            parsed = parse_head(self._buffer)
        except BadRequest as e:
            self.reply(e.status, str(e))
            return False
        if parsed is None:
            return False
        head, body_start = parsed
        self.request_id = request_id_from(head.get("x-request-id"))
        self.peer = self.client_address(head)
        if not self.count_address():
            return False
        limits = self.factory.config.limits
        if (self.factory.connections + self.factory.remote_connections > limits.max_clients
                and not self.may_use_reserve(head.path)):
            self.reply(503, "server full: too many clients", reply_version(head), [("Retry-After", "10")])
            return False
        raw, rest = self._buffer[:body_start], self._buffer[body_start:]
        self._buffer = b""
        self.route(head, raw, rest)
        return True

    def may_use_reserve(self, path: str) -> bool:
        """The admin, API, dashboard, metrics and health checks get in when listeners filled the rest."""
        config = self.factory.config
        return any(path == prefix or path.startswith(prefix + "/")
                   for prefix in ("/health", "/api", "/admin.cgi", config.server.admin_root, config.metrics.path))

    def client_address(self, head: RequestHead) -> str:
        trusted = self.factory.config.server.trusted_proxies
        peer = host_of(self.transport.getPeer())
        if not trusted:
            return normalise(peer)  # no proxy vouches for anyone: the headers are not even read
        return client_address(peer, head.all("forwarded"), head.all("x-forwarded-for"), trusted)

    def route(self, head: RequestHead, raw: bytes, rest: bytes) -> None:
        method = head.method
        # PUT is Icecast's source method, except on the REST API.
        source = method == "SOURCE" or (method == "PUT" and not head.path.startswith("/api/"))
        listener = not source and method in ("GET", "HEAD") and self.is_listener_path(head.path)
        ws_mount = mount_of(head.path) if method == "GET" and not listener else None
        websocket = ws_mount is not None and self.is_listener_path(ws_mount)
        if (source or listener or websocket) and self.factory.draining:
            self.reply(503, "server is shutting down", reply_version(head), [("Retry-After", "10")])
            return
        if source:
            self.hand_over(SourceSession(self, head), rest)
        elif listener:
            self.hand_over(ListenerSession(self, head), rest)
        elif websocket:
            self.hand_over(WebSocketListener(self, head, raw), rest)
        elif method in ("GET", "HEAD") and self.serve_hls(head, rest):
            return
        elif method == "OPTIONS" and head.target == "*":
            self.write_head(200, [("Content-Length", "0")], reply_version(head))
            self.next_request(head, rest)
        elif method == "OPTIONS" and head.get("origin"):
            self.preflight(head, rest)
        else:
            # twisted.web reads only CRLF lines: a head that came with bare LFs (which
            # GoCast accepts, as Icecast does) is handed over with CRLFs.
            self.to_web(_CRLF.sub(b"\r\n", raw) + rest)

    def preflight(self, head: RequestHead, rest: bytes) -> None:
        """A browser's CORS preflight, for any path: streams, status, metrics, API."""
        headers = cors_headers(self.factory.config.cors, head.get("origin"), preflight=True)
        if not headers:
            self.reply(403, "origin not allowed by cors.allowed_origins", reply_version(head))
            return
        self.write_head(204, headers + [("Content-Length", "0")], reply_version(head))
        self.next_request(head, rest)

    def is_listener_path(self, path: str) -> bool:
        registry = self.factory.registry
        return (registry.get(path) is not None or registry.is_configured(path) or path in registry.on_demand
                or registry.routed_elsewhere(path))

    def serve_hls(self, head: RequestHead, rest: bytes) -> bool:
        """
        Answer an HLS request here, as twisted.web would but without it;
        False when ``head`` is not one, or comes over TLS (whose buffering
        the wait for a slow reader cannot see: twisted.web answers those).
        """
        root = getattr(self.factory.site, "resource", None)
        target = root.hls_target(head.path) if root is not None else None
        if target is None or ISSLTransport.providedBy(self.transport):
            return False
        self.setTimeout(None)
        request = DoorRequest(self, head, rest)
        self.delegate = request
        request.serve(root.hls, *target)
        return True

    def hand_over(self, handler: Any, rest: bytes) -> None:
        """The connection is the handler's for good (a listener, a source): its timer goes now, not later."""
        self.stop_timeout()
        self.delegate = handler
        handler.start(rest)

    def next_request(self, head: RequestHead, rest: bytes) -> None:
        """
        After a reply of our own: read the next head, or close. A body the
        request declared is not read: the connection closes rather than
        take that body for the next request.
        """
        self.delegate = None
        if head.keep_alive and not declares_body(head):
            self.read_next_head(rest)
        else:
            self.transport.loseConnection()

    def read_next_head(self, data: bytes) -> None:
        self.setTimeout(self.factory.config.limits.header_timeout)
        if data:
            self.dataReceived(data)

    def to_web(self, data: bytes) -> None:
        """
        Give the connection, and the bytes already read, to twisted.web, for
        this one request: its body must arrive within ``limits.body_timeout``,
        and once it is answered the connection comes back here.
        """
        channel = self.factory.site.buildProtocol(self.transport.getPeer())
        channel.owner = self
        self.delegate = channel
        self.setTimeout(self.factory.config.limits.body_timeout)
        channel.makeConnection(self.transport)
        channel.dataReceived(data)

    def web_request_received(self) -> None:
        """twisted.web has the whole request: answering it takes what it takes."""
        self.setTimeout(None)

    def web_request_done(self, pipelined: bytes) -> None:
        """twisted.web answered and keeps the connection: the next head is read here."""
        self.delegate = None
        self.read_next_head(pipelined)

    def write_head(self, status: int, headers: list, version: str = "HTTP/1.0") -> None:
        self.factory.count_response(status)
        if self.request_id:
            headers = headers + [("X-Request-ID", self.request_id)]
        common = [("Server", self.factory.config.server.product)] + COMMON_HEADERS
        self.transport.write(response_head(status, common + headers, version))

    def reply(self, status: int, reason: str, version: str = "HTTP/1.0",
              headers: Optional[list] = None, close: bool = True) -> None:
        """A short plain-text answer with a one-line reason."""
        body = (reason + "\n").encode("utf-8")
        self.write_head(status, (headers or []) + [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ] + ([("Connection", "close")] if close else []), version)
        self.transport.write(body)
        if close:
            self.setTimeout(None)
            self.transport.loseConnection()

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.stop_timeout()
        self.uncount_address()
        self.factory.connections -= 1
        self.factory.open.discard(self)
        if self.delegate is not None:
            self.delegate.connectionLost(reason)


class FrontDoorFactory(Factory):
    """Shared state of the port: config, registry, events, the web site."""

    def __init__(self, registry: MountRegistry, bus: EventBus, site: Any, reactor: Any,
                 gate: Optional[ListenerGate] = None, auth_failures: Optional[AuthFailures] = None):
        """
        :param gate: the listener auth gate; by default one configured from
            the registry's config, with slow checks run in place.
        :param auth_failures: failed source logins per address (shared with
            the web side's admin logins); by default one of its own.
        """
        self.registry = registry
        self.bus = bus
        self.site = site
        self.reactor = reactor
        self.connections = 0
        self.total_connections = 0
        #: Open connections per client (:func:`~gocast.auth.address.address_key`).
        self.per_address: Dict[str, int] = {}
        #: Set on shutdown: new listeners and sources are refused, health still answers.
        self.draining = False
        #: Every open connection, so a shutdown can close what is left.
        self.open: Set[FrontDoor] = set()
        self._listener_ids = 0
        #: Told the status of every response GoCast writes itself (metrics).
        self.count_response: Callable[[int], None] = lambda status: None
        self.access_log = AccessLog(registry.config.logging)
        self.auth_failures = auth_failures if auth_failures is not None else AuthFailures(reactor.seconds)
        if gate is None:
            gate = ListenerGate(bus, OutboundHttp(reactor), reactor.seconds, reactor.callLater, maybeDeferred,
                                self.auth_failures)
            gate.configure(registry.config)
        self.gate = gate
        gate.new_client_id = self.new_listener_id  # HLS players' IDs, for url auth
        #: Looks listeners up by address (the service configures it from ``geoip``).
        self.geo = GeoLocator()
        #: This node's cluster membership (:class:`gocast.cluster.node.ClusterNode`), when there is one:
        #: full nodes redirect listeners to a sibling.
        self.cluster: Any = None
        #: Worker processes (:class:`gocast.cluster.workers.WorkerPool`) admitted listeners go to, if any,
        #: the connections they hold for this port, and the secret of their pulls from this process.
        self.workers: Any = None
        self.remote_connections = 0
        self.worker_secret = ""
        self._audio_sockets: Optional[AudioSocketFactory] = None
        #: The ffmpeg decoders of WebSocket clients that asked for PCM.
        self.pcm = PcmDecoders(reactor)

    @property
    def config(self) -> Config:
        """The running configuration (the registry holds it, and reload replaces it)."""
        return self.registry.config

    def audio_sockets(self) -> AudioSocketFactory:
        """Autobahn's settings for audio WebSockets, made once (again if ``server.server_id`` changes)."""
        product = self.config.server.product
        if self._audio_sockets is None or self._audio_sockets.server != product:
            self._audio_sockets = AudioSocketFactory(product)
        return self._audio_sockets

    def close_all(self) -> None:
        for door in list(self.open):
            door.transport.loseConnection()

    def new_listener_id(self) -> int:
        """Listener IDs, as /admin/listclients shows and killclient takes."""
        self._listener_ids += 1
        return self._listener_ids

    def buildProtocol(self, addr: IAddress) -> FrontDoor:
        return FrontDoor(self)

    def behind_proxy_protocol(self) -> Factory:
        """The factory a ``haproxy:`` endpoint listens with: the same doors, told so."""
        return _ProxyProtocolDoors(self)


class _ProxyProtocolDoors(Factory):
    def __init__(self, doors: FrontDoorFactory):
        self.doors = doors

    def buildProtocol(self, addr: IAddress) -> FrontDoor:
        door = self.doors.buildProtocol(addr)
        door.behind_proxy_protocol = True
        return door
