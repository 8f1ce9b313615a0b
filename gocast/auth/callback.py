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
(deny by default). Decisions are reused for ``cache_ttl``; an HLS player
asks for a playlist or segment every few seconds, so its allowed decision
is reused for at least :data:`HLS_REUSE` whatever the ``cache_ttl``, and
its requests that arrive while the callback is being asked wait for that
one answer instead of asking again.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable, Dict, List, Tuple
from urllib.parse import urlencode

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from ..outbound import HttpReply, OutboundHttp
from .base import AuthRequest, Decision, IAuthenticator

#: Seconds an HLS client's allowed decision is reused at least.
HLS_REUSE = 30.0
#: Decisions kept.
MAX_CACHED = 10000
#: Attempts at sending listener_remove.
REMOVE_ATTEMPTS = 3

UNAVAILABLE = "the stream's access check is unavailable; try again later"
DENIED = "access to this stream was refused"


def _cache_key(request: AuthRequest) -> Tuple[Any, ...]:
    secret = hashlib.sha256((request.password or "").encode("utf-8")).hexdigest() if request.password else ""
    return (request.mount, request.protocol, request.ip, request.user_agent, request.token, request.user, secret)


class CallbackAuthenticator:
    """What both callback types share: the POST, the deadline, on_error and the cache."""

    _log = Logger()

    def __init__(self, config: Any, http: OutboundHttp, now: Callable[[], float]):
        self.url = config.url
        self.timeout = config.timeout
        self.cache_ttl = config.cache_ttl
        self.on_error = config.on_error
        self.http = http
        self.now = now
        self._cache: Dict[Tuple[Any, ...], Tuple[Decision, float]] = {}
        #: HLS requests waiting for the answer to the same question.
        self._asking: Dict[Tuple[Any, ...], List[Deferred]] = {}

    def authorize(self, request: AuthRequest) -> Any:
        key = _cache_key(request)
        cached = self._cache.get(key)
        if cached is not None:
            decision, until = cached
            if self.now() < until:
                return decision
            del self._cache[key]
        if request.protocol == "hls":
            return self.ask_once(key, request)
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
        ttl = self.cache_ttl
        if decision.allowed and request.protocol == "hls":
            ttl = max(ttl, HLS_REUSE)
        if ttl > 0:
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = (decision, self.now() + ttl)
        return decision

    def failed(self, request: AuthRequest, failure: Any) -> Decision:
        why = "auth callback failed: %s" % (failure.getErrorMessage() or failure.type.__name__)
        self._log.warn("{mount}: {why} for {ip}; on_error {on_error}", mount=request.mount, why=why,
                       ip=request.ip, on_error=self.on_error)
        if self.on_error == "allow":
            return Decision.allow()
        return Decision.deny(403, UNAVAILABLE, why)

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

    def listener_left(self, request: AuthRequest, decision: Decision, seconds: float) -> None:
        pass


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

    def __init__(self, config: Any, http: OutboundHttp, now: Callable[[], float], server: Tuple[str, int],
                 realm: str, call_later: Callable[..., Any]):
        super().__init__(config, http, now)
        self.server = server
        self.challenge = 'Basic realm="%s"' % realm.replace('"', "'")
        self.call_later = call_later

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
