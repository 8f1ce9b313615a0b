# -*- test-case-name: tests.test_auth -*-
"""
``auth { type basic users { ... } users_file FILE }``: HTTP Basic.

Passwords in ``users`` are plain or bcrypt hashes; ``users_file`` is an
htpasswd file with bcrypt (``htpasswd -B``) or SHA-1 (``{SHA}``, ``htpasswd
-s``) lines, read when the config is applied (start and every reload). A
bcrypt check takes tens of milliseconds, so it runs in a thread, a few at a
time, and a password that passed is remembered (as a hash) until the next
reload, so an HLS player's every segment request costs nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, Callable, Dict, Optional

import bcrypt
from twisted.internet.defer import DeferredSemaphore
from zope.interface import implementer

from ..config.files import describe, read_setting_file
from ..core.throttle import TOO_MANY, AuthFailures
from .base import AuthRequest, AuthSetupError, AuthenticatorBase, Decision, IAuthenticator

BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
#: Concurrent bcrypt checks, and checks allowed to wait for one.
CHECKS_AT_ONCE = 4
MAX_WAITING = 200
#: Remembered good passwords.
MAX_REMEMBERED = 10000
#: The largest users file read (some 50,000 bcrypt users).
MAX_USERS_FILE = 4 * 1024 * 1024

ASK = "a user name and password are required"
WRONG = "wrong user name or password"


def read_htpasswd(path: str) -> Dict[str, str]:
    """``{user: hash}`` from an htpasswd file; AuthSetupError naming the line of any other format."""
    try:
        lines = read_setting_file(path, MAX_USERS_FILE).decode("utf-8").splitlines()
    except OSError as e:
        raise AuthSetupError("auth.users_file: cannot read %s: %s" % (path, describe(e)))
    except UnicodeDecodeError:
        raise AuthSetupError("auth.users_file: %s is not UTF-8 text" % path)
    users: Dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        # The messages name the line, never what is on it: the file may not be what was meant.
        if not sep or not user:
            raise AuthSetupError("%s:%d: expected user:hash" % (path, number))
        if not (hashed.startswith(BCRYPT_PREFIXES) or hashed.startswith("{SHA}")):
            raise AuthSetupError("%s:%d: only bcrypt ($2y$, htpasswd -B) and {SHA} (htpasswd -s) "
                                 "hashes are supported" % (path, number))
        users[user] = hashed
    return users


def _cost(users: Dict[str, str]) -> int:
    """The bcrypt cost of the users' hashes (the first one's), so a decoy check takes as long."""
    for stored in users.values():
        if stored.startswith(BCRYPT_PREFIXES):
            try:
                return max(4, min(15, int(stored.split("$")[2])))
            except (IndexError, ValueError):
                break
    return 4


def check_fast(password: str, stored: str) -> Optional[bool]:
    """Plain and {SHA} entries, compared in constant time; None for bcrypt (slow: in a thread)."""
    if stored.startswith(BCRYPT_PREFIXES):
        return None
    if stored.startswith("{SHA}"):
        digest = base64.b64encode(hashlib.sha1(password.encode("utf-8")).digest()).decode("ascii")
        return hmac.compare_digest(digest, stored[5:])
    return hmac.compare_digest(password.encode("utf-8"), stored.encode("utf-8"))


def check_bcrypt(password: str, stored: str) -> bool:
    secret = password.encode("utf-8")
    if len(secret) > 72:
        return False  # bcrypt reads 72 bytes; longer ones cannot have been set with it
    try:
        return bcrypt.checkpw(secret, stored.encode("ascii"))
    except ValueError:  # a malformed hash
        return False


@implementer(IAuthenticator)
class BasicAuthenticator(AuthenticatorBase):
    def __init__(self, users: Dict[str, str], users_file: str, realm: str,
                 run_in_thread: Callable[..., Any], failures: Optional[AuthFailures] = None,
                 now: Callable[[], float] = time.monotonic):
        """
        :param failures: failed logins per client, shared with the admin and
            sources: past the limit a client is refused (429) before any check.
        """
        self.users = read_htpasswd(users_file) if users_file else {}
        self.users.update(users)
        self.challenge = 'Basic realm="%s", charset="UTF-8"' % realm.replace('"', "'")
        self.run_in_thread = run_in_thread
        self.failures = failures if failures is not None else AuthFailures(now)
        self._checks = DeferredSemaphore(CHECKS_AT_ONCE)
        self._remembered: Dict[bytes, bool] = {}
        # Unknown users are checked against this, so they take as long as known ones. A salt of
        # the users' cost and any digest: checking costs the same, and making it costs nothing
        # (hashing here would hold the reactor at every start and reload).
        self._decoy = bcrypt.gensalt(rounds=_cost(self.users)).decode("ascii") + "." * 31

    def authorize(self, request: AuthRequest) -> Any:
        if request.user is None or request.password is None:
            return Decision.deny(401, ASK, "no credentials", self.challenge)
        wait = self.failures.blocked(request.ip)
        if wait is not None:
            return Decision.deny(429, TOO_MANY, "too many failed logins from %s" % request.ip)
        stored = self.users.get(request.user)
        key = hashlib.sha256(b"%s\0%s\0%s" % (request.user.encode(), request.password.encode(),
                                              (stored or "").encode())).digest()
        if stored is not None and key in self._remembered:
            return Decision.allow(listener_id=request.user)
        fast = check_fast(request.password, stored) if stored is not None else None
        if fast is not None:
            return self.judged(request, key, fast)
        if len(self._checks.waiting) >= MAX_WAITING:
            return Decision.deny(403, "too many sign-ins at once; try again", "bcrypt queue full")

        def check() -> Any:
            if not request.connected():
                return False  # the listener left while it waited its turn: the next one goes
            if stored is None:
                # No such user: spend the time a real check would, then say no.
                return self.run_in_thread(check_bcrypt, request.password, self._decoy).addCallback(lambda _: False)
            return self.run_in_thread(check_bcrypt, request.password, stored)

        return self._checks.run(check).addCallback(lambda ok: self.judged(request, key, ok))

    def judged(self, request: AuthRequest, key: bytes, ok: bool) -> Decision:
        if not ok:
            self.failures.failed(request.ip)
            return self.wrong(request)
        if len(self._remembered) >= MAX_REMEMBERED:
            self._remembered.clear()
        self._remembered[key] = True
        return Decision.allow(listener_id=request.user)

    def wrong(self, request: AuthRequest) -> Decision:
        return Decision.deny(401, WRONG, "wrong password for user %s" % (request.user or "")[:64], self.challenge)
