# -*- test-case-name: tests.test_workers -*-
"""
Worker processes: all the cores of one machine (``server { workers N }``).

The main process keeps the port, the sources, the admin, the API and every
decision about a listener (auth, limits, fallback). Once a listener is
admitted, its socket goes to the worker with the fewest listeners, over a
Unix socket pair (``SCM_RIGHTS``); the worker pulls the mount from the main
process as a local relay (a Unix socket, the relay code of
:mod:`gocast.inputs.relay`) and fans it out. So the main process writes
each chunk once per worker instead of once per listener.

Workers report their listener counts and bytes every second, and each
listener's departure: the main process's statistics, metrics, events,
access log and limits cover them. Kicks are forwarded. A worker that dies
is started again; its listeners reconnect and land on the others.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from typing import Any, Dict, List, Optional, Tuple

import attr
from twisted.internet import protocol
from twisted.internet.tcp import Server as TcpServer
from twisted.logger import Logger

from .channel import Channel, ChannelFactory, Message

#: How often workers report their counts (seconds).
REPORT_EVERY = 1.0
#: A worker that died is started again after this long (and never faster than this).
RESTART_DELAY = 1.0


@attr.s(slots=True, auto_attribs=True)
class Handed:
    """
    A listener a worker serves, as the main process remembers it: what its
    departure needs (the auth backend told, the event, the access-log
    line), and nothing of its connection.
    """

    worker: "Worker"
    mount: str
    started: float
    address_key: Optional[str]
    peer: str
    listener_id: Optional[str]
    admission: Any
    #: The request, for the access log: method, target, version, referer, user agent, request id.
    request: Tuple[str, str, str, str, str, str]

    @classmethod
    def of(cls, session: Any, worker: "Worker", started: float, address_key: Optional[str]) -> "Handed":
        head = session.head
        return cls(worker, session.home, started, address_key, session.peer, session.listener_id,
                   session.admission, (head.method, head.target, head.version, head.get("referer") or "",
                                       session.user_agent, session.door.request_id))


class Worker(protocol.ProcessProtocol):
    _log = Logger()

    def __init__(self, pool: "WorkerPool", index: int):
        self.pool = pool
        self.index = index
        self.channel: Optional[Channel] = None
        self.ready = False
        self.ended = False
        #: Listeners per mount, as last reported, plus those handed since.
        self.counts: Dict[str, int] = {}
        #: Listeners handed over since the worker's last report (id -> mount), to add to what it reports.
        self.in_flight: Dict[int, str] = {}
        self._line = b""

    def outReceived(self, data: bytes) -> None:
        lines = (self._line + data).split(b"\n")
        self._line = lines.pop()[-4096:]
        for line in lines:
            if line.strip():
                self._log.info("worker {index}: {line}", index=self.index,
                               line=line.decode("utf-8", "replace")[:2000])

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.ended = True
        self.pool.worker_ended(self, reason)


class WorkerPool:
    """The worker processes, and the listeners the main process handed to them."""

    _log = Logger()

    def __init__(self, registry: Any, bus: Any, reactor: Any, config_path: str, secret: str,
                 front_door: Any):
        self.registry = registry
        self.bus = bus
        self.reactor = reactor
        self.config_path = config_path
        self.secret = secret
        self.front_door = front_door
        self.workers: List[Worker] = []
        self.handed: Dict[int, Handed] = {}
        #: Our copy of each socket on its way to a worker, by listener: closed once the worker says it
        #: has it, or when the worker is gone (never on a timer: it may still wait in the write buffer).
        self._pending_fds: Dict[int, Tuple[int, Worker]] = {}
        self.wanted = 1
        self.stopping = False
        self.folder = ""
        #: The Unix socket the workers pull mounts from (the main process listens on it).
        self.socket_path = ""

    @property
    def active(self) -> bool:
        return any(w.ready for w in self.workers)

    def prepare(self) -> str:
        """The Unix socket path the main process must listen on for its workers' pulls."""
        if not self.folder:
            self.folder = tempfile.mkdtemp(prefix="gocast-workers-")
            self.socket_path = os.path.join(self.folder, "main.sock")
        return self.socket_path

    def configure(self, count: int) -> None:
        """Run ``count`` workers (1: none, the main process serves everyone)."""
        self.wanted = count if count > 1 else 0
        while len(self.workers) < self.wanted:
            self.start_worker(len(self.workers))
        for worker in self.workers[self.wanted:]:
            self.stop_worker(worker)
        self.workers = self.workers[: self.wanted]
        for worker in self.workers:
            if worker.channel is not None:
                worker.channel.send({"type": "config"})

    def start_worker(self, index: int, replace: Optional[Worker] = None) -> Worker:
        worker = Worker(self, index)
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = dict(os.environ, GOCAST_WORKER_SECRET=self.secret, GOCAST_WORKER_UPSTREAM=self.socket_path,
                   PYTHONUNBUFFERED="1")
        argv = [sys.executable, "-m", "gocast.cluster.worker", "--config", self.config_path, "--index", str(index)]
        try:
            self.reactor.spawnProcess(worker, sys.executable, argv, env=env,
                                      childFDs={0: "w", 1: "r", 2: "r", 3: theirs.fileno()})
        finally:
            theirs.close()
        factory = ChannelFactory(lambda channel, message: self.message(worker, message),
                                 lambda channel: self.channel_lost(worker))
        self.reactor.adoptStreamConnection(mine.fileno(), socket.AF_UNIX, factory)
        mine.close()
        worker.channel = factory.channel
        if replace is not None and replace in self.workers:
            self.workers[self.workers.index(replace)] = worker
        elif replace is None:
            self.workers.append(worker)
        self._log.info("worker {index} started (pid {pid})", index=index,
                       pid=getattr(worker.transport, "pid", "?"))
        return worker

    def stop_worker(self, worker: Worker) -> None:
        worker.ready = False
        if not worker.ended and worker.transport is not None:
            try:
                worker.transport.signalProcess("TERM")
            except Exception:  # already gone
                pass

    def stop(self) -> None:
        self.stopping = True
        for worker in self.workers:
            self.stop_worker(worker)
        self.workers = []
        for fd, _ in self._pending_fds.values():
            os.close(fd)
        self._pending_fds = {}
        if self.folder:
            for name in os.listdir(self.folder):
                os.unlink(os.path.join(self.folder, name))
            os.rmdir(self.folder)
            self.folder = ""

    def status(self) -> List[Dict[str, Any]]:
        """Each worker: its process, whether it takes listeners, and how many it serves."""
        return [{"index": w.index, "pid": getattr(w.transport, "pid", None), "ready": w.ready,
                 "listeners": sum(w.counts.values())} for w in self.workers]

    # Handing listeners over

    def take(self, session: Any, mount: Any) -> bool:
        """
        Give an admitted listener to a worker; False when none can take it
        (no worker ready, or a connection that cannot move: TLS, PROXY
        protocol, a Unix socket), and the main process serves it.
        """
        transport = session.transport
        if type(transport) is not TcpServer or session.head.method != "GET":
            return False
        handle = transport.getHandle()
        if handle.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        ready = [w for w in self.workers if w.ready and w.channel is not None]
        if not ready:
            return False
        worker = min(ready, key=lambda w: (sum(w.counts.values()), w.index))
        head = session.head
        decision = session.admission.decision if session.admission is not None else None
        fd = os.dup(handle.fileno())
        worker.channel.send({
            "type": "listener", "id": session.id, "home": session.home, "mount": mount.path,
            "peer": session.peer, "family": int(handle.family), "request_id": session.door.request_id,
            "head": {"method": head.method, "target": head.target, "version": head.version,
                     "headers": head.headers},
            "listener_id": decision.listener_id if decision is not None else None,
            "expires": decision.expires if decision is not None else None,
        }, fd)
        self._pending_fds[session.id] = (fd, worker)
        door = session.door
        key, door.counted_as = door.counted_as, None  # the worker's listener still counts for its address
        # Counted under the mount asked for, as the worker counts it (its relay of that mount carries
        # whatever the main process serves there, fallbacks included).
        home = session.home
        self.handed[session.id] = Handed.of(session, worker, self.reactor.seconds(), key)
        worker.in_flight[session.id] = home
        worker.counts[home] = worker.counts.get(home, 0) + 1
        self.front_door.remote_connections += 1
        self.refresh(home)
        self.bus.publish("listener.connect", mount.path, id=session.id, ip=session.peer,
                         user_agent=session.user_agent, listeners=mount.listeners, listener_id=session.listener_id,
                         worker=worker.index)
        # The worker holds the socket now: close ours without a shutdown, which would end theirs too.
        transport._shouldShutdown = False
        transport.loseConnection()
        return True

    def _close_fd(self, listener: int) -> None:
        pending = self._pending_fds.pop(listener, None)
        if pending is not None:
            os.close(pending[0])

    def kick(self, mount: str, listener_id: str) -> bool:
        """Disconnect a listener a worker serves (``listener_id`` as the admin and the API take it)."""
        listener = int(listener_id) if listener_id.isdigit() else -1
        handed = self.handed.get(listener)
        if handed is None or handed.worker.channel is None or handed.mount != mount:
            return False
        handed.worker.channel.send({"type": "kick", "id": listener})
        return True

    def close_all(self) -> None:
        for worker in self.workers:
            if worker.channel is not None:
                worker.channel.send({"type": "close_all"})

    # What workers tell

    def message(self, worker: Worker, message: Message) -> None:
        kind = message.get("type")
        if kind == "ready":
            worker.ready = True
            self._log.info("worker {index} ready", index=worker.index)
        elif kind == "took":
            self._close_fd(int(message.get("id", -1)))
        elif kind == "counts":
            self.counted(worker, message)
        elif kind == "left":
            self.left(int(message.get("id", -1)), float(message.get("duration", 0)),
                      int(message.get("bytes", 0)), str(message.get("mount") or ""))

    def counted(self, worker: Worker, message: Message) -> None:
        mounts = message.get("mounts") or {}
        before = set(worker.counts)
        last = int(message.get("last_id", 0))
        worker.in_flight = {listener: path for listener, path in worker.in_flight.items() if listener > last}
        worker.counts = {}
        for path, figures in mounts.items():
            worker.counts[path] = int(figures.get("listeners", 0))
            mount = self.registry.get(path)
            if mount is not None:
                mount.bytes_sent += int(figures.get("bytes", 0))
        for path in worker.in_flight.values():  # handed since the worker counted: still to count there
            worker.counts[path] = worker.counts.get(path, 0) + 1
        for path in before | set(worker.counts):
            self.refresh(path)

    def refresh(self, path: str) -> None:
        mount = self.registry.get(path)
        if mount is not None:
            mount.remote_listeners = sum(w.counts.get(path, 0) for w in self.workers)
            mount.note_peak()

    def left(self, listener: int, duration: float, sent: int, mount_path: str) -> None:
        handed = self.handed.pop(listener, None)
        if handed is None:
            return
        handed.worker.in_flight.pop(listener, None)
        self._close_fd(listener)
        doors = self.front_door
        doors.remote_connections -= 1
        if handed.address_key is not None:
            counts = doors.per_address
            counts[handed.address_key] = counts.get(handed.address_key, 1) - 1
            if counts[handed.address_key] <= 0:
                del counts[handed.address_key]
        if handed.admission is not None:
            handed.admission.left(duration)
        path = mount_path or handed.mount
        self.bus.publish("listener.disconnect", path, id=listener, ip=handed.peer, duration=duration,
                         bytes_sent=sent, listener_id=handed.listener_id)
        method, target, version, referer, agent, request_id = handed.request
        doors.access_log.record(handed.peer, method, target, version, 200, sent, referer, agent, duration,
                                request_id, path, user=handed.listener_id or "")

    def channel_lost(self, worker: Worker) -> None:
        """The worker stops when its channel closes; it is started again when its process has ended."""
        worker.ready = False
        if not self.stopping and not worker.ended:
            self._log.warn("worker {index}: control channel closed", index=worker.index)

    def worker_ended(self, worker: Worker, reason: Any) -> None:
        worker.ready = False
        for listener, (_, owner) in list(self._pending_fds.items()):
            if owner is worker:
                self._close_fd(listener)
        for listener, handed in list(self.handed.items()):
            if handed.worker is worker:
                self.left(listener, self.reactor.seconds() - handed.started, 0, handed.mount)
        paths = set(worker.counts)
        worker.counts = {}
        for path in paths:
            self.refresh(path)
        if self.stopping or worker not in self.workers:
            return
        self._log.warn("worker {index} ended ({why}); starting it again in {delay}s", index=worker.index,
                       why=reason.getErrorMessage(), delay=RESTART_DELAY)
        self.reactor.callLater(RESTART_DELAY, self._restart, worker)

    def _restart(self, worker: Worker) -> None:
        if not self.stopping and worker in self.workers:
            self.start_worker(worker.index, replace=worker)
