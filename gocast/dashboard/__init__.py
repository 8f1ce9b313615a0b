# -*- test-case-name: tests.test_dashboard -*-
"""
``GET <admin_root>/dashboard``: the live admin dashboard.

A single page (``static/``: HTML, CSS and JavaScript, no build step) that
logs in with the admin credentials, then reads the live stats stream
(:mod:`gocast.live`) and the stats history. Charting comes from uPlot,
taken from the npm registry when GoCast is built (setup.py's
``build_assets`` copies it into ``gocast/dashboard/vendor``, never
committed, and the wheel carries it) and served from there, so the page
needs no internet access.

Routes under ``<admin_root>/dashboard/``:

- ``login`` (POST ``{"user", "password"}``): a session cookie (HttpOnly,
  SameSite=Strict) and a CSRF token; failed logins are rate limited per
  address like API keys. ``logout`` (POST) and ``session`` (GET).
- ``history?range=1h|1d&format=json|csv``: the stats history.
- ``action`` (POST, session + ``X-CSRF-Token``): update metadata, kick a
  listener, kill a source, move listeners, through the same operations
  as the Icecast admin and the REST API.
- ``static/...`` and ``vendor/...``: the page's files and uPlot's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from twisted.web.static import File

from ..api.routes import iso, listener_data
from ..auth.address import host_of
from ..auth.base import credentials
from ..cluster.shared import Collection
from ..core.credentials import admin_credentials_ok
from ..core.operations import (
    find_listener,
    kick_listener,
    kill_source,
    listener_sessions,
    move_listeners,
    update_metadata,
)
from ..observe.geo import NOWHERE
from ..outputs.recorder import content_type_of
from ..observe.history import as_document, to_csv
from ..resources.site import header_text, request_arg, send_download

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC = os.path.join(HERE, "static")
VENDOR = os.path.join(HERE, "vendor")
COOKIE = b"gocast_dashboard"
MAX_SESSIONS = 1000
MAX_BODY = 16 * 1024
#: Listeners listed per mount (the REST API pages through all of them).
MAX_LISTED = 500


class Sessions(Collection):
    """
    Dashboard logins: a random token (the cookie) to its expiry and CSRF
    token. Kept by the SHA-256 of the token, in memory and in the state
    store, so a restart keeps operators logged in and the store's file
    holds no usable cookie.

    In a cluster the logins are shared (a :class:`gocast.cluster.shared.Collection`):
    log in on one node, and the cookie works on every node; log out, and it
    works on none.

    :param lifetime: ``admin.session_timeout``, read at each login.
    :param store: the state store; None keeps logins in memory only.
    """

    _log = Logger()
    kind = "sessions"

    def __init__(self, now: Callable[[], float], lifetime: Callable[[], float], store: Any = None):
        self.now = now
        self.lifetime = lifetime
        self.store = store
        self._sessions: Dict[str, Tuple[float, str]] = {}
        if store is not None:
            for token_hash, expires, csrf in store.dashboard_sessions(now())[-MAX_SESSIONS:]:
                self._sessions[token_hash] = (expires, csrf)

    def open(self) -> Tuple[str, str]:
        if len(self._sessions) >= MAX_SESSIONS:
            self._forget(min(self._sessions, key=lambda h: self._sessions[h][0]))
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        expires = self.now() + self.lifetime()
        token_hash = _hash(token)
        self._sessions[token_hash] = (expires, csrf)
        if self.store is not None:
            self.store.put_dashboard_session(token_hash, expires, csrf).addErrback(self._unsaved)
        if self.sharing:
            self.shared.share(self.kind, token_hash, {"expires": expires, "csrf": csrf}).addErrback(
                lambda f: self._log.warn("dashboard login not shared with the cluster ({why}): it works on this "
                                         "node only", why=f.getErrorMessage()))
        return token, csrf

    def find(self, token: Optional[str]) -> Optional[str]:
        """The session's CSRF token, if ``token`` is a live session."""
        if not token:
            return None
        token_hash = _hash(token)
        found = self._sessions.get(token_hash)
        if found is None:
            return None
        expires, csrf = found
        if self.now() > expires:
            self._forget(token_hash)
            return None
        return csrf

    def known_elsewhere(self, token: Optional[str]) -> Any:
        """
        A Deferred that fires once a login this node does not know was looked
        up in the cluster (taken here if another node made it): logging in on
        one node and asking another at once works. ``None`` when there is
        nothing to look up.
        """
        if not token or not self.sharing or self.find(token) is not None:
            return None
        token_hash = _hash(token)
        return self.shared.fetch(self.kind, token_hash).addCallback(
            lambda record: self._take(token_hash, record) if record is not None else None)

    def close(self, token: Optional[str]) -> None:
        if token:
            self._forget(_hash(token))

    def _forget(self, token_hash: str, everywhere: bool = True) -> None:
        if self._sessions.pop(token_hash, None) is None:
            return
        if self.store is not None:
            self.store.delete_dashboard_session(token_hash, self.now()).addErrback(self._unsaved)
        if everywhere and self.sharing:
            self.shared.unshare(self.kind, token_hash)

    # Shared with the cluster

    def records(self) -> Dict[str, Dict[str, Any]]:
        now = self.now()
        return {h: {"expires": expires, "csrf": csrf} for h, (expires, csrf) in self._sessions.items()
                if expires > now}

    def received(self, token_hash: str, record: Optional[Dict[str, Any]]) -> None:
        if record is None:
            self._forget(token_hash, everywhere=False)
            return
        self._take(token_hash, record)

    def replace(self, records: Dict[str, Dict[str, Any]]) -> None:
        for token_hash in [h for h in self._sessions if h not in records]:
            self._forget(token_hash, everywhere=False)
        now = self.now()
        for token_hash, record in records.items():
            if isinstance(record.get("expires"), (int, float)) and record["expires"] <= now and self.sharing:
                self.shared.unshare(self.kind, token_hash)  # expired unused: gone from the cluster too
            self._take(token_hash, record)

    def _take(self, token_hash: str, record: Dict[str, Any]) -> None:
        expires, csrf = record.get("expires"), record.get("csrf")
        if not isinstance(expires, (int, float)) or not isinstance(csrf, str) or len(token_hash) != 64:
            return
        if expires <= self.now() or self._sessions.get(token_hash) == (expires, csrf):
            return
        if token_hash not in self._sessions and len(self._sessions) >= MAX_SESSIONS:
            return
        self._sessions[token_hash] = (float(expires), csrf)
        if self.store is not None:
            self.store.put_dashboard_session(token_hash, float(expires), csrf).addErrback(self._unsaved)

    def _unsaved(self, failure: Any) -> None:
        self._log.failure("dashboard login not saved in the state store (it lasts until a restart)", failure)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def cookie_token(cookie_header: Optional[str]) -> Optional[str]:
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE.decode():
            return value
    return None


