# -*- test-case-name: tests.test_icecast_admin -*-
"""The twisted.web tree behind the front door."""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from twisted.web.resource import Resource
from twisted.web.server import Request

from ..api.docs import SwaggerDocs
from ..api.resource import AdminRecordings, ApiResource
from ..core.registry import MountRegistry
from ..observe.metrics import Metrics
from .admin import AdminContext, AdminResource, ShoutcastAdmin
from .health import HealthResource, HealthState
from .dash import DashResource
from .embed import EmbedResource
from .hls import HlsResource
from .metrics import MetricsResource
from .nowplaying import leaf_for
from .playlists import Playlist, split_playlist
from .status import StatusJson


class Root(Resource):
    """``/``: named children, plus playlists for any mount (``/radio/jazz.pls``)."""

    def __init__(self, registry: MountRegistry, hls: Optional[HlsResource] = None,
                 dash: Optional[HlsResource] = None):
        super().__init__()
        self.registry = registry
        self.hls = hls
        self.dash = dash
        #: The covers (:class:`gocast.outputs.artwork.Artworks`) ``/<mount>/artwork.jpg`` serves.
        self.artworks: Any = None

    def getChild(self, path: bytes, request: Request) -> Resource:
        full = "/" + b"/".join([path] + list(request.postpath)).decode("utf-8", "replace")
        for streams in (self.hls, self.dash):
            prefixed = streams.for_path(full) if streams is not None else None
            if prefixed is not None:
                return prefixed
        track = leaf_for(self.registry, full, self.artworks)
        if track is not None:
            return track
        found = split_playlist(full)
        if found is not None:
            mount = self.registry.get(found[0])
            if mount is not None:
                return Playlist(mount, found[1], self.registry.config)
        return Resource.getChild(self, path, request)

    def hls_target(self, path: str) -> Optional[Tuple[str, str]]:
        """
        The HLS ``(mount, file)`` a GET of ``path`` asks for, routed as this
        tree routes it (``/hls/...``, then a mount's own ``hls.path``, which
        never shadows a named child); ``None`` when the path is not HLS.
        """
        if self.hls is None:
            return None
        first, _, rest = path[1:].partition("/")
        if first == "hls":
            parts = rest.split("/")
            return ("/" + "/".join(parts[:-1]), parts[-1]) if len(parts) >= 2 else None
        if first.encode("utf-8", "replace") in self.children:
            return None
        return self.hls.locate(path)


def put_at(root: Resource, path: str, child: Resource) -> None:
    """Attach ``child`` at a path such as ``/admin`` or ``/manage/admin``."""
    parts = [p.encode() for p in path.strip("/").split("/") if p]
    parent = root
    for part in parts[:-1]:
        existing = parent.children.get(part)
        if existing is None:
            existing = Resource()
            parent.putChild(part, existing)
        parent = existing
    parent.putChild(parts[-1], child)


def build_root(registry: MountRegistry, health: HealthState, clock: Any,
               metrics: Optional[Metrics] = None, reloader: Any = None, hls: Any = None,
               api: Any = None, gate: Any = None, geo: Any = None,
               admin_children: Optional[Dict[bytes, Resource]] = None,
               auth_failures: Any = None, dash: Any = None, artworks: Any = None) -> Resource:
    """
    The web tree. Paths (``admin_root``, ``metrics.path``) are fixed here;
    everything else reads the running config through the registry.

    :param auth_failures: the failed-login limit per address
        (:class:`gocast.core.throttle.AuthFailures`) for the admin and metrics.
    """
    config = registry.config
    hls_resource = HlsResource(hls, registry, gate, geo) if hls is not None else None
    dash_resource = DashResource(dash, registry, gate, geo) if dash is not None else None
    root = Root(registry, hls_resource, dash_resource)
    root.artworks = artworks
    ctx = AdminContext(registry, health.started, clock, auth_failures)
    if metrics is not None and config.metrics.enabled:
        put_at(root, config.metrics.path, MetricsResource(metrics, ctx, api.keys if api is not None else None))
    root.putChild(b"health", HealthResource(health))
    root.putChild(b"status-json.xsl", StatusJson(registry, health.started))
    root.putChild(b"embed", EmbedResource(registry))
    root.putChild(b"admin.cgi", ShoutcastAdmin(ctx))
    admin = AdminResource(ctx, reloader)
    for name, child in (admin_children or {}).items():
        admin.putChild(name, child)
    put_at(root, config.server.admin_root, admin)
    if hls_resource is not None:
        root.putChild(b"hls", hls_resource)
    if dash_resource is not None:
        root.putChild(b"dash", dash_resource)
    if api is not None:
        root.putChild(b"api", ApiResource(api, SwaggerDocs()))
        admin.putChild(b"recordings", AdminRecordings(api))
    return root
