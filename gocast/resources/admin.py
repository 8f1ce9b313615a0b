# -*- test-case-name: tests.test_icecast_admin -*-
"""
Icecast's admin interface, for the tools that already speak it.

Actions under ``<admin_root>/`` answer like Icecast: XML, and
``<iceresponse><message/><return>1|0</return></iceresponse>`` for actions.
Credentials follow Icecast's matrix: everything needs the admin user,
except ``metadata``, which also takes the mount's source credentials (so
encoders can update titles). A missing ``mount`` is a 400. The SHOUTcast
form ``/admin.cgi?mode=updinfo&song=&pass=`` works too.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

import attr
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from xml.etree import ElementTree

from ..auth.address import host_of
from ..config import Config, MountConfig
from ..config._mount import FallbackConfig
from ..core.credentials import admin_credentials_ok, same_secret, source_credentials_ok
from ..core.mount import Mount
from ..core.operations import kick_listener, kill_source, move_listeners, update_metadata
from ..core.registry import MountRegistry
from ..core.throttle import TOO_MANY, AuthFailures, retry_after
from ..core.track import TrackInfo, artwork_url
from .site import header_text
from .status import add_listeners, public_mounts, stats_xml, sub, xml_bytes

REALM = b'Basic realm="Icecast2 Server"'


class AdminError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def arg(request: Request, name: str) -> Optional[str]:
    """A query argument, decoded with the request's ``charset`` (UTF-8, else Latin-1)."""
    values = request.args.get(name.encode())
    if not values:
        return None
    raw = values[-1]
    charset = (request.args.get(b"charset") or [b"utf-8"])[-1].decode("ascii", "replace")
    try:
        return raw.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return raw.decode("iso-8859-1")


def challenge(request: Request) -> None:
    """Answer 401 with the Basic realm Icecast uses, so clients ask for credentials."""
    request.setResponseCode(401)
    request.setHeader(b"www-authenticate", REALM)


def iceresponse(message: str, ok: bool = True) -> bytes:
    root = ElementTree.Element("iceresponse")
    sub(root, "message", message)
    sub(root, "return", 1 if ok else 0)
    return xml_bytes(root)


@attr.s(auto_attribs=True)
class AdminContext:
    """What admin actions work on."""

    registry: MountRegistry
    started: float
    clock: Any
    #: Failed logins per client address (shared with the REST API and the dashboard).
    failures: Optional[AuthFailures] = None

    @property
    def config(self) -> Config:
        return self.registry.config

    def is_admin(self, request: Request) -> bool:
        return admin_credentials_ok(request.getUser(), request.getPassword(), self.config.auth)

    def admit(self, request: Request, check: Callable[[], bool],
              genuine: Callable[[], bool] = lambda: False) -> int:
        """
        200 when ``check()`` passes; 429 (with ``Retry-After``) while the
        client is refused for failing too often; else 401, counted as a
        failure when credentials were sent (a client's first try without
        them, answered by the challenge, is not one) unless ``genuine()``
        says they are right for another role (a source's, on an admin-only
        action).
        """
        failures = self.failures
        client = host_of(request.getClientAddress())
        wait = failures.blocked(client) if failures is not None else None
        if wait is not None:
            request.setResponseCode(429)
            request.setHeader(b"retry-after", b"%d" % retry_after(wait))
            return 429
        if check():
            return 200
        sent = (request.getUser() or request.getPassword() or request.args.get(b"pass")
                or request.getHeader(b"authorization") or request.getHeader(b"x-api-key"))
        if failures is not None and sent and not genuine():
            failures.failed(client)
        return 401

    def is_source(self, request: Request, path: str) -> bool:
        mount_config = self.config.mounts.get(path) or MountConfig()
        return source_credentials_ok(request.getUser(), request.getPassword(), mount_config,
                                     self.config.auth.source_password)

    def mount(self, request: Request, need_source: bool = True) -> Mount:
        path = arg(request, "mount")
        if not path:
            raise AdminError(400, "missing parameter: mount")
        mount = self.registry.get(path)
        if mount is None or (need_source and mount.source is None):
            raise AdminError(400, "Source does not exist")
        return mount


Action = Callable[[AdminContext, Request], bytes]


def stats(ctx: AdminContext, request: Request) -> bytes:
    return xml_bytes(stats_xml(ctx.registry, ctx.config, ctx.started, ctx.clock.seconds()))


def listmounts(ctx: AdminContext, request: Request) -> bytes:
    root = ElementTree.Element("icestats")
    now = ctx.clock.seconds()
    for mount in sorted(ctx.registry.mounts.values(), key=lambda m: m.path):
        if mount.source is None:
            continue
        source = sub(root, "source", mount=mount.path)
        sub(source, "listeners", mount.listeners)
        sub(source, "Connected", int(now - mount.source.connected_at))
        sub(source, "content-type", mount.content_type)
    return xml_bytes(root)


