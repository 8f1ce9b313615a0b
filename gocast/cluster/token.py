# -*- test-case-name: tests.test_cluster -*-
"""
Node-to-node pull tokens: a relay proves it belongs to the cluster with
``X-GoCast-Cluster: <node>.<expiry>.<signature>``, an HMAC-SHA256 of the
node id and expiry under ``cluster.secret``. Source and admin passwords
never travel between nodes, and a token seen in a log is useless a minute
later.
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


def _signature(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def make_token(secret: str, node: str, now: float, lifetime: float = LIFETIME) -> str:
    node = base64.urlsafe_b64encode(node.encode("utf-8")).decode("ascii").rstrip("=")
    payload = "%s.%d" % (node, int(now + lifetime))
    return "%s.%s" % (payload, _signature(secret, payload))


def check_token(secret: str, token: str, now: float) -> Optional[str]:
    """The node id a valid, unexpired token names; ``None`` for anything else."""
    if not secret or not token or len(token) > MAX_TOKEN:
        return None
    payload, _, signature = token.rpartition(".")
    node, _, expiry = payload.partition(".")
    if not hmac.compare_digest(_signature(secret, payload).encode(), signature.encode("ascii", "replace")):
        return None
    if not expiry.isdigit() or int(expiry) < now:
        return None
    try:
        return base64.urlsafe_b64decode(node + "=" * (-len(node) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
