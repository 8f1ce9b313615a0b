"""
Tests for the API commands' client side, without a server: where the URL
and key come from, ``--set`` parsing, and how API errors are explained.
"""

import argparse
import io

from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from gocast.cli import _api as api_cli
from gocast.client import GoCastError


def options(url=None, api_key=None):
    return argparse.Namespace(url=url, api_key=api_key)


class ClientSettingsTests(SynchronousTestCase):
    def client_config(self, text):
        path = FilePath(self.mktemp())
        path.setContent(text.encode("utf-8"))
        return path.path

    def test_defaults_without_anything(self):
        environ = {"GOCAST_CLIENT_CONFIG": self.mktemp()}  # no such file
        self.assertEqual(api_cli.client_settings(options(), environ), {"url": None, "api_key": None})

    def test_client_config_file(self):
        path = self.client_config('url "http://radio:9000"\napi_key "gck_file"\n')
        settings = api_cli.client_settings(options(), {"GOCAST_CLIENT_CONFIG": path})
        self.assertEqual(settings, {"url": "http://radio:9000", "api_key": "gck_file"})

    def test_environment_beats_client_config(self):
        path = self.client_config('url "http://radio:9000"\napi_key "gck_file"\n')
        environ = {"GOCAST_CLIENT_CONFIG": path, "GOCAST_URL": "http://env:1", "GOCAST_API_KEY": "gck_env"}
        self.assertEqual(api_cli.client_settings(options(), environ), {"url": "http://env:1", "api_key": "gck_env"})

    def test_options_beat_environment(self):
        path = self.client_config('url "http://radio:9000"\napi_key "gck_file"\n')
        environ = {"GOCAST_CLIENT_CONFIG": path, "GOCAST_URL": "http://env:1", "GOCAST_API_KEY": "gck_env"}
        settings = api_cli.client_settings(options("http://opt:2", "gck_opt"), environ)
        self.assertEqual(settings, {"url": "http://opt:2", "api_key": "gck_opt"})

    def test_each_setting_from_its_own_place(self):
        path = self.client_config('api_key "gck_file"\n')
        settings = api_cli.client_settings(options(url="http://opt:2"), {"GOCAST_CLIENT_CONFIG": path})
        self.assertEqual(settings, {"url": "http://opt:2", "api_key": "gck_file"})

    def test_default_path_under_xdg_config_home(self):
        home = FilePath(self.mktemp())
        home.child("gocast").makedirs()
        home.child("gocast").child("client.vibe").setContent(b'api_key "gck_xdg"\n')
        settings = api_cli.client_settings(options(), {"XDG_CONFIG_HOME": home.path})
        self.assertEqual(settings["api_key"], "gck_xdg")

    def test_malformed_client_config_names_line_and_column(self):
        path = self.client_config('url "http://radio:9000"\napi_key "unterminated\n')
        with self.assertRaises(api_cli.UsageError) as caught:
            api_cli.client_settings(options(), {"GOCAST_CLIENT_CONFIG": path})
        self.assertTrue(str(caught.exception).startswith("%s:2:" % path), str(caught.exception))

    def test_unknown_key_in_client_config(self):
        path = self.client_config('url "http://radio:9000"\napikey "gck"\n')
        with self.assertRaises(api_cli.UsageError) as caught:
            api_cli.client_settings(options(), {"GOCAST_CLIENT_CONFIG": path})
        self.assertIn("unknown key apikey", str(caught.exception))

    def test_bad_client_config_exits_with_usage_code(self):
        path = self.client_config("url {\n")
        args = argparse.Namespace(command="mount", action="list", url=None, api_key=None, json=False)
        err = io.StringIO()
        code = api_cli.run(args, io.StringIO(), err, environ={"GOCAST_CLIENT_CONFIG": path})
        self.assertEqual(code, api_cli.EXIT_USAGE)
        self.assertIn(path, err.getvalue())


class ParseSettingsTests(SynchronousTestCase):
    def test_json_values_and_text(self):
        self.assertEqual(api_cli.parse_settings(["max_listeners=100", "public=true", "name=Jazz FM"]),
                         {"max_listeners": 100, "public": True, "name": "Jazz FM"})

    def test_dotted_keys_build_blocks(self):
        self.assertEqual(api_cli.parse_settings(["hls.enabled=true", "hls.segment_duration=4s", "genre=jazz"]),
                         {"hls": {"enabled": True, "segment_duration": "4s"}, "genre": "jazz"})

    def test_value_may_contain_equals(self):
        self.assertEqual(api_cli.parse_settings(["description=a=b"]), {"description": "a=b"})

    def test_missing_equals_is_a_usage_error(self):
        self.assertRaises(api_cli.UsageError, api_cli.parse_settings, ["max_listeners"])
        self.assertRaises(api_cli.UsageError, api_cli.parse_settings, ["hls..enabled=true"])

    def test_value_then_block_is_a_usage_error(self):
        self.assertRaises(api_cli.UsageError, api_cli.parse_settings, ["hls=1", "hls.enabled=true"])


