"""JSON schemas of the REST API's bodies and data, for the OpenAPI document."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

#: Error codes the API answers with, and what they mean.
ERROR_CODES = {
    "unauthorized": "No valid credentials (missing, unknown, expired or revoked key).",
    "forbidden": "The key lacks the permission the endpoint needs.",
    "rate_limited": "Too many failed authentications from this address.",
    "not_found": "No such endpoint, mount, listener or key.",
    "method_not_allowed": "The endpoint exists but not with this method.",
    "invalid_body": "The body is not the JSON it should be.",
    "invalid_field": "A field of the body is missing or wrong; details name it.",
    "invalid_parameter": "A query parameter is wrong; details name it.",
    "conflict": "The thing exists already.",
    "config_file_mount": "The mount comes from the config file; change it there.",
    "config_file_key": "The key comes from the config file; change it there.",
    "operator_setting": "Files on the server and URLs it fetches are set in the config file only.",
    "no_source": "The mount has no source.",
    "invalid_config": "The config file has errors; the running config stays.",
    "not_in_cluster": "The endpoint needs the server in a cluster.",
    "cluster_unavailable": "In a cluster, Redis could not be reached to share the change; nothing was saved.",
    "recording": "The mount is being recorded already, the recording is the config's, or the file is still "
                 "being written.",
    "not_recording": "The mount is not being recorded.",
    "delete_failed": "The file could not be deleted (the reason says why).",
    "internal_error": "A bug in GoCast; the request ID is in its log.",
}


def obj(properties: Dict[str, Any], required: Optional[List[str]] = None) -> Dict[str, Any]:
    schema: Dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def array(items: Dict[str, Any]) -> Dict[str, Any]:
    return {"type": "array", "items": items}


def nullable(kind: str) -> Dict[str, Any]:
    """OpenAPI 3.0's way (Swagger UI from PyPI reads 3.0, not 3.1)."""
    return {"type": kind, "nullable": True}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}

SOURCE = obj({"content_type": STRING, "ip": nullable("string"), "user_agent": nullable("string"),
              "connected_at": nullable("string"), "connected_seconds": INTEGER, "bitrate": nullable("string"),
              "bytes_received": INTEGER, "name": nullable("string")},
             ["content_type", "connected_seconds"])

TRANSCODE_OUTPUT = obj({"mount": STRING, "format": {"type": "string", "enum": ["mp3", "aac", "opus", "vorbis"]},
                       "bitrate": INTEGER, "sample_rate": nullable("integer"), "channels": nullable("integer"),
                       "on_demand": {"type": "boolean"},
                       "running": dict(BOOLEAN, description="Its ffmpeg encodes now."),
                       "live": dict(BOOLEAN, description="Its mount has audio.")},
                      ["mount", "format", "bitrate", "running", "live"])

NOW_PLAYING = obj({"mount": STRING, "live": {"type": "boolean"}, "title": nullable("string"),
                   "artist": nullable("string"), "album": nullable("string"),
                   "artwork": dict(nullable("string"), description="The cover: this server's /<mount>/artwork.jpg "
                                   "when the mount serves artwork, else the URL given with the track."),
                   "duration": nullable("number"), "genre": nullable("string"), "year": nullable("integer"),
                   "song": nullable("string"), "started_at": nullable("string"),
                   "playing_from": dict(nullable("string"), description="The mount its listeners hear when it is "
                                        "not this one (a fallback)."),
                   "history": array(obj({"title": nullable("string"), "artist": nullable("string"),
                                         "album": nullable("string"), "song": nullable("string"),
                                         "started_at": nullable("string"), "ended_at": nullable("string")}))},
                  ["mount", "live", "title", "artist", "artwork", "history"])

MOUNT = obj({"path": STRING, "name": STRING, "origin": {"type": "string", "enum": ["config", "api", "dynamic"]},
             "live": {"type": "boolean"}, "content_type": nullable("string"), "listeners": INTEGER,
             "peak_listeners": INTEGER, "max_listeners": INTEGER, "title": nullable("string"),
             "artist": nullable("string"), "bytes_sent": INTEGER, "public": dict(nullable("boolean"), description="Unset: as the source says."),
             "hidden": {"type": "boolean"}, "hls": {"type": "boolean"},
             "source": dict(SOURCE, nullable=True),
             "transcoded_from": dict(nullable("string"), description="The mount this one is a transcoding "
                                                                     "output of."),
             "transcoding": array(TRANSCODE_OUTPUT), "now_playing": NOW_PLAYING},
            ["path", "name", "origin", "live", "listeners"])

LISTENER = obj({"id": STRING, "ip": STRING, "user_agent": nullable("string"), "connected_at": nullable("string"),
                "duration": INTEGER, "bytes_sent": INTEGER,
                "listener_id": dict(nullable("string"), description="Who the listener authenticated as "
                                                                    "(a token's listener_id, a user name).")},
               ["id", "ip", "duration"])

SERVER_STATUS = obj({"version": STRING, "started": nullable("string"), "uptime": INTEGER,
                     "status": {"type": "string", "enum": ["ok", "draining"]}, "mounts": INTEGER,
                     "sources": INTEGER, "listeners": INTEGER}, ["version", "status", "listeners"])

RELOAD = obj({"success": {"type": "boolean"}, "changes": array(STRING), "restart_required": array(STRING)},
             ["success", "changes", "restart_required"])

