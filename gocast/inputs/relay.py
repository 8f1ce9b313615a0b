# -*- test-case-name: tests.test_relay -*-
"""
Relays: a mount fed by pulling another server's stream, as Icecast's
``<relay>`` does (``relays { NAME { url ... mount ... } }``).

A relay is one more source for its local mount: the upstream's bytes go
through the same framer (Ogg header pages kept for new listeners), its ICY
metadata becomes the mount's now-playing, and its ``icy-*`` headers are
what the mount's listeners are told. While the upstream is away the
mount's fallback serves its listeners, and the relay reconnects with
exponential backoff and jitter, so a hundred relays of a primary that
restarts do not all knock at once.

Twisted's HTTP client refuses SHOUTcast's ``ICY 200 OK`` and would hold a
never-ending body in ways we cannot bound, so the pull is a small protocol
of its own on the sans-IO pieces in :mod:`gocast.protocols._http`.
"""

from __future__ import annotations

import base64
import random
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import unquote, urljoin, urlsplit

import attr
from twisted.application.internet import backoffPolicy
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from .._version import __version__
from ..cluster.token import HEADER as CLUSTER_HEADER, make_token
from ..config._kinds import normalise_mount, redact_url
from ..core.mount import Mount, MountInUse, SourceInfo
from ..core.registry import MountRegistry
from ..media import normalise_content_type
from ..media.icy import IcyDemuxer, parse_metadata
from ..protocols._http import BadRequest, ChunkedDecoder, ResponseHead, parse_response_head

#: Redirects followed within one attempt (a full relay sends listeners on; so may an upstream).
MAX_REDIRECTS = 5
#: A pull that streamed this long was a success: the next failure starts the backoff again.
STABLE_SECONDS = 10.0
#: Backoff between attempts: 1 s, 2 s, 4 s ... up to a minute, plus up to a second of jitter.
BACKOFF = dict(initialDelay=1.0, maxDelay=60.0, factor=2.0)
#: An on-demand relay hangs up after its local mount has had no listener for this long.
ON_DEMAND_LINGER = 10.0
#: While its relay reconnects, a mount with no live fallback keeps its listeners (silent) this long.
HOLD_SECONDS = 10.0

Connect = Callable[[str, int, bool, Factory, float], Deferred]


@attr.frozen
class RelaySpec:
    """What to pull and where to put it: from a ``relays`` entry, or from a primary's stream list."""

    url: str
    mount: str
    on_demand: bool = False
    relay_metadata: bool = True
    username: str = ""
    password: str = ""
    timeout: float = 10.0
    #: Node-to-node pulls: this node's id and the cluster's secret, for the pull token.
    node_id: str = ""
    cluster_secret: str = attr.ib(default="", repr=False)

    @classmethod
    def from_config(cls, config: Any) -> "RelaySpec":
        return cls(config.url, config.local_mount, config.on_demand, config.relay_metadata, config.username,
                   config.password, config.timeout)


