# -*- test-case-name: tests.test_api -*-
"""
``/api/v1``: the REST API as one twisted.web resource that serves the
route table.

Every answer is the roadmap's envelope: ``{"success": true, "data": ...,
"meta": {"timestamp", "request_id"}}``, or ``{"success": false, "error":
{"code", "message", "details"}, "meta": ...}`` with a 4xx/5xx status.

Credentials: ``Authorization: Bearer gck_...`` or ``X-API-Key: gck_...``
(the key's permissions apply), or the admin user with Basic auth (full
access). ``/api/v1/openapi.json`` and ``/api/v1/docs`` need none.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import unquote

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ..auth.address import host_of
from ..core.credentials import admin_credentials_ok
from ..core.throttle import retry_after
from ..resources.site import send_download
from .docs import SwaggerDocs
from .keys import ApiKey
from .openapi import openapi_document
from ..cluster.shared import ClusterUnavailable
from .routes import ROUTES, ApiContext, ApiError, Call, FileAnswer, RawAnswer, Route

#: The largest JSON body the API reads.
MAX_BODY = 64 * 1024
#: Stands for the admin user (Basic auth): every permission.
ADMIN = "admin"


class ApiResource(Resource):
    isLeaf = True
    _log = Logger()

    def __init__(self, ctx: ApiContext, docs: Optional[SwaggerDocs] = None, routes: Tuple[Route, ...] = ROUTES):
        super().__init__()
        self.ctx = ctx
        self.docs = docs
        self.routes = routes
        self._spec: Optional[bytes] = None

    def render(self, request: Request) -> Any:
        segments = [unquote(p.decode("utf-8", "replace")) for p in request.postpath]
        if segments[1:2] != ["docs"]:
            while len(segments) > 2 and segments[-1] == "":
                segments.pop()  # /api/v1/mounts/ is /api/v1/mounts
        if segments[:1] != ["v1"]:
            return self.error(request, ApiError(404, "not_found", "the API lives under /api/v1"))
        rest = segments[1:]
        method = request.method.decode("ascii", "replace")
        if rest == ["openapi.json"] and method in ("GET", "HEAD"):
            if self._spec is None:
                self._spec = json.dumps(openapi_document(self.routes), indent=1).encode("utf-8")
            request.setHeader(b"content-type", b"application/json")
            return self._spec
        if rest[:1] == ["docs"] and self.docs is not None and method in ("GET", "HEAD"):
            return self.docs.render(request, rest[1:])
        found = [(route, route.match(rest)) for route in self.routes]
        matching = [(route, params) for route, params in found if params is not None]
        if matching:  # /recordings/start is that route, not /recordings/{id}
            fewest = min(len(params or {}) for _, params in matching)
            matching = [(route, params) for route, params in matching if len(params or {}) == fewest]
        if not matching:
            return self.error(request, ApiError(404, "not_found", "no endpoint /api/v1/%s" % "/".join(rest)))
        chosen = [(route, params) for route, params in matching if route.method == method]
        if not chosen:
            allowed = sorted({route.method for route, _ in matching})
            request.setHeader(b"allow", ", ".join(allowed).encode("ascii"))
            return self.error(request, ApiError(405, "method_not_allowed", "%s takes %s" % (
                "/api/v1/" + "/".join(rest), ", ".join(allowed))))
        route, params = chosen[0]
        secret = self.presented_key(request)
        if secret is not None and self.ctx.keys.find(secret) is None:
            # In a cluster, a key made on another node a moment ago: look it up before judging.
            looked_up = self.ctx.keys.find_shared(secret)
            if not looked_up.called:
                gone: List[bool] = []
                request.notifyFinish().addErrback(lambda _: gone.append(True))
                looked_up.addBoth(lambda _: gone or self.run(request, route, params))
                return NOT_DONE_YET
        self.run(request, route, params)
        return NOT_DONE_YET

    def run(self, request: Request, route: Route, params: Any) -> None:
        try:
            principal = self.authorize(request, route)
            call = Call(params or {}, query_of(request), read_body(request) if route.body else None,
                        getattr(request, "request_id", ""), principal=principal)
        except ApiError as e:
            self.send(request, e.status, envelope_error(request, e))
            return
        d = maybeDeferred(route.handler, self.ctx, call)
        d.addCallbacks(lambda data: self.success(request, route, call, data), lambda f: self.failed(request, f))

    def authorize(self, request: Request, route: Route) -> Any:
        """The principal (an :class:`ApiKey`, or ADMIN) allowed to call ``route``; ApiError if none."""
        keys = self.ctx.keys
        client = client_of(request)
        wait = keys.failures.blocked(client)
        if wait is not None:
            request.setHeader(b"retry-after", b"%d" % retry_after(wait))
            raise ApiError(429, "rate_limited", "too many failed authentications; try again in %d s"
                           % retry_after(wait))
        principal = self.principal(request)
        if principal is None:
            keys.failures.failed(client)
            request.setHeader(b"www-authenticate", b'Bearer realm="GoCast API", Basic realm="GoCast"')
            raise ApiError(401, "unauthorized", "send an API key (Authorization: Bearer gck_... or "
                           "X-API-Key), or the admin user with Basic auth")
        if isinstance(principal, ApiKey):
            if principal.expired(self.ctx.now()):
                keys.failures.failed(client)
                raise ApiError(401, "unauthorized", "API key %s has expired" % principal.name)
            keys.used(principal)
            if not principal.allows(route.permission):
                raise ApiError(403, "forbidden", "API key %s lacks the permission %s" % (
                    principal.name, route.permission), {"required": route.permission})
        return principal

    @staticmethod
    def presented_key(request: Request) -> Optional[str]:
        """The API key a request presents (Bearer or X-API-Key), if any."""
        authorization = (request.getHeader(b"authorization") or b"").decode("latin-1")
        if authorization[:7].lower() == "bearer ":
            return authorization[7:].strip()
        secret = request.getHeader(b"x-api-key")
        return secret.decode("latin-1").strip() if secret else None

    def principal(self, request: Request) -> Any:
        """The key presented, ADMIN for the admin's Basic auth, or None."""
        secret = self.presented_key(request)
        if secret is not None:
            return self.ctx.keys.find(secret)
        authorization = (request.getHeader(b"authorization") or b"").decode("latin-1")
        if authorization[:6].lower() == "basic ":
            return ADMIN if admin_credentials_ok(request.getUser(), request.getPassword(),
                                                 self.ctx.config.auth) else None
        return None

    # Answers

    def success(self, request: Request, route: Route, call: Call, data: Any) -> None:
        if isinstance(data, FileAnswer):
            if request.finished or request._disconnected:
                return
            send_download(request, data.path, data.content_type, data.filename)
            return
        if isinstance(data, RawAnswer):
            if request.finished or request._disconnected:
                return
            request.setHeader(b"content-type", data.content_type.encode("ascii"))
            request.setHeader(b"cache-control", b"no-store")
            if data.filename:
                request.setHeader(b"content-disposition", b'attachment; filename="%s"' % data.filename.encode())
            request.setHeader(b"content-length", b"%d" % len(data.body))
            request.write(data.body)
            request.finish()
            return
        self.send(request, route.status, {"success": True, "data": data,
                                                          "meta": meta(request, call.meta)})

    def failed(self, request: Request, failure: Any) -> None:
        if failure.check(ApiError):
            error = failure.value
        elif failure.check(ClusterUnavailable):
            error = ApiError(503, "cluster_unavailable", "not saved: %s" % failure.getErrorMessage())
        else:
            self._log.failure("API request {request_id} failed", failure,
                              request_id=getattr(request, "request_id", ""))
            error = ApiError(500, "internal_error", "internal error; see the server log for request %s"
                             % getattr(request, "request_id", ""))
        self.send(request, error.status, envelope_error(request, error))

    def error(self, request: Request, error: ApiError) -> bytes:
        return self.encode(request, error.status, envelope_error(request, error))

    def send(self, request: Request, status: int, document: Dict[str, Any]) -> None:
        if request.finished or request._disconnected:
            return
        body = self.encode(request, status, document)
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()

    @staticmethod
    def encode(request: Request, status: int, document: Dict[str, Any]) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return json.dumps(document).encode("utf-8")


