# -*- test-case-name: tests.test_icecast_admin -*-
"""
Icecast's status shapes, for the widgets and pollers that read them:
``/status-json.xsl`` (JSON, with Icecast's quirks) and the ``<icestats>``
XML of ``/admin/stats`` and ``/admin/listmounts``.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Optional, Union
from xml.etree import ElementTree

from twisted.web.resource import Resource
from twisted.web.server import Request

from ..config import Config
from ..core.mount import Mount
from ..core.operations import listener_sessions
from ..core.registry import MountRegistry


def rfc822(seconds: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(seconds))


def iso8601(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(seconds))


def numeric(value: Optional[str]) -> Union[int, float, str, None]:
    """Icecast's JSON turns numeric-looking strings into numbers; so do we."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def listen_url(config: Config, mount: str, host: Optional[str] = None) -> str:
    return "http://%s%s" % (host or "%s:%d" % (config.server.hostname, config.server.port), mount)


def public_mounts(registry: MountRegistry) -> List[Mount]:
    """Mounts with a source, not hidden, in path order."""
    return sorted((m for m in registry.mounts.values() if m.source is not None and not m.config.hidden),
                  key=lambda m: m.path)


def source_status(mount: Mount, config: Config) -> Dict[str, Any]:
    """One entry of ``icestats.source``."""
    headers = dict(mount.listener_headers())
    info = mount.source.audio_info() if mount.source else {}
    started = mount.source.connected_at if mount.source else 0.0
    entry: Dict[str, Any] = {
        "audio_info": headers.get("ice-audio-info"),
        "bitrate": numeric(headers.get("icy-br")),
        "channels": numeric(info.get("channels") or info.get("ice-channels")),
        "samplerate": numeric(info.get("samplerate") or info.get("ice-samplerate")),
        "genre": headers.get("icy-genre"),
        "listener_peak": mount.peak_listeners,
        "listeners": mount.listeners,
        "listenurl": listen_url(config, mount.path),
        "server_description": headers.get("icy-description"),
        "server_name": headers.get("icy-name"),
        "server_type": mount.content_type,
        "server_url": headers.get("icy-url"),
        "stream_start": rfc822(started),
        "stream_start_iso8601": iso8601(started),
        # As Icecast: an Ogg stream's TITLE and ARTIST comments apart, an ICY song whole.
        "title": (mount.title if mount.is_ogg else mount.song) or None,
        "artist": mount.artist or None,
    }
    return {k: v for k, v in entry.items() if v is not None}


def icestats(registry: MountRegistry, config: Config, started: float) -> Dict[str, Any]:
    sources = [source_status(m, config) for m in public_mounts(registry)]
    elsewhere = registry.elsewhere() if config.cluster.sync.status_totals else None
    if elsewhere:
        for source in sources:  # the station's listeners, on every node of the cluster
            source["listeners"] += elsewhere.get("/" + source["listenurl"].split("/", 3)[3], 0)
    stats: Dict[str, Any] = {
        "admin": config.server.admin_email,
        "host": config.server.hostname,
        "location": config.server.location,
        "server_id": config.server.product,
        "server_start": rfc822(started),
        "server_start_iso8601": iso8601(started),
    }
    # Icecast's quirk, which tools rely on: one source is an object, several a list.
    if len(sources) == 1:
        stats["source"] = sources[0]
    elif sources:
        stats["source"] = sources
    return {"icestats": stats}


class StatusJson(Resource):
    """``/status-json.xsl``."""

    isLeaf = True

    def __init__(self, registry: MountRegistry, started: float):
        super().__init__()
        self.registry = registry
        self.started = started

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        body = icestats(self.registry, self.registry.config, self.started)
        return json.dumps(body, ensure_ascii=False).encode("utf-8")


def xml_bytes(root: ElementTree.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(root, encoding="utf-8",
                                                                           xml_declaration=False)


def sub(parent: ElementTree.Element, tag: str, text: Any = None, **attrs: str) -> ElementTree.Element:
    element = ElementTree.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = str(text)
    return element


def stats_xml(registry: MountRegistry, config: Config, started: float, now: float,
              with_listeners: bool = True) -> ElementTree.Element:
    """The ``<icestats>`` document of ``/admin/stats``."""
    root = ElementTree.Element("icestats")
    for key, value in icestats(registry, config, started)["icestats"].items():
        if key != "source":
            sub(root, key, value)
    sub(root, "sources", registry.sources)
    sub(root, "listeners", sum(m.listeners for m in registry.mounts.values()))
    for mount in sorted(registry.mounts.values(), key=lambda m: m.path):
        if mount.source is None:
            continue
        source = sub(root, "source", mount=mount.path)
        for key, value in source_status(mount, config).items():
            sub(source, key, value)
        sub(source, "slow_listeners", mount.slow_listeners)
        sub(source, "total_bytes_read", mount.bytes_received)
        sub(source, "total_bytes_sent", mount.total_bytes_sent)
        if with_listeners:
            add_listeners(source, mount, now)
    return root


def add_listeners(parent: ElementTree.Element, mount: Mount, now: float) -> None:
    for session in listener_sessions(mount):
        listener = sub(parent, "listener")
        sub(listener, "IP", session.peer)
        sub(listener, "UserAgent", session.user_agent)
        sub(listener, "Connected", int(now - (session.connected_at or now)))
        sub(listener, "ID", session.id)
        if getattr(session, "listener_id", None):
            sub(listener, "username", session.listener_id)
