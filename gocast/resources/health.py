# -*- test-case-name: tests.test_health -*-
"""
Health endpoints for load balancers and orchestrators.

- ``GET /health/live``: 200 while the process serves requests (liveness).
- ``GET /health/ready``: 200 when the server accepts new clients, 503 while
  it is draining (readiness).
- ``GET /health``: the roadmap's summary: status, version, uptime and checks;
  503 when a check fails.
"""

from __future__ import annotations

import json
import shutil
from typing import Any, Callable, Dict

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import Resource
from twisted.web.server import Request

from .._version import __version__

#: Below this much free space in the data folder, the disk check fails.
MIN_FREE_BYTES = 100 * 1024 * 1024


def format_uptime(seconds: float) -> str:
    """``87300`` → ``"24h15m"``, the roadmap's format."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return "%dh%dm" % (hours, minutes)
    if minutes:
        return "%dm%ds" % (minutes, secs)
    return "%ds" % secs


def disk_check(path: str) -> str:
    """``ok`` when the data folder (or where it will be made) has room."""
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return "unavailable"
    return "ok" if free >= MIN_FREE_BYTES else "low"


def _json(request: Request, code: int, body: Dict[str, Any]) -> bytes:
    request.setResponseCode(code)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(body).encode("utf-8")


class HealthState:
    """
    What the health endpoints report. The service flips :attr:`draining` on
    shutdown; checks are named callables returning ``"ok"`` or a problem.
    """

    def __init__(self, clock: IReactorTime, checks: Dict[str, Callable[[], str]]):
        self.clock = clock
        self.started = clock.seconds()
        self.checks = checks
        self.draining = False

    def summary(self) -> Dict[str, Any]:
        results = {name: check() for name, check in self.checks.items()}
        healthy = all(r == "ok" for r in results.values()) and not self.draining
        return {
            "status": "draining" if self.draining else ("healthy" if healthy else "unhealthy"),
            "version": __version__,
            "uptime": format_uptime(self.clock.seconds() - self.started),
            "uptime_seconds": int(self.clock.seconds() - self.started),
            "checks": results,
        }


class _Live(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return _json(request, 200, {"status": "alive"})


class _Ready(Resource):
    isLeaf = True

    def __init__(self, state: HealthState):
        super().__init__()
        self.state = state

    def render_GET(self, request: Request) -> bytes:
        if self.state.draining:
            return _json(request, 503, {"status": "draining"})
        return _json(request, 200, {"status": "ready"})


class HealthResource(Resource):
    """``/health`` and its children."""

    def __init__(self, state: HealthState):
        super().__init__()
        self.state = state
        self.putChild(b"live", _Live())
        self.putChild(b"ready", _Ready(state))

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"":
            return self
        return Resource.getChild(self, path, request)

    def render_GET(self, request: Request) -> bytes:
        summary = self.state.summary()
        return _json(request, 200 if summary["status"] == "healthy" else 503, summary)
