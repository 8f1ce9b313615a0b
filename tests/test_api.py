"""The REST API v1 through a whole GocastService: envelope, keys, permissions, mounts, listeners, OpenAPI."""

import base64
import json
import sqlite3

from openapi_spec_validator import validate
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from gocast.core.throttle import FAILURE_LIMIT, FAILURE_WINDOW
from gocast.api.routes import ROUTES
from gocast.config._schema import PERMISSIONS

from .service_harness import ServiceHarness
from .streaming import close, feed_frames, split_response

#: The harness clock's time: 2026-11-24, after the config key's expiry.
NOW = 1795000000.0
ADMIN = base64.b64encode(b"admin:hackme").decode()
CONFIG_KEY = "gck_stats-reader-key-0123456789"
BASE = """server {{ listen 127.0.0.1 port 8000 data_dir "{data}" {server} }}
{top}
shoutcast {{ enabled false }}
api_keys {{
    stats_reader {{ key "{key}" permissions [read_stats, read_mounts] }}
    old {{ key "gck_expired-key-0123456789" permissions [*] expires 2020-01-01 }}
}}
mounts {{ live {{ }} {extra} }}
"""


class ApiHarness(ServiceHarness):
    def __init__(self, testcase, text):
        super().__init__(testcase, text)
        self.clock.advance(NOW)

    def api(self, method, target, body=None, key=None, admin=False, headers="", raw=None):
        head = "%s %s HTTP/1.1\r\nHost: radio.test\r\nConnection: close\r\n%s" % (method, target, headers)
        if admin:
            head += "Authorization: Basic %s\r\n" % ADMIN
        if key:
            head += "Authorization: Bearer %s\r\n" % key
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        if data:
            if "content-type:" not in headers.lower():
                head += "Content-Type: application/json\r\n"
            head += "Content-Length: %d\r\n" % len(data)
        _, transport = self.connect((head + "\r\n").encode() + data)
        self.clock.advance(0)
        status, headers_out, payload = split_response(transport.value())
        return int(status.split()[1]), headers_out, json.loads(payload) if payload.startswith(b"{") else payload


class ApiTestCase(SynchronousTestCase):
    #: More mounts; more of the server block; more top-level blocks.
    extra = ""
    server = ""
    top = ""

    def setUp(self):
        self.data = self.mktemp()
        self.h = self.harness()

    def harness(self):
        h = ApiHarness(self, BASE.format(data=self.data, key=CONFIG_KEY, extra=self.extra, server=self.server,
                                         top=self.top))
        self.addCleanup(h.service.state.close)
        return h

    def new_key(self, permissions, name="k"):
        status, _, body = self.h.api("POST", "/api/v1/keys", {"name": name, "permissions": permissions},
                                     admin=True)
        self.assertEqual(status, 201, body)
        return body["data"]


