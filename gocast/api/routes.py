# -*- test-case-name: tests.test_api -*-
"""
The REST API's route table: each route's method, path, the permission it
needs, its handler and the JSON schemas of its body and data. The API
resource serves from this table and the OpenAPI document is generated
from it, so the two cannot drift.

Handlers take ``(ctx, call)`` and return the response's ``data`` (or a
Deferred of it); they raise :class:`ApiError` for 4xx/5xx answers.
"""

from __future__ import annotations

import ipaddress
import os
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import attr

from .._version import __version__
from ..config import Config
from ..config._kinds import normalise_mount
from ..config._section import Section
from ..cluster.node import REGION_NAME
from ..core.mount import Mount
from ..core.track import TrackInfo, artwork_link, artwork_url, now_playing
from ..outputs.recorder import CONTENT_TYPES, content_type_of
from ..core.operations import find_listener, kick_listener, kill_source, listener_sessions, update_metadata
from ..observe.geo import audience, audience_of, merged, mount_locations
from ..observe.history import as_document, to_csv
from ..config._schema import PERMISSIONS
from .keys import ALL, MAX_API_KEYS, ApiKey, ApiKeys, valid_permissions
from .mounts import ApiMounts, MountError
from .schemas import (
    CLUSTER,
    ERROR_CODES,
    GEO,
    HISTORY,
    KEY,
    KEY_CREATED,
    LISTENER,
    MOUNT,
    RECORDING,
    RELOAD,
    ROUTE,
    SERVER_STATUS,
    SOURCE,
    STATS,
    array,
    nullable,
    obj,
)

RECORDING_BODY = obj({"mount": {"type": "string", "maxLength": 200, "description": "live or /live"}}, ["mount"])
RECORDING_STATE = obj({"mount": {"type": "string"}, "recording": {"type": "boolean"},
                       "manual": {"type": "boolean"}, "file": nullable("string")})
#: What a recording's download may be answered as: its format's type, or bytes of a kind not known.
RECORDING_TYPES = tuple(sorted(set(CONTENT_TYPES.values()))) + ("application/octet-stream",)

#: The latest expiry a key may have: the end of year 9999.
LATEST = 253402300799
#: Largest page of listeners.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


@attr.s(auto_attribs=True)
class ApiContext:
    registry: Any
    reloader: Any
    keys: ApiKeys
    mounts: ApiMounts
    now: Callable[[], float]
    started: float
    draining: Callable[[], bool] = lambda: False
    #: The stats history (:class:`gocast.history.StatsHistory`).
    history: Any = None
    #: This node's cluster membership and its relays (:mod:`gocast.cluster.node`, :mod:`gocast.inputs.relay`).
    cluster: Any = None
    relays: Any = None
    #: The worker processes (:class:`gocast.cluster.workers.WorkerPool`), with ``server.workers`` above 1.
    workers: Any = None
    #: The recorders (:class:`gocast.outputs.recorder.Recorders`).
    recorders: Any = None
    #: The transcoding ladders (:class:`gocast.outputs.ladder.Ladders`).
    ladders: Any = None

    @property
    def config(self) -> Config:
        return self.registry.config


@attr.s(auto_attribs=True)
class Call:
    """One API request as handlers see it."""

    params: Dict[str, str]
    query: Dict[str, str]
    body: Any
    request_id: str
    #: Extra members for the response's ``meta`` (pagination).
    meta: Dict[str, Any] = attr.Factory(dict)
    #: Who calls: an :class:`~gocast.api.keys.ApiKey`, or the admin (None in tests of a handler alone).
    principal: Any = None


