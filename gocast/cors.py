# -*- test-case-name: tests.test_cors -*-
"""
CORS for everything GoCast serves (streams, status, metrics, admin, API):
``cors { allowed_origins [..] allowed_methods allowed_headers exposed_headers
allow_credentials max_age }``.

Credentials are only ever allowed for origins listed by name: with ``*`` the
answer is ``Access-Control-Allow-Origin: *`` and never credentials.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from .config._schema import CorsConfig

Headers = List[Tuple[str, str]]


def allowed_origin(cors: CorsConfig, origin: Optional[str]) -> Optional[str]:
    """The Access-Control-Allow-Origin value for ``origin``, or ``None``."""
    if not cors.enabled:
        return None
    if origin and origin in cors.allowed_origins:
        return origin
    if "*" in cors.allowed_origins:
        return "*"
    return None


def cors_headers(cors: CorsConfig, origin: Optional[str], preflight: bool = False) -> Headers:
    allowed = allowed_origin(cors, origin)
    if allowed is None:
        return []
    headers: Headers = [("Access-Control-Allow-Origin", allowed)]
    if allowed != "*":
        headers.append(("Vary", "Origin"))
        if cors.allow_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
    if preflight:
        headers += [
            ("Access-Control-Allow-Methods", ", ".join(cors.allowed_methods)),
            ("Access-Control-Allow-Headers", ", ".join(cors.allowed_headers)),
            ("Access-Control-Max-Age", str(int(cors.max_age))),
        ]
    else:
        headers.append(("Access-Control-Expose-Headers", ", ".join(cors.exposed_headers)))
    return headers