def request_for(url: str, spec: RelaySpec, credentials: bool, now: float) -> bytes:
    """The GET a relay sends: HTTP/1.0, as Icecast's relays do, so no upstream answers chunked."""
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    lines = ["GET %s HTTP/1.0" % target, "Host: %s" % parts.netloc.rpartition("@")[2],
             "User-Agent: GoCast/%s (relay)" % __version__, "Accept: */*"]
    if spec.relay_metadata:
        lines.append("Icy-MetaData: 1")
    if credentials and (spec.username or spec.password):
        token = base64.b64encode(("%s:%s" % (spec.username, spec.password)).encode("utf-8")).decode("ascii")
        lines.append("Authorization: Basic %s" % token)
    if credentials and spec.cluster_secret:
        lines.append("%s: %s" % (CLUSTER_HEADER, make_token(spec.cluster_secret, spec.node_id,
                                                            normalise_mount(unquote(parts.path)) or "/", now)))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class RelayPull(Protocol):
    """
    One connection to an upstream: the request, the response head, then
    the body (chunked decoded, ICY metadata taken out) handed to the relay.
    Silence for ``spec.timeout`` ends it.
    """

    def __init__(self, relay: "Relay", url: str, credentials: bool):
        self.relay = relay
        self.url = url
        self.credentials = credentials
        self.head: Optional[ResponseHead] = None
        self._buf = b""
        self._chunks: Optional[ChunkedDecoder] = None
        self._icy: Optional[IcyDemuxer] = None
        self._idle: Any = None
        self.why = "connection closed"

    def connectionMade(self) -> None:
        self.transport.write(request_for(self.url, self.relay.spec, self.credentials, self.relay.clock.seconds()))
        self._idle = self.relay.clock.callLater(self.relay.spec.timeout, self.stalled)

    def stalled(self) -> None:
        self._idle = None
        self.why = "the upstream sent nothing for %gs" % self.relay.spec.timeout
        self.transport.abortConnection()

    def give_up(self, why: str) -> None:
        self.why = why
        self.transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._idle is not None:
            self._idle.reset(self.relay.spec.timeout)
        if self.head is None:
            self._buf += data
            try:
                parsed = parse_response_head(self._buf)
            except BadRequest as e:
                self.give_up("the upstream's answer is malformed: %s" % e)
                return
            if parsed is None:
                return
            self.head, start = parsed
            data, self._buf = self._buf[start:], b""
            if not self.begin(self.head):
                return
        if self._chunks is not None:
            try:
                data = self._chunks.feed(data)
            except BadRequest as e:
                self.give_up("the upstream's chunked body is malformed: %s" % e)
                return
        if self._icy is not None and data:
            data, blocks = self._icy.feed(data)
            for block in blocks:
                self.relay.metadata(block)
        if data:
            self.relay.audio(data)

    def begin(self, head: ResponseHead) -> bool:
        """Set up the body's decoding and tell the relay; False when the pull ends here."""
        if head.status == 200:
            if "chunked" in (head.get("transfer-encoding") or "").lower():
                self._chunks = ChunkedDecoder()
            metaint = head.get("icy-metaint")
            if metaint is not None and self.relay.spec.relay_metadata:
                try:
                    self._icy = IcyDemuxer(int(metaint))
                except ValueError:
                    self.give_up("the upstream's icy-metaint %r is not a usable number" % metaint[:20])
                    return False
        why = self.relay.answered(self, head)
        if why:
            self.give_up(why)
            return False
        return True

    def connectionLost(self, reason: Any = None) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self._idle = None
        self.relay.pull_ended(self, self.why)


class _PullFactory(Factory):
    noisy = False  # a relay logs its own story; "Starting factory" per attempt is noise

    def __init__(self, relay: "Relay", url: str, credentials: bool):
        self.relay = relay
        self.url = url
        self.credentials = credentials

    def buildProtocol(self, addr: Any) -> RelayPull:
        return RelayPull(self.relay, self.url, self.credentials)


