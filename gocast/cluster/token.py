# -*- test-case-name: tests.test_cluster -*-
"""
Node-to-node pull tokens: a relay proves it belongs to the cluster with
``X-GoCast-Cluster: <node>.<expiry>.<signature>``, an HMAC-SHA256 of the
node id, the expiry and the mount pulled, under ``cluster.secret``. Source
and admin passwords never travel between nodes, and a token seen in a log
opens only that mount, and only for a minute.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Optional

HEADER = "X-GoCast-Cluster"
#: How long a token is good for; relays make a new one for every pull.
LIFETIME = 60.0
#: Tokens longer than this are not even looked at.
MAX_TOKEN = 512


def _signature(secret: str, payload: str, mount: str) -> str:
    signed = ("%s|%s" % (payload, mount)).encode("utf-8")
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def make_token(secret: str, node: str, mount: str, now: float, lifetime: float = LIFETIME) -> str:
    node = base64.urlsafe_b64encode(node.encode("utf-8")).decode("ascii").rstrip("=")
    payload = "%s.%d" % (node, int(now + lifetime))
    return "%s.%s" % (payload, _signature(secret, payload, mount))


def check_token(secret: str, token: str, mount: str, now: float) -> Optional[str]:
    """The node id a valid, unexpired token for ``mount`` names; ``None`` for anything else."""
    if not secret or not token or len(token) > MAX_TOKEN:
        return None
    payload, _, signature = token.rpartition(".")
    node, _, expiry = payload.partition(".")
    expected = _signature(secret, payload, mount).encode()
    if not hmac.compare_digest(expected, signature.encode("ascii", "replace")):
        return None
    if not expiry.isdigit() or int(expiry) < now:
        return None
    try:
        return base64.urlsafe_b64decode(node + "=" * (-len(node) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