class DashboardAccess:
    """Who may see the dashboard's data: a session, the admin's Basic credentials, or a read_stats key."""

    def __init__(self, config: Callable[[], Any], sessions: Sessions, keys: Any, now: Callable[[], float]):
        self.config = config
        self.sessions = sessions
        self.keys = keys
        self.now = now

    def admin(self, user: Optional[str], password: Optional[str]) -> bool:
        return admin_credentials_ok(user or "", password or "", self.config().auth)

    def origin_allowed(self, headers: Dict[str, str]) -> bool:
        """
        A browser says which page opens a WebSocket: only this server's own
        pages, or origins ``cors.allowed_origins`` names, may read the live
        stats (another site could otherwise ride on the admin's cached
        credentials). Clients that are not browsers send no Origin.
        """
        origin = headers.get("origin")
        if not origin:
            return True
        if urlsplit(origin).netloc.lower() == (headers.get("host") or "").lower():
            return True
        return origin in [o for o in self.config().cors.allowed_origins if o != "*"]

    def websocket(self, headers: Dict[str, str], params: Dict[str, Any]) -> Optional[str]:
        """
        The live stream's handshake (:class:`gocast.dashboard.live.StatsFactory`):
        whose credentials these are (a dashboard login, an API key, the
        admin), or None when they open nothing.
        """
        token = cookie_token(headers.get("cookie"))
        if self.sessions.find(token) is not None:
            return "session:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        user, password, bearer = credentials(headers.get("authorization"))
        if user is not None and self.admin(user, password):
            return "admin"
        secret = bearer or headers.get("x-api-key") or (params.get("key") or [None])[0]
        key = self.keys.find(secret) if secret else None
        if key is not None and not key.expired(self.now()) and key.allows("read_stats"):
            return "key:" + key.id
        return None


#: Recordings the panel lists, newest first.
MAX_RECORDINGS_LISTED = 50