@attr.s(frozen=True, auto_attribs=True)
class Route:
    method: str
    path: str
    permission: str
    summary: str
    handler: Callable[[ApiContext, Call], Any]
    status: int = 200
    data: Optional[Dict[str, Any]] = None
    body: Optional[Dict[str, Any]] = None
    query: Tuple[Tuple[str, Dict[str, Any], str], ...] = ()
    tag: str = "server"
    #: Also answers text/csv (with ``?format=csv``), outside the envelope.
    csv: bool = False
    #: Answers a file (a recording) of one of these content types, outside the envelope.
    download: Tuple[str, ...] = ()

    @property
    def segments(self) -> List[str]:
        return self.path.strip("/").split("/")

    def match(self, segments: List[str]) -> Optional[Dict[str, str]]:
        mine = self.segments
        if len(mine) != len(segments):
            return None
        params = {}
        for pattern, value in zip(mine, segments):
            if pattern.startswith("{"):
                if not value:
                    return None
                params[pattern[1:-1]] = value
            elif pattern != value:
                return None
        return params


# Helpers


def iso(seconds: Optional[float]) -> Optional[str]:
    if not seconds:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def mount_path(call: Call) -> str:
    """``:mount`` is the mount's name without its leading slash, percent-encoded if it has slashes."""
    return "/" + call.params["mount"].strip("/")


def find_mount(ctx: ApiContext, call: Call) -> Mount:
    return mount_named(ctx, call.params["mount"])


def mount_named(ctx: ApiContext, name: str) -> Mount:
    """The mount ``name`` (``live`` or ``/live``); 404 if there is none."""
    path = "/" + name.strip("/")
    mount = ctx.registry.get(path)
    if mount is None:
        raise ApiError(404, "not_found", "no mount %s" % path)
    return mount


def source_data(mount: Mount, now: float) -> Optional[Dict[str, Any]]:
    source = mount.source
    if source is None:
        return None
    info = source.audio_info()
    return {"content_type": source.content_type, "ip": source.peer or None, "user_agent": source.user_agent or None,
            "connected_at": iso(source.connected_at), "connected_seconds": int(now - source.connected_at),
            "bitrate": info.get("bitrate") or source.ice.get("icy-br"), "bytes_received": mount.bytes_received,
            "name": source.ice.get("ice-name") or source.ice.get("icy-name")}


def mount_data(ctx: ApiContext, mount: Mount) -> Dict[str, Any]:
    config = mount.config
    parent = ctx.registry.transcoded.get(mount.path)
    origin = ctx.mounts.origin(mount.path)
    if parent is not None and origin == "dynamic":
        origin = ctx.mounts.origin(parent)  # made from its parent's transcoding block
    ladder = ctx.ladders.of(mount.path) if ctx.ladders is not None else None
    return {
        "path": mount.path, "name": mount.path.lstrip("/"), "origin": origin,
        "live": mount.source is not None, "content_type": mount.content_type if mount.source else None,
        "listeners": mount.listeners, "peak_listeners": mount.peak_listeners,
        "max_listeners": config.max_listeners, "title": mount.title or None, "artist": mount.artist or None,
        "bytes_sent": mount.total_bytes_sent, "public": config.public, "hidden": config.hidden,
        "hls": config.hls.enabled, "source": source_data(mount, ctx.now()),
        "transcoded_from": parent, "transcoding": ladder.describe() if ladder is not None else [],
        "now_playing": now_playing(ctx.registry.on_air(mount.path) or mount, path=mount.path),
    }


def listener_data(session: Any, now: float) -> Dict[str, Any]:
    connected = getattr(session, "connected_at", None) or now
    return {"id": str(session.id), "ip": session.peer, "user_agent": session.user_agent or None,
            "connected_at": iso(connected), "duration": int(now - connected), "bytes_sent": session.sent,
            "listener_id": getattr(session, "listener_id", None)}


def int_query(call: Call, name: str, default: int, low: int, high: int) -> int:
    text = call.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ApiError(400, "invalid_parameter", "%s must be an integer from %d to %d" % (name, low, high),
                       [{"field": name, "message": "an integer from %d to %d" % (low, high)}])
    return int(text)


def body_object(call: Call) -> Dict[str, Any]:
    if not isinstance(call.body, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object",
                       [{"field": "", "message": "a JSON object"}])
    return call.body