def listclients(ctx: AdminContext, request: Request) -> bytes:
    mount = ctx.mount(request)
    root = ElementTree.Element("icestats")
    source = sub(root, "source", mount=mount.path)
    sub(source, "Listeners", mount.listeners)
    add_listeners(source, mount, ctx.clock.seconds())
    return xml_bytes(root)


def metadata(ctx: AdminContext, request: Request) -> bytes:
    mount = ctx.mount(request)
    if (arg(request, "mode") or "updinfo") != "updinfo":
        raise AdminError(400, "unsupported mode; use mode=updinfo")
    song, title, artist = arg(request, "song"), arg(request, "title"), arg(request, "artist")
    if song is None and title is None and artist is None:
        raise AdminError(400, "missing parameter: song (or title and artist)")
    artwork = arg(request, "artwork") or ""
    if artwork and artwork_url(artwork) is None:
        raise AdminError(400, "artwork must be an http or https URL")
    info = TrackInfo(album=arg(request, "album") or "", artwork=artwork_url(artwork) or "" if artwork else "")
    update_metadata(mount, song=song or "", title=title or "", artist=artist or "", url=arg(request, "url") or "",
                    info=info)
    return iceresponse("Metadata update successful")


def killclient(ctx: AdminContext, request: Request) -> bytes:
    mount = ctx.mount(request, need_source=False)
    wanted = arg(request, "id") or ""
    if kick_listener(ctx.registry, mount, wanted):
        return iceresponse("Client %s removed" % wanted)
    raise AdminError(400, "Client %s not found" % (wanted,))


def killsource(ctx: AdminContext, request: Request) -> bytes:
    kill_source(ctx.mount(request))
    return iceresponse("Source Removed")


def moveclients(ctx: AdminContext, request: Request) -> bytes:
    mount = ctx.mount(request, need_source=False)
    destination = ctx.registry.get(arg(request, "destination") or "")
    try:
        moved = move_listeners(ctx.registry, mount, destination)
    except ValueError as e:
        raise AdminError(400, str(e))
    return iceresponse("Clients moved from %s to %s (%d)" % (mount.path, destination.path, moved))


def fallbacks(ctx: AdminContext, request: Request) -> bytes:
    mount = ctx.mount(request, need_source=False)
    fallback = arg(request, "fallback")
    if not fallback:
        raise AdminError(400, "missing parameter: fallback")
    mount.config = attr.evolve(mount.config, fallback=FallbackConfig(mounts=(fallback,)))
    return iceresponse("Fallback for %s set to %s" % (mount.path, fallback))


#: action name → (handler, who may call it)
ACTIONS: Dict[bytes, Tuple[Action, str]] = {
    b"stats": (stats, "admin"),
    b"stats.xml": (stats, "admin"),
    b"listmounts": (listmounts, "admin"),
    b"listclients": (listclients, "admin"),
    b"metadata": (metadata, "source"),
    b"metadata.xsl": (metadata, "source"),
    b"killclient": (killclient, "admin"),
    b"killsource": (killsource, "admin"),
    b"moveclients": (moveclients, "admin"),
    b"fallbacks": (fallbacks, "admin"),
}


def from_another_site(request: Request) -> bool:
    """
    Whether a browser sent this from a page of another origin: ``Sec-Fetch-Site``
    says so, or (older browsers) an ``Origin`` that is not this server's.
    """
    fetch_site = (request.getHeader(b"sec-fetch-site") or b"").lower()
    if fetch_site in (b"cross-site", b"same-site"):
        return True
    origin = request.getHeader(b"origin")
    if origin and fetch_site not in (b"same-origin", b"none"):
        return urlsplit(origin.decode("latin-1")).netloc.lower() != header_text(request, b"host").lower()
    return False


class AdminAction(Resource):
    isLeaf = True
    _log = Logger()

    def __init__(self, ctx: AdminContext, action: Action, who: str):
        super().__init__()
        self.ctx = ctx
        self.action = action
        self.who = who

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/xml; charset=utf-8")
        ctx = self.ctx
        if self.action is not stats and from_another_site(request):
            # An image or a link on another site would ride on the admin's
            # cached credentials; Icecast's tools send no such headers.
            request.setResponseCode(403)
            return iceresponse("admin actions are not taken from another site's page", ok=False)
        mount = arg(request, "mount") or ""
        status = ctx.admit(request, lambda: ctx.is_admin(request) or (
            self.who == "source" and ctx.is_source(request, mount)), lambda: ctx.is_source(request, mount))
        if status == 429:
            return iceresponse(TOO_MANY, ok=False)
        if status == 401:
            challenge(request)
            return iceresponse("authentication required", ok=False)
        try:
            return self.action(ctx, request)
        except AdminError as e:
            request.setResponseCode(e.status)
            return iceresponse(str(e), ok=False)

    render_POST = render_GET


