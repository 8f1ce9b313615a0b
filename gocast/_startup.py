# -*- test-case-name: tests.test_service -*-
"""
Process and port set-up for the service: listening endpoints (the main
ports are required, the SHOUTcast port optional), the open-file limit, and
the check for default passwords.
"""

from __future__ import annotations

import ipaddress
import os
import resource
from typing import Any, List, Optional, Tuple

from twisted.application.service import Service
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python.systemd import ListenFDs

from .config import DEFAULT_PASSWORD, Config


#: Icecast listens with a backlog of 5, so bursts of listeners wait for SYN
#: retries; GoCast takes them at once.
BACKLOG = 1024


def listen_description(config: Config, port: Optional[int] = None) -> str:
    """The Twisted endpoint string for ``server.listen`` and ``server.port``."""
    interface = config.server.listen.replace(":", "\\:")
    return "tcp:port=%d:interface=%s:backlog=%d" % (port or config.server.port, interface, BACKLOG)


class EndpointError(Exception):
    """A ``server.endpoints`` entry GoCast cannot listen on (systemd passed no such socket)."""


def main_endpoints(reactor: Any, config: Config) -> List[Tuple[Any, bool]]:
    """
    Where the front door listens: ``server.endpoints`` when given (socket
    activation, the PROXY protocol), else ``server.listen`` and ``port``;
    each with whether it speaks the PROXY protocol.

    :raises EndpointError: naming the entry and why.
    """
    descriptions = config.server.endpoints or (listen_description(config),)
    endpoints = []
    for description in descriptions:
        try:
            endpoints.append((serverFromString(reactor, description), description.startswith("haproxy:")))
        except (IndexError, KeyError):
            passed = ListenFDs.fromEnvironment().inheritedNamedDescriptors()
            raise EndpointError("server.endpoints: %s: systemd passed no such socket (it passed %s): "
                                "start GoCast from a .socket unit, or listen on tcp:PORT"
                                % (description, ", ".join(sorted(passed)) or "none"))
        except (ValueError, TypeError, AttributeError) as e:
            raise EndpointError("server.endpoints: %s: %s" % (description, e))
    return endpoints


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
    if config.server.endpoints:
        return True  # socket activation or a load balancer: assume the world reaches it
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


def nearest_existing(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path
