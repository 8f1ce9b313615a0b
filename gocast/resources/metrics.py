# -*- test-case-name: tests.test_metrics -*-
"""``GET /metrics`` (``metrics.path``): Prometheus text format."""

from __future__ import annotations

from typing import Any, Optional

from twisted.web.resource import Resource
from twisted.web.server import Request

from ..observe.metrics import Metrics
from ..core.throttle import TOO_MANY
from .admin import AdminContext, challenge


#: The classic text format, which every Prometheus version scrapes.
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class MetricsResource(Resource):
    isLeaf = True

    def __init__(self, metrics: Metrics, ctx: AdminContext, keys: Optional[Any] = None):
        """:param keys: the API keys (:class:`~gocast.api.keys.ApiKeys`): one with read_stats may scrape."""
        super().__init__()
        self.metrics = metrics
        self.ctx = ctx
        self.keys = keys

    def render_GET(self, request: Request) -> bytes:
        if self.ctx.config.metrics.auth_required:
            status = self.ctx.admit(request, lambda: self.ctx.is_admin(request) or self.key_reads_stats(request))
            if status != 200:
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                if status == 429:
                    return (TOO_MANY + "\n").encode()
                challenge(request)
                request.responseHeaders.addRawHeader(b"www-authenticate", b'Bearer realm="GoCast API"')
                return (b"metrics need the admin credentials or an API key with read_stats "
                        b"(metrics.auth_required)\n")
        request.setHeader(b"content-type", CONTENT_TYPE)
        return self.metrics.render()

    def key_reads_stats(self, request: Request) -> bool:
        """A Bearer (or X-API-Key) key that holds read_stats and has not expired."""
        if self.keys is None:
            return False
        authorization = (request.getHeader(b"authorization") or b"").decode("latin-1")
        secret = authorization[7:].strip() if authorization[:7].lower() == "bearer " else (
            (request.getHeader(b"x-api-key") or b"").decode("latin-1").strip())
        key = self.keys.find(secret) if secret else None
        if key is None or key.expired(self.ctx.clock.seconds()) or not key.allows("read_stats"):
            return False
        self.keys.used(key)
        return True
