# -*- test-case-name: tests.test_service -*-
"""
The GoCast service tree: one :class:`GocastService` (a ``MultiService``)
whose children are the listening endpoints, and which owns the shared
parts: event bus, mount registry, metrics, web site, webhooks.

It also owns the two operations that touch all of them: applying a new
configuration (hot reload) and the graceful shutdown (drain, then stop).
"""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import time
from typing import Any, List, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.defer import maybeDeferred
from twisted.internet.endpoints import UNIXServerEndpoint, serverFromString
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import ILogObserver, Logger
from twisted.web.resource import Resource

from ._startup import (
    OptionalListener,
    default_credentials,
    listen_description,
    listens_beyond_loopback,
    main_endpoints,
    nearest_existing,
    raise_open_file_limit,
    shoutcast_port,
)
from ._systemd import sd_notify, state_directory
from ._version import __version__
from .api.keys import USAGE_FLUSH, ApiKeys
from .api.mounts import ApiMounts
from .api.routes import ApiContext
from .auth.gate import ListenerGate
from .config import Config, LoadedConfig, with_transcoding_outputs
from .core.events import EventBus
from .core.registry import MountRegistry
from .core.throttle import AuthFailures
from .dashboard import Dashboard, DashboardAccess, Sessions
from .dashboard.live import LiveStatsResource, StatsFactory, StatsHub
from .cluster.node import ClusterNode
from .cluster.store import RedisStore
from .cluster.streamlist import StreamListFollower
from .cluster.workers import WorkerPool
from .inputs.file import FilePlayers
from .inputs.relay import Relays, tcp_connect
from .observe.history import StatsHistory
from .observe.logs import AccessLog, SwitchableObserver, build_observer, log_events, reopen_logs
from .observe.metrics import Metrics
from .observe.webhooks import Webhooks, treq_post
from .outbound import OutboundHttp
from .outputs.artwork import Artworks
from .outputs.dash import DashOutputs
from .outputs.hls import HlsOutputs
from .outputs.ladder import Ladders
from .outputs.recorder import Recorders
from .outputs.recording_encoder import spawn_encoder
from .outputs.uploader import Uploads
from .outputs.transcode import ffmpeg_missing
from .protocols.frontdoor import FrontDoorFactory
from .protocols.shoutcast import ShoutcastFactory
from .protocols.tls import ReloadableTLS, certificate_options, tls_endpoint
from .reload import Reloader
from .resources.health import HealthState, disk_check
from .resources.root import build_root
from .resources.site import GocastSite
from .state import StateStore, data_dir_in_use, state_path

__all__ = ["GocastService", "default_credentials", "listen_description"]

#: At the very end, how long url auth's listener_remove calls may take, and how often that is checked.
DEPARTURES_WAIT = 1.5
DEPARTURES_POLL = 0.1
#: How often the drain checks whether everyone has left.
DRAIN_POLL = 0.5