def meta(request: Request, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return dict({"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "request_id": getattr(request, "request_id", "")}, **(extra or {}))


def envelope_error(request: Request, error: ApiError) -> Dict[str, Any]:
    return {"success": False, "error": {"code": error.code, "message": error.message, "details": error.details},
            "meta": meta(request)}


def client_of(request: Request) -> str:
    peer = request.getClientAddress()
    return host_of(peer)


def query_of(request: Request) -> Dict[str, str]:
    return {k.decode("utf-8", "replace"): v[-1].decode("utf-8", "replace") for k, v in request.args.items() if v}


def _not_json(name: str) -> Any:
    """Python's json module reads NaN and Infinity; JSON has no such numbers."""
    raise ValueError("%s is not a JSON number" % name)


def read_body(request: Request) -> Any:
    raw = request.content.read(MAX_BODY + 1) if request.content is not None else b""
    if len(raw) > MAX_BODY:
        raise ApiError(413, "invalid_body", "the body is larger than %d KB" % (MAX_BODY // 1024))
    content_type = (request.getHeader(b"content-type") or b"").decode("latin-1").split(";")[0].strip().lower()
    if raw and content_type not in ("application/json", ""):
        raise ApiError(415, "invalid_body", "send the body as application/json")
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "invalid_body", "the body is not valid JSON: %s" % e)
    except RecursionError:
        raise ApiError(400, "invalid_body", "the body nests too deeply")
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, "invalid_body", "the body has text that is not valid Unicode (a lone surrogate)")
    return body


class AdminRecordings(ApiResource):
    """
    ``<admin_root>/recordings``: the roadmap's admin paths for recordings
    (``GET /admin/recordings[/:id]``, ``DELETE /admin/recordings/:id``,
    ``POST /admin/recordings/start|stop``), the same as the API's
    ``/api/v1/recordings`` routes, with the same credentials and answers.
    """

    def __init__(self, ctx: ApiContext):
        super().__init__(ctx, None, tuple(route for route in ROUTES if route.tag == "recordings"))

    def render(self, request: Request) -> Any:
        request.postpath = [b"v1", b"recordings"] + list(request.postpath)
        return super().render(request)