def string_field(body: Dict[str, Any], name: str, required: bool = False, limit: int = 1024) -> Optional[str]:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(422, "invalid_field", "%s is required" % name, [{"field": name, "message": "required"}])
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ApiError(422, "invalid_field", "%s must be a string of at most %d characters" % (name, limit),
                       [{"field": name, "message": "a string of at most %d characters" % limit}])
    return value


def from_mount_error(e: MountError) -> ApiError:
    return ApiError(e.status, e.code, e.message, e.details)


# Server


def server_status(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    mounts = list(ctx.registry.mounts.values())
    return {"version": __version__, "started": iso(ctx.started), "uptime": int(ctx.now() - ctx.started),
            "status": "draining" if ctx.draining() else "ok", "mounts": len(mounts),
            "sources": sum(1 for m in mounts if m.source is not None),
            "listeners": sum(m.listeners for m in mounts)}


def server_config(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    return Section(Config).dump(ctx.config)  # secrets come out as <redacted>


def server_reload(ctx: ApiContext, call: Call) -> Any:
    def answered(result: Any) -> Dict[str, Any]:
        if not result.ok:
            raise ApiError(422, "invalid_config", "the config file has errors; the running config stays",
                           result.as_json()["errors"])
        return {k: v for k, v in result.as_json().items() if k != "errors"}

    return ctx.reloader.reload().addCallback(answered)


# Mounts


def list_mounts(ctx: ApiContext, call: Call) -> List[Dict[str, Any]]:
    return [mount_data(ctx, m) for m in sorted(ctx.registry.mounts.values(), key=lambda m: m.path)]


def get_mount(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    return mount_data(ctx, find_mount(ctx, call))


def create_mount(ctx: ApiContext, call: Call) -> Any:
    body = body_object(call)
    try:
        path, written = ctx.mounts.create(body.get("name"), body.get("config"))
    except MountError as e:
        raise from_mount_error(e)
    return written.addCallback(lambda _: mount_data(ctx, ctx.registry.get(path)))


def update_mount(ctx: ApiContext, call: Call) -> Any:
    body = body_object(call)
    path = mount_path(call)
    try:
        written = ctx.mounts.update(path, body.get("config"))
    except MountError as e:
        raise from_mount_error(e)
    return written.addCallback(lambda _: mount_data(ctx, ctx.registry.get(path)))


def delete_mount(ctx: ApiContext, call: Call) -> Any:
    path = mount_path(call)
    try:
        written = ctx.mounts.delete(path)
    except MountError as e:
        raise from_mount_error(e)
    return written.addCallback(lambda _: {"deleted": path})


def set_metadata(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    body = body_object(call)
    values = {name: string_field(body, name) for name in ("song", "title", "artist", "url")}
    if not any(values[name] for name in ("song", "title", "artist")):
        raise ApiError(422, "invalid_field", "give song, or title (and artist)",
                       [{"field": "title", "message": "song, title or artist is required"}])
    info = track_info(body)
    mount = find_mount(ctx, call)
    if mount.source is None:
        raise ApiError(409, "no_source", "%s has no source; metadata goes with a live stream" % mount.path)
    update_metadata(mount, info=info, **{k: v or "" for k, v in values.items()})
    return {"title": mount.title or None, "artist": mount.artist or None, "song": mount.song or None,
            "album": mount.track.album or None, "artwork": artwork_link(mount)}


def track_info(body: Dict[str, Any]) -> TrackInfo:
    """The album, genre, year, duration and cover URL of a metadata update, checked."""
    artwork = string_field(body, "artwork", limit=2048)
    if artwork and artwork_url(artwork) is None:
        raise ApiError(422, "invalid_field", "artwork must be an http or https URL",
                       [{"field": "artwork", "message": "an http(s) URL"}])
    year, duration = body.get("year"), body.get("duration")
    if year is not None and (not isinstance(year, int) or isinstance(year, bool) or not 0 <= year <= 9999):
        raise ApiError(422, "invalid_field", "year must be an integer from 0 to 9999",
                       [{"field": "year", "message": "an integer from 0 to 9999"}])
    if duration is not None and (not isinstance(duration, (int, float)) or isinstance(duration, bool)
                                 or not 0 <= duration <= 10 ** 7):
        raise ApiError(422, "invalid_field", "duration must be a number of seconds",
                       [{"field": "duration", "message": "seconds, from 0"}])
    return TrackInfo(album=string_field(body, "album") or "", genre=string_field(body, "genre") or "",
                     year=year, duration=float(duration) if duration is not None else None,
                     artwork=artwork_url(artwork) or "" if artwork else "")


# Sources


def get_source(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    mount = find_mount(ctx, call)
    data = source_data(mount, ctx.now())
    if data is None:
        raise ApiError(404, "no_source", "%s has no source" % mount.path)
    return data


def kick_source(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    mount = find_mount(ctx, call)
    if not kill_source(mount):
        raise ApiError(404, "no_source", "%s has no source" % mount.path)
    return {"disconnected": True}


# Listeners


def list_listeners(ctx: ApiContext, call: Call) -> List[Dict[str, Any]]:
    mount = find_mount(ctx, call)
    limit = int_query(call, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    cursor = int_query(call, "cursor", 0, 0, 2 ** 63)
    sessions = sorted((s for s in listener_sessions(mount) if int(s.id) > cursor), key=lambda s: int(s.id))
    page = sessions[:limit]
    call.meta["pagination"] = {"limit": limit,
                               "next_cursor": str(page[-1].id) if len(sessions) > limit else None}
    now = ctx.now()
    return [listener_data(s, now) for s in page]


def get_listener(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    mount = find_mount(ctx, call)
    session = find_listener(mount, call.params["id"])
    if session is None:
        raise ApiError(404, "not_found", "no listener %s on %s" % (call.params["id"], mount.path))
    return listener_data(session, ctx.now())


def kick(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    mount = find_mount(ctx, call)
    if not kick_listener(ctx.registry, mount, call.params["id"]):
        raise ApiError(404, "not_found", "no listener %s on %s" % (call.params["id"], mount.path))
    return {"kicked": call.params["id"]}


# Statistics


def stats(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    mounts = sorted(ctx.registry.mounts.values(), key=lambda m: m.path)
    figures = {"total_listeners": sum(m.listeners for m in mounts),
               "sources": sum(1 for m in mounts if m.source is not None),
               "uptime": int(ctx.now() - ctx.started),
               "mounts": [{"path": m.path, "listeners": m.listeners, "peak_listeners": m.peak_listeners,
                           "bytes_sent": m.total_bytes_sent, "bytes_received": m.bytes_received,
                           "live": m.source is not None}
                          for m in mounts]}
    if ctx.cluster is not None and ctx.cluster.enabled:
        figures["cluster"] = ctx.cluster.totals()  # this node's figures above, the station's here
    return figures


def cluster_status(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    """The cluster as this node sees it (nodes, regions, mounts and their chains) and its own relays."""
    status = ctx.cluster.status() if ctx.cluster is not None else {"enabled": False, "nodes": []}
    status["relays"] = ctx.relays.status() if ctx.relays is not None else []
    status["workers"] = ctx.workers.status() if ctx.workers is not None else []
    return status


@attr.s(frozen=True, auto_attribs=True)
class RawAnswer:
    """An answer sent as it is, not in the JSON envelope (a CSV export)."""

    content_type: str
    body: bytes
    filename: str = ""


@attr.s(auto_attribs=True, frozen=True)
class FileAnswer:
    """A file sent as it is (a recording), with Range requests answered."""

    path: str
    content_type: str
    filename: str


def stats_history(ctx: ApiContext, call: Call) -> Any:
    """Listeners, peak and rates per mount over the last hour (10 s samples) or day (5 min averages)."""
    span = call.query.get("range", "1h")
    fmt = call.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise ApiError(400, "invalid_parameter", "format must be json or csv",
                       [{"field": "format", "message": "json or csv"}])
    mount = mount_named(ctx, call.query["mount"]).path if "mount" in call.query else None
    try:
        points = ctx.history.history(span, mount)
    except ValueError as e:
        raise ApiError(400, "invalid_parameter", str(e), [{"field": "range", "message": str(e)}])

    def answer(found: List[Dict[str, Any]]) -> Any:
        if fmt == "csv":
            return RawAnswer("text/csv; charset=utf-8", to_csv(found, iso).encode("utf-8"),
                             "gocast-history-%s.csv" % span)
        return as_document(found, span, iso)

    return points.addCallback(answer)


def geo_stats(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    """Listeners by country and city, per mount and in all (GeoIP, looked up when each connected)."""
    wanted = call.query.get("mount")
    mounts = sorted(ctx.registry.mounts.values(), key=lambda m: m.path)
    if wanted is not None:
        mounts = [mount_named(ctx, wanted)]
    per_mount = [dict(audience(mount_locations(m)), mount=m.path, listeners=m.listeners) for m in mounts]
    answer = dict(audience_of(mounts), mounts=per_mount, enabled=ctx.config.geoip.enabled,
                  precision=ctx.config.geoip.precision)
    if ctx.cluster is not None and ctx.cluster.enabled:
        # The station's: this node's listeners and every other node's, as each last told.
        paths = {m.path for m in mounts}
        others = [(path, record) for path, record in ctx.cluster.other_mounts() if wanted is None or path in paths]
        answer["cluster"] = merged([answer] + [record.places for _, record in others])
    return answer


def cluster_route(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    """The node a listener at ``ip`` should be sent to for ``mount`` (for GeoDNS or an edge's redirects)."""
    address, mount = call.query.get("ip", ""), normalise_mount(call.query.get("mount", ""))
    region = call.query.get("region") or None
    try:
        address = str(ipaddress.ip_address(address))
    except ValueError:
        raise ApiError(400, "invalid_parameter", "ip must be an IPv4 or IPv6 address",
                       [{"field": "ip", "message": "an IP address"}])
    if mount is None:
        raise ApiError(400, "invalid_parameter", "mount must be a mount path such as /live",
                       [{"field": "mount", "message": "a mount path"}])
    if region is not None and not REGION_NAME.fullmatch(region):
        raise ApiError(400, "invalid_parameter", "region must be a region name (letters, digits, - and _)",
                       [{"field": "region", "message": "a region name"}])
    found = ctx.cluster.route(mount, address, region) if ctx.cluster is not None else None
    if found is None:
        raise ApiError(409, "not_in_cluster", "this server is not in a cluster (cluster { sync { enabled true } })")
    place = ctx.cluster.place_of(address)
    node = found.node
    return {"ip": address, "mount": mount, "country": place.country, "continent": place.continent or None,
            "region": found.region, "node": node.id if node else None, "address": node.address if node else None,
            "url": "http://%s%s" % (node.address, mount) if node else None, "redirect": found.redirect,
            "reason": found.reason}


# Recordings


def list_recordings(ctx: ApiContext, call: Call) -> List[Dict[str, Any]]:
    """Newest first; by mount and by time (``since``/``until``, Unix seconds), in pages."""
    mount = call.query.get("mount")
    since = int_query(call, "since", 0, 0, 2 ** 40)
    until = int_query(call, "until", 2 ** 40, 0, 2 ** 40)
    limit = int_query(call, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = int_query(call, "cursor", 0, 0, 2 ** 31)
    wanted = normalise_mount(mount) if mount else None
    found = [e for e in (ctx.recorders.catalog() if ctx.recorders is not None else [])
             if (wanted is None or e["mount"] == wanted) and since <= e["modified"] <= until]
    page = found[offset:offset + limit]
    call.meta["pagination"] = {"limit": limit,
                               "next_cursor": str(offset + limit) if len(found) > offset + limit else None}
    return [recording_data(e) for e in page]


def recording_data(entry: Dict[str, Any]) -> Dict[str, Any]:
    return {"id": entry["id"], "mount": entry["mount"], "size": entry["size"], "started": iso(entry["started"]),
            "modified": iso(entry["modified"]), "recording": entry["recording"]}


def closed_recording(ctx: ApiContext, recording_id: str) -> Dict[str, Any]:
    if ctx.recorders is None:
        raise ApiError(404, "not_found", "no recording %s" % recording_id[:200])
    try:
        return ctx.recorders.closed(recording_id)
    except KeyError:
        raise ApiError(404, "not_found", "no recording %s" % recording_id[:200])
    except ValueError as e:
        raise ApiError(409, "recording", str(e))


def download_recording(ctx: ApiContext, call: Call) -> FileAnswer:
    entry = closed_recording(ctx, call.params["id"])
    return FileAnswer(entry["path"], content_type_of(entry["id"]), entry["id"])


def delete_recording(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    recording_id = call.params["id"]
    if ctx.recorders is None:
        raise ApiError(404, "not_found", "no recording %s" % recording_id[:200])
    try:
        entry = ctx.recorders.delete(recording_id)
    except KeyError:
        raise ApiError(404, "not_found", "no recording %s" % recording_id[:200])
    except ValueError as e:
        raise ApiError(409, "recording", str(e))
    except OSError as e:
        raise ApiError(500, "delete_failed", "%s was not deleted: %s" % (recording_id[:200], e.strerror))
    return {"deleted": entry["id"]}


def start_recording(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    mount = mount_named(ctx, string_field(body_object(call), "mount", required=True) or "")
    if ctx.recorders is None:
        raise ApiError(409, "recording", "this server does not record")
    try:
        recorder = ctx.recorders.start(mount)
    except ValueError as e:
        raise ApiError(409, "recording", str(e))
    return {"mount": mount.path, "recording": True, "manual": True,
            "file": os.path.basename(recorder.file.final) if recorder.file is not None else None}


def stop_recording(ctx: ApiContext, call: Call) -> Dict[str, Any]:
    mount = mount_named(ctx, string_field(body_object(call), "mount", required=True) or "")
    if ctx.recorders is None:
        raise ApiError(409, "recording", "this server does not record")
    try:
        closed = ctx.recorders.stop(mount.path)
    except KeyError:
        raise ApiError(409, "not_recording", "%s is not being recorded" % mount.path)
    except ValueError as e:
        raise ApiError(409, "recording", str(e))
    return {"mount": mount.path, "recording": False, "file": closed}


# API keys


def list_keys(ctx: ApiContext, call: Call) -> List[Dict[str, Any]]:
    return [key.public() for key in sorted(ctx.keys.keys.values(), key=lambda k: (k.origin, k.name))]


def create_key(ctx: ApiContext, call: Call) -> Any:
    body = body_object(call)
    name = string_field(body, "name", required=True, limit=100)
    description = string_field(body, "description", limit=1000) or ""
    problem = valid_permissions(body.get("permissions"))
    if problem:
        raise ApiError(422, "invalid_field", "permissions must be %s" % problem,
                       [{"field": "permissions", "message": problem}])
    granting = call.principal
    if isinstance(granting, ApiKey):
        # A key never grants more than it holds: * only from a key that has *.
        beyond = [p for p in body["permissions"] if not (ALL in granting.permissions or p in granting.permissions)]
        if beyond:
            raise ApiError(403, "forbidden", "API key %s cannot grant what it does not hold: %s"
                           % (granting.name, ", ".join(beyond)), {"required": ", ".join(beyond)})
    expires = body.get("expires")
    if expires is not None and (not isinstance(expires, (int, float)) or isinstance(expires, bool)
                                or not 0 <= expires <= LATEST):
        raise ApiError(422, "invalid_field", "expires must be a Unix time in seconds",
                       [{"field": "expires", "message": "a Unix time in seconds"}])
    if sum(1 for key in ctx.keys.keys.values() if key.origin == "api") >= MAX_API_KEYS:
        raise ApiError(409, "conflict", "there are %d API keys already, the most GoCast keeps; revoke some first"
                       % MAX_API_KEYS)
    key, secret, written = ctx.keys.create(name, body["permissions"], expires, description)  # type: ignore
    return written.addCallback(lambda _: dict(key.public(), key=secret))


def revoke_key(ctx: ApiContext, call: Call) -> Any:
    key = ctx.keys.keys.get(call.params["id"])
    if key is None:
        raise ApiError(404, "not_found", "no API key %s" % call.params["id"])
    if key.origin == "config":
        raise ApiError(409, "config_file_key", "key %s is in the config file; remove it there and reload"
                       % key.name)
    return ctx.keys.revoke(key.id).addCallback(lambda _: {"revoked": key.id})


M = "/mounts/{mount}"
PAGE = (("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "Listeners per page (default 100)."),
        ("cursor", {"type": "string", "pattern": "^[0-9]{1,18}$"}, "next_cursor of the previous page."))
#: A mount name: live or /live, segments of URL-safe characters (not . or ..).
MOUNT_NAME = {"type": "string", "pattern": "^/?[A-Za-z0-9_~-][A-Za-z0-9._~-]*(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*$",
              "maxLength": 200, "description": "Mount name: live or /live."}
#: A mount's settings: the config file's ``mounts { NAME { ... } }`` block, as JSON.
MOUNT_CONFIG_REF = {"$ref": "#/components/schemas/MountConfig"}
MOUNT_BODY = obj({"name": MOUNT_NAME, "config": MOUNT_CONFIG_REF}, ["name"])
CONFIG_BODY = obj({"config": MOUNT_CONFIG_REF}, [])
METADATA_BODY = dict(obj(dict({k: {"type": "string", "maxLength": 1024}
                               for k in ("song", "title", "artist", "url", "album", "genre")},
                              artwork={"type": "string", "maxLength": 2048, "pattern": "^https?://",
                                       "description": "The cover's URL (shown, and fetched when allowed: "
                                                      "docs/programming.md)."},
                              year={"type": "integer", "minimum": 0, "maximum": 9999},
                              duration={"type": "number", "minimum": 0, "maximum": 10 ** 7})),
                     anyOf=[obj({k: {"type": "string", "minLength": 1}}, [k]) for k in ("song", "title", "artist")])
KEY_BODY = obj({"name": {"type": "string", "minLength": 1, "maxLength": 100},
                "permissions": {"type": "array", "minItems": 1,
                                "items": {"type": "string", "enum": list(PERMISSIONS) + ["*"]}},
                "expires": {"type": "number", "minimum": 0, "maximum": LATEST,
                            "description": "Unix time the key stops working (a past one makes a dead key)."},
                "description": {"type": "string", "maxLength": 1000}}, ["name", "permissions"])

ROUTES: Tuple[Route, ...] = (
    Route("GET", "/server/status", "read_stats", "Server status", server_status, data=SERVER_STATUS),
    Route("GET", "/server/config", "reload", "Running config, secrets redacted", server_config,
          data={"type": "object"}),
    Route("POST", "/server/reload", "reload", "Reload the config file", server_reload, data=RELOAD),
    Route("GET", "/mounts", "read_mounts", "List mounts", list_mounts, data=array(MOUNT), tag="mounts"),
    Route("POST", "/mounts", "write_mounts", "Create a mount (kept in the state store)", create_mount,
          status=201, data=MOUNT, body=MOUNT_BODY, tag="mounts"),
    Route("GET", M, "read_mounts", "Get a mount", get_mount, data=MOUNT, tag="mounts"),
    Route("PUT", M, "write_mounts", "Change a mount created through the API", update_mount, data=MOUNT,
          body=CONFIG_BODY, tag="mounts"),
    Route("DELETE", M, "write_mounts", "Delete a mount created through the API", delete_mount,
          data=obj({"deleted": {"type": "string"}}), tag="mounts"),
    Route("POST", M + "/metadata", "write_metadata", "Set now playing", set_metadata,
          data=obj({k: nullable("string") for k in ("title", "artist", "song", "album", "artwork")}),
          body=METADATA_BODY,
          tag="mounts"),
    Route("GET", M + "/source", "read_mounts", "The mount's source", get_source, data=SOURCE, tag="sources"),
    Route("DELETE", M + "/source", "manage_sources", "Disconnect the source", kick_source,
          data=obj({"disconnected": {"type": "boolean"}}), tag="sources"),
    Route("GET", M + "/listeners", "manage_listeners", "List listeners (paginated)", list_listeners,
          data=array(LISTENER), query=PAGE, tag="listeners"),
    Route("GET", M + "/listeners/{id}", "manage_listeners", "Get a listener", get_listener, data=LISTENER,
          tag="listeners"),
    Route("DELETE", M + "/listeners/{id}", "manage_listeners", "Disconnect a listener", kick,
          data=obj({"kicked": {"type": "string"}}), tag="listeners"),
    Route("GET", "/stats", "read_stats", "Listener and traffic figures", stats, data=STATS, tag="stats"),
    Route("GET", "/stats/history", "read_stats", "Figures over time (last hour or day), JSON or CSV",
          stats_history, data=HISTORY, csv=True, tag="stats",
          query=(("range", {"type": "string", "enum": ["1h", "1d"]}, "1h: 10 s samples; 1d: 5 min averages."),
                 ("mount", {"type": "string", "maxLength": 200}, "Only this mount (live or /live)."),
                 ("format", {"type": "string", "enum": ["json", "csv"]}, "csv: a file to download."))),
    Route("GET", "/stats/geo", "read_stats", "Listeners by country and city (GeoIP)", geo_stats, data=GEO,
          query=(("mount", {"type": "string", "maxLength": 200}, "Only this mount (live or /live)."),),
          tag="stats"),
    Route("GET", "/cluster", "read_stats", "Cluster nodes, the mounts each carries and how, and this node's "
          "relays", cluster_status, data=CLUSTER, tag="cluster"),
    Route("GET", "/cluster/route", "read_stats", "The node a listener should be sent to (geographic routing)",
          cluster_route, data=ROUTE, tag="cluster",
          query=(("ip", {"type": "string", "maxLength": 64}, "The listener's address."),
                 ("mount", {"type": "string", "maxLength": 200}, "The mount (live or /live)."),
                 ("region", {"type": "string", "maxLength": 32}, "Decide the region instead of GeoIP."))),
    Route("GET", "/recordings", "manage_recordings", "List recordings, newest first (closed files and those "
          "being written)", list_recordings, data=array(RECORDING), tag="recordings",
          query=(("mount", {"type": "string", "maxLength": 200}, "Only this mount (live or /live)."),
                 ("since", {"type": "integer", "minimum": 0}, "Only files last written at or after (Unix time)."),
                 ("until", {"type": "integer", "minimum": 0}, "Only files last written at or before (Unix time)."),
                 ("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "Per page (default 100)."),
                 ("cursor", {"type": "string"}, "next_cursor of the previous page."))),
    Route("POST", "/recordings/start", "manage_recordings", "Start recording a mount (until stopped)",
          start_recording, data=RECORDING_STATE, body=RECORDING_BODY, tag="recordings"),
    Route("POST", "/recordings/stop", "manage_recordings", "Stop a recording started with start",
          stop_recording, data=RECORDING_STATE, body=RECORDING_BODY, tag="recordings"),
    Route("GET", "/recordings/{id}", "manage_recordings", "Download a closed recording (Range requests "
          "answered with 206)", download_recording, tag="recordings", download=RECORDING_TYPES),
    Route("DELETE", "/recordings/{id}", "manage_recordings", "Delete a closed recording", delete_recording,
          data=obj({"deleted": {"type": "string"}}), tag="recordings"),
    Route("GET", "/keys", "manage_keys", "List API keys with their usage", list_keys, data=array(KEY),
          tag="keys"),
    Route("POST", "/keys", "manage_keys", "Create an API key (its secret is shown once)", create_key,
          status=201, data=KEY_CREATED, body=KEY_BODY, tag="keys"),
    Route("DELETE", "/keys/{id}", "manage_keys", "Revoke an API key", revoke_key,
          data=obj({"revoked": {"type": "string"}}), tag="keys"),
)

__all__ = ["ApiContext", "ApiError", "Call", "ERROR_CODES", "ROUTES", "Route"]