class GocastService(MultiService):
    """The root of GoCast's service tree."""

    _log = Logger()

    def __init__(self, loaded: LoadedConfig, reactor: Any = None, run_in_thread: Any = None,
                 log_output: str = "stdout"):
        """
        :param log_output: where lines go when ``logging.output`` is empty:
            where twistd would have put them (:func:`gocast.logs.twistd_log_output`).
        """
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.reactor = reactor
        self.loaded = loaded
        config = loaded.config
        data_dir = self.data_dir = data_dir_in_use(config.server.data_dir, state_directory())
        self.health = HealthState(reactor, {"disk": lambda: disk_check(nearest_existing(data_dir))})
        self.bus = EventBus(time.time, lambda deliver: reactor.callLater(0, deliver))
        log_events(self.bus)
        self.hls = HlsOutputs(time.time, reactor)
        self.dash = DashOutputs(time.time, reactor, hls=self.hls)
        self.recorders = Recorders(time.time, lambda path: os.path.join(self.data_dir, os.path.expanduser(path)),
                                   reactor, run_in_thread or self._in_thread,
                                   lambda encoder, fmt, bitrate: spawn_encoder(reactor, encoder, fmt, bitrate))
        self.recorders.uploads = Uploads(reactor, run_in_thread or self._in_thread, self.bus.publish)
        self.state = open_state(state_path(data_dir, config.server.state_db), run_in_thread or self._in_thread)
        #: Failed logins per address: sources, the admin, the API, the dashboard.
        self.auth_failures = AuthFailures(reactor.seconds)
        self.api_keys = ApiKeys(self.state, reactor.seconds, self.auth_failures)
        self.api_keys.configure(config)
        self.api_mounts = ApiMounts(self.state, lambda: self.loaded.config, self._apply_mounts, time.time)
        self.ladders = Ladders(reactor)
        self.registry = MountRegistry(self.mount_config(config), self.bus, FilePlayers(reactor),
                                      self.attach_outputs, later=lambda f: reactor.callLater(0, f))
        self.ladders.registry = self.registry
        self.hls.variants = self.dash.variants = lambda: self.registry.variants
        for mount in list(self.registry.mounts.values()):
            self.ladders.attach(mount)  # made before the registry was there to give them
        self.recorders.mounts = lambda: self.registry.mounts.values()
        self.artworks = Artworks(self.registry, self.bus, OutboundHttp(reactor).request,
                                 run_in_thread or self._in_thread, lambda: self.data_dir)
        self.gate = ListenerGate(self.bus, OutboundHttp(reactor), reactor.seconds, reactor.callLater,
                                 run_in_thread or self._in_thread, self.auth_failures)
        self.gate.configure(self.registry.config)  # AuthSetupError: the server does not start
        self.front_door = FrontDoorFactory(self.registry, self.bus, None, reactor, self.gate, self.auth_failures)
        self.geo = self.front_door.geo
        self.geo.configure(config.geoip)  # a database that cannot be read is a warning, not a failure
        self.metrics = Metrics(self.registry, self.bus, lambda: self.front_door.connections,
                               lambda: self.front_door.total_connections, time.time(), time.time)
        self.front_door.count_response = self.metrics.count_response
        self.webhooks = Webhooks(self.bus, treq_post(reactor), reactor, self.metrics.count_webhook,
                                 self.metrics.show_webhook)
        self.relays = Relays(self.registry, reactor, tcp_connect(reactor))
        self.relays.configure(config)
        self.metrics.state.relays = lambda: self.relays.running.values()
        self.stream_list = StreamListFollower(self.relays, OutboundHttp(reactor), reactor)
        self.cluster = self.front_door.cluster = ClusterNode(self.registry, self.relays, reactor,
                                                             lambda url: RedisStore(url, reactor))
        self.webhooks.gate = self.cluster
        self.cluster.geo = self.geo
        self.cluster.shared.failures = self.auth_failures
        self.auth_failures.share = self.cluster.shared.failed_login
        for collection in (self.api_keys, self.api_mounts):
            self.cluster.shared.register(collection)
        self.webhooks.configure(config.webhooks)
        self.workers: Optional[WorkerPool] = None
        self.metrics.state.cluster_nodes = lambda: len(self.cluster.nodes) if self.cluster.enabled else None
        self.metrics.node = lambda: self.cluster.node_name
        self.metrics.state.recorders = lambda: self.recorders.recorders.values()
        self.metrics.state.uploads = lambda: self.recorders.uploads
        self.metrics.state.ladders = lambda: self.ladders.ladders.values()
        self.recorders.leads = lambda: not self.cluster.enabled or self.cluster.leads()  # schedules: one node
        self.log_output = log_output
        self.log_observer = SwitchableObserver(build_observer(config.logging, default_output=log_output,
                                                              clock=reactor))
        self.front_door.access_log = AccessLog(config.logging, self.log_observer.access_line, reactor)
        self.reloader = Reloader(lambda: self.loaded, self.apply, self.publish,
                                 run_in_thread or self._in_thread,
                                 restore=lambda previous: self.apply(previous, certificates=False))
        self.history = StatsHistory(self.registry, self.state, self.bus, reactor, reactor.seconds)
        self.history.cluster = self.cluster
        api = ApiContext(self.registry, self.reloader, self.api_keys, self.api_mounts, reactor.seconds,
                         reactor.seconds(), lambda: self.draining, self.history, self.cluster, self.relays,
                         recorders=self.recorders, ladders=self.ladders)
        self.hub = StatsHub(self.registry, self.bus, reactor, reactor.seconds, reactor.seconds())
        self.hub.cluster = self.cluster
        sessions = Sessions(reactor.seconds, lambda: self.config.admin.session_timeout, self.state)
        self.cluster.shared.register(sessions)
        access = DashboardAccess(lambda: self.config, sessions, self.api_keys, reactor.seconds)
        live = Resource()
        self.stats_factory = StatsFactory(self.hub, access.websocket, access.origin_allowed, self.auth_failures)
        self.stats_factory.server = config.server.product  # its handshake's Server header
        live.putChild(b"stats", LiveStatsResource(self.stats_factory))
        root = build_root(self.registry, self.health, reactor, self.metrics, self.reloader, self.hls, api,
                          self.gate, self.geo, {b"dashboard": Dashboard(access, self.registry, self.history,
                                                                        self.api_keys, self.recorders),
                                                b"ws": live},
                          self.auth_failures, dash=self.dash, artworks=self.artworks)
        self._usage_flush = LoopingCall(self.api_keys.flush_usage)
        self._usage_flush.clock = reactor
        self.site = GocastSite(root, reactor, self.front_door.access_log, self.metrics.count_response,
                               lambda: self.registry.config.cors,
                               lambda: self.registry.config.server.trusted_proxies,
                               lambda: self.registry.config.server.product)
        self.front_door.site = self.site
        self.tls: Optional[ReloadableTLS] = None
        self.listeners: List[Any] = []
        self._add_listeners(config)
        if config.server.workers > 1:
            self._add_workers(loaded)
            api.workers = self.workers
        self.draining = False
        self._drain_calls: List[Any] = []

    @property
    def config(self) -> Config:
        return self.registry.config

    def _in_thread(self, f: Any, *args: Any) -> Any:
        return deferToThreadPool(self.reactor, self.reactor.getThreadPool(), f, *args)

    def _add_listeners(self, config: Config) -> None:
        reactor = self.reactor
        for index, (endpoint, proxy_protocol) in enumerate(main_endpoints(reactor, config)):
            doors = self.front_door.behind_proxy_protocol() if proxy_protocol else self.front_door
            main = StreamServerEndpointService(endpoint, doors)
            main._raiseSynchronously = True  # without the main ports there is no server
            self._listen("listener" if index == 0 else "listener-%d" % index, main)
        if config.ssl.enabled:
            self.tls = ReloadableTLS(certificate_options(config))
            tls = StreamServerEndpointService(tls_endpoint(reactor, config, self.tls), self.front_door)
            tls._raiseSynchronously = True
            self._listen("tls", tls)
        if config.shoutcast.enabled:
            port = shoutcast_port(config)
            self._listen("shoutcast", OptionalListener(
                serverFromString(reactor, listen_description(config, port)),
                ShoutcastFactory(self.registry, self.bus, self.site, reactor, auth_failures=self.auth_failures),
                "the SHOUTcast v1 source port %d" % port))

    def _add_workers(self, loaded: LoadedConfig) -> None:
        """Worker processes, and the Unix socket they pull mounts from (this process's front door)."""
        secret = secrets.token_urlsafe(32)
        pool = self.workers = WorkerPool(self.registry, self.bus, self.reactor, loaded.filename or "", secret,
                                         self.front_door)
        self.front_door.workers = pool
        self.front_door.worker_secret = secret
        self.registry.remote_kick = pool.kick
        endpoint = UNIXServerEndpoint(self.reactor, pool.prepare(), mode=0o600)
        self._listen("workers", StreamServerEndpointService(endpoint, self.front_door))

    def _listen(self, name: str, service: Any) -> None:
        service.setName(name)
        service.setServiceParent(self)
        self.listeners.append(service)

    def publish(self, name: str, **data: Any) -> None:
        self.bus.publish(name, None, **data)

    # Hot reload

    def apply(self, config: Config, certificates: bool = True) -> None:
        """
        Put ``config`` in force, for everything that can change while running.

        :param certificates: re-read the TLS files (not when restoring the
            previous config, whose TLS context never left).
        """
        if certificates and self.tls is not None and config.ssl.enabled:
            self.tls.update(certificate_options(config))  # raises before anything changed
        self._apply_mounts(config)
        self.api_keys.configure(config)
        reopen_logs()
        self.log_observer.observer = build_observer(config.logging, default_output=self.log_output,
                                                    clock=self.reactor)
        access_log = AccessLog(config.logging, self.log_observer.access_line, self.reactor)
        self.front_door.access_log = self.site.access_log = access_log
        self.stats_factory.server = config.server.product
        self.webhooks.configure(config.webhooks)
        self.geo.configure(config.geoip)
        self.relays.configure(config)
        self.stream_list.configure(config)
        self.cluster.configure(config)
        if self.workers is not None:
            self.workers.configure(config.server.workers)  # restart-only: the same count; tells them to reload
        self.loaded = LoadedConfig(config, (), self.loaded.filename)

    def _apply_mounts(self, config: Config) -> None:
        """
        The file's config with the API's mounts (at a reload, or when the API
        changed a mount). Listener auth first: it raises AuthSetupError
        (a ValueError) before anything changed when a key or users file is
        unusable.
        """
        mounts = self.mount_config(config)
        self.gate.configure(mounts)
        self.registry.configure(mounts)

    # twistd integration

    def setServiceParent(self, parent: Any) -> None:
        """
        Under twistd, offer the application our log observer, so ``logging
        { ... }`` decides format, level and destination (and reload can
        change them).
        """
        super().setServiceParent(parent)
        set_component = getattr(parent, "setComponent", None)
        if set_component is not None:
            set_component(ILogObserver, self.log_observer)
            self.log_observer.installed = True  # twistd logs through it: access lines may go to it directly

    def startService(self) -> None:
        self._log.info(
            "GoCast {version} starting on {listen}:{port}",
            version=__version__,
            listen=self.config.server.listen,
            port=self.config.server.port,
        )
        for issue in self.loaded.warnings:
            self._log.warn("config: {issue}", issue=str(issue))
        raise_open_file_limit()
        self.warn_default_passwords()
        missing = ffmpeg_missing(self.config)
        if missing:
            self._log.warn("{warning}", warning=missing)
        self.reactor.callWhenRunning(self.install_signal_handlers)
        self.reactor.callWhenRunning(self.tell_systemd_ready)
        self._usage_flush.start(USAGE_FLUSH, now=False)
        self.history.start()
        super().startService()
        if self.workers is not None:
            self.workers.configure(self.config.server.workers)
        self.relays.start()
        self.stream_list.configure(self.config)
        self.cluster.configure(self.config)

    def install_signal_handlers(self) -> None:
        """
        After Twisted's own: SIGHUP reloads; SIGUSR1 reopens the log files
        (logrotate); SIGTERM and SIGINT drain, and a second one stops at once.
        """
        def later(f: Any) -> Any:
            return lambda signum, frame: self.reactor.callFromThread(f)

        signal.signal(signal.SIGHUP, later(self.reloader.reload))
        signal.signal(signal.SIGUSR1, later(self.reopen_logs))
        signal.signal(signal.SIGTERM, later(self.shutdown))
        signal.signal(signal.SIGINT, later(self.shutdown))

    def tell_systemd_ready(self) -> None:
        """
        ``Type=notify``: once the reactor runs, every port is bound (the
        endpoints GoCast listens on all bind in ``privilegedStartService``,
        and a failure there stops the start), so systemd may start what
        depends on GoCast.
        """
        sd_notify("READY=1\nSTATUS=GoCast %s serving" % __version__)

    def reopen_logs(self) -> None:
        reopen_logs()
        self._log.info("log files reopened")

    def warn_default_passwords(self) -> None:
        defaults = default_credentials(self.config)
        if not defaults or not listens_beyond_loopback(self.config):
            return
        bar = "*" * 72
        self._log.warn(
            "\n{bar}\n*** WARNING: the shipped default password is in use for: {names}\n"
            "*** and the server listens on {listen}, beyond this machine.\n"
            "*** Anyone can take over your streams. Set them in the config file.\n{bar}",
            bar=bar,
            names=", ".join(defaults),
            listen=self.config.server.listen,
        )

    # Graceful shutdown

    def shutdown(self) -> None:
        """
        First call: refuse new listeners and sources (503), answer
        ``draining`` on /health/ready (the port stays open for that), and
        let listeners and sources go on for up to ``server.shutdown_timeout``
        (listeners are closed at once with ``drain_listeners false``). A
        second call stops now.
        """
        if self.draining:
            self._log.info("second stop request: stopping now")
            self.finish()
            return
        sd_notify("STOPPING=1\nSTATUS=draining")
        self.draining = self.health.draining = self.front_door.draining = True
        server = self.config.server
        self._log.info("draining: {listeners} listeners and {sources} sources may stay up to {timeout}s",
                       listeners=self.listener_count(), sources=self.registry.sources,
                       timeout=server.shutdown_timeout)
        if not server.drain_listeners:
            self.close_listeners()
        self._drain_calls = [self.reactor.callLater(server.shutdown_timeout, self.finish)]
        self._poll_drain()

    def _poll_drain(self) -> None:
        # HLS clients hold no connection to drain: only connected listeners and sources count.
        connected = sum(m.connected_listeners for m in self.registry.mounts.values())
        if connected == 0 and self.registry.sources - self.relays.streaming == 0:
            self.finish()
        else:
            self._drain_calls.append(self.reactor.callLater(DRAIN_POLL, self._poll_drain))

    def listener_count(self) -> int:
        return sum(m.listeners for m in self.registry.mounts.values())

    def close_listeners(self) -> None:
        if self.workers is not None:
            self.workers.close_all()
        for mount in list(self.registry.mounts.values()):
            for subscriber in list(mount.subscribers):
                transport = getattr(subscriber, "transport", None)
                if transport is not None:
                    transport.loseConnection()

    def finish(self) -> None:
        """Close whatever is left, log the final figures, stop the reactor."""
        for call in self._drain_calls:
            if call.active():
                call.cancel()
        self._drain_calls = []
        for service in self.listeners:
            maybeDeferred(service.stopService)
        self.stop_relays()
        self.front_door.close_all()
        self.gate.close_all()
        sent, received = self.registry.total_bytes()
        self._log.info("stopped: served {listeners} listeners, sent {sent} bytes, received {received} bytes",
                       listeners=self.metrics.listeners_served, sent=sent, received=received)
        if self.gate.tells_departures():
            # Let the closed connections report, then url auth's listener_remove calls go out.
            self.reactor.callLater(DEPARTURES_POLL, self._stop_when_told, self.reactor.seconds() + DEPARTURES_WAIT)
        else:
            self._stop_reactor()

    def _stop_when_told(self, until: float) -> None:
        if self.gate.http.in_flight and self.reactor.seconds() < until:
            self.reactor.callLater(DEPARTURES_POLL, self._stop_when_told, until)
        else:
            self._stop_reactor()

    def _stop_reactor(self) -> None:
        if self.reactor.running:
            self.reactor.stop()

    def mount_config(self, config: Config) -> Config:
        """The mounts in force: the file's, the API's, and a mount for each transcoding output."""
        return with_transcoding_outputs(self.api_mounts.overlay(config))

    def attach_outputs(self, mount: Any) -> None:
        """A mount was made or reconfigured: its HLS output, recorder and transcoders follow its config."""
        self.hls.attach(mount)
        self.dash.attach(mount)
        self.recorders.attach(mount)
        self.ladders.attach(mount)

    def stopService(self) -> Any:
        if not self.draining:
            sd_notify("STOPPING=1")
        self.draining = self.health.draining = True
        self.recorders.close_all()  # every recording file closed and given its name
        self.ladders.stop()
        if self._usage_flush.running:
            self._usage_flush.stop()
        self.history.stop()
        self.api_keys.flush_usage()
        self.stop_relays()
        return super().stopService()

    def stop_relays(self) -> None:
        if self.workers is not None:
            self.workers.stop()
        self.cluster.stop()
        self.stream_list.stop()
        self.relays.stop()


def open_state(path: str, run_in_thread: Any) -> StateStore:
    """The state store at ``path``; a clear error if it cannot be opened."""
    try:
        return StateStore(path, run_in_thread)
    except (OSError, sqlite3.Error) as e:
        raise StateError("cannot open the state database %s: %s; check server.data_dir and server.state_db "
                         "(the folder must be writable by GoCast)" % (path, e))


class StateError(Exception):
    """The state database cannot be opened."""
