# -*- test-case-name: tests.test_auth -*-
"""
Listener auth by asking another server.

- ``type http``: a JSON POST with the listener's ip, mount, user_agent,
  headers and the token or credentials it sent; 200 allows (a JSON reply may
  name the ``listener_id`` and an ``expires`` Unix time), 401/403 deny.
- ``type url``: Icecast's URL auth, so existing Icecast auth backends keep
  working: a form POST ``action=listener_add`` (server, port, client, mount,
  user, pass, ip, agent); allowed when the reply has ``icecast-auth-user: 1``
  (or Icecast 2.5's ``X-Icecast-Auth-Result: ok``), with an optional time
  limit and message; ``action=listener_remove`` (with the duration) once the
  listener leaves, retried if the backend cannot be reached.

A callback that fails or takes longer than ``timeout`` gives ``on_error``
(deny by default). Decisions are reused for ``cache_ttl``.

An HLS player has no connection: it asks for a playlist or segment every
few seconds. Its first allowed request starts a *visit*, which lasts while
it keeps asking (the backend is asked once, as for an ICY connection);
:data:`HLS_IDLE` seconds without a request, or the decision's time limit,
end the visit, and url auth then gets its ``listener_remove``, so a
backend counting listeners counts an HLS player once. Requests arriving
while the callback is being asked wait for that one answer.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlencode

import attr
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from ..outbound import HttpReply, OutboundHttp
from .base import AuthRequest, Decision, IAuthenticator

#: Seconds without a request after which an HLS visit has ended.
HLS_IDLE = 30.0
#: Decisions kept, and HLS visits followed.
MAX_CACHED = 10000
#: Attempts at sending listener_remove.
REMOVE_ATTEMPTS = 3

UNAVAILABLE = "the stream's access check is unavailable; try again later"
DENIED = "access to this stream was refused"


def _cache_key(request: AuthRequest) -> Tuple[Any, ...]:
    secret = hashlib.sha256((request.password or "").encode("utf-8")).hexdigest() if request.password else ""
    return (request.mount, request.protocol, request.ip, request.user_agent, request.token, request.user, secret)


@attr.s(auto_attribs=True)
class HlsVisit:
    """One HLS player's time on a mount, from its first allowed request to its last."""

    request: AuthRequest
    decision: Decision
    started: float
    last: float

    def lapsed(self, now: float) -> bool:
        expires = self.decision.expires
        return now - self.last > HLS_IDLE or (expires is not None and now >= expires)