class Dashboard(Resource):
    """``<admin_root>/dashboard``: the page, and the children below it."""

    def __init__(self, access: DashboardAccess, registry: Any, history: Any, keys: Any, recorders: Any = None):
        super().__init__()
        self.access = access
        self.registry = registry
        self.history = history
        self.keys = keys
        #: The recorders (:class:`gocast.outputs.recorder.Recorders`), for the recordings panel.
        self.recorders = recorders
        self.putChild(b"static", File(STATIC))
        self.putChild(b"vendor", File(VENDOR) if os.path.isdir(VENDOR) else Missing())

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"":
            return self
        if path in (b"login", b"logout", b"session", b"history", b"listeners", b"action", b"recordings",
                    b"recording"):
            return DashboardCall(self, path.decode())
        return Resource.getChild(self, path, request)

    def render_GET(self, request: Request) -> bytes:
        if not self.access.config().admin.dashboard:
            request.setResponseCode(404)
            return b"the dashboard is off (admin.dashboard false)\n"
        if not request.path.endswith(b"/"):
            request.redirect(request.path + b"/")  # relative links in the page
            return b""
        with open(os.path.join(STATIC, "index.html"), "rb") as f:
            page = f.read()
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-security-policy", b"default-src 'self'; connect-src 'self' ws: wss:; "
                                                      b"img-src 'self' data:; frame-ancestors 'none'")
        return page


