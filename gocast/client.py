# -*- test-case-name: tests.test_cli_client -*-
"""
The Python SDK for GoCast's REST API (``/api/v1``), synchronous and with
no dependency beyond the standard library::

    from gocast import GoCastClient

    client = GoCastClient("http://localhost:8000", api_key="gck_...")
    stats = client.get_stats()
    print(f"Total listeners: {stats.total_listeners}")
    client.mounts.update_metadata("/live", title="Now Playing: Great Song")
    for listener in client.mounts.get_listeners("/live"):
        print(f"{listener.ip} - connected {listener.duration}s")

Every call returns typed results (attrs classes) and raises
:class:`GoCastError` carrying the API's error code, message and details;
:class:`ConnectionFailed` when the server cannot be reached. The
``gocast`` command uses this client.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Iterator, List, Optional, Tuple, Type, TypeVar

import attr

T = TypeVar("T")


class GoCastError(Exception):
    """An error answer from the API."""

    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__("%s (%s, HTTP %d)" % (message, code, status))
        self.status, self.code, self.message, self.details = status, code, message, details


class ConnectionFailed(GoCastError):
    """The server could not be reached at all."""

    def __init__(self, url: str, reason: str):
        super().__init__(0, "connection_failed", "cannot reach GoCast at %s: %s" % (url, reason))
        self.url = url


def _build(cls: Type[T], data: Dict[str, Any]) -> T:
    """``cls`` from an API object, ignoring members this client does not know."""
    names = {f.name for f in attr.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@attr.s(frozen=True, auto_attribs=True)
class MountStats:
    path: str
    listeners: int
    peak_listeners: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    live: bool = False


@attr.s(frozen=True, auto_attribs=True)
class Stats:
    total_listeners: int
    sources: int
    uptime: int
    mounts: Tuple[MountStats, ...]


@attr.s(frozen=True, auto_attribs=True)
class Source:
    content_type: str
    connected_seconds: int
    ip: Optional[str] = None
    user_agent: Optional[str] = None
    connected_at: Optional[str] = None
    bitrate: Optional[str] = None
    bytes_received: int = 0
    name: Optional[str] = None


@attr.s(frozen=True, auto_attribs=True)
class Mount:
    path: str
    name: str
    origin: str
    live: bool
    listeners: int
    peak_listeners: int = 0
    max_listeners: int = 0
    content_type: Optional[str] = None
    title: Optional[str] = None
    artist: Optional[str] = None
    bytes_sent: int = 0
    public: bool = True
    hidden: bool = False
    hls: bool = False
    source: Optional[Source] = None


@attr.s(frozen=True, auto_attribs=True)
class Listener:
    id: str
    ip: str
    duration: int
    user_agent: Optional[str] = None
    connected_at: Optional[str] = None
    bytes_sent: int = 0
    #: Who the listener authenticated as (a token's listener_id, a user name).
    listener_id: Optional[str] = None


@attr.s(frozen=True, auto_attribs=True)
class ApiKey:
    id: str
    name: str
    permissions: Tuple[str, ...]
    origin: str
    requests: int = 0
    expires: Optional[str] = None
    description: str = ""
    created: Optional[str] = None
    last_used: Optional[str] = None
    #: The secret: only in the answer to :meth:`Keys.create`.
    key: Optional[str] = None


@attr.s(frozen=True, auto_attribs=True)
class ServerStatus:
    version: str
    status: str
    listeners: int
    uptime: int = 0
    started: Optional[str] = None
    mounts: int = 0
    sources: int = 0


def _mount(data: Dict[str, Any]) -> Mount:
    source = data.get("source")
    return _build(Mount, dict(data, source=_build(Source, source) if source else None))


def mount_segment(mount: str) -> str:
    """``/live`` or ``live`` as a path segment: the name without its slash, other slashes encoded."""
    return urllib.parse.quote(mount.strip("/"), safe="")


class GoCastClient:
    """
    :param url: the server's base URL, such as ``http://localhost:8000``.
    :param api_key: an API key (``gck_...``).
    :param admin: or the admin user and password, for full access.
    """

    def __init__(self, url: str, api_key: Optional[str] = None, admin: Optional[Tuple[str, str]] = None,
                 timeout: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.headers = {"Accept": "application/json", "User-Agent": "gocast-client"}
        if api_key:
            self.headers["Authorization"] = "Bearer " + api_key
        elif admin:
            token = base64.b64encode(("%s:%s" % admin).encode("utf-8")).decode("ascii")
            self.headers["Authorization"] = "Basic " + token
        self.mounts = Mounts(self)
        self.keys = Keys(self)
        self.recordings = Recordings(self)

    def call(self, method: str, path: str, body: Any = None,
             query: Optional[Dict[str, Any]] = None) -> Tuple[Any, Dict[str, Any]]:
        """One API call: (data, meta); GoCastError on an error answer."""
        with self._open(method, path, body, query) as response:
            try:
                document = json.loads(response.read())
            except (OSError, ValueError) as e:
                raise ConnectionFailed(self.url, str(getattr(e, "reason", e)))
        return document.get("data"), document.get("meta", {})

    def _open(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None,
              headers: Optional[Dict[str, str]] = None) -> Any:
        """The HTTP response of an API call, to read; GoCastError on an error answer."""
        url = self.url + "/api/v1" + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = json.dumps(body).encode("utf-8") if body is not None else None
        sent = dict(self.headers, **({"Content-Type": "application/json"} if data is not None else {}),
                    **(headers or {}))
        request = urllib.request.Request(url, data=data, method=method, headers=sent)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                error = json.loads(raw)["error"]
            except (ValueError, KeyError, TypeError):
                raise GoCastError(e.code, "http_error", "%s answered HTTP %d: %s" % (
                    url, e.code, raw[:200].decode("utf-8", "replace")))
            raise GoCastError(e.code, error.get("code", ""), error.get("message", ""), error.get("details"))
        except (OSError, ValueError) as e:
            raise ConnectionFailed(self.url, str(getattr(e, "reason", e)))

    # Server

    def server_status(self) -> ServerStatus:
        return _build(ServerStatus, self.call("GET", "/server/status")[0])

    def server_config(self) -> Dict[str, Any]:
        return self.call("GET", "/server/config")[0]

    def reload(self) -> Dict[str, Any]:
        return self.call("POST", "/server/reload")[0]

    def cluster(self) -> Dict[str, Any]:
        """The cluster as the server sees it: nodes, their mounts and chains, and its relays."""
        return self.call("GET", "/cluster")[0]

    def cluster_route(self, ip: str, mount: str, region: Optional[str] = None) -> Dict[str, Any]:
        """The node a listener at ``ip`` is sent to for ``mount`` (geographic routing), and why."""
        return self.call("GET", "/cluster/route", query={"ip": ip, "mount": mount, "region": region})[0]

    def get_stats(self) -> Stats:
        data = self.call("GET", "/stats")[0]
        return Stats(data["total_listeners"], data["sources"], data["uptime"],
                     tuple(_build(MountStats, m) for m in data["mounts"]))

class Mounts:
    def __init__(self, client: GoCastClient):
        self.client = client

    def list(self) -> List[Mount]:
        return [_mount(m) for m in self.client.call("GET", "/mounts")[0]]

    def get(self, mount: str) -> Mount:
        return _mount(self.client.call("GET", "/mounts/" + mount_segment(mount))[0])

    def create(self, mount: str, **config: Any) -> Mount:
        return _mount(self.client.call("POST", "/mounts", {"name": mount, "config": config})[0])

    def update(self, mount: str, **config: Any) -> Mount:
        return _mount(self.client.call("PUT", "/mounts/" + mount_segment(mount), {"config": config})[0])

    def delete(self, mount: str) -> None:
        self.client.call("DELETE", "/mounts/" + mount_segment(mount))

    def update_metadata(self, mount: str, title: Optional[str] = None, artist: Optional[str] = None,
                        song: Optional[str] = None, url: Optional[str] = None) -> Dict[str, Any]:
        body = {k: v for k, v in (("title", title), ("artist", artist), ("song", song), ("url", url)) if v}
        return self.client.call("POST", "/mounts/%s/metadata" % mount_segment(mount), body)[0]

    def get_listeners(self, mount: str, page_size: int = 100) -> Iterator[Listener]:
        """Every listener of ``mount``, fetched a page at a time."""
        cursor = None
        while True:
            data, meta = self.client.call("GET", "/mounts/%s/listeners" % mount_segment(mount),
                                          query={"limit": page_size, "cursor": cursor})
            for item in data:
                yield _build(Listener, item)
            cursor = (meta.get("pagination") or {}).get("next_cursor")
            if not cursor:
                return

    def get_listener(self, mount: str, listener_id: str) -> Listener:
        return _build(Listener, self.client.call(
            "GET", "/mounts/%s/listeners/%s" % (mount_segment(mount), listener_id))[0])

    def kick(self, mount: str, listener_id: str) -> None:
        self.client.call("DELETE", "/mounts/%s/listeners/%s" % (mount_segment(mount), listener_id))

    def source(self, mount: str) -> Source:
        return _build(Source, self.client.call("GET", "/mounts/%s/source" % mount_segment(mount))[0])

    def kill_source(self, mount: str) -> None:
        self.client.call("DELETE", "/mounts/%s/source" % mount_segment(mount))


class Keys:
    def __init__(self, client: GoCastClient):
        self.client = client

    def list(self) -> List[ApiKey]:
        return [_build(ApiKey, dict(k, permissions=tuple(k["permissions"])))
                for k in self.client.call("GET", "/keys")[0]]

    def create(self, name: str, permissions: List[str], expires: Optional[float] = None,
               description: str = "") -> ApiKey:
        body: Dict[str, Any] = {"name": name, "permissions": permissions, "description": description}
        if expires is not None:
            body["expires"] = expires
        data = self.client.call("POST", "/keys", body)[0]
        return _build(ApiKey, dict(data, permissions=tuple(data["permissions"])))

    def revoke(self, key_id: str) -> None:
        self.client.call("DELETE", "/keys/" + key_id)


class Recordings:
    """``client.recordings``: list, start, stop, download, delete."""

    def __init__(self, client: GoCastClient):
        self.client = client

    def list(self, mount: Optional[str] = None) -> List[Dict[str, Any]]:
        """Recordings, newest first (the first page of 1,000)."""
        return self.client.call("GET", "/recordings", query={"mount": mount, "limit": 1000})[0]

    def start(self, mount: str) -> Dict[str, Any]:
        return self.client.call("POST", "/recordings/start", {"mount": mount})[0]

    def stop(self, mount: str) -> Dict[str, Any]:
        return self.client.call("POST", "/recordings/stop", {"mount": mount})[0]

    def delete(self, recording_id: str) -> Dict[str, Any]:
        return self.client.call("DELETE", "/recordings/" + urllib.parse.quote(recording_id, safe=""))[0]

    def download(self, recording_id: str, destination: Any) -> int:
        """Write a closed recording to ``destination`` (a binary file); the bytes written."""
        written = 0
        path = "/recordings/" + urllib.parse.quote(recording_id, safe="")
        with self.client._open("GET", path) as response:
            while True:
                try:
                    block = response.read(64 * 1024)
                except OSError as e:
                    raise ConnectionFailed(self.client.url, str(e))
                if not block:
                    return written
                destination.write(block)
                written += len(block)