class CallbackAuthenticator:
    """What both callback types share: the POST, the deadline, on_error, the cache and HLS visits."""

    _log = Logger()

    def __init__(self, config: Any, http: OutboundHttp, now: Callable[[], float], call_later: Callable[..., Any],
                 client_id: Callable[[], str] = lambda: ""):
        self.url = config.url
        self.client_id = client_id
        self.timeout = config.timeout
        self.cache_ttl = config.cache_ttl
        self.on_error = config.on_error
        self.http = http
        self.now = now
        self.call_later = call_later
        self._cache: Dict[Tuple[Any, ...], Tuple[Decision, float]] = {}
        #: HLS requests waiting for the answer to the same question.
        self._asking: Dict[Tuple[Any, ...], List[Deferred]] = {}
        self._visits: Dict[Tuple[Any, ...], HlsVisit] = {}
        self._sweep: Optional[Any] = None

    def authorize(self, request: AuthRequest) -> Any:
        key = _cache_key(request)
        if request.protocol == "hls":
            visit = self._visits.get(key)
            if visit is not None:
                now = self.now()
                if not visit.lapsed(now):
                    visit.last = now
                    return visit.decision
                self.end_visit(key)
        cached = self._cache.get(key)
        if cached is not None:
            decision, until = cached
            if self.now() < until:
                return decision
            del self._cache[key]
        if request.protocol == "hls":
            # The visit this may start gets a client ID, as a connection has one.
            return self.ask_once(key, attr.evolve(request, client=request.client or self.client_id()))
        return self.ask_backend(key, request)

    def ask_backend(self, key: Tuple[Any, ...], request: AuthRequest) -> Deferred:
        body, headers = self.ask(request)
        asked = self.http.post(self.url, body, headers, self.timeout)
        return asked.addCallback(self.judge).addCallbacks(lambda decision: self.remember(key, request, decision),
                                                          lambda failure: self.failed(request, failure))

    def ask_once(self, key: Tuple[Any, ...], request: AuthRequest) -> Deferred:
        waiter: Deferred = Deferred()
        if key in self._asking:
            self._asking[key].append(waiter)
            return waiter
        self._asking[key] = [waiter]

        def answered(decision: Decision) -> None:
            for each in self._asking.pop(key):
                each.callback(decision)

        self.ask_backend(key, request).addCallback(answered)
        return waiter

    def remember(self, key: Tuple[Any, ...], request: AuthRequest, decision: Decision) -> Decision:
        if decision.allowed and request.protocol == "hls":
            self.start_visit(key, request, decision)
        elif self.cache_ttl > 0:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = (decision, self.now() + self.cache_ttl)
        return decision

    def start_visit(self, key: Tuple[Any, ...], request: AuthRequest, decision: Decision) -> None:
        if len(self._visits) >= MAX_CACHED:
            self.end_lapsed()
            if len(self._visits) >= MAX_CACHED:
                # Admitted, but not followed: its next request asks again.
                self._log.warn("{mount}: more than {n} HLS visits followed", mount=request.mount, n=MAX_CACHED)
                return
        now = self.now()
        self._visits[key] = HlsVisit(request, decision, now, now)
        if self._sweep is None:
            self._sweep = self.call_later(HLS_IDLE / 2, self.sweep)

    def sweep(self) -> None:
        """End the visits that lapsed; look again while any remain."""
        self._sweep = None
        self.end_lapsed()
        if self._visits:
            self._sweep = self.call_later(HLS_IDLE / 2, self.sweep)

    def end_lapsed(self) -> None:
        now = self.now()
        for key in [k for k, visit in self._visits.items() if visit.lapsed(now)]:
            self.end_visit(key)

    def end_visit(self, key: Tuple[Any, ...]) -> None:
        visit = self._visits.pop(key)
        self.listener_left(visit.request, visit.decision, visit.last - visit.started)

    def close(self) -> None:
        """Replaced or removed by a reload: end every HLS visit (their players are asked anew)."""
        for key in list(self._visits):
            self.end_visit(key)
        if self._sweep is not None and self._sweep.active():
            self._sweep.cancel()
        self._sweep = None

    def failed(self, request: AuthRequest, failure: Any) -> Decision:
        why = "auth callback failed: %s" % (failure.getErrorMessage() or failure.type.__name__)
        self._log.warn("{mount}: {why} for {ip}; on_error {on_error}", mount=request.mount, why=why,
                       ip=request.ip, on_error=self.on_error)
        if self.on_error == "allow":
            return Decision.allow()
        return Decision.deny(403, UNAVAILABLE, why)

    def listener_left(self, request: AuthRequest, decision: Decision, seconds: float) -> None:
        """Only url auth tells its backend."""

    def ask(self, request: AuthRequest) -> Tuple[bytes, Dict[str, str]]:
        raise NotImplementedError

    def judge(self, reply: HttpReply) -> Decision:
        raise NotImplementedError