class Relay:
    """
    Keeps one local mount fed from one upstream: connects, streams,
    reconnects with backoff, and (``on_demand``) connects only while
    someone listens.

    :param connect: ``connect(host, port, tls, factory, timeout)`` returning
        a Deferred connection (see :func:`tcp_connect`).
    """

    _log = Logger()

    def __init__(self, spec: RelaySpec, registry: MountRegistry, clock: Any, connect: Connect,
                 jitter: Callable[[], float] = random.random,
                 failover: Optional[Callable[[RelaySpec, str], Optional[RelaySpec]]] = None):
        """
        :param failover: for relays the cluster placed: given the spec whose
            upstream just failed and why, another upstream's spec (tried at
            once), or ``None`` (wait, with backoff).
        """
        self.spec = spec
        self.failover = failover
        self.registry = registry
        self.clock = clock
        self.connect_to = connect
        self.delay = backoffPolicy(jitter=jitter, **BACKOFF)
        self.state = "idle"  # idle, connecting, streaming, waiting, stopped
        self.failures = 0
        self.reconnects = 0
        self.pull: Optional[RelayPull] = None
        self.mount: Optional[Mount] = None
        self.streaming_since: Optional[float] = None
        self.last_error = ""
        self._redirects = 0
        self._url = spec.url
        self._retry: Any = None
        self._linger: Any = None
        self._release: Any = None
        self._waiting: List[Deferred] = []

    @property
    def upstream(self) -> str:
        """The upstream's URL, fit for logs and status pages (no password)."""
        return redact_url(self.spec.url)

    def start(self) -> None:
        if not self.spec.on_demand:
            self.connect()

    def stop(self) -> None:
        """Hang up for good (the relay left the config, or the server stops)."""
        self.state = "stopped"
        for call in (self._retry, self._linger, self._release):
            if call is not None and call.active():
                call.cancel()
        self._retry = self._linger = None
        self.release_listeners()
        if self.pull is not None:
            self.pull.give_up("the relay was stopped")
        self._answer_waiting(None)

    def demand(self) -> Optional[Deferred]:
        """
        A listener asks for the local mount. Starts an on-demand relay;
        returns a Deferred that fires (with the mount, or ``None`` if the
        upstream could not be reached) once the mount has a source, or
        ``None`` when it already has one.
        """
        if self.state == "streaming":
            return None
        if self.state == "stopped":
            return None
        waiting: Deferred = Deferred()
        self._waiting.append(waiting)
        if self.state in ("idle", "waiting"):
            if self._retry is not None and self._retry.active():
                self._retry.cancel()
            self.connect()
        return waiting

    def _answer_waiting(self, mount: Optional[Mount]) -> None:
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(mount)

    # Connecting

    def connect(self, url: Optional[str] = None) -> None:
        self._retry = None
        self.state = "connecting"
        if url is None:
            self._redirects = 0
            url = self.spec.url
        self._url = url
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        credentials = _same_origin(url, self.spec.url)
        try:
            host, port = parts.hostname or "", parts.port or (443 if tls else 80)
        except ValueError:
            self.failed("bad upstream URL %s" % redact_url(url))
            return
        d = self.connect_to(host, port, tls, _PullFactory(self, url, credentials), self.spec.timeout)
        d.addErrback(lambda failure: self.failed(failure.getErrorMessage() or failure.type.__name__))

    def failed(self, why: str) -> None:
        """No pull came of the attempt (cannot connect, refused, answered with an error)."""
        self.last_error = why
        if self.state == "stopped":
            return
        self._log.warn("relay {mount}: {upstream}: {why}", mount=self.spec.mount, upstream=self.upstream, why=why)
        if not self.fail_over(why):
            self.retry_later()

    def fail_over(self, why: str) -> bool:
        """Switch at once to another upstream, when the cluster has one."""
        if self.failover is None or self.state == "stopped":
            return False
        spec = self.failover(self.spec, why)
        if spec is None or spec.url == self.spec.url:
            return False
        self.registry.bus.publish("relay.failover", self.spec.mount, upstream=self.upstream,
                                  to=redact_url(spec.url), reason=why)
        self._log.info("relay {mount}: failing over from {upstream} to {to}", mount=self.spec.mount,
                       upstream=self.upstream, to=redact_url(spec.url))
        self.spec = spec
        self.connect()
        return True

    def switch(self, spec: RelaySpec) -> None:
        """Take the mount from another upstream (a reload, or the cluster chose better); listeners stay."""
        if spec == self.spec:
            return
        self.spec = spec
        if self.pull is not None:
            self.pull.give_up("switching to %s" % redact_url(spec.url))
        elif self.state == "waiting":
            self._retry.cancel()
            self.connect()
        # connecting: the new spec is used from the next attempt on

    def retry_later(self) -> None:
        self._answer_waiting(None)  # on demand: whoever asked gets the fallback, or a 404, now
        if self.spec.on_demand and not self.wanted():
            self.state = "idle"
            return
        self.state = "waiting"
        delay = self.delay(self.failures)
        self.failures += 1
        self._retry = self.clock.callLater(delay, self.connect)

    # The pull's news

    def answered(self, pull: RelayPull, head: ResponseHead) -> Optional[str]:
        """The upstream's response head: take the mount, or say why not."""
        if self.state == "stopped":
            return "the relay was stopped"
        if head.status in (301, 302, 303, 307, 308) and head.get("location"):
            return self.redirected(head.get("location") or "")
        if head.status != 200:
            return "the upstream answered %d %s" % (head.status, head.reason[:100])
        content_type = normalise_content_type(head.get("content-type") or "")
        if content_type is None:
            return "the upstream's Content-Type %r is not a stream GoCast relays" % (
                head.get("content-type") or "")[:60]
        mount = self.registry.mount_for_relay(self.spec.mount)
        try:
            mount.start_source(self.source_info(head, content_type, pull))
        except MountInUse:
            return "a source is streaming to %s here; the relay waits for it to leave" % self.spec.mount
        self.pull, self.mount = pull, mount
        self.state = "streaming"
        self.streaming_since = self.clock.seconds()
        self.last_error = ""
        self._log.info("relay {mount}: streaming from {upstream} ({content_type})", mount=self.spec.mount,
                       upstream=self.upstream, content_type=content_type)
        self.registry.bus.publish("relay.connected", mount.path, upstream=self.upstream,
                                  content_type=content_type)
        if self._release is not None and self._release.active():
            self._release.cancel()
        self._release = None
        self.registry.source_started(mount)
        self._answer_waiting(mount)
        if self.spec.on_demand:
            self._linger = self.clock.callLater(ON_DEMAND_LINGER, self.check_demand)
        return None

    def redirected(self, location: str) -> str:
        target = urljoin(self._url, location)
        if urlsplit(target).scheme not in ("http", "https"):
            return "the upstream redirected to %s, not an HTTP URL" % redact_url(target)[:200]
        self._redirects += 1
        if self._redirects > MAX_REDIRECTS:
            return "more than %d redirects" % MAX_REDIRECTS
        self._log.info("relay {mount}: {upstream} sends us to {target}", mount=self.spec.mount,
                       upstream=redact_url(self._url), target=redact_url(target))
        self._url = target
        return "redirected"

    def source_info(self, head: ResponseHead, content_type: str, pull: RelayPull) -> SourceInfo:
        ice = {name: value[:1024] for name, value in head.headers
               if name.startswith(("icy-", "ice-")) and name != "icy-metaint"}
        return SourceInfo(content_type, urlsplit(self.spec.url).hostname or "",
                          head.get("server") or "", self.clock.seconds(), ice,
                          lambda: pull.give_up("the source was killed here"), self.upstream)

    def audio(self, data: bytes) -> None:
        if self.mount is not None:
            self.mount.feed(data)

    def metadata(self, block: bytes) -> None:
        mount = self.mount
        if mount is None:
            return
        fields = parse_metadata(block)
        title = fields.get("StreamTitle")
        if title is None:
            return
        url = fields.get("StreamUrl", "")
        if title != mount.song or (url and url != mount.stream_url):
            # From a sibling node, the update was announced there already.
            mount.set_metadata(song=title, url=url, from_node=self.upstream if self.spec.node_id else "")

    def pull_ended(self, pull: RelayPull, why: str) -> None:
        if pull is not self.pull:
            # Never streamed: refused, redirected, or stopped before the head.
            if why == "redirected" and self.state != "stopped":
                self.connect(self._url)
            elif self.state not in ("stopped", "idle"):
                self.failed(why)
            return
        self.pull = None
        if self._linger is not None and self._linger.active():
            self._linger.cancel()
        self._linger = None
        mount, self.mount = self.mount, None
        if self.streaming_since is not None and self.clock.seconds() - self.streaming_since >= STABLE_SECONDS:
            self.failures = 0
        self.streaming_since = None
        coming_back = self.state not in ("stopped", "idle")
        if mount is not None and mount.source is not None:
            mount.stop_source()
            self.registry.bus.publish("relay.disconnected", mount.path, upstream=self.upstream, reason=why)
            self.registry.source_stopped(mount, hold=coming_back)
            if coming_back and mount.connected_listeners and self._release is None:
                self._release = self.clock.callLater(HOLD_SECONDS, self.release_listeners)
        if not coming_back:
            return  # stopped, or an on-demand relay nobody listens to
        self._log.info("relay {mount}: {upstream} ended: {why}", mount=self.spec.mount, upstream=self.upstream,
                       why=why)
        self.reconnects += 1
        self.last_error = why
        if why.startswith("switching to "):
            self.connect()
        elif not self.fail_over(why):
            self.retry_later()

    def release_listeners(self) -> None:
        """The upstream stays away: the listeners held on the mount go (to a fallback that came up, or away)."""
        self._release = None
        mount = self.registry.get(self.spec.mount)
        if mount is not None and mount.source is None:
            self.registry.source_stopped(mount)

    # On demand

    def wanted(self) -> bool:
        return self.registry.listeners_wanting(self.spec.mount) > 0 or bool(self._waiting)

    def check_demand(self) -> None:
        self._linger = None
        if self.wanted():
            self._linger = self.clock.callLater(ON_DEMAND_LINGER, self.check_demand)
            return
        self._log.info("relay {mount}: no listeners for {seconds}s; hanging up (on demand)",
                       mount=self.spec.mount, seconds=ON_DEMAND_LINGER)
        self.state = "idle"
        if self.pull is not None:
            self.pull.give_up("no listeners (on demand)")


