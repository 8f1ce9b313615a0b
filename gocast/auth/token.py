# -*- test-case-name: tests.test_auth -*-
"""
``auth { type token ... }``: a JWT in ``?token=`` or ``Authorization: Bearer``.

Verified with PyJWT: HS256 with ``secret``; RS256 or ES256 with the
``public_key`` PEM file, or with the key of the token's ``kid`` from
``jwks_url`` (fetched when first needed, kept, and fetched again when a
token names a key not in it, at most every :data:`JWKS_MIN_INTERVAL`).
``exp`` and ``nbf`` are checked with ``leeway``; ``allowed_mounts`` (globs)
limits the mounts; ``listener_id`` (else ``sub``) names the listener. A
verified token is remembered until it expires, so checking it again for
every HLS segment costs a dictionary lookup.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable, Dict, List, Optional, Tuple

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from zope.interface import implementer

from ..config.files import describe, read_setting_file
from .base import AuthRequest, AuthSetupError, AuthenticatorBase, Decision, IAuthenticator

#: Longest token read (a JWT is a few hundred bytes).
MAX_TOKEN = 8192
#: Verified tokens remembered.
MAX_REMEMBERED = 10000
#: A token naming an unknown key refetches the JWKS at most this often (seconds).
JWKS_MIN_INTERVAL = 30.0
#: How long a JWKS fetch may take.
JWKS_TIMEOUT = 10.0

CHALLENGE = 'Bearer realm="GoCast"'
NEEDED = "a token is required: add ?token=... or send Authorization: Bearer"
INVALID = "invalid token"
#: The largest public key file read (a PEM key is a few KiB).
MAX_KEY_FILE = 64 * 1024


def read_public_key(path: str) -> Tuple[Any, str]:
    """The key in a PEM file and the algorithm it signs with (RS256 or ES256)."""
    try:
        key = load_pem_public_key(read_setting_file(path, MAX_KEY_FILE))
    except OSError as e:
        raise AuthSetupError("auth.public_key: cannot read %s: %s" % (path, describe(e)))
    except ValueError:
        raise AuthSetupError("auth.public_key: %s holds no PEM public key" % path)
    if isinstance(key, rsa.RSAPublicKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key, "ES256"
    raise AuthSetupError("auth.public_key: %s is neither an RSA nor an EC key" % path)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def mount_allowed(patterns: Any, mount: str) -> bool:
    """``allowed_mounts``: globs such as ``/premium*`` (a leading slash may be left out)."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list):
        return False
    return any(isinstance(p, str) and fnmatch.fnmatchcase(mount, p if p.startswith("/") else "/" + p)
               for p in patterns)