@implementer(IAuthenticator)
class HttpAuthenticator(CallbackAuthenticator):
    """``type http``: JSON in, status out."""

    def ask(self, request: AuthRequest) -> Tuple[bytes, Dict[str, str]]:
        body = {"ip": request.ip, "mount": request.mount, "user_agent": request.user_agent,
                "headers": request.headers, "token": request.token, "user": request.user,
                "password": request.password, "client": request.client, "protocol": request.protocol}
        return json.dumps(body).encode("utf-8"), {"Content-Type": "application/json"}

    def judge(self, reply: HttpReply) -> Decision:
        if reply.code == 200:
            details = _json_object(reply)
            who = details.get("listener_id")
            expires = details.get("expires")
            return Decision.allow(
                listener_id=str(who)[:128] if who is not None else None,
                expires=float(expires) if isinstance(expires, (int, float)) and not isinstance(expires, bool)
                else None)
        if reply.code in (401, 403):
            challenge = reply.headers.get("www-authenticate") if reply.code == 401 else None
            return Decision.deny(reply.code, DENIED, "auth callback answered %d" % reply.code, challenge)
        raise ValueError("the auth callback answered %d" % reply.code)


def _json_object(reply: HttpReply) -> Dict[str, Any]:
    if not reply.body.strip():
        return {}
    try:
        value = reply.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@implementer(IAuthenticator)
class IcecastUrlAuthenticator(CallbackAuthenticator):
    """``type url``: Icecast's listener_add / listener_remove."""

    def __init__(self, config: Any, http: OutboundHttp, now: Callable[[], float], call_later: Callable[..., Any],
                 server: Tuple[str, int], realm: str, client_id: Callable[[], str] = lambda: ""):
        super().__init__(config, http, now, call_later, client_id)
        self.server = server
        self.challenge = 'Basic realm="%s"' % realm.replace('"', "'")

    def form(self, action: str, request: AuthRequest, **extra: Any) -> Tuple[bytes, Dict[str, str]]:
        fields = [("action", action), ("server", self.server[0]), ("port", str(self.server[1])),
                  ("client", request.client or ""), ("mount", request.mount), ("user", request.user or ""),
                  ("pass", request.password or ""), ("ip", request.ip), ("agent", request.user_agent)]
        fields += [(k, str(v)) for k, v in extra.items()]
        return urlencode(fields).encode("ascii"), {"Content-Type": "application/x-www-form-urlencoded"}

    def ask(self, request: AuthRequest) -> Tuple[bytes, Dict[str, str]]:
        return self.form("listener_add", request)

    def judge(self, reply: HttpReply) -> Decision:
        headers = reply.headers
        allowed = headers.get("icecast-auth-user", "").strip().startswith("1") or (
            200 <= reply.code < 300 and headers.get("x-icecast-auth-result", "").strip().lower() == "ok")
        message = headers.get("icecast-auth-message") or headers.get("x-icecast-auth-message") or ""
        if allowed:
            limit = headers.get("icecast-auth-timelimit") or headers.get("x-icecast-auth-timelimit") or ""
            seconds = int(limit) if limit.strip().isdigit() else 0
            return Decision.allow(expires=self.now() + seconds if seconds else None)
        if not 200 <= reply.code < 300 and "x-icecast-auth-result" not in headers:
            raise ValueError("the auth URL answered %d" % reply.code)
        reason = message.strip()[:200] or DENIED
        return Decision.deny(401, reason, "auth URL refused: %s" % (message.strip()[:200] or "no message"),
                             self.challenge)

    def listener_left(self, request: AuthRequest, decision: Decision, seconds: float) -> None:
        """``listener_remove``, once; retried with a growing pause if the backend cannot be reached."""
        body, headers = self.form("listener_remove", request, duration=int(seconds))
        self._send_remove(request, body, headers, 1)

    def _send_remove(self, request: AuthRequest, body: bytes, headers: Dict[str, str], attempt: int) -> None:
        def failed(failure: Any) -> None:
            if attempt >= REMOVE_ATTEMPTS:
                self._log.warn("{mount}: listener_remove for client {client} not delivered: {why}",
                               mount=request.mount, client=request.client, why=failure.getErrorMessage())
                return
            self.call_later(2.0 ** attempt, self._send_remove, request, body, headers, attempt + 1)

        self.http.post(self.url, body, headers, self.timeout).addCallbacks(lambda reply: None, failed)


__all__ = ["HttpAuthenticator", "IcecastUrlAuthenticator"]
