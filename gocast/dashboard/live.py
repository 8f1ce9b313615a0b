# -*- test-case-name: tests.test_live -*-
"""
``WS <admin_root>/ws/stats``: the live stats stream the dashboard reads
(Autobahn over twisted.web).

- Who may connect is decided in the opening handshake, before it
  completes: the admin's Basic credentials, the dashboard's session
  cookie, or an API key with ``read_stats`` (``Authorization: Bearer``,
  ``X-API-Key``, or ``?key=`` since browsers cannot set headers on a
  WebSocket). Anyone else gets a 401 and no WebSocket.
- On connect, a ``snapshot`` (server and every mount); then ``delta``
  frames: the mounts that changed and the events from the bus, coalesced
  and sent at most every :data:`FLUSH_EVERY` (10,000 joins in a second make
  four frames, not 10,000), plus every mount's figures each
  :data:`FIGURES_EVERY` for the rate graphs. Listener joins and leaves are
  sent as events only to clients that ask (``{"listener_events": true}``),
  at most :data:`MAX_EVENTS` per frame.
- Each client is a push producer on its connection: when the socket is
  full it is skipped (frames are state, the next one catches up) and, if it
  stays full for :data:`SLOW_TIMEOUT`, dropped. Nothing is buffered without
  bound.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, List, Optional, Set

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from ..auth.address import host_of
from ..core.events import Event
from ..core.track import artwork_link
from ..core.throttle import TOO_MANY, AuthFailures, retry_after
from ..observe.geo import audience, mount_locations

FLUSH_EVERY = 0.25
FIGURES_EVERY = 1.0
SLOW_TIMEOUT = 10.0
MAX_EVENTS = 50
MAX_CLIENTS = 200
#: Streams open at once with one set of credentials (an API key, a dashboard
#: login, the admin): one key cannot take every slot.
MAX_STREAMS_PER_CREDENTIAL = 20
#: Largest WebSocket message either way (Autobahn applies one limit to both):
#: dashboards send a few bytes; a frame about many mounts can be large.
MAX_MESSAGE = 1024 * 1024
#: Events every client gets; listener joins and leaves only on request.
LISTENER_EVENTS = ("listener.connect", "listener.disconnect")


def mount_figures(mount: Any) -> Dict[str, Any]:
    source = mount.source
    return {"path": mount.path, "live": source is not None, "listeners": mount.listeners,
            "peak_listeners": mount.peak_listeners, "max_listeners": mount.max_listeners,
            "title": mount.title or None, "artist": mount.artist or None, "song": mount.song or None,
            "album": mount.track.album or None, "artwork": artwork_link(mount), "track_started": mount.track_started,
            "content_type": mount.content_type if source is not None else None,
            "bytes_sent": mount.total_bytes_sent, "bytes_received": mount.bytes_received,
            "source_ip": source.peer if source is not None else None,
            "source_since": getattr(source, "connected_at", None) if source is not None else None,
            "relay": getattr(source, "relay", "") or None if source is not None else None,
            "transcoded_from": getattr(source, "transcoded_from", "") or None if source is not None else None,
            "bitrate": source.audio_info().get("bitrate") if source is not None else None,
            "listeners_by_country": audience(mount_locations(mount))["listeners_by_country"]}


class StatsHub:
    """The bus on one side, the connected dashboards on the other."""

    _log = Logger()
    #: The :class:`gocast.cluster.node.ClusterNode`: in a cluster, the station's totals and a row per node.
    cluster: Any = None

    def __init__(self, registry: Any, bus: Any, clock: Any, now: Callable[[], float], started: float):
        self.registry = registry
        self.now = now
        self.started = started
        self.clients: Set["StatsProtocol"] = set()
        self._changed: Set[str] = set()
        self._events: List[Dict[str, Any]] = []
        self._listener_events: List[Dict[str, Any]] = []
        #: Events left out of the frames (bounded queues), of each kind.
        self._dropped = {"other": 0, "listener": 0}
        self._last_figures = 0.0
        self._loop = LoopingCall(self.flush)
        self._loop.clock = clock
        bus.subscribe(self.event)

    def add(self, client: "StatsProtocol") -> None:
        self.clients.add(client)
        client.send(self.snapshot())
        if not self._loop.running:
            self._loop.start(FLUSH_EVERY, now=False).addErrback(
                lambda failure: self._log.failure("the live stats stream stopped", failure))

    def remove(self, client: "StatsProtocol") -> None:
        self.clients.discard(client)
        if not self.clients and self._loop.running:
            self._loop.stop()

    def server(self) -> Dict[str, Any]:
        mounts = self.registry.mounts.values()
        figures = {"time": self.now(), "uptime": int(self.now() - self.started),
                   "listeners": sum(m.listeners for m in mounts), "sources": sum(1 for m in mounts if m.source)}
        cluster = self.cluster
        if cluster is not None and cluster.enabled:
            figures["cluster"] = cluster.dashboard()
        return figures

    def snapshot(self) -> Dict[str, Any]:
        return {"type": "snapshot", "server": self.server(),
                "mounts": [mount_figures(m) for _, m in sorted(self.registry.mounts.items())]}

    def event(self, event: Event) -> None:
        if event.mount:
            self._changed.add(event.mount)
        if not self.clients:
            return
        item = {"event": event.name, "mount": event.mount, "time": event.timestamp,
                "data": {k: v for k, v in event.data.items() if isinstance(v, (str, int, float, bool, type(None)))}}
        kind = "listener" if event.name in LISTENER_EVENTS else "other"
        queue = self._listener_events if kind == "listener" else self._events
        if len(queue) < MAX_EVENTS:
            queue.append(item)
        else:
            self._dropped[kind] += 1

    def flush(self) -> None:
        now = self.now()
        figures_due = now - self._last_figures >= FIGURES_EVERY
        if not (self._changed or self._events or self._listener_events or figures_due):
            return
        paths = sorted(self.registry.mounts) if figures_due else sorted(self._changed)
        mounts = [mount_figures(self.registry.mounts[p]) for p in paths if p in self.registry.mounts]
        gone = [p for p in self._changed if p not in self.registry.mounts]
        base = {"type": "delta", "server": self.server(), "mounts": mounts, "removed": gone,
                "events": self._events, "dropped_events": self._dropped["other"]}
        with_listeners = dict(base, events=self._events + self._listener_events,
                              dropped_events=self._dropped["other"] + self._dropped["listener"])
        self._changed, self._events, self._listener_events = set(), [], []
        self._dropped = {"other": 0, "listener": 0}
        if figures_due:
            self._last_figures = now
        for client in list(self.clients):
            try:
                client.send(with_listeners if client.listener_events else base)
            except Exception:  # one client's trouble must not stop the stream for the others
                self._log.failure("dashboard client dropped")
                self.remove(client)
                client.drop()


@implementer(IPushProducer)
class StatsProtocol(WebSocketServerProtocol):
    """One dashboard connection."""

    _log = Logger()
    listener_events = False
    paused_at: Optional[float] = None
    missed = False
    #: The client's address (after ``server.trusted_proxies``), for the failed-login limit.
    client = ""
    #: Whose credentials opened it (a dashboard login, a key, the admin), once counted.
    credential: Optional[str] = None

    def onConnect(self, request: Any) -> None:
        factory = self.factory
        if len(factory.hub.clients) >= MAX_CLIENTS:
            raise ConnectionDeny(503, "too many dashboard connections")
        if not factory.origin_allowed(request.headers):
            raise ConnectionDeny(403, "this page's origin may not read the live stats")
        who = factory.allowed(request.headers, request.params)
        if not who:
            sent = "authorization" in request.headers or "x-api-key" in request.headers or "key" in request.params
            if sent and factory.failures is not None:
                factory.failures.failed(self.client)
            raise ConnectionDeny(401, "log in to the dashboard, or send admin credentials or an API key "
                                 "with read_stats")
        who = who if isinstance(who, str) else "anyone"
        streams = factory.streams
        if streams.get(who, 0) >= MAX_STREAMS_PER_CREDENTIAL:
            raise ConnectionDeny(429, "%d live stats streams are open with these credentials already"
                                 % MAX_STREAMS_PER_CREDENTIAL)
        streams[who] = streams.get(who, 0) + 1
        self.credential = who

    def onOpen(self) -> None:
        self.transport.unregisterProducer()  # the HTTP channel's, which handed the connection over
        self.transport.registerProducer(self, True)
        self.factory.hub.add(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary or len(payload) > 4096:
            return
        try:
            message = json.loads(payload)
        except ValueError:
            return
        if isinstance(message, dict) and isinstance(message.get("listener_events"), bool):
            self.listener_events = message["listener_events"]

    def onClose(self, wasClean: bool, code: Optional[int], reason: Optional[str]) -> None:
        self.factory.hub.remove(self)
        who, self.credential = self.credential, None
        if who is not None:
            streams = self.factory.streams
            streams[who] -= 1
            if not streams[who]:
                del streams[who]

    def drop(self) -> None:
        self.factory.hub.remove(self)
        self.transport.abortConnection()

    def send(self, message: Dict[str, Any]) -> None:
        if self.paused_at is not None:
            if self.factory.hub.now() - self.paused_at > SLOW_TIMEOUT:
                self._log.info("dashboard client {peer} dropped: accepted nothing for {seconds}s",
                               peer=self.peer, seconds=SLOW_TIMEOUT)
                self.drop()
            else:
                self.missed = True
            return
        self.sendMessage(json.dumps(message, separators=(",", ":")).encode("utf-8"))

    # IPushProducer: the socket says when it is full

    def pauseProducing(self) -> None:
        if self.paused_at is None:
            self.paused_at = self.factory.hub.now()

    def resumeProducing(self) -> None:
        self.paused_at = None
        if self.missed:
            self.missed = False
            self.send(self.factory.hub.snapshot())  # the deltas skipped: start again from the whole

    def stopProducing(self) -> None:
        self.paused_at = self.factory.hub.now()


class LiveStatsResource(Resource):
    """
    The upgrade: twisted.web parsed the request; the connection then belongs
    to the WebSocket protocol. The front door stays the connection's
    protocol and passes bytes (and the end of the connection) to it, so its
    connection count and shutdown keep working.
    """

    isLeaf = True

    def __init__(self, factory: "StatsFactory"):
        super().__init__()
        self.factory = factory

    def render(self, request: Request) -> Any:
        client = host_of(request.getClientAddress())
        failures = self.factory.failures
        wait = failures.blocked(client) if failures is not None else None
        if wait is not None:
            request.setResponseCode(429)
            request.setHeader(b"retry-after", b"%d" % retry_after(wait))
            return (TOO_MANY + "\n").encode()
        if (request.getHeader(b"upgrade") or b"").lower() != b"websocket":
            # A plain GET: say what this is, rather than hand it to Autobahn (which answers with a page).
            request.setResponseCode(426)
            request.setHeader(b"upgrade", b"websocket")
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"this is the live stats WebSocket: connect with a WebSocket client (the dashboard does)\n"
        channel = request.channel
        transport = channel.transport
        protocol = self.factory.buildProtocol(transport.getPeer())
        protocol.client = client
        channel.setTimeout(None)
        channel.transport = None  # twisted.web lets go of the connection
        door = getattr(transport, "wrappedProtocol", None) or transport.protocol  # TLS wraps the door
        door.delegate = protocol
        protocol.makeConnection(transport)
        transport.resumeProducing()  # twisted.web paused reading while it handled the request
        head = [b"%s %s HTTP/1.1" % (request.method, request.uri)]
        head += [name + b": " + b",".join(values) for name, values in request.requestHeaders.getAllRawHeaders()]
        protocol.dataReceived(b"\r\n".join(head) + b"\r\n\r\n")  # Autobahn reads the handshake itself
        return NOT_DONE_YET


class StatsFactory(WebSocketServerFactory):
    """
    :param allowed: ``(headers, query params) -> bool``: may this handshake
        go on (admin, session cookie, or a key with read_stats)?
    :param origin_allowed: ``headers -> bool``: may the page that opens it
        (the ``Origin`` a browser sends) read the stats?
    :param failures: failed logins per address (shared with the admin and API).
    """

    protocol = StatsProtocol

    def __init__(self, hub: StatsHub, allowed: Callable[[Dict[str, str], Dict[str, List[str]]], bool],
                 origin_allowed: Callable[[Dict[str, str]], bool] = lambda headers: True,
                 failures: Optional[AuthFailures] = None):
        super().__init__()
        self.hub = hub
        self.allowed = allowed
        self.origin_allowed = origin_allowed
        self.failures = failures
        #: Open streams by whose credentials opened them.
        self.streams: Dict[str, int] = {}
        # A ping every 20 s finds dead dashboards; messages are capped both ways.
        self.setProtocolOptions(autoPingInterval=20, autoPingTimeout=20, maxMessagePayloadSize=MAX_MESSAGE,
                                maxFramePayloadSize=MAX_MESSAGE, openHandshakeTimeout=10)
