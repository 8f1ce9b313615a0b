# -*- test-case-name: tests.test_auth -*-
"""
The gate every listener passes, whatever its protocol: first the mount's
own ``allowed_ips``/``denied_ips``, then its ``auth { type ... }`` backend.

Backends are built from the config when it is applied (start, reload, a
mount changed through the API); a backend that cannot be built (a missing
key or htpasswd file) raises :class:`AuthSetupError` before anything
changed, so a reload is refused and the running config stays. Listeners
already connected keep the admission they got.

A refusal is published on the bus as ``listener.denied`` with the reason
(never a secret); :class:`Admission` remembers which backend admitted a
listener, so that backend is the one told when it leaves.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, Optional, Tuple, Union

import attr
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..config import Config, MountConfig
from ..core.throttle import AuthFailures
from ..outbound import OutboundHttp
from .base import AuthRequest, AuthSetupError, Decision, IAuthenticator
from .basic import BasicAuthenticator
from .callback import HttpAuthenticator, IcecastUrlAuthenticator
from .ip import IpAuthenticator
from .token import TokenAuthenticator


ALLOWED = Decision.allow()


@attr.frozen
class Admission:
    request: AuthRequest
    decision: Decision
    authenticator: Optional[IAuthenticator] = None

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    def left(self, seconds: float) -> None:
        """The admitted listener is gone: tell the backend (Icecast url auth's listener_remove)."""
        if self.allowed and self.authenticator is not None:
            self.authenticator.listener_left(self.request, self.decision, seconds)


class ListenerGate:
    """
    :param http: outbound HTTP for callbacks and JWKS.
    :param now: the wall clock (tokens and time limits are Unix times).
    :param run_in_thread: ``(f, *args) -> Deferred`` for slow checks (bcrypt).
    """

    _log = Logger()

    def __init__(self, bus: Any, http: OutboundHttp, now: Callable[[], float],
                 call_later: Callable[..., Any], run_in_thread: Callable[..., Deferred],
                 failures: Optional[AuthFailures] = None):
        """:param failures: failed logins per client, shared with sources and the admin."""
        self.bus = bus
        self.failures = failures if failures is not None else AuthFailures(now)
        self.http = http
        self.now = now
        self.call_later = call_later
        self.run_in_thread = run_in_thread
        #: Client IDs for HLS players (from the listeners' own sequence, set by
        #: the front door), so url auth's listener_add and listener_remove pair up.
        self.new_client_id: Callable[[], int] = itertools.count(1).__next__
        self._mounts: Dict[str, Tuple[Optional[IpAuthenticator], Optional[IAuthenticator]]] = {}
        #: What each mount's backend was built from.
        self._recipes: Dict[str, Any] = {}

    def configure(self, config: Config) -> None:
        """
        Build every mount's checks; AuthSetupError (naming the mount) leaves
        the old ones in force. A backend whose settings did not change is
        kept, with what it remembers (verified tokens, JWKS, callback
        answers, HLS visits); one that reads a file (``users_file``, a
        ``public_key``) is rebuilt, as a reload is how its file is read
        again. Backends no longer used are closed.
        """
        built: Dict[str, Tuple[Optional[IpAuthenticator], Optional[IAuthenticator]]] = {}
        recipes: Dict[str, Any] = {}
        for path, mount in config.mounts.items():
            recipe = (mount.auth, config.server.hostname, config.server.port)
            try:
                ip = (IpAuthenticator(mount.allowed_ips, mount.denied_ips)
                      if mount.allowed_ips or mount.denied_ips else None)
                backend = self._mounts.get(path, (None, None))[1] if self.reusable(path, recipe) else None
                backend = backend or self.build(config, mount)
            except AuthSetupError as e:
                raise AuthSetupError("mounts.%s.%s" % (path.lstrip("/"), e))
            if ip is not None or backend is not None:
                built[path] = (ip, backend)
                recipes[path] = recipe
        kept = {id(backend) for _, backend in built.values()}
        old, self._mounts, self._recipes = self._mounts, built, recipes
        for _, backend in old.values():
            if backend is not None and id(backend) not in kept:
                backend.close()

    def reusable(self, path: str, recipe: Any) -> bool:
        auth = recipe[0]
        return self._recipes.get(path) == recipe and not (auth.users_file or auth.public_key)

    def build(self, config: Config, mount: MountConfig) -> Optional[IAuthenticator]:
        auth = mount.auth
        if auth.type == "ip":
            return IpAuthenticator(auth.allowed, auth.denied)
        if auth.type == "basic":
            return BasicAuthenticator(auth.users, auth.users_file, auth.realm, self.run_in_thread, self.failures)
        if auth.type == "token":
            return TokenAuthenticator(auth, self.http.get_json, self.now)
        if auth.type == "http":
            return HttpAuthenticator(auth, self.http, self.now, self.call_later, self.client_id)
        if auth.type == "url":
            return IcecastUrlAuthenticator(auth, self.http, self.now, self.call_later,
                                           (config.server.hostname, config.server.port), auth.realm,
                                           self.client_id)
        return None

    def close_all(self) -> None:
        """The server stops: every backend ends what it follows (url auth: HLS players' listener_remove)."""
        for _, backend in self._mounts.values():
            if backend is not None:
                backend.close()

    def tells_departures(self) -> bool:
        """Whether a backend is told when listeners leave (url auth), so a shutdown lets it be told."""
        return any(isinstance(backend, IcecastUrlAuthenticator) for _, backend in self._mounts.values())

    def client_id(self) -> str:
        return str(self.new_client_id())

    def protected(self, mount: str) -> bool:
        return mount in self._mounts

    def authorize(self, request: AuthRequest) -> Union[Admission, Deferred]:
        """
        An Admission, or a Deferred firing with one when the backend must
        wait (a callback, a JWKS fetch, a bcrypt check). Never a failure: a
        bug in a backend refuses the listener. Most checks (a remembered
        token, an address) answer at once, and HLS asks for every segment,
        so that case creates no Deferred.
        """
        ip, backend = self._mounts.get(request.mount, (None, None))
        if ip is not None:
            decision = ip.authorize(request)
            if not decision.allowed:
                return self.admit(request, None, decision)
        if backend is None:
            return self.admit(request, None, ALLOWED)
        try:
            decided = backend.authorize(request)
        except Exception:
            return self.admit(request, backend, self.broken(Failure(), request))
        if isinstance(decided, Deferred):
            return decided.addErrback(self.broken, request).addCallback(
                lambda decision: self.admit(request, backend, decision))
        return self.admit(request, backend, decided)

    def broken(self, failure: Any, request: AuthRequest) -> Decision:
        self._log.failure("{mount}: listener auth failed for {ip}", failure, mount=request.mount, ip=request.ip)
        return Decision.deny(403, "the stream's access check failed; try again later", "internal error")

    def admit(self, request: AuthRequest, backend: Optional[IAuthenticator], decision: Decision) -> Admission:
        if not decision.allowed:
            self.bus.publish("listener.denied", request.mount, ip=request.ip, status=decision.status,
                             reason=decision.log_reason, protocol=request.protocol,
                             user_agent=request.user_agent[:256])
        return Admission(request, decision, backend)