class Missing(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setResponseCode(404)
        return (b"the dashboard's chart library (uPlot) is not installed: GoCast's build copies it from npm; "
                b"reinstall GoCast, or run ./dev setup in a checkout\n")


class DashboardCall(Resource):
    isLeaf = True

    def __init__(self, dashboard: Dashboard, name: str):
        super().__init__()
        self.dashboard = dashboard
        self.name = name

    def render(self, request: Request) -> Any:
        """In a cluster, a login made on another node is looked up first (then the call runs)."""
        token = cookie_token(header_text(request, b"cookie"))
        looking = self.dashboard.access.sessions.known_elsewhere(token) if self.name != "login" else None
        if looking is None:
            return super().render(request)
        gone: List[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        looking.addBoth(lambda _: gone or self.answer_late(request))
        return NOT_DONE_YET

    def answer_late(self, request: Request) -> None:
        body = super().render(request)
        if body is not NOT_DONE_YET:
            request.write(body)
            request.finish()

    def render_GET(self, request: Request) -> Any:
        if self.name == "session":
            csrf = self.session(request)
            return reply(request, 200, {"csrf": csrf}) if csrf else reply(request, 401, {"error": "log in"})
        if self.name == "history":
            return self.history(request)
        if self.name == "listeners":
            return self.listeners(request)
        if self.name == "recordings":
            return self.recordings(request)
        if self.name == "recording":
            return self.recording(request)
        return reply(request, 405, {"error": "use POST"})

    def recordings(self, request: Request) -> bytes:
        """The recordings panel: the newest recordings of every mount (the one being written marked)."""
        if self.session(request) is None:
            return reply(request, 401, {"error": "log in"})
        recorders = self.dashboard.recorders
        found = recorders.catalog()[:MAX_RECORDINGS_LISTED] if recorders is not None else []
        return reply(request, 200, {"recordings": [
            {"id": e["id"], "mount": e["mount"], "size": e["size"], "modified": e["modified"],
             "recording": e["recording"]} for e in found]})

    def recording(self, request: Request) -> Any:
        """A closed recording, downloaded (Range answered): found among the listed ones, never by path."""
        if self.session(request) is None:
            return reply(request, 401, {"error": "log in"})
        recorders = self.dashboard.recorders
        try:
            entry = recorders.closed(request_arg(request, b"id") or "") if recorders is not None else None
        except (KeyError, ValueError):
            entry = None
        if entry is None:
            return reply(request, 404, {"error": "no such closed recording"})
        return send_download(request, entry["path"], content_type_of(entry["id"]), entry["id"])

    def listeners(self, request: Request) -> bytes:
        if self.session(request) is None:
            return reply(request, 401, {"error": "log in"})
        mount = self.dashboard.registry.get(request_arg(request, b"mount") or "")
        if mount is None:
            return reply(request, 404, {"error": "no such mount"})
        now = self.dashboard.access.now()
        found = [dict(listener_data(s, now), country=getattr(s, "location", NOWHERE).country)
                 for s in listener_sessions(mount)[:MAX_LISTED]]
        return reply(request, 200, {"mount": mount.path, "listeners": found})

    def render_POST(self, request: Request) -> Any:
        if self.name == "login":
            return self.login(request)
        csrf = self.session(request)
        if csrf is None:
            return reply(request, 401, {"error": "log in"})
        given = (request.getHeader(b"x-csrf-token") or b"").decode("latin-1")
        if not hmac.compare_digest(given, csrf):
            return reply(request, 403, {"error": "missing or wrong X-CSRF-Token"})
        if self.name == "logout":
            self.dashboard.access.sessions.close(cookie_token(header_text(request, b"cookie")))
            request.addCookie(COOKIE, b"", path=_cookie_path(request), max_age="0", httpOnly=True, sameSite="strict")
            return reply(request, 200, {"logged_out": True})
        if self.name == "action":
            return self.action(request)
        return reply(request, 405, {"error": "use GET"})

    def session(self, request: Request) -> Optional[str]:
        return self.dashboard.access.sessions.find(cookie_token(header_text(request, b"cookie")))

    def login(self, request: Request) -> bytes:
        keys, client = self.dashboard.keys, host_of(request.getClientAddress())
        if keys.failures.blocked(client) is not None:
            return reply(request, 429, {"error": "too many failed logins; wait a minute"})
        media = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if media != b"application/json":
            # A form another site posts cannot be JSON without a preflight: no login CSRF.
            return reply(request, 415, {"error": "send Content-Type: application/json"})
        body = json_body(request)
        if body is None:
            return reply(request, 400, {"error": "send JSON: {\"user\": ..., \"password\": ...}"})
        if not self.dashboard.access.admin(str(body.get("user", "")), str(body.get("password", ""))):
            keys.failures.failed(client)
            return reply(request, 401, {"error": "wrong user name or password"})
        token, csrf = self.dashboard.access.sessions.open()
        request.addCookie(COOKIE, token.encode(), path=_cookie_path(request),
                          max_age=str(int(self.dashboard.access.sessions.lifetime())),
                          httpOnly=True, sameSite="strict", secure=request.isSecure())
        return reply(request, 200, {"csrf": csrf})

    def history(self, request: Request) -> Any:
        if self.session(request) is None:
            return reply(request, 401, {"error": "log in"})
        span = request_arg(request, b"range") or "1h"
        try:
            points = self.dashboard.history.history(span)
        except ValueError as e:
            return reply(request, 400, {"error": str(e)})

        def send(found: Any) -> None:
            if request_arg(request, b"format") == "csv":
                body = to_csv(found, iso).encode("utf-8")
                request.setHeader(b"content-type", b"text/csv; charset=utf-8")
                request.setHeader(b"content-disposition",
                                  b'attachment; filename="gocast-history-%s.csv"' % span.encode())
            else:
                body = json.dumps(as_document(found, span, iso)).encode()
                request.setHeader(b"content-type", b"application/json")
                if request_arg(request, b"format") == "json":
                    request.setHeader(b"content-disposition",
                                      b'attachment; filename="gocast-history-%s.json"' % span.encode())
            if not request._disconnected:
                request.write(body)
                request.finish()

        points.addCallback(send)
        return NOT_DONE_YET

    def action(self, request: Request) -> bytes:
        body = json_body(request)
        if body is None:
            return reply(request, 400, {"error": "send a JSON object"})
        registry = self.dashboard.registry
        mount = registry.get(str(body.get("mount", "")))
        if mount is None:
            return reply(request, 404, {"error": "no such mount"})
        what = body.get("action")
        if what == "metadata":
            if mount.source is None:
                return reply(request, 409, {"error": "the mount has no source"})
            update_metadata(mount, song=str(body.get("song", ""))[:1024], title=str(body.get("title", ""))[:1024],
                            artist=str(body.get("artist", ""))[:1024])
            return reply(request, 200, {"song": mount.song})
        if what == "kick":
            listener = str(body.get("id", ""))
            if find_listener(mount, listener) is None or not kick_listener(registry, mount, listener):
                return reply(request, 404, {"error": "no such listener"})
            return reply(request, 200, {"kicked": listener})
        if what == "kill_source":
            return reply(request, 200, {"killed": kill_source(mount)})
        if what == "move":
            try:
                moved = move_listeners(registry, mount, registry.get(str(body.get("destination", ""))))
            except ValueError as e:
                return reply(request, 409, {"error": str(e)})
            return reply(request, 200, {"moved": moved})
        return reply(request, 400, {"error": "action must be metadata, kick, kill_source or move"})


def json_body(request: Request) -> Optional[Dict[str, Any]]:
    raw = request.content.read(MAX_BODY + 1) if request.content is not None else b""
    if len(raw) > MAX_BODY:
        return None
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def reply(request: Request, status: int, document: Dict[str, Any]) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(document).encode("utf-8")


def _cookie_path(request: Request) -> bytes:
    """The admin root: the dashboard and the live stream below it get the cookie, nothing else does."""
    path = request.path.split(b"/dashboard", 1)[0]
    return path or b"/"
