# -*- test-case-name: tests.test_service -*-
"""
The GoCast service tree: one :class:`GocastService` (a ``MultiService``)
whose children are the named parts of the server and, added last so they
stop first, the listening endpoints.
"""

from __future__ import annotations

import ipaddress
import time
import os
import resource
from typing import Any, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet.endpoints import serverFromString
from twisted.logger import ILogObserver, Logger

from ._version import __version__
from .config import DEFAULT_PASSWORD, Config, LoadedConfig
from .core.events import EventBus
from .core.registry import MountRegistry
from .logs import build_observer, log_events
from .metrics import Metrics
from .playout.file import FilePlayers
from .protocols.frontdoor import FrontDoorFactory
from .protocols.shoutcast import ShoutcastFactory
from .protocols.tls import tls_endpoint
from .resources.health import HealthState, disk_check
from .resources.root import build_root
from .resources.site import GocastSite
from .webhooks import Webhook, treq_post


#: Icecast listens with a backlog of 5, so bursts of listeners wait for SYN
#: retries; GoCast takes them at once.
BACKLOG = 1024


def listen_description(config: Config, port: Optional[int] = None) -> str:
    """The Twisted endpoint string for ``server.listen`` and ``server.port``."""
    interface = config.server.listen.replace(":", "\\:")
    return "tcp:port=%d:interface=%s:backlog=%d" % (port or config.server.port, interface, BACKLOG)


def shoutcast_port(config: Config) -> int:
    return config.shoutcast.port or config.server.port + 1


class OptionalListener(Service):
    """
    A listening port the server can run without (the SHOUTcast port): if it
    cannot be opened, that is logged and everything else carries on.
    """

    _log = Logger()

    def __init__(self, endpoint: Any, factory: Any, what: str):
        self.endpoint = endpoint
        self.factory = factory
        self.what = what
        self.port: Any = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self.endpoint.listen(self.factory).addCallbacks(self._listening, self._failed)

    def _listening(self, port: Any) -> None:
        self.port = port

    def _failed(self, failure: Any) -> None:
        self._log.error("{what} is off: {why}", what=self.what, why=failure.getErrorMessage())

    def stopService(self) -> Any:
        super().stopService()
        port, self.port = self.port, None
        return port.stopListening() if port is not None else None


def listens_beyond_loopback(config: Config) -> bool:
    try:
        return not ipaddress.ip_address(config.server.listen).is_loopback
    except ValueError:
        return True  # a host name: assume it is reachable


def default_credentials(config: Config) -> list:
    """Names of the credentials still set to the shipped default password."""
    auth = config.auth
    names = [
        name
        for name in ("source_password", "relay_password", "admin_password")
        if getattr(auth, name) == DEFAULT_PASSWORD
    ]
    names += [
        "mounts.%s.password" % mount.lstrip("/")
        for mount, cfg in config.mounts.items()
        if cfg.password == DEFAULT_PASSWORD
    ]
    return names


def raise_open_file_limit() -> int:
    """Every listener is a file descriptor: allow as many as the hard limit does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            return soft
    return hard


def _nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path


class GocastService(MultiService):
    """The root of GoCast's service tree."""

    _log = Logger()

    def __init__(self, loaded: LoadedConfig, reactor: Any = None):
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor as _reactor

            reactor = _reactor
        self.reactor = reactor
        self.loaded = loaded
        self.config = loaded.config
        data_dir = self.config.server.data_dir
        self.health = HealthState(reactor, {"disk": lambda: disk_check(_nearest_existing(data_dir))})
        self.bus = EventBus(time.time, lambda deliver: reactor.callLater(0, deliver))
        log_events(self.bus)
        self.registry = MountRegistry(self.config, self.bus, FilePlayers(reactor))
        self.front_door = FrontDoorFactory(self.config, self.registry, self.bus, None, reactor)
        self.metrics = Metrics(self.registry, self.bus, lambda: self.front_door.connections,
                               lambda: self.front_door.total_connections, time.time(), time.time)
        self.front_door.count_response = self.metrics.count_response
        post = treq_post(reactor)
        for name, webhook_config in self.config.webhooks.items():
            self.metrics.show_webhook(name)
            self.bus.subscribe(Webhook(name, webhook_config, post, reactor, self.metrics.count_webhook))
        root = build_root(self.registry, self.config, self.health, reactor, self.metrics)
        self.site = GocastSite(root, reactor, self.front_door.access_log, self.metrics.count_response)
        self.front_door.site = self.site
        self.endpoint_service = StreamServerEndpointService(
            serverFromString(reactor, listen_description(self.config)), self.front_door
        )
        # Without the main port there is no server: fail at start-up.
        self.endpoint_service._raiseSynchronously = True
        self.endpoint_service.setName("listener")
        self.endpoint_service.setServiceParent(self)
        if self.config.ssl.enabled:
            tls = StreamServerEndpointService(tls_endpoint(reactor, self.config), self.front_door)
            tls._raiseSynchronously = True
            tls.setName("tls")
            tls.setServiceParent(self)
        if self.config.shoutcast.enabled:
            port = shoutcast_port(self.config)
            shoutcast = OptionalListener(
                serverFromString(reactor, listen_description(self.config, port)),
                ShoutcastFactory(self.config, self.registry, self.bus, self.site, reactor),
                "the SHOUTcast v1 source port %d" % port)
            shoutcast.setName("shoutcast")
            shoutcast.setServiceParent(self)

    def setServiceParent(self, parent: Any) -> None:
        """
        Under twistd, offer the application our log observer, so ``logging
        { ... }`` decides format, level and destination.
        """
        super().setServiceParent(parent)
        set_component = getattr(parent, "setComponent", None)
        if set_component is not None:
            set_component(ILogObserver, build_observer(self.config.logging))

    def startService(self) -> None:
        self._log.info(
            "GoCast {version} starting on {listen}:{port} (config: {source})",
            version=__version__,
            listen=self.config.server.listen,
            port=self.config.server.port,
            source=self.loaded.filename or "built-in defaults",
        )
        for issue in self.loaded.warnings:
            self._log.warn("config: {issue}", issue=str(issue))
        raise_open_file_limit()
        self.warn_default_passwords()
        super().startService()

    def stopService(self) -> Optional[Any]:
        self.health.draining = True
        return super().stopService()

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
