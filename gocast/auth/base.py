# -*- test-case-name: tests.test_auth -*-
"""
What every listener authentication backend shares: the request it judges,
the decision it returns, and the interface it provides.
"""

from __future__ import annotations

import base64
from typing import Any, Callable, Dict, Optional, Tuple

import attr
from zope.interface import Interface


class AuthSetupError(ValueError):
    """A backend cannot be built from its config (a missing key file, a bad htpasswd line)."""


@attr.frozen
class AuthRequest:
    """
    One listener asking for a mount, whatever the protocol (ICY, HLS).

    :ivar ip: the client's address (after ``server.trusted_proxies``).
    :ivar headers: the request's headers, lower-case names.
    :ivar token: from ``?token=`` or ``Authorization: Bearer``.
    :ivar user: from ``Authorization: Basic``.
    :ivar client: the listener's ID on this server, when it has one.
    """

    mount: str
    ip: str
    user_agent: str = ""
    headers: Dict[str, str] = attr.Factory(dict)
    token: Optional[str] = None
    user: Optional[str] = None
    password: Optional[str] = attr.field(default=None, repr=False)
    client: Optional[str] = None
    protocol: str = "icy"
    #: False once the listener has gone (a slow check still queued is skipped).
    connected: Callable[[], bool] = attr.field(default=lambda: True, eq=False, repr=False)

    @classmethod
    def build(cls, mount: str, ip: str, headers: Dict[str, str], token_arg: Optional[str],
              client: Optional[str] = None, protocol: str = "icy",
              connected: Callable[[], bool] = lambda: True) -> "AuthRequest":
        user, password, bearer = credentials(headers.get("authorization"))
        return cls(mount, ip, headers.get("user-agent", ""), headers, token_arg or bearer, user, password,
                   client, protocol, connected)


def credentials(authorization: Optional[str]) -> Tuple[Optional[str], Optional[str], Optional[str]]:
    """``(user, password, bearer token)`` from an ``Authorization`` header; what is absent is None."""
    if not authorization:
        return None, None, None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return None, None, value
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None, None, None
        user, sep, password = decoded.partition(":")
        if sep:
            return user, password, None
    return None, None, None


@attr.frozen
class Decision:
    """
    :ivar status: the HTTP status of a refusal (401 or 403).
    :ivar reason: one line for the client: what to do, not which check failed.
    :ivar log_reason: for the ``listener.denied`` event and the log (never a secret).
    :ivar challenge: a ``WWW-Authenticate`` value, for a 401.
    :ivar listener_id: who the listener is (token claim, user name), for lists and logs.
    :ivar expires: when the listener's right ends (Unix time): it is disconnected then.
    """

    allowed: bool
    status: int = 200
    reason: str = ""
    log_reason: str = ""
    challenge: Optional[str] = None
    listener_id: Optional[str] = None
    expires: Optional[float] = None

    @classmethod
    def allow(cls, listener_id: Optional[str] = None, expires: Optional[float] = None) -> "Decision":
        return cls(True, listener_id=listener_id, expires=expires)

    @classmethod
    def deny(cls, status: int, reason: str, log_reason: str = "", challenge: Optional[str] = None) -> "Decision":
        return cls(False, status, reason, log_reason or reason, challenge)


class IAuthenticator(Interface):
    """A listener authentication backend (one per mount)."""

    def authorize(request: AuthRequest) -> Any:
        """A Decision, or a Deferred firing with one; never fails."""

    def listener_left(request: AuthRequest, decision: Decision, seconds: float) -> None:
        """An allowed listener disconnected after ``seconds`` (Icecast url auth tells its backend)."""

    def close() -> None:
        """The backend is no longer used (a reload replaced it): end what it follows."""


class AuthenticatorBase:
    """For backends that judge each request alone: nothing to tell when a listener leaves, nothing to end."""

    def listener_left(self, request: AuthRequest, decision: Decision, seconds: float) -> None:
        pass

    def close(self) -> None:
        pass
