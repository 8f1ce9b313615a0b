# -*- test-case-name: tests.test_api -*-
"""
API keys: the ones in ``api_keys { NAME { key permissions expires } }``
and the ones created at run time (``POST /api/v1/keys``).

A key is ``gck_`` and 43 random URL-safe characters. Only its SHA-256 is
kept for run-time keys (the secret is shown once, at creation); keys are
found by comparing hashes in constant time against every known key.
Usage (last use, request count) is tracked per key and written to the
state store now and then, not on every request. Failed authentication is
limited per client address (:attr:`ApiKeys.failures`, shared with the
dashboard and the Icecast admin).
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from typing import Any, Dict, Iterable, Optional, Tuple

import attr
from twisted.internet.defer import succeed

from ..cluster.shared import Collection
from ..config import Config
from ..config._schema import PERMISSIONS
from ..core.throttle import AuthFailures

PREFIX = "gck_"
ALL = "*"
#: Seconds between writes of key usage to the state store.
USAGE_FLUSH = 30.0


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def expiry_seconds(expires: Any) -> Optional[float]:
    """When a key stops working, as a Unix time: a date means from that day's start (UTC)."""
    if expires is None:
        return None
    if isinstance(expires, datetime.datetime):
        moment = expires if expires.tzinfo else expires.replace(tzinfo=datetime.timezone.utc)
    else:
        moment = datetime.datetime(expires.year, expires.month, expires.day, tzinfo=datetime.timezone.utc)
    return moment.timestamp()


@attr.s(auto_attribs=True)
class ApiKey:
    id: str
    name: str
    hash: str
    permissions: Tuple[str, ...]
    expires: Optional[float]
    description: str
    created: Optional[float]
    #: "config" (from the config file) or "api" (created at run time).
    origin: str
    last_used: Optional[float] = None
    requests: int = 0

    def allows(self, permission: str) -> bool:
        return ALL in self.permissions or permission in self.permissions

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    def public(self) -> Dict[str, Any]:
        """What the API shows of a key: never its secret or hash."""
        return {"id": self.id, "name": self.name, "permissions": list(self.permissions),
                "expires": _iso(self.expires), "description": self.description, "origin": self.origin,
                "created": _iso(self.created), "last_used": _iso(self.last_used), "requests": self.requests}


def _iso(seconds: Optional[float]) -> Optional[str]:
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


#: Keys created through the API, at most (a key holder with manage_keys
#: could otherwise fill the state database).
MAX_API_KEYS = 1000