@implementer(IAuthenticator)
class TokenAuthenticator(AuthenticatorBase):
    """
    :param fetch_json: ``(url, timeout) -> Deferred`` of the parsed JSON document (for the JWKS).
    :param now: the wall clock (tokens carry Unix times).
    """

    def __init__(self, config: Any, fetch_json: Callable[[str, float], Deferred], now: Callable[[], float]):
        self.secret = config.secret
        self.public_key: Optional[Tuple[Any, str]] = read_public_key(config.public_key) if config.public_key else None
        self.jwks_url = config.jwks_url
        self.leeway = config.leeway
        self.allow_past_expiry = config.allow_past_expiry
        self.audience = config.audience or None
        self.issuer = config.issuer or None
        self.max_lifetime = config.max_lifetime
        self.allow_no_exp = config.allow_no_exp
        self.fetch_json = fetch_json
        self.now = now
        self._remembered: Dict[str, Dict[str, Any]] = {}
        self._jwks: Dict[str, Any] = {}
        self._jwks_fetched = -JWKS_MIN_INTERVAL
        self._jwks_fetch: Optional[Deferred] = None
        self._jwks_waiters: List[Deferred] = []

    def authorize(self, request: AuthRequest) -> Any:
        token = request.token
        if not token:
            return Decision.deny(401, NEEDED, "no token", CHALLENGE)
        if len(token) > MAX_TOKEN:
            return Decision.deny(401, INVALID, "token too long", CHALLENGE)
        claims = self._remembered.get(token)
        if claims is not None:
            return self.judge(request, claims, cached=True)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            return Decision.deny(401, INVALID, "malformed token", CHALLENGE)
        algorithm = header.get("alg")
        if algorithm == "HS256" and self.secret:
            return self.verify(request, token, self.secret, algorithm)
        if algorithm in ("RS256", "ES256") and self.public_key is not None:
            key, kind = self.public_key
            if algorithm != kind:
                return Decision.deny(401, INVALID, "token signed with %s, the key is for %s" % (algorithm, kind),
                                     CHALLENGE)
            return self.verify(request, token, key, algorithm)
        if algorithm in ("RS256", "ES256") and self.jwks_url:
            return self.with_jwks(request, token, algorithm, str(header.get("kid") or ""))
        return Decision.deny(401, INVALID, "token algorithm %s is not accepted here" % str(algorithm)[:16],
                             CHALLENGE)

    def with_jwks(self, request: AuthRequest, token: str, algorithm: str, kid: str) -> Any:
        if kid in self._jwks:
            return self.verify(request, token, self._jwks[kid], algorithm)
        if self.now() - self._jwks_fetched < JWKS_MIN_INTERVAL and self._jwks_fetch is None:
            return Decision.deny(401, INVALID, "unknown key id %r" % kid[:64], CHALLENGE)

        def fetched(_: Any) -> Decision:
            if kid not in self._jwks:
                return Decision.deny(401, INVALID, "unknown key id %r" % kid[:64], CHALLENGE)
            return self.verify(request, token, self._jwks[kid], algorithm)

        def failed(failure: Any) -> Decision:
            return Decision.deny(403, "the token cannot be checked right now; try again",
                                 "JWKS fetch failed: %s" % failure.getErrorMessage())

        return self.refresh_jwks().addCallbacks(fetched, failed)

    def refresh_jwks(self) -> Deferred:
        """Fetch the JWKS; callers while a fetch is running wait for the same one."""
        waiter: Deferred = Deferred()
        self._jwks_waiters.append(waiter)
        if self._jwks_fetch is None:
            self._jwks_fetched = self.now()
            self._jwks_fetch = fetch = self.fetch_json(self.jwks_url, JWKS_TIMEOUT)
            fetch.addCallback(self._keys_arrived).addBoth(self._fetch_done)
        return waiter

    def _fetch_done(self, result: Any) -> None:
        waiters, self._jwks_waiters = self._jwks_waiters, []
        self._jwks_fetch = None
        for waiter in waiters:
            if isinstance(result, Failure):
                waiter.errback(result)
            else:
                waiter.callback(None)

    def _keys_arrived(self, document: Any) -> None:
        try:
            keys = jwt.PyJWKSet.from_dict(document).keys
        except (jwt.PyJWKSetError, jwt.InvalidKeyError, TypeError, AttributeError) as e:
            raise ValueError("not a usable JWKS: %s" % e)
        self._jwks = {str(k.key_id or ""): k.key for k in keys}

    def verify(self, request: AuthRequest, token: str, key: Any, algorithm: str) -> Decision:
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm], leeway=self.leeway,
                                audience=self.audience, issuer=self.issuer,
                                options={"verify_aud": self.audience is not None, "verify_iat": False,
                                         "require": [] if self.allow_no_exp else ["exp"]})
        except jwt.ExpiredSignatureError:
            return Decision.deny(401, "token expired", "token expired", CHALLENGE)
        except jwt.ImmatureSignatureError:
            return Decision.deny(401, "token not valid yet", "token not valid yet (nbf)", CHALLENGE)
        except jwt.MissingRequiredClaimError:
            return Decision.deny(401, INVALID, "token has no exp (set allow_no_exp to accept such tokens)",
                                 CHALLENGE)
        except jwt.InvalidTokenError as e:
            return Decision.deny(401, INVALID, "token refused: %s" % e, CHALLENGE)
        too_long = self.lifetime_beyond_limit(claims)
        if too_long:
            return Decision.deny(401, INVALID, too_long, CHALLENGE)
        if len(self._remembered) >= MAX_REMEMBERED:
            self._remembered.clear()
        self._remembered[token] = claims
        return self.judge(request, claims)

    def lifetime_beyond_limit(self, claims: Dict[str, Any]) -> Optional[str]:
        """Why the token lives longer than ``max_lifetime`` allows, or None."""
        if not self.max_lifetime:
            return None
        expires, issued = claims.get("exp"), claims.get("iat")
        if not _number(expires):
            return "token has no exp, and max_lifetime needs one"
        start = issued if _number(issued) else self.now()
        if expires - start > self.max_lifetime + self.leeway:
            return "token valid for %ds, longer than max_lifetime (%ds)" % (expires - start, self.max_lifetime)
        return None

    def judge(self, request: AuthRequest, claims: Dict[str, Any], cached: bool = False) -> Decision:
        expires = claims.get("exp")
        expires = float(expires) if _number(expires) else None
        if cached:
            now = self.now()
            not_before = claims.get("nbf")
            if expires is not None and now > expires + self.leeway:
                del self._remembered[request.token]  # type: ignore[arg-type]
                return Decision.deny(401, "token expired", "token expired", CHALLENGE)
            if isinstance(not_before, (int, float)) and now < not_before - self.leeway:
                return Decision.deny(401, "token not valid yet", "token not valid yet (nbf)", CHALLENGE)
        if "allowed_mounts" in claims and not mount_allowed(claims["allowed_mounts"], request.mount):
            return Decision.deny(403, "this token does not give access to this stream",
                                 "mount %s not in the token's allowed_mounts" % request.mount)
        who = claims.get("listener_id", claims.get("sub"))
        return Decision.allow(listener_id=str(who)[:128] if who is not None else None,
                              expires=None if self.allow_past_expiry or expires is None else expires + self.leeway)
