# -*- test-case-name: tests.test_api -*-
"""The OpenAPI 3.0 document of the REST API, generated from the route table."""

from __future__ import annotations

from typing import Any, Dict, Tuple

from .._version import __version__
from ..config import MountConfig
from ..config._section import Section
from .schemas import ERROR, ERROR_CODES, envelope

_REASONS = {200: "OK", 201: "Created", 400: "Bad request", 401: "No valid credentials",
            403: "The key lacks the permission", 404: "Not found", 409: "Conflict",
            413: "Body too large", 415: "Body not JSON", 422: "A field is wrong",
            429: "Too many failed authentications"}


def openapi_document(routes: Tuple[Any, ...]) -> Dict[str, Any]:
    paths: Dict[str, Dict[str, Any]] = {}
    for route in routes:
        item = paths.setdefault("/api/v1" + route.path, {})
        parameters = [{"name": name[1:-1], "in": "path", "required": True, "schema": {"type": "string"},
                       "description": "The mount's name without its leading slash (percent-encode "
                                      "any other slash)" if name == "{mount}" else "Its ID."}
                      for name in route.segments if name.startswith("{")]
        parameters += [{"name": name, "in": "query", "required": False, "schema": schema, "description": text}
                       for name, schema, text in route.query]
        responses: Dict[str, Any] = {str(route.status): {"description": _REASONS[route.status], "content": {
            "application/json": {"schema": envelope(route.data or {})}}}}
        if route.csv:
            responses[str(route.status)]["content"]["text/csv"] = {"schema": {"type": "string"}}
        if route.download:
            binary = {kind: {"schema": {"type": "string", "format": "binary"}} for kind in route.download}
            responses[str(route.status)] = {"description": "The file", "content": binary}
            responses["206"] = {"description": "The part a Range request asked for", "content": binary}
            responses["416"] = {"description": "The Range asked for lies outside the file"}
        for status in (401, 403, 429, 400, 404, 409, 413, 415, 422):
            responses[str(status)] = {"$ref": "#/components/responses/Error%d" % status}
        operation: Dict[str, Any] = {
            "summary": route.summary,
            "operationId": "%s_%s" % (route.method.lower(), route.path.strip("/").replace("/", "_")
                                      .replace("{", "").replace("}", "")),
            "tags": [route.tag],
            "description": "Needs the permission `%s`." % route.permission,
            "x-permission": route.permission,
            "parameters": parameters,
            "responses": responses,
        }
        if route.body is not None:
            operation["requestBody"] = {"required": True,
                                        "content": {"application/json": {"schema": route.body}}}
        item[route.method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "GoCast REST API", "version": __version__,
                 "description": "Manage a GoCast server. Error codes: " + "; ".join(
                     "`%s`: %s" % item for item in sorted(ERROR_CODES.items()))},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKey": []}, {"admin": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An API key: gck_..."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "admin": {"type": "http", "scheme": "basic", "description": "The admin user: every permission."},
            },
            "schemas": {"Error": ERROR, "MountConfig": dict(
                Section(MountConfig).schema(),
                description="A mount's settings: the config file's mounts { NAME { ... } } block, as JSON "
                            "(see docs/configuration.md). Durations, sizes and bitrates take numbers or "
                            "text with units, as in the config file.")},
            "responses": {"Error%d" % status: {"description": reason, "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                for status, reason in _REASONS.items() if status >= 400},
        },
    }