COUNTS_BY_NAME = {"type": "object", "additionalProperties": INTEGER}

STATS = obj({"total_listeners": INTEGER, "sources": INTEGER, "uptime": INTEGER,
             "cluster": obj({"listeners": INTEGER, "mounts": COUNTS_BY_NAME, "nodes": COUNTS_BY_NAME},
                            ["listeners", "mounts", "nodes"]),
             "mounts": array(obj({"path": STRING, "listeners": INTEGER, "peak_listeners": INTEGER,
                                  "bytes_sent": INTEGER, "bytes_received": INTEGER, "live": {"type": "boolean"}},
                                 ["path", "listeners"]))},
            ["total_listeners", "mounts"])

CLUSTER = obj({
    "enabled": {"type": "boolean"}, "id": nullable("string"), "role": STRING, "region": STRING,
    "leader": nullable("string"), "is_leader": {"type": "boolean"},
    "totals": dict(obj({"listeners": INTEGER, "mounts": COUNTS_BY_NAME, "nodes": COUNTS_BY_NAME}), nullable=True),
    "redis": obj({"url": nullable("string"), "connected": {"type": "boolean"}, "error": nullable("string")}),
    "nodes": array(obj({"id": STRING, "role": STRING, "region": STRING, "address": STRING, "listeners": INTEGER,
                        "bandwidth": INTEGER, "max_bandwidth": INTEGER, "max_listeners": INTEGER,
                        "load": {"type": "number"}, "updated": {"type": "number"}, "self": {"type": "boolean"},
                        "mounts": array(obj({"path": STRING, "hops": INTEGER, "via": array(STRING),
                                             "listeners": INTEGER}, ["path", "hops"]))},
                       ["id", "role", "address", "mounts"])),
    "relays": array(obj({"mount": STRING, "upstream": STRING, "origin": nullable("string"), "state": STRING,
                         "streaming_seconds": nullable("integer"), "reconnects": INTEGER,
                         "on_demand": {"type": "boolean"}, "last_error": nullable("string")},
                        ["mount", "upstream", "state"])),
    "workers": array(obj({"index": INTEGER, "pid": nullable("integer"), "ready": {"type": "boolean"},
                          "listeners": INTEGER}, ["index", "ready", "listeners"])),
}, ["enabled", "nodes", "relays"])

ROUTE = obj({"ip": STRING, "mount": STRING, "country": STRING, "continent": nullable("string"),
             "region": nullable("string"), "node": nullable("string"), "address": nullable("string"),
             "url": nullable("string"), "redirect": {"type": "boolean"}, "reason": STRING},
            ["ip", "mount", "node", "url", "redirect", "reason"])

COUNTS = {"type": "object", "additionalProperties": INTEGER}
HISTORY = obj({"range": {"type": "string", "enum": ["1h", "1d"]},
               "points": array(obj({"ts": {"type": "number"}, "time": STRING, "mount": STRING,
                                    "listeners": {"type": "number", "description": "Average over the point."},
                                    "peak": INTEGER, "bytes_sent": INTEGER, "bytes_received": INTEGER,
                                    "send_bps": nullable("integer"), "receive_bps": nullable("integer"),
                                    "listeners_by_country": COUNTS, "listeners_by_city": COUNTS},
                                   ["ts", "time", "mount", "listeners", "peak", "bytes_sent", "bytes_received"]))},
              ["range", "points"])
GEO_COUNTS = {"listeners_by_country": dict(COUNTS, description="ISO country code (or unknown): listeners."),
              "listeners_by_city": dict(COUNTS, description="City: listeners (with precision city).")}
GEO = obj(dict(GEO_COUNTS, enabled={"type": "boolean"},
               precision={"type": "string", "enum": ["country", "region", "city"]},
               mounts=array(obj(dict(GEO_COUNTS, mount=STRING, listeners=INTEGER),
                                ["mount", "listeners", "listeners_by_country", "listeners_by_city"])),
               cluster=obj(GEO_COUNTS)),
          ["listeners_by_country", "listeners_by_city", "mounts", "enabled", "precision"])

KEY = obj({"id": STRING, "name": STRING, "permissions": array(STRING), "expires": nullable("string"),
           "description": STRING, "origin": {"type": "string", "enum": ["config", "api"]},
           "created": nullable("string"), "last_used": nullable("string"), "requests": INTEGER},
          ["id", "name", "permissions", "origin", "requests"])

KEY_CREATED = obj(dict(KEY["properties"], key={"type": "string", "description": "The secret: shown this once."}),
                  KEY["required"] + ["key"])

META = obj({"timestamp": STRING, "request_id": STRING,
            "pagination": obj({"limit": INTEGER, "next_cursor": nullable("string")}, ["limit", "next_cursor"])},
           ["timestamp", "request_id"])

ERROR = obj({"success": {"type": "boolean", "enum": [False]},
             "error": obj({"code": {"type": "string", "enum": sorted(ERROR_CODES)}, "message": STRING,
                           "details": {}}, ["code", "message"]),
             "meta": META}, ["success", "error", "meta"])


def envelope(data: Dict[str, Any]) -> Dict[str, Any]:
    return obj({"success": {"type": "boolean", "enum": [True]}, "data": data, "meta": META},
               ["success", "data", "meta"])

RECORDING = obj({"id": STRING, "mount": STRING, "size": {"type": "integer"}, "started": nullable("string"),
                 "modified": STRING, "recording": {"type": "boolean"}})