class EnvelopeTests(ApiTestCase):
    def test_success_envelope(self):
        status, headers, body = self.h.api("GET", "/api/v1/server/status", admin=True,
                                           headers="X-Request-ID: trace-7\r\n")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertIs(body["success"], True)
        self.assertEqual(body["data"]["status"], "ok")
        self.assertEqual(body["meta"]["request_id"], "trace-7")
        self.assertRegex(body["meta"]["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_errors(self):
        status, _, body = self.h.api("GET", "/api/v1/nothing", admin=True)
        self.assertEqual((status, body["success"], body["error"]["code"]), (404, False, "not_found"))
        status, headers, body = self.h.api("PATCH", "/api/v1/mounts", admin=True)
        self.assertEqual((status, headers["allow"]), (405, "GET, POST"))
        status, _, body = self.h.api("POST", "/api/v1/mounts", raw=b"{not json", admin=True)
        self.assertEqual((status, body["error"]["code"]), (400, "invalid_body"))
        status, _, body = self.h.api("POST", "/api/v1/mounts", raw=b"[" * 70000, admin=True)
        self.assertEqual(status, 413)
        status, _, body = self.h.api("POST", "/api/v1/mounts", raw=b"[" * 60000, admin=True)
        self.assertEqual((status, body["error"]["message"]), (400, "the body nests too deeply"))
        status, _, body = self.h.api("POST", "/api/v1/mounts", raw=b'{"name": "x", "config": {"bitrate": NaN}}',
                                     admin=True)
        self.assertEqual((status, body["error"]["code"]), (400, "invalid_body"))
        self.assertIn("NaN is not a JSON number", body["error"]["message"])
        huge = {"name": "x", "config": {"transcoding": {"outputs": {"a": {"path": "/b", "bitrate": 9e307}}},
                                        "max_listener_duration": "99999999w"}}
        status, _, body = self.h.api("POST", "/api/v1/mounts", huge, admin=True)
        self.assertEqual(status, 422, body)
        self.assertEqual(sorted(d["field"] for d in body["error"]["details"]),
                         ["config.max_listener_duration", "config.transcoding.outputs.a.bitrate"])
        # twisted.web would answer a malformed multipart body with a bare 400 before the API saw it.
        broken = b"--x\r\nContent-Disposition: form-data\r\n\r\nno closing boundary"
        status, _, body = self.h.api("POST", "/api/v1/mounts", admin=True, raw=broken,
                                     headers="Content-Type: multipart/form-data\r\n")  # no boundary
        self.assertEqual((status, body["error"]["message"]), (415, "send the body as application/json"))


class AuthTests(ApiTestCase):
    def test_no_credentials(self):
        status, headers, body = self.h.api("GET", "/api/v1/stats")
        self.assertEqual((status, body["error"]["code"]), (401, "unauthorized"))
        self.assertIn("Bearer", headers["www-authenticate"])

    def test_every_route_is_guarded(self):
        """No credentials: 401 on every route; a key lacking the route's permission: 403."""
        for route in ROUTES:
            target = "/api/v1" + route.path.replace("{mount}", "live").replace("{id}", "1")
            status, _, _ = self.h.api(route.method, target, {})
            self.assertEqual(status, 401, "%s %s" % (route.method, route.path))
            self.h.clock.advance(FAILURE_WINDOW)  # keep clear of the failure limit
        for permission in PERMISSIONS:
            others = [p for p in PERMISSIONS if p != permission]
            secret = self.new_key(others, "all-but-" + permission)["key"]
            guarded = [r for r in ROUTES if r.permission == permission]
            self.assertTrue(guarded or permission in ("manage_keys",), permission)
            for route in guarded:
                target = "/api/v1" + route.path.replace("{mount}", "live").replace("{id}", "1")
                status, _, body = self.h.api(route.method, target, {}, key=secret)
                self.assertEqual((status, body["error"]["details"]), (403, {"required": permission}),
                                 "%s %s" % (route.method, route.path))
        self.assertEqual({r.permission for r in ROUTES} - set(PERMISSIONS), set())

    def test_config_key_and_x_api_key_header(self):
        status, _, body = self.h.api("GET", "/api/v1/stats", key=CONFIG_KEY)
        self.assertEqual(status, 200)
        status, _, _ = self.h.api("GET", "/api/v1/mounts", headers="X-API-Key: %s\r\n" % CONFIG_KEY)
        self.assertEqual(status, 200)
        status, _, body = self.h.api("POST", "/api/v1/server/reload", key=CONFIG_KEY)
        self.assertEqual((status, body["error"]["code"]), (403, "forbidden"))

    def test_expired_key(self):
        status, _, body = self.h.api("GET", "/api/v1/stats", key="gck_expired-key-0123456789")
        self.assertEqual(status, 401)
        self.assertIn("expired", body["error"]["message"])

    def test_failed_authentication_is_rate_limited(self):
        for _ in range(FAILURE_LIMIT):
            self.assertEqual(self.h.api("GET", "/api/v1/stats", key="gck_wrong")[0], 401)
        status, headers, body = self.h.api("GET", "/api/v1/stats", key=CONFIG_KEY)
        self.assertEqual((status, body["error"]["code"]), (429, "rate_limited"))
        self.assertEqual(headers["retry-after"], "60")
        self.h.clock.advance(FAILURE_WINDOW)
        self.assertEqual(self.h.api("GET", "/api/v1/stats", key=CONFIG_KEY)[0], 200)


class KeyTests(ApiTestCase):
    def test_created_key_secret_shown_once_and_only_hash_stored(self):
        created = self.new_key(["read_stats"], "grafana")
        secret = created["key"]
        self.assertTrue(secret.startswith("gck_"))
        self.assertEqual(self.h.api("GET", "/api/v1/stats", key=secret)[0], 200)
        self.assertEqual(self.h.api("GET", "/api/v1/stats", key=secret)[0], 200)
        status, _, body = self.h.api("GET", "/api/v1/keys", admin=True)
        listed = {k["name"]: k for k in body["data"]}
        self.assertNotIn("key", listed["grafana"])
        self.assertNotIn(secret, json.dumps(body))
        self.assertEqual(listed["grafana"]["requests"], 2)
        self.assertIsNotNone(listed["grafana"]["last_used"])
        self.assertEqual(listed["stats_reader"]["origin"], "config")
        db = sqlite3.connect(self.h.service.state.path)
        self.addCleanup(db.close)
        self.assertNotIn(secret.encode(), b"".join(str(row).encode() for row in db.execute("SELECT * FROM api_keys")))

    def test_revoked_key_refused_and_usage_kept_across_restart(self):
        created = self.new_key(["read_stats"])
        self.h.api("GET", "/api/v1/stats", key=created["key"])
        self.h.service.stopService()  # flushes usage
        again = self.harness()
        self.assertEqual(again.api("GET", "/api/v1/stats", key=created["key"])[0], 200)
        keys = {k["id"]: k for k in again.api("GET", "/api/v1/keys", admin=True)[2]["data"]}
        self.assertEqual(keys[created["id"]]["requests"], 2)
        status, _, body = again.api("DELETE", "/api/v1/keys/" + created["id"], admin=True)
        self.assertEqual((status, body["data"]), (200, {"revoked": created["id"]}))
        self.assertEqual(again.api("GET", "/api/v1/stats", key=created["key"])[0], 401)
        status, _, body = again.api("DELETE", "/api/v1/keys/config:stats_reader", admin=True)
        self.assertEqual((status, body["error"]["code"]), (409, "config_file_key"))

    def test_key_count_is_capped(self):
        from gocast.api import routes

        self.patch(routes, "MAX_API_KEYS", 2)
        self.new_key(["read_stats"], "one")
        self.new_key(["read_stats"], "two")
        status, _, answer = self.h.api("POST", "/api/v1/keys", {"name": "three", "permissions": ["read_stats"]},
                                       admin=True)
        self.assertEqual(status, 409)
        self.assertIn("revoke some first", answer["error"]["message"])

    def test_keys_are_found_by_hash(self):
        secret = self.new_key(["read_stats"], "found")["key"]
        keys = self.h.service.api_keys
        self.assertEqual(keys.find(secret).name, "found")
        self.assertIsNone(keys.find(secret + "x"))
        self.assertEqual(keys.find(CONFIG_KEY).name, "stats_reader")

    def test_a_key_grants_no_more_than_it_holds(self):
        manager = self.new_key(["manage_keys", "read_stats"], "manager")["key"]
        for wanted in (["*"], ["write_mounts"], ["read_stats", "manage_sources"]):
            status, _, answer = self.h.api("POST", "/api/v1/keys", {"name": "minted", "permissions": wanted},
                                           key=manager)
            self.assertEqual((status, answer["error"]["code"]), (403, "forbidden"), wanted)
            self.assertIn("cannot grant what it does not hold", answer["error"]["message"])
        status, _, answer = self.h.api("POST", "/api/v1/keys", {"name": "ok", "permissions": ["read_stats"]},
                                       key=manager)
        self.assertEqual(status, 201, answer)
        everything = self.new_key(["*"], "root")["key"]  # the admin may grant anything, a * key too
        status, _, _ = self.h.api("POST", "/api/v1/keys", {"name": "all", "permissions": ["*"]}, key=everything)
        self.assertEqual(status, 201)

    def test_create_validation(self):
        for body, field in (({"permissions": ["read_stats"]}, "name"),
                            ({"name": "x", "permissions": ["fly"]}, "permissions"),
                            ({"name": "x", "permissions": []}, "permissions"),
                            ({"name": "x", "permissions": ["*"], "expires": -5}, "expires")):
            status, _, answer = self.h.api("POST", "/api/v1/keys", body, admin=True)
            self.assertEqual(status, 422, body)
            self.assertEqual(answer["error"]["details"][0]["field"], field)


class MountTests(ApiTestCase):
    extra = "other { max_listeners 5 }"

    def test_create_persist_update_delete(self):
        status, _, body = self.h.api("POST", "/api/v1/mounts", {"name": "news", "config": {"max_listeners": 7}},
                                     admin=True)
        self.assertEqual(status, 201, body)
        self.assertEqual((body["data"]["path"], body["data"]["origin"], body["data"]["max_listeners"]),
                         ("/news", "api", 7))
        self.h.service.stopService()
        again = self.harness()  # a restart
        status, _, body = again.api("GET", "/api/v1/mounts/news", admin=True)
        self.assertEqual((status, body["data"]["max_listeners"]), (200, 7))
        status, _, body = again.api("PUT", "/api/v1/mounts/news", {"config": {"max_listeners": 9}}, admin=True)
        self.assertEqual((status, body["data"]["max_listeners"]), (200, 9))
        self.assertEqual(again.service.registry.get("/news").config.max_listeners, 9)
        status, _, _ = again.api("DELETE", "/api/v1/mounts/news", admin=True)
        self.assertEqual(status, 200)
        self.assertEqual(again.api("GET", "/api/v1/mounts/news", admin=True)[0], 404)

    def test_config_file_mounts_are_authoritative(self):
        for method, body in (("DELETE", None), ("PUT", {"config": {}})):
            status, _, answer = self.h.api(method, "/api/v1/mounts/other", body, admin=True)
            self.assertEqual((status, answer["error"]["code"]), (409, "config_file_mount"))
        status, _, answer = self.h.api("POST", "/api/v1/mounts", {"name": "/live"}, admin=True)
        self.assertEqual(status, 409)

    def test_invalid_mount_names_the_field(self):
        status, _, body = self.h.api("POST", "/api/v1/mounts", {"name": "x", "config": {"max_listeners": "many"}},
                                     admin=True)
        self.assertEqual(status, 422)
        self.assertEqual(body["error"]["details"][0]["field"], "config.max_listeners")
        status, _, body = self.h.api("POST", "/api/v1/mounts", {"name": "api/x"}, admin=True)
        self.assertEqual((status, body["error"]["details"][0]["field"]), (409, "name"))  # reserved

    def test_files_and_urls_are_the_operators(self):
        """A key that writes mounts gets no file of the server's and no URL it would fetch."""
        key = self.new_key(["write_mounts"])["key"]
        target = FilePath(self.mktemp()).path
        attempts = [
            {"dump_file": target},
            {"fallback": {"file": "/etc/passwd"}},
            {"auth": {"type": "basic", "users_file": "/etc/shadow"}},
            {"auth": {"type": "token", "public_key": "/etc/ssl/private/key.pem"}},
            {"auth": {"type": "token", "jwks_url": "http://169.254.169.254/latest"}},
            {"auth": {"type": "url", "url": "http://127.0.0.1:6379/"}},
            {"recording": {"path": "/"}},
        ]
        status, _, _ = self.h.api("POST", "/api/v1/mounts", {"name": "fine", "config": {"genre": "Jazz"}}, key=key)
        self.assertEqual(status, 201)
        for config in attempts:
            for method, target_path, body in (("POST", "/api/v1/mounts", {"name": "evil", "config": config}),
                                              ("PUT", "/api/v1/mounts/fine", {"config": config})):
                status, _, answer = self.h.api(method, target_path, body, key=key)
                self.assertEqual((status, answer["error"]["code"]), (403, "operator_setting"), config)
                self.assertIn("config file only", answer["error"]["message"])
        self.assertIsNone(self.h.service.registry.get("/evil"))
        self.assertEqual(self.h.service.registry.get("/fine").config.dump_file, "")
        self.assertFalse(FilePath(target).exists())
        schema = self.h.api("GET", "/api/v1/openapi.json", admin=True)[2]
        self.assertIn('"readOnly": true', json.dumps(schema))

    def test_percent_encoded_mount_with_slashes(self):
        self.h.api("POST", "/api/v1/mounts", {"name": "radio/main"}, admin=True)
        status, _, body = self.h.api("GET", "/api/v1/mounts/radio%2Fmain", admin=True)
        self.assertEqual((status, body["data"]["path"]), (200, "/radio/main"))

    def test_config_never_shows_secrets(self):
        status, _, body = self.h.api("GET", "/api/v1/server/config", admin=True)
        self.assertEqual(status, 200)
        text = json.dumps(body)
        self.assertNotIn("hackme", text)
        self.assertNotIn(CONFIG_KEY, text)
        self.assertEqual(body["data"]["api_keys"]["stats_reader"]["key"], "<redacted>")

    def test_credentials_in_urls_are_redacted(self):
        h = ApiHarness(self, BASE.format(data=self.mktemp(), key=CONFIG_KEY, extra="", server="", top=(
            'webhooks { w { url "https://bot:hookpass@hooks.example/in?api_key=k3y&channel=7" } }\n'
            'cluster { sync { redis_url "redis://:redispass@redis.internal:6379/0" } }')))
        self.addCleanup(h.service.state.close)
        status, _, body = h.api("GET", "/api/v1/server/config", admin=True)
        self.assertEqual(status, 200)
        text = json.dumps(body)
        for secret in ("hookpass", "k3y", "redispass"):
            self.assertNotIn(secret, text)
        self.assertEqual(body["data"]["webhooks"]["w"]["url"],
                         "https://bot:<redacted>@hooks.example/in?api_key=<redacted>&channel=7")


class BytesSentTests(ApiTestCase):
    def test_connected_listeners_count_in_bytes_sent(self):
        source, _ = self.h.source()
        feed_frames(source, 20)
        _, listener = self.h.listener()
        self.assertGreater(len(listener.value()), 0)  # the burst went out; the listener is still here
        status, _, body = self.h.api("GET", "/api/v1/mounts/live", admin=True)
        self.assertGreater(body["data"]["bytes_sent"], 0)
        stats = self.h.api("GET", "/api/v1/stats", admin=True)[2]["data"]
        [live] = [m for m in stats["mounts"] if m["path"] == "/live"]
        self.assertGreater(live["bytes_sent"], 0)
        xml = self.h.request("GET", "/admin/stats", ADMIN)[2]
        self.assertNotIn(b"<total_bytes_sent>0</total_bytes_sent>", xml)


class MetricsKeyTests(ApiTestCase):
    top = "metrics { auth_required true }"

    def test_a_key_with_read_stats_may_scrape(self):
        reader = self.new_key(["read_stats"], "prometheus")["key"]
        writer = self.new_key(["write_metadata"], "tagger")["key"]
        status, headers, body = self.h.api("GET", "/metrics", key=reader)
        self.assertEqual(status, 200)
        self.assertIn(b"gocast_uptime_seconds", body)
        self.assertEqual(self.h.api("GET", "/metrics", headers="X-API-Key: %s\r\n" % reader)[0], 200)
        self.assertEqual(self.h.api("GET", "/metrics", key=writer)[0], 401)
        self.assertEqual(self.h.api("GET", "/metrics")[0], 401)
        self.assertEqual(self.h.api("GET", "/metrics", admin=True)[0], 200)
        for _ in range(10):
            self.h.api("GET", "/metrics", key="gck_guessed-wrong-0123456789")
        self.assertEqual(self.h.api("GET", "/metrics", key=reader)[0], 429)  # guessing keys is limited too


class StreamTests(ApiTestCase):
    def test_metadata_source_and_listeners(self):
        status, _, body = self.h.api("POST", "/api/v1/mounts/live/metadata", {"title": "Tune"}, admin=True)
        self.assertEqual((status, body["error"]["code"]), (409, "no_source"))
        source, _ = self.h.source()
        feed_frames(source, 20)
        listeners = [self.h.listener() for _ in range(3)]
        status, _, body = self.h.api("POST", "/api/v1/mounts/live/metadata", {"song": "Band - Tune"}, admin=True)
        self.assertEqual((status, body["data"]), (200, {"title": "Tune", "artist": "Band", "song": "Band - Tune",
                                                         "album": None, "artwork": None}))
        self.assertIn("source.metadata", self.h.names())
        status, _, body = self.h.api("POST", "/api/v1/mounts/live/metadata", {
            "title": "Next", "artist": "Band", "album": "Record", "genre": "Rock", "year": 1975, "duration": 354,
            "artwork": "https://covers.example/next.jpg"}, admin=True)
        self.assertEqual((body["data"]["album"], body["data"]["artwork"]), ("Record", "https://covers.example/next.jpg"))
        playing = self.h.api("GET", "/api/v1/mounts/live", admin=True)[2]["data"]["now_playing"]
        self.assertEqual((playing["album"], playing["genre"], playing["year"], playing["duration"]),
                         ("Record", "Rock", 1975, 354.0))
        self.assertEqual([entry["song"] for entry in playing["history"]], ["Band - Tune"])
        for wrong in ({"title": "x", "artwork": "javascript:alert(1)"}, {"title": "x", "year": "1975"},
                      {"title": "x", "duration": -1}):
            status, _, body = self.h.api("POST", "/api/v1/mounts/live/metadata", wrong, admin=True)
            self.assertEqual((status, body["error"]["code"]), (422, "invalid_field"), wrong)
        status, _, body = self.h.api("GET", "/api/v1/mounts/live/listeners?limit=2", admin=True)
        self.assertEqual(len(body["data"]), 2)
        cursor = body["meta"]["pagination"]["next_cursor"]
        status, _, body = self.h.api("GET", "/api/v1/mounts/live/listeners?limit=2&cursor=" + cursor, admin=True)
        self.assertEqual((len(body["data"]), body["meta"]["pagination"]["next_cursor"]), (1, None))
        last = body["data"][0]["id"]
        self.assertEqual(self.h.api("GET", "/api/v1/mounts/live/listeners/" + last, admin=True)[2]["data"]["id"],
                         last)
        status, _, _ = self.h.api("DELETE", "/api/v1/mounts/live/listeners/" + last, admin=True)
        self.assertEqual(status, 200)
        self.assertTrue(listeners[2][1].disconnecting)
        self.assertIn("listener.kicked", self.h.names())
        self.assertEqual(self.h.api("GET", "/api/v1/mounts/live/listeners?limit=0", admin=True)[0], 400)
        status, _, body = self.h.api("GET", "/api/v1/mounts/live/source", admin=True)
        self.assertEqual((status, body["data"]["content_type"]), (200, "audio/mpeg"))
        status, _, _ = self.h.api("DELETE", "/api/v1/mounts/live/source", admin=True)
        self.assertEqual(status, 200)
        close(source)
        self.assertEqual(self.h.api("GET", "/api/v1/mounts/live/source", admin=True)[0], 404)
        status, _, body = self.h.api("GET", "/api/v1/stats", key=CONFIG_KEY)
        self.assertEqual(body["data"]["mounts"][0]["path"], "/live")


class OpenApiTests(ApiTestCase):
    def test_document_is_valid_and_matches_the_routes(self):
        status, _, body = self.h.api("GET", "/api/v1/openapi.json")
        self.assertEqual(status, 200)
        validate(body)
        served = {(method.upper(), path) for path, item in body["paths"].items() for method in item}
        self.assertEqual(served, {(r.method, "/api/v1" + r.path) for r in ROUTES})

    def test_swagger_ui_served_locally(self):
        _, transport = self.h.connect(b"GET /api/v1/docs/ HTTP/1.0\r\n\r\n")
        self.h.clock.advance(0)
        status, headers, page = split_response(transport.value())
        self.assertIn(" 200 ", status)
        self.assertIn(b"swagger-ui-bundle.js", page)
        self.assertNotIn(b"https://", page)  # no CDN
        _, transport = self.h.connect(b"GET /api/v1/docs/swagger-ui-bundle.js HTTP/1.0\r\n\r\n")
        self.h.clock.advance(0)
        status, _, script = split_response(transport.value())
        self.assertIn(" 200 ", status)
        self.assertGreater(len(script), 100000)


class GeoStatsTests(ApiTestCase):
    server = "trusted_proxies [10.0.0.0/8]"

    def setUp(self):
        from .test_geo import geolite2

        self.top = 'geoip { enabled true database "%s" precision city }' % geolite2()
        super().setUp()
        self.addCleanup(self.h.service.geo._close)

    def test_listeners_by_country_and_city(self):
        from .test_geo import LONDON, STOCKHOLM

        source, _ = self.h.source()
        feed_frames(source, 20)
        for address in (LONDON, STOCKHOLM, LONDON):
            self.h.listener(extra="X-Forwarded-For: %s\r\n" % address)
        status, _, body = self.h.api("GET", "/api/v1/stats/geo", key=CONFIG_KEY)
        self.assertEqual(status, 200, body)
        data = body["data"]
        self.assertEqual((data["enabled"], data["precision"]), (True, "city"))
        self.assertEqual(data["listeners_by_country"], {"GB": 2, "SE": 1})
        [live] = data["mounts"]
        self.assertEqual(live, {"mount": "/live", "listeners": 3, "listeners_by_country": {"GB": 2, "SE": 1},
                                "listeners_by_city": {"Willesden": 2, "Stockholm": 1}})
        self.assertEqual(self.h.api("GET", "/api/v1/stats/geo?mount=live", key=CONFIG_KEY)[2]["data"]["mounts"],
                         [live])
        self.assertEqual(self.h.api("GET", "/api/v1/stats/geo?mount=nothing", key=CONFIG_KEY)[0], 404)
        # ...and in the history.
        self.h.clock.advance(10)
        point = self.h.api("GET", "/api/v1/stats/history?mount=live", key=CONFIG_KEY)[2]["data"]["points"][-1]
        self.assertEqual((point["listeners_by_country"], point["listeners_by_city"]),
                         ({"GB": 2, "SE": 1}, {"Willesden": 2, "Stockholm": 1}))
