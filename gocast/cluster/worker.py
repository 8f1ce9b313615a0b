# -*- test-case-name: tests.test_workers -*-
"""
A worker process (``python -m gocast.cluster.worker``), started by the main
process (:mod:`gocast.cluster.workers`) with the control channel on file
descriptor 3.

It serves the listeners the main process admitted and handed over: each
mount comes from the main process as an on-demand local relay (the main
process's fallbacks and moves happen upstream, in that pull), so the
worker only fans chunks out and writes ICY metadata. It reports counts and
departures; it accepts nothing on its own.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any, Dict, List, Optional

from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.logger import Logger

from ..auth.base import AuthRequest, Decision
from ..auth.gate import Admission
from ..config import Config, default_config, load_config, with_transcoding_outputs
from ..config._kinds import normalise_mount
from ..core.events import EventBus
from ..core.registry import MountRegistry
from ..inputs.relay import RelaySpec, Relays
from ..protocols._http import RequestHead
from ..protocols.frontdoor import FrontDoorFactory
from ..protocols.listener import ListenerSession
from .channel import Channel, ChannelFactory, Message
from .workers import REPORT_EVERY

CONTROL_FD = 3


class _NoAccessLog:
    """The main process writes the access log line of a worker's listener (it is told when one leaves)."""

    def record(self, *args: Any, **kwargs: Any) -> None:
        pass