class StreamList(Resource):
    """
    ``<admin_root>/streamlist.txt``: the mounts a relay in master mode
    (Icecast's ``<master-server>``, or GoCast's ``cluster.primary``) should
    carry, one path per line: those with a source, not hidden, and the
    on-demand relays. Taken with the relay credentials or the admin's.
    """

    isLeaf = True

    def __init__(self, ctx: AdminContext):
        super().__init__()
        self.ctx = ctx

    def is_relay(self, request: Request) -> bool:
        auth = self.ctx.config.auth
        user_ok = same_secret(request.getUser(), auth.relay_user)
        password_ok = same_secret(request.getPassword(), auth.relay_password)
        return bool(auth.relay_password) and user_ok and password_ok

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        ctx = self.ctx
        status = ctx.admit(request, lambda: self.is_relay(request) or ctx.is_admin(request))
        if status != 200:
            if status == 401:
                challenge(request)
            return (TOO_MANY if status == 429 else "relay or admin credentials required").encode() + b"\n"
        registry = ctx.registry
        paths = {m.path for m in public_mounts(registry)}
        paths.update(path for path in registry.on_demand
                     if not (registry.config.mounts.get(path) or MountConfig()).hidden)
        return "".join(path + "\n" for path in sorted(paths)).encode("utf-8")


class ReloadAction(Resource):
    """
    ``POST <admin_root>/reload``: reload the config file. Answers JSON:
    ``{"success", "changes", "restart_required", "errors"}``, with 400 when
    the new file is refused (and the running config stays).
    """

    isLeaf = True

    def __init__(self, ctx: AdminContext, reloader: Any):
        super().__init__()
        self.ctx = ctx
        self.reloader = reloader

    def render_GET(self, request: Request) -> bytes:
        request.setResponseCode(405)
        request.setHeader(b"allow", b"POST")
        return b"use POST to reload\n"

    def render_POST(self, request: Request) -> Any:
        request.setHeader(b"content-type", b"application/json")
        status = self.ctx.admit(request, lambda: self.ctx.is_admin(request))
        if status != 200:
            if status == 401:
                challenge(request)
            reason = TOO_MANY if status == 429 else "admin credentials required"
            return json.dumps({"success": False, "errors": [reason]}).encode()

        def answer(result: Any) -> None:
            if not result.ok:
                request.setResponseCode(400)
            request.write(json.dumps(result.as_json()).encode("utf-8"))
            request.finish()

        self.reloader.reload().addCallback(answer)
        return NOT_DONE_YET


class AdminResource(Resource):
    """``<admin_root>/``: one child per Icecast admin action, and ``reload``."""

    def __init__(self, ctx: AdminContext, reloader: Any = None):
        super().__init__()
        self.ctx = ctx
        self.reloader = reloader

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"reload" and self.reloader is not None:
            return ReloadAction(self.ctx, self.reloader)
        if path == b"streamlist.txt":
            return StreamList(self.ctx)
        found = ACTIONS.get(path)
        if found is None:
            return Resource.getChild(self, path, request)
        return AdminAction(self.ctx, *found)


class ShoutcastAdmin(Resource):
    """
    ``/admin.cgi?mode=updinfo&song=...&pass=...``: SHOUTcast v1 metadata
    updates; without ``mount=``, for the mount SHOUTcast sources stream to
    (``shoutcast.mount``), as Icecast does.
    """

    isLeaf = True

    def __init__(self, ctx: AdminContext):
        super().__init__()
        self.ctx = ctx

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/xml; charset=utf-8")
        path = arg(request, "mount") or self.ctx.config.shoutcast.mount
        mount_config = self.ctx.config.mounts.get(path) or MountConfig()
        password = (arg(request, "pass") or "").encode("utf-8")
        expected = mount_config.password or self.ctx.config.auth.source_password
        status = self.ctx.admit(request, lambda: same_secret(password, expected) or same_secret(
            password, self.ctx.config.auth.admin_password))
        if status != 200:
            request.setResponseCode(status)
            return iceresponse(TOO_MANY if status == 429 else "bad password", ok=False)
        mount = self.ctx.registry.get(path)
        if mount is None or mount.source is None or arg(request, "mode") != "updinfo":
            request.setResponseCode(400)
            return iceresponse("no source on %s, or mode is not updinfo" % path, ok=False)
        mount.set_metadata(song=arg(request, "song") or "")
        return iceresponse("Metadata update successful")