def _same_origin(url: str, original: str) -> bool:
    """Credentials go only where the operator sent them: the configured scheme, host and port."""
    a, b = urlsplit(url), urlsplit(original)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def tcp_connect(reactor: Any) -> Connect:
    """Connections to upstreams over TCP, or TLS (checked against the host name) for https."""
    from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
    from twisted.internet.ssl import optionsForClientTLS

    def connect(host: str, port: int, tls: bool, factory: Factory, timeout: float) -> Deferred:
        endpoint: Any = HostnameEndpoint(reactor, host, port, timeout=timeout)
        if tls:
            endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
        return endpoint.connect(factory)

    return connect


class Relays:
    """
    Every relay of the server, by local mount: the config's ``relays`` and
    the mounts a primary lists (:mod:`gocast.cluster.streamlist`). A reload
    keeps a relay whose spec did not change (its listeners hear no gap),
    restarts a changed one and stops a removed one.
    """

    def __init__(self, registry: MountRegistry, clock: Any, connect: Connect):
        self.registry = registry
        self.clock = clock
        self.connect = connect
        self.running: Dict[str, Relay] = {}
        #: Specs by origin ("config", "primary", "cluster"), merged with the config's winning.
        self._wanted: Dict[str, Dict[str, RelaySpec]] = {}
        #: How relays the cluster placed find another upstream (:meth:`gocast.cluster.node.ClusterNode.failover`).
        self.failover: Optional[Callable[[RelaySpec, str], Optional[RelaySpec]]] = None
        self.started = False

    def configure(self, config: Any) -> None:
        self.set("config", [RelaySpec.from_config(r) for r in config.relays.values()])

    def set(self, origin: str, specs: List[RelaySpec]) -> None:
        self._wanted[origin] = {spec.mount: spec for spec in specs}
        if self.started:
            self._apply()

    def _merged(self) -> Dict[str, Tuple[str, RelaySpec]]:
        """The spec in force for each mount, and the origin it came from (the config's wins)."""
        merged: Dict[str, Tuple[str, RelaySpec]] = {}
        for origin in sorted(self._wanted, key=lambda o: o == "config"):  # the config's last, so it wins
            merged.update((mount, (origin, spec)) for mount, spec in self._wanted[origin].items())
        return merged

    def _apply(self) -> None:
        wanted = self._merged()
        for mount, relay in list(self.running.items()):
            origin, spec = wanted.get(mount, (None, None))
            if spec is not None and not spec.on_demand and not relay.spec.on_demand:
                relay.switch(spec)  # same mount, maybe another upstream: its listeners stay
                relay.failover = self.failover if origin == "cluster" else None
                continue
            if spec != relay.spec:
                del self.running[mount]
                self.registry.on_demand.pop(mount, None)
                relay.stop()
        for mount, (origin, spec) in wanted.items():
            if mount not in self.running:
                failover = self.failover if origin == "cluster" else None
                relay = self.running[mount] = Relay(spec, self.registry, self.clock, self.connect,
                                                    failover=failover)
                if spec.on_demand:
                    self.registry.on_demand[mount] = relay.demand
                relay.start()

    def start(self) -> None:
        self.started = True
        self._apply()

    def stop(self) -> None:
        self.started = False
        for relay in self.running.values():
            relay.stop()
        for mount in self.running:
            self.registry.on_demand.pop(mount, None)
        self.running = {}

    def status(self) -> List[Dict[str, Any]]:
        """Each relay: its mount, upstream, where it was set (config, primary, cluster) and how it fares."""
        now = self.clock.seconds()
        origins = {mount: origin for mount, (origin, _) in self._merged().items()}
        return [{"mount": mount, "upstream": relay.upstream, "origin": origins.get(mount), "state": relay.state,
                 "streaming_seconds": int(now - relay.streaming_since) if relay.streaming_since is not None else None,
                 "reconnects": relay.reconnects, "on_demand": relay.spec.on_demand,
                 "last_error": relay.last_error or None}
                for mount, relay in sorted(self.running.items())]

    @property
    def streaming(self) -> int:
        """Relays whose upstream is feeding their mount now (they count among the registry's sources)."""
        return sum(1 for relay in self.running.values() if relay.state == "streaming")