class ApiKeys(Collection):
    """
    Every key GoCast accepts, with their usage. In a cluster the keys
    created through the API are shared (a :class:`gocast.cluster.shared.Collection`):
    created on one node, they work on all; revoked on one, refused on all.
    Usage figures stay each node's.
    """

    kind = "keys"

    def __init__(self, store: Any, now: Any, failures: Optional[AuthFailures] = None):
        self.store = store
        self.now = now
        self.keys: Dict[str, ApiKey] = {}
        #: The same keys by hash (:meth:`_reindex` after every change).
        self._by_hash: Dict[str, ApiKey] = {}
        self._dirty: set = set()
        #: Failed authentications per address (shared with sources and the admin).
        self.failures = failures if failures is not None else AuthFailures(now)
        if store is not None:
            for record in store.keys():
                key = from_record(record)
                key.last_used, key.requests = record["last_used"], record["requests"]
                self.keys[key.id] = key
        self._reindex()

    def configure(self, config: Config) -> None:
        """Take the config file's keys (keeping the usage of keys whose name stays)."""
        configured = {}
        for name, key_config in config.api_keys.items():
            key_id = "config:" + name
            old = self.keys.get(key_id)
            configured[key_id] = ApiKey(
                key_id, name, key_hash(key_config.key), tuple(key_config.permissions),
                expiry_seconds(key_config.expires), key_config.description, None, "config",
                old.last_used if old else None, old.requests if old else 0)
        self.keys = {k: v for k, v in self.keys.items() if v.origin == "api"}
        self.keys.update(configured)
        self._reindex()

    def find(self, secret: str) -> Optional[ApiKey]:
        """
        The key ``secret`` is, looked up by its SHA-256: one step however
        many keys there are, and the time it takes says nothing of the
        secret (only of a hash nobody can steer).
        """
        return self._by_hash.get(key_hash(secret))

    def _reindex(self) -> None:
        """The keys changed: index them by hash again."""
        self._by_hash = {key.hash: key for key in self.keys.values()}

    def used(self, key: ApiKey) -> None:
        key.last_used = self.now()
        key.requests += 1
        if key.origin == "api":
            self._dirty.add(key.id)

    def flush_usage(self) -> None:
        """Write the usage of run-time keys used since the last flush."""
        for key_id in sorted(self._dirty):
            key = self.keys.get(key_id)
            if key is not None and self.store is not None:
                self.store.record_usage(key.id, key.last_used, key.requests)
        self._dirty.clear()

    def create(self, name: str, permissions: Iterable[str], expires: Optional[float],
               description: str) -> Tuple[ApiKey, str, Any]:
        """A new key: (the key, its secret, a Deferred for its write to the store)."""
        secret = new_secret()
        key = ApiKey("k_" + secrets.token_hex(8), name, key_hash(secret), tuple(permissions), expires,
                     description, self.now(), "api")
        self.keys[key.id] = key
        self._reindex()
        record = as_record(key)
        written = self.store.put_key(dict(record, last_used=None, requests=0))
        if self.sharing:
            written.addCallback(lambda _: self.shared.share(self.kind, key.hash, record))

        def unsaved(failure: Any) -> Any:
            self.keys.pop(key.id, None)  # a key that is not stored (here and in the cluster) does not work
            self._reindex()
            self.store.delete_key(key.id)
            return failure

        return key, secret, written.addErrback(unsaved)

    def revoke(self, key_id: str) -> Any:
        key = self.keys.pop(key_id)
        self._reindex()
        self._dirty.discard(key_id)
        if self.sharing:
            self.shared.unshare(self.kind, key.hash)
        return self.store.delete_key(key_id)

    # Shared with the cluster: records by the key's hash, so a node can look a key up by it

    def records(self) -> Dict[str, Dict[str, Any]]:
        return {key.hash: as_record(key) for key in self.keys.values() if key.origin == "api"}

    def received(self, hash_: str, record: Optional[Dict[str, Any]]) -> None:
        if record is None:
            key = self._by_hash.get(hash_)
            if key is not None and key.origin == "api":
                self.revoke_here(key.id)
            return
        self.take(hash_, record)
        self._reindex()

    def replace(self, records: Dict[str, Dict[str, Any]]) -> None:
        for key in [k for k in self.keys.values() if k.origin == "api" and k.hash not in records]:
            self.revoke_here(key.id)
        for hash_, record in records.items():
            self.take(hash_, record)
        self._reindex()

    def find_shared(self, secret: str) -> Any:
        """
        A Deferred of the key ``secret`` is, asking Redis when this node does
        not know it (yet): a key made on another node works here at once,
        before its announcement arrives. ``None``: no such key anywhere.
        """
        found = self.find(secret)
        if found is not None or not self.sharing:
            return succeed(found)
        hash_ = key_hash(secret)

        def fetched(record: Optional[Dict[str, Any]]) -> Optional[ApiKey]:
            if record is not None:
                self.take(hash_, record)
                self._reindex()
            return self._by_hash.get(hash_)

        return self.shared.fetch(self.kind, hash_).addCallback(fetched)

    def take(self, hash_: str, record: Dict[str, Any]) -> None:
        """Another node's key (kept in this node's store too, for a restart without Redis)."""
        try:
            key = from_record(record)
        except (KeyError, TypeError, ValueError):
            return
        old = self.keys.get(key.id)
        if key.hash != hash_ or (old is not None and old.origin != "api"):
            return
        if old is not None and as_record(old) == as_record(key):
            return
        if old is not None:
            key.last_used, key.requests = old.last_used, old.requests
        self.keys[key.id] = key
        self.store.put_key(dict(as_record(key), last_used=key.last_used, requests=key.requests))

    def revoke_here(self, key_id: str) -> None:
        self.keys.pop(key_id, None)
        self._dirty.discard(key_id)
        self._reindex()
        self.store.delete_key(key_id)


def as_record(key: ApiKey) -> Dict[str, Any]:
    """A run-time key as it is stored and shared (its hash, never its secret; no usage figures)."""
    return {"id": key.id, "name": key.name, "hash": key.hash, "permissions": list(key.permissions),
            "expires": key.expires, "description": key.description, "created": key.created}


def from_record(record: Dict[str, Any]) -> ApiKey:
    """A run-time key from the state store or the cluster; KeyError/TypeError/ValueError if it is not one."""
    permissions = tuple(str(p) for p in record["permissions"])
    if valid_permissions(list(permissions)) is not None or len(str(record["hash"])) != 64:
        raise ValueError("not a key")
    expires = record.get("expires")
    created = record.get("created")
    return ApiKey(str(record["id"]), str(record["name"]), str(record["hash"]), permissions,
                  float(expires) if expires is not None else None, str(record.get("description") or ""),
                  float(created) if created is not None else None, "api")


def valid_permissions(values: Any) -> Optional[str]:
    """Why ``values`` is not a list of permissions, or None."""
    if not isinstance(values, list) or not values:
        return "a non-empty list of permissions"
    for value in values:
        if value != ALL and value not in PERMISSIONS:
            return "unknown permission %r; known: %s, *" % (value, ", ".join(PERMISSIONS))
    return None
