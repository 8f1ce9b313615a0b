# -*- test-case-name: tests.test_metrics -*-
"""``GET /metrics`` (``metrics.path``): Prometheus text format."""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from ..metrics import Metrics
from ..core.throttle import TOO_MANY
from .admin import AdminContext, challenge


#: The classic text format, which every Prometheus version scrapes.
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class MetricsResource(Resource):
    isLeaf = True

    def __init__(self, metrics: Metrics, ctx: AdminContext):
        super().__init__()
        self.metrics = metrics
        self.ctx = ctx

    def render_GET(self, request: Request) -> bytes:
        if self.ctx.config.metrics.auth_required:
            status = self.ctx.admit(request, lambda: self.ctx.is_admin(request))
            if status != 200:
                request.setHeader(b"content-type", b"text/plain; charset=utf-8")
                if status == 429:
                    return (TOO_MANY + "\n").encode()
                challenge(request)
                return b"metrics need the admin credentials (metrics.auth_required)\n"
        request.setHeader(b"content-type", CONTENT_TYPE)
        return self.metrics.render()