class WorkerNode:
    _log = Logger()

    def __init__(self, config_path: str, index: int, secret: str, upstream: str, reactor: Any):
        self.config_path = config_path
        self.index = index
        self.secret = secret
        self.upstream = upstream
        self.reactor = reactor
        config = self.read_config()
        self.bus = EventBus(reactor.seconds)
        self.registry = MountRegistry(config, self.bus, later=lambda f: reactor.callLater(0, f))
        self.relays = Relays(self.registry, reactor, self.connect_upstream)
        self.relays.start()
        self.doors = FrontDoorFactory(self.registry, self.bus, None, reactor)
        self.doors.access_log = _NoAccessLog()
        self.doors.geo.configure(config.geoip)
        self.channel: Optional[Channel] = None
        self.last_id = 0
        self._sent: Dict[str, int] = {}
        self.bus.subscribe(self.listener_left, ["listener.disconnect"])

    def connect_upstream(self, host: str, port: int, tls: bool, factory: Any, timeout: float) -> Any:
        return UNIXClientEndpoint(self.reactor, self.upstream, timeout=timeout).connect(factory)

    def start(self) -> None:
        factory = ChannelFactory(self.message, self.lost)
        self.reactor.adoptStreamConnection(CONTROL_FD, socket.AF_UNIX, factory)
        os.close(CONTROL_FD)
        self.channel = factory.channel
        self.channel.send({"type": "ready", "pid": os.getpid()})
        from twisted.internet.task import LoopingCall

        self._report = LoopingCall(self.report)
        self._report.clock = self.reactor
        self._report.start(REPORT_EVERY, now=False)

    def lost(self, channel: Channel) -> None:
        """The main process is gone: so is the reason to exist."""
        if self.reactor.running:
            self.reactor.stop()

    def message(self, channel: Channel, message: Message) -> None:
        kind = message.get("type")
        if kind == "listener":
            self.take(message, channel.take_fd())
        elif kind == "kick":
            self.kick(int(message.get("id", -1)))
        elif kind == "config":
            self.reconfigure()
        elif kind == "close_all":
            for door in list(self.doors.open):
                door.transport.loseConnection()

    # Listeners

    def take(self, message: Message, fd: Optional[int]) -> None:
        if fd is None:
            self._log.error("worker {index}: a listener without its socket", index=self.index)
            return
        listener = int(message["id"])
        self.last_id = max(self.last_id, listener)
        self.channel.send({"type": "took", "id": listener})
        family = socket.AF_INET6 if message.get("family") == int(socket.AF_INET6) else socket.AF_INET
        home = normalise_mount(str(message.get("home") or "")) or "/"
        self.want(home)
        doors = _Remember(self.doors)
        try:
            self.reactor.adoptStreamConnection(fd, family, doors)
        finally:
            os.close(fd)
        door = doors.door
        if door is None:
            return
        head = message["head"]
        request = RequestHead(head["method"], head["target"], head["version"],
                              [(str(k), str(v)) for k, v in head["headers"]], home)
        door.peer = str(message.get("peer") or door.peer)
        door.request_id = str(message.get("request_id") or "")
        session = ListenerSession(door, request)
        session.id = listener
        door.stop_timeout()  # the listener has it for good
        door.delegate = session  # admitted by the main process already: no gate here
        auth = AuthRequest.build(home, door.peer, dict(request.headers), None, str(listener))
        session.admitted(Admission(auth, Decision.allow(message.get("listener_id"), message.get("expires"))))

    def want(self, mount: str) -> None:
        """Pull ``mount`` from the main process while someone here listens."""
        if mount in self.relays.running:
            return
        specs: List[RelaySpec] = [relay.spec for relay in self.relays.running.values()]
        specs.append(RelaySpec("http://main" + mount, mount, on_demand=True, timeout=10.0,
                               node_id="worker-%d" % self.index, cluster_secret=self.secret))
        self.relays.set("main", specs)

    def kick(self, listener: int) -> None:
        for mount in self.registry.mounts.values():
            for subscriber in list(mount.subscribers):
                if getattr(subscriber, "id", None) == listener:
                    subscriber.end("kicked")
                    return

    def listener_left(self, event: Any) -> None:
        if self.channel is not None:
            self.channel.send({"type": "left", "id": event.data.get("id"), "mount": event.mount,
                               "duration": event.data.get("duration", 0), "bytes": event.data.get("bytes_sent", 0)})

    def report(self) -> None:
        mounts = {}
        for path, mount in self.registry.mounts.items():
            sent = mount.total_bytes_sent
            delta = sent - self._sent.get(path, 0)
            self._sent[path] = sent
            if mount.connected_listeners or delta:
                mounts[path] = {"listeners": mount.connected_listeners, "bytes": delta}
        if self.channel is not None:
            self.channel.send({"type": "counts", "mounts": mounts, "last_id": self.last_id})

    def read_config(self) -> Config:
        """The main process's config file (its embedded defaults when it has none), with transcoding outputs' mounts."""
        return with_transcoding_outputs(load_config(self.config_path).config if self.config_path
                                        else default_config())

    def reconfigure(self) -> None:
        try:
            config = self.read_config()
        except Exception as e:
            self._log.error("worker {index}: cannot read the config again: {why}", index=self.index, why=str(e))
            return
        self.registry.configure(config)
        self.doors.geo.configure(config.geoip)


class _Remember:
    """The front door factory, keeping the one door it builds for an adopted socket."""

    def __init__(self, doors: FrontDoorFactory):
        self.doors = doors
        self.door: Any = None

    def doStart(self) -> None:
        pass

    def doStop(self) -> None:
        pass

    def buildProtocol(self, addr: Any) -> Any:
        self.door = self.doors.buildProtocol(addr)
        return self.door


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="A GoCast worker process (started by the main process).")
    parser.add_argument("--config", required=True)
    parser.add_argument("--index", type=int, default=0)
    args = parser.parse_args(argv)
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver, FilteringLogObserver, \
        LogLevelFilterPredicate, LogLevel

    predicate = LogLevelFilterPredicate(LogLevel.warn)
    globalLogBeginner.beginLoggingTo([FilteringLogObserver(textFileLogObserver(sys.stdout), [predicate])],
                                     redirectStandardIO=False)
    node = WorkerNode(args.config, args.index, os.environ.get("GOCAST_WORKER_SECRET", ""),
                      os.environ.get("GOCAST_WORKER_UPSTREAM", ""), reactor)
    reactor.callWhenRunning(node.start)
    reactor.run()


if __name__ == "__main__":
    main()
