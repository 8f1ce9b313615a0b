# -*- test-case-name: tests.test_listener -*-
"""
ICY listeners: ``GET /mount`` answered the way Icecast does, written by us
rather than twisted.web (whose ``Request`` would switch HTTP/1.1 replies to
chunked encoding, which ICY players do not expect).

The reply is ``HTTP/1.0 200 OK`` with the source's Content-Type, the
``icy-*`` headers, no-cache headers and CORS headers that let a browser
read ``icy-metaint``; no Content-Length; the body ends when the connection
does. With ``Icy-MetaData: 1`` (and not Ogg, which carries metadata in
band) a metadata block follows every ``metaint`` audio bytes.

Each listener is a streaming producer registered on its transport: while
the socket keeps up it writes each shared chunk as it comes; when the
kernel buffer is full Twisted pauses it, and it remembers where it was.
If the mount's ring has moved past that point (``limits.queue_size``) the
listener is dropped, and nobody else is slowed.

Before anything is sent, the listener passes the mount's gate
(:mod:`gocast.auth.gate`): a refusal is a 401 or 403 with a one-line
reason. An admission may end (a token's ``exp``, Icecast's time limit): the
listener is disconnected then.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any, List, Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

from ..auth.base import AuthRequest, Decision
from ..auth.gate import ALLOWED, Admission
from ..cluster.token import HEADER as CLUSTER_HEADER, check_token
from ..config._kinds import normalise_mount
from ..observe.geo import NOWHERE
from ..core.mount import Chunk, ISubscriber, Mount
from ..cors import cors_headers
from ._directwrite import write as direct_write
from ._directwrite import write_sequence as direct_write_sequence
from ._http import RequestHead

if TYPE_CHECKING:  # pragma: no cover
    from .frontdoor import FrontDoor

#: A date in the past, so nothing caches the stream.
EXPIRES = "Mon, 26 Jul 1997 05:00:00 GMT"


def wants_metadata(head: RequestHead) -> bool:
    value = (head.get("icy-metadata") or "0").strip()
    return value not in ("", "0")


#: The kernel's send buffer for a listener's socket. Left alone, Linux grows
#: it to megabytes, where a stalled player hides for minutes: queue_size and
#: client_timeout could not see it fall behind.
LISTENER_SEND_BUFFER = 64 * 1024


def cap_send_buffer(transport: Any, size: int) -> None:
    """Cap the send buffer of the TCP socket under ``transport`` (through TLS or PROXY wrappers)."""
    for _ in range(4):
        handle = getattr(transport, "getHandle", lambda: None)()
        if isinstance(handle, socket.socket):
            try:
                handle.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
            except OSError:
                pass  # not a socket that has one (a Unix socket pair in a test): nothing to cap
            return
        transport = getattr(transport, "transport", None)
        if transport is None:
            return


#: The request an admission keeps when no backend needs it back (see ``admitted``), and the
#: admission of every listener of an open mount.
ADMITTED = AuthRequest("", "")
OPEN = Admission(ADMITTED, ALLOWED)

#: The stream is a source's bytes: a browser must never sniff it as a page,
#: nor run anything in it if it did.
STREAM_SAFETY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "sandbox"),
]


@implementer(IPushProducer, ISubscriber)
class ListenerSession:
    """One listener connection, after its head was read (thousands live at once: slots, not a dict)."""

    __slots__ = ("door", "head", "transport", "home", "mount", "id", "paused", "last_seq", "metaint", "_meta_left",
                 "_meta_version", "sent", "_settled", "connected_at", "_limit", "_stalled", "admission", "location",
                 "_gone", "relay_node", "worker_pull")
    _log = Logger()
    #: A worker process may take the connection over (a plain ICY stream, nothing in flight).
    movable = True
    #: The client follows a 302 to another node (ICY players and browsers' audio elements do).
    follows_redirects = True
    #: The status the access log records for a stream that ran.
    streaming_status = 200

    def __init__(self, door: "FrontDoor", head: RequestHead):
        self.door = door
        self.head = head
        self.transport = door.transport
        self.home = normalise_mount(head.path) or head.path
        self.mount: Optional[Mount] = None
        self.id = door.factory.new_listener_id()
        self.paused = False
        self.last_seq = -1
        self.metaint = 0
        self._meta_left = 0
        self._meta_version = -1
        self.sent = 0
        #: Bytes already added to a mount's bytes_sent (on a move or at the end).
        self._settled = 0
        self.connected_at: Optional[float] = None
        self._limit: Any = None
        self._stalled: Any = None
        self.admission: Optional[Admission] = None
        #: Where the listener is (GeoIP), looked up once when it starts listening.
        self.location = NOWHERE
        #: The connection closed while the gate was deciding.
        self._gone = False
        #: The node of the cluster pulling this mount, when it is one (a valid cluster token),
        #: and whether it is one of this server's worker processes.
        self.relay_node: Optional[str] = None
        self.worker_pull = False

    @property
    def counted(self) -> bool:
        """A node's or a worker's pull stands for listeners counted where they listen."""
        return self.relay_node is None

    @property
    def user_agent(self) -> str:
        return self.head.get("user-agent") or ""

    @property
    def peer(self) -> str:
        return self.door.peer

    @property
    def listener_id(self) -> Optional[str]:
        """Who the gate says the listener is (a token's listener_id, a user name), if anyone."""
        return self.admission.decision.listener_id if self.admission is not None else None

    def start(self, rest: bytes) -> None:
        head = self.head
        request = AuthRequest.build(self.home, self.peer, dict(head.headers), self.token(), str(self.id),
                                    connected=lambda: not self._gone)
        token = head.get(CLUSTER_HEADER.lower())
        if token is not None:
            self.admit_node(request, token)
            return
        routed = (self.door.factory.registry.route_listener(self.home, self.peer, head.target)
                  if self.follows_redirects else None)
        if routed is not None:
            self.redirect(routed, "a node nearer you carries %s" % self.home)
            return
        admission = self.door.factory.gate.authorize(request)
        if isinstance(admission, Deferred):
            admission.addCallback(self.admitted)
        else:
            self.admitted(admission)

    def token(self) -> Optional[str]:
        """The listener token the client sent (``?token=``), if any."""
        return self.head.arg("token")

    def admit_node(self, request: AuthRequest, token: str) -> None:
        """
        Another node of the cluster relays this mount: its token, signed with
        ``cluster.secret``, stands for listener auth and capacity limits. A
        token that does not check out is a wrong credential.
        """
        factory = self.door.factory
        wait = factory.auth_failures.blocked(self.peer)
        now = factory.reactor.seconds()
        node = worker = None
        if wait is None:
            secret = (factory.cluster.secret if factory.cluster is not None else "") or factory.config.cluster.secret
            node = check_token(secret, token, self.home, now)
            worker = None if node is not None else check_token(factory.worker_secret, token, self.home, now)
        self.worker_pull = worker is not None
        node = node or worker
        if node is None:
            if wait is None:
                factory.auth_failures.failed(self.peer)
            self._log.info("{mount}: node pull from {peer} refused: bad cluster token", mount=self.home,
                           peer=self.peer)
            self.refuse(401, "cluster token refused: check cluster.secret on both nodes")
            return
        self.relay_node = node
        self.admitted(Admission(request, Decision.allow(listener_id="node:" + node[:200])))

    def admitted(self, admission: Admission) -> None:
        if self._gone:
            admission.left(0.0)
            return
        decision = admission.decision
        if not decision.allowed:
            challenge = [("WWW-Authenticate", decision.challenge)] if decision.challenge else []
            self.refuse(decision.status, decision.reason, challenge)
            return
        if admission.authenticator is None:
            # Nothing to tell a backend when the listener leaves: keep the decision, not the request
            # (its headers and credentials), which would otherwise live as long as the connection.
            admission = OPEN if decision is ALLOWED else Admission(ADMITTED, decision)
        self.admission = admission
        if not self.serve():
            admission.left(0.0)

    def serve(self) -> bool:
        """
        Start streaming; False if the mount cannot take the listener
        (answered 404 or 503). A mount fed on demand (a relay) is started
        first, and the listener waits for it unless a fallback can serve.
        """
        registry = self.door.factory.registry
        waiting = registry.demand(self.home)
        if waiting is not None and registry.live_mount_for(self.home) is None:
            waiting.addCallback(lambda _: self.serve_after_wait())
            return True
        return self.serve_now()

    def serve_after_wait(self) -> None:
        admission = self.admission
        if self._gone or not self.serve_now():
            if admission is not None:
                admission.left(0.0)

    def serve_now(self) -> bool:
        factory = self.door.factory
        mount = self.choose_mount()
        if mount is None:
            return False
        if (self.relay_node is None and self.movable and factory.workers is not None
                and factory.workers.take(self, mount)):
            return True  # a worker process serves it from here on
        self.mount = mount
        if not self.open_stream(mount):
            self.mount = None
            return False
        self.connected_at = factory.reactor.seconds()
        self.location = factory.geo.locate(self.peer)
        if factory.cluster is not None and self.counted:
            factory.cluster.measured(self.location.country, self.transport)
        cap_send_buffer(self.transport, LISTENER_SEND_BUFFER)
        self.transport.registerProducer(self, True)
        mount.add_subscriber(self)
        self.start_stream(mount)
        if self.counted:
            factory.bus.publish("listener.connect", mount.path, id=self.id, ip=self.peer,
                                user_agent=self.user_agent, listeners=mount.listeners,
                                listener_id=self.listener_id)
        self.schedule_end(mount)
        self.head.keep_only("user-agent", "referer")  # what the access log needs at the end
        return True

    def open_stream(self, mount: Mount) -> bool:
        """Answer the request with the stream's head; False when no stream follows (HEAD)."""
        if wants_metadata(self.head) and not mount.is_ogg:
            self.metaint = self._meta_left = mount.config.metaint
        self.door.write_head(200, self.response_headers(mount))
        if self.head.method == "HEAD":
            self.transport.loseConnection()
            return False
        return True

    def start_stream(self, mount: Mount) -> None:
        """The first audio: the burst, from which live chunks follow."""
        self.last_seq = mount.next_seq - 1
        burst = mount.burst()
        if burst:
            self.send_many(burst)

    def schedule_end(self, mount: Mount) -> None:
        """Disconnect at ``max_listener_duration`` or when the admission ends, whichever is first."""
        now = self.door.factory.reactor.seconds()
        ends = []
        if mount.config.max_listener_duration:
            ends.append((now + mount.config.max_listener_duration, "max_listener_duration reached"))
        expires = self.admission.decision.expires if self.admission is not None else None
        if expires is not None:
            ends.append((expires, "access expired"))
        if ends:
            when, why = min(ends)
            self._limit = self.door.callLater(max(0.0, when - now), self.end, why)

    def end(self, why: str) -> None:
        self._log.info("{mount}: listener {id} disconnected: {why}", mount=self.home, id=self.id, why=why)
        self.transport.loseConnection()

    def choose_mount(self) -> Optional[Mount]:
        """The live mount to serve, or ``None`` after answering 404/503."""
        registry = self.door.factory.registry
        mount = registry.live_mount_for(self.home)
        if mount is None:
            self.refuse(404, "mount %s has no source and no live fallback" % self.home[:100])
            return None
        if self.relay_node is not None:
            return mount  # a node of the cluster: capacity is for listeners
        cluster = self.door.factory.cluster
        if self.full(mount) or (cluster is not None and cluster.full()):
            spare = None
            if mount.config.fallback_when_full:
                spare = next((m for m in registry.fallback_chain(mount.path)
                              if m.source is not None and not self.full(m)), None)
            if spare is None:
                elsewhere = (cluster.redirect_for(self.home)
                             if cluster is not None and self.follows_redirects else None)
                if elsewhere is not None:
                    query = self.head.target.partition("?")[2]
                    self.redirect(elsewhere + ("?" + query if query else ""),
                                  "this node is full; listen at %s" % elsewhere)
                    return None
                if self.full(mount):
                    self.refuse(503, "mount %s is full (%d listeners)" % (mount.path, mount.listeners))
                else:
                    self.refuse(503, "this server is full (cluster.max_listeners)")
                return None
            mount = spare
        return mount

    def redirect(self, location: str, why: str) -> None:
        """A 302 to another node of the cluster (ICY players and browsers follow it)."""
        self.door.reply(302, why, headers=[("Location", location)])
        self.log_access(302, 0.0, self.home, user="")

    def refuse(self, status: int, reason: str, headers: Optional[List[Any]] = None) -> None:
        """Answer with a reason and close; the refusal has its access-log line like any request."""
        self.door.reply(status, reason, headers=headers)
        self.log_access(status, 0.0, self.home, user="")

    def log_access(self, status: int, seconds: float, mount: str, user: str) -> None:
        head = self.head
        self.door.factory.access_log.record(
            self.peer, head.method, head.target, head.version, status, self.sent, head.get("referer") or "",
            self.user_agent, seconds, self.door.request_id, mount, user=user)

    @staticmethod
    def full(mount: Mount) -> bool:
        return bool(mount.max_listeners) and mount.listeners >= mount.max_listeners

    def response_headers(self, mount: Mount) -> List[Any]:
        headers: List[Any] = [("Content-Type", mount.content_type)]
        headers += mount.listener_headers()
        if self.metaint:
            headers.append(("icy-metaint", str(self.metaint)))
        headers += [
            ("Cache-Control", "no-cache, no-store"),
            ("Pragma", "no-cache"),
            ("Expires", EXPIRES),
            ("Connection", "Close"),
        ] + STREAM_SAFETY_HEADERS
        headers += cors_headers(self.door.factory.config.cors, self.head.get("origin"))
        return headers

    # Writing, with ICY metadata every metaint bytes

    def send(self, data: bytes) -> None:
        self.sent += len(data)
        if not self.metaint:
            direct_write(self.transport, data)
            return
        left = self._meta_left
        if len(data) < left:
            self._meta_left = left - len(data)
            direct_write(self.transport, data)
            return
        parts = []
        pos = 0
        end = len(data)
        while end - pos >= left:
            parts.append(data[pos : pos + left])
            parts.append(self.metadata_block())
            pos += left
            left = self.metaint
        if pos < end:
            parts.append(data[pos:])
            left -= end - pos
        self._meta_left = left
        direct_write_sequence(self.transport, parts)

    def send_many(self, chunks: List[bytes]) -> None:
        if not self.metaint:
            self.sent += sum(len(c) for c in chunks)
            direct_write_sequence(self.transport, chunks)
            return
        for data in chunks:
            self.send(data)

    def metadata_block(self) -> bytes:
        mount = self.mount
        if mount is None or self._meta_version == mount.metadata_version:
            return b"\x00"
        self._meta_version = mount.metadata_version
        return mount.icy_block()

    # ISubscriber

    def chunk(self, chunk: Chunk) -> None:
        if chunk.seq <= self.last_seq:
            return  # caught up from the ring while a sliced fan-out was on its way here
        if self.paused:
            if self.mount is not None and self.last_seq + 1 < self.mount.oldest_seq:
                self.drop_slow()
            return
        self.last_seq = chunk.seq
        self.send(chunk.data)

    def metadata_changed(self) -> None:
        """Nothing to do now: the next metadata block carries the change."""

    @property
    def unsettled(self) -> int:
        """Bytes sent from the current mount not yet in its ``bytes_sent`` (read at scrape time)."""
        return 0 if self.worker_pull else self.sent - self._settled

    def settle(self, mount: Mount) -> None:
        # A worker's pull stays on this machine; the worker reports what its listeners were sent.
        if not self.worker_pull:
            mount.bytes_sent += self.sent - self._settled
        self._settled = self.sent

    def moved(self, mount: Mount) -> None:
        if self.mount is not None:
            self.settle(self.mount)
        self.mount = mount
        self.last_seq = mount.next_seq - 1
        self._meta_version = -1
        if mount.header_pages and not self.paused:
            self.send(mount.header_pages)

    def detach(self, reason: str) -> None:
        self._log.info("{mount}: listener {id} closed: {reason}", mount=self.home, id=self.id,
                       reason=reason)
        self.leave_mount()
        self.transport.loseConnection()

    def drop_slow(self) -> None:
        mount = self.mount
        if mount is not None:
            mount.slow_listeners += 1
            self._log.info("{mount}: listener {id} from {peer} dropped: more than queue_size behind",
                           mount=mount.path, id=self.id, peer=self.peer)
        self.leave_mount()
        self.paused = True
        self.transport.abortConnection()

    def leave_mount(self) -> Optional[Mount]:
        """Stop receiving chunks; return the mount left, if any."""
        mount, self.mount = self.mount, None
        if mount is not None:
            self.settle(mount)
            self.door.factory.registry.subscriber_left(mount, self)
        return mount

    # IPushProducer

    def pauseProducing(self) -> None:
        self.paused = True
        if self._stalled is None:
            timeout = self.door.factory.config.limits.client_timeout
            self._stalled = self.door.callLater(timeout, self.drop_stalled)

    def drop_stalled(self) -> None:
        """The client has accepted nothing for ``limits.client_timeout``."""
        self._stalled = None
        self._log.info("{mount}: listener {id} from {peer} dropped: accepted nothing for {seconds}s",
                       mount=self.home, id=self.id, peer=self.peer,
                       seconds=self.door.factory.config.limits.client_timeout)
        self.leave_mount()
        self.transport.abortConnection()

    def resumeProducing(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        ring = self.chunk_source()
        self.paused = False
        if ring is None:
            return
        missed = ring.chunks_after(self.last_seq)
        if missed is None:
            self.drop_slow()
            return
        for chunk in missed:
            if self.paused:
                break
            self.send_chunk(chunk)

    def chunk_source(self) -> Any:
        """Where this listener's chunks come from, and where it catches up from (its mount's ring)."""
        return self.mount

    def send_chunk(self, chunk: Chunk) -> None:
        self.last_seq = chunk.seq
        self.send(chunk.data)

    def stopProducing(self) -> None:
        self.paused = True

    def connectionLost(self, reason: Any = None) -> None:
        self._gone = True
        for call in (self._limit, self._stalled):
            if call is not None and call.active():
                call.cancel()
        if self.connected_at is None:
            return  # refused, still at the gate, or a HEAD request: never a listener
        factory = self.door.factory
        seconds = factory.reactor.seconds() - self.connected_at
        if self.admission is not None:
            self.admission.left(seconds)
        mount = self.leave_mount()
        if self.counted:
            factory.bus.publish("listener.disconnect", mount.path if mount else self.home, id=self.id,
                                ip=self.peer, duration=seconds, bytes_sent=self.sent,
                                listener_id=self.listener_id)
        self.log_access(self.streaming_status, seconds, mount.path if mount else self.home,
                        user=self.listener_id or "")