class ExplainTests(SynchronousTestCase):
    def test_field_details_and_hints(self):
        err = io.StringIO()
        error = GoCastError(422, "invalid_field", "max_listeners: expected a whole number",
                            [{"field": "config.max_listeners", "message": "expected a whole number"}])
        self.assertEqual(api_cli.explain(error, err, api_cli.EXIT_REFUSED), api_cli.EXIT_REFUSED)
        self.assertEqual(err.getvalue(), "Error: max_listeners: expected a whole number\n"
                                         "  → config.max_listeners: expected a whole number\n")

    def test_text_details_are_shown(self):
        err = io.StringIO()
        error = GoCastError(422, "invalid_config", "the config file has errors; the running config stays",
                            ["gocast.vibe:3:8: server.port: expected a whole number"])
        api_cli.explain(error, err, api_cli.EXIT_REFUSED)
        self.assertIn("  → gocast.vibe:3:8: server.port: expected a whole number\n", err.getvalue())

    def test_missing_permission_named(self):
        err = io.StringIO()
        error = GoCastError(403, "forbidden", "this key lacks a permission", {"required": "write_mounts"})
        self.assertEqual(api_cli.explain(error, err, api_cli.EXIT_DENIED), api_cli.EXIT_DENIED)
        self.assertIn("The key needs the permission write_mounts", err.getvalue())
        self.assertIn("Use a key that has this permission", err.getvalue())


class TableTests(SynchronousTestCase):
    ROWS = [{"path": "/live", "title": "Band - Tune\twith\ttabs", "listeners": 3}, {"path": "/b", "title": None,
                                                                                  "listeners": 0}]

    def test_aligned_on_a_terminal(self):
        out = io.StringIO()
        out.isatty = lambda: True
        api_cli._table(out, self.ROWS, ["path", "title", "listeners"])
        self.assertEqual(out.getvalue().splitlines(), [
            "PATH   TITLE                  LISTENERS",
            "/live  Band - Tune with tabs  3",
            "/b     -                      0",
        ])

    def test_tab_separated_when_piped(self):
        out = io.StringIO()
        api_cli._table(out, self.ROWS, ["path", "title", "listeners"])
        self.assertEqual(out.getvalue(), "PATH\tTITLE\tLISTENERS\n/live\tBand - Tune with tabs\t3\n/b\t-\t0\n")


class ClusterStatusTests(SynchronousTestCase):
    STATUS = {"enabled": True, "id": "10.0.0.2:8000", "role": "relay", "region": "eu",
              "redis": {"url": "redis://r:6379", "connected": True, "error": None},
              "leader": "10.0.0.1:8000", "is_leader": False,
              "nodes": [{"id": "10.0.0.1:8000", "role": "primary", "region": "us", "listeners": 3, "load": 0.1,
                         "mounts": [{"path": "/live", "hops": 0, "via": []}], "self": False},
                        {"id": "10.0.0.2:8000", "role": "relay", "region": "eu", "listeners": 1, "load": 0.0,
                         "mounts": [{"path": "/live", "hops": 1, "via": ["10.0.0.1:8000"]}], "self": True}],
              "relays": [{"mount": "/live", "upstream": "http://10.0.0.1:8000/live", "origin": "cluster",
                          "state": "streaming", "reconnects": 0, "last_error": None}]}

    def test_tables(self):
        out = io.StringIO()
        api_cli.cluster_status(self.STATUS, out, as_json=False)
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[0], "cluster: node 10.0.0.2:8000 (relay, region eu); Redis redis://r:6379: connected")
        self.assertEqual(lines[1], "leader: 10.0.0.1:8000")
        self.assertIn("10.0.0.2:8000 *\trelay\teu\t1\t0.0\t/live(1)", lines)
        self.assertIn("/live\thttp://10.0.0.1:8000/live\tcluster\tstreaming\t0\t-", lines)

    def test_workers(self):
        out = io.StringIO()
        api_cli.cluster_status(dict(self.STATUS, workers=[{"index": 0, "pid": 42, "ready": True, "listeners": 7}]),
                               out, as_json=False)
        self.assertIn("workers:\nINDEX\tPID\tREADY\tLISTENERS\n0\t42\tyes\t7\n", out.getvalue())

    def test_not_joined(self):
        out = io.StringIO()
        api_cli.cluster_status({"enabled": False, "nodes": [], "relays": []}, out, as_json=False)
        self.assertEqual(out.getvalue(), "cluster: not joined (cluster.sync is off)\n\nrelays:\n(none)\n")
