"""
Tests for the configuration schema and loader: defaults, typed values,
located and actionable errors, JSON, warnings, and show/round trip.
"""

import datetime
import ipaddress
import json

from twisted.trial.unittest import SynchronousTestCase

from gocast.config import (
    Config,
    ConfigError,
    default_config,
    dump_config,
    parse_config,
    render_issues,
    vibe,
)
from gocast.config._kinds import INVALID
from gocast.config._report import Reporter


def errors_of(text, filename="gocast.vibe"):
    """The rendered one-line errors for ``text``, which must be rejected."""
    try:
        parse_config(text, filename)
    except ConfigError as e:
        return [str(issue) for issue in e.errors]
    raise AssertionError("config was accepted")


def warnings_of(text, filename="gocast.vibe"):
    return [str(issue) for issue in parse_config(text, filename).warnings]


class DefaultsTests(SynchronousTestCase):
    def test_embedded_defaults(self):
        config = default_config()
        self.assertEqual(config.server.port, 8000)
        self.assertEqual(config.server.admin_root, "/admin")
        self.assertEqual(config.auth.source_password, "hackme")
        self.assertEqual(config.mounts, {})
        self.assertEqual(config.limits.queue_size, 512 * 1024)
        self.assertEqual(config.limits.source_timeout, 10.0)

    def test_empty_file_is_defaults(self):
        self.assertEqual(parse_config("").config, Config())

    def test_immutable(self):
        config = default_config()
        with self.assertRaises(Exception):
            config.server.port = 1  # type: ignore[misc]


class ErrorMessageTests(SynchronousTestCase):
    def test_unknown_key_did_you_mean(self):
        text = "mounts {\n  live {\n    max_listenrs 10\n  }\n}\n"
        self.assertEqual(
            errors_of(text),
            ["gocast.vibe:3:5: mounts.live.max_listenrs: unknown key; did you mean 'max_listeners'?"],
        )

    def test_unknown_key_without_close_match_lists_known(self):
        [error] = errors_of("server { zzz 1 }")
        self.assertIn("server.zzz: unknown key; known keys: admin_email, admin_root", error)

    def test_unknown_section(self):
        self.assertEqual(
            errors_of("mount { live { } }"),
            ["gocast.vibe:1:1: mount: unknown key; did you mean 'mounts'?"],
        )

    def test_type_error_points_at_value(self):
        self.assertEqual(
            errors_of("server {\n  port eighty\n}\n"),
            ['gocast.vibe:2:8: server.port: expected a whole number from 1 to 65535, got "eighty"'],
        )

    def test_choice_did_you_mean(self):
        self.assertEqual(
            errors_of("mounts { live { fallback_override onw } }"),
            ['gocast.vibe:1:35: mounts.live.fallback_override: expected one of all, own, none, '
             'got "onw"; did you mean \'own\'?'],
        )

    def test_quoted_boolean_hint(self):
        [error] = errors_of('server { drain_listeners "True" }')
        self.assertIn("VIBE booleans are lowercase true or false", error)

    def test_syntax_error_located(self):
        try:
            parse_config('server {\n  hostname "radio\n}\n', "g.vibe")
        except ConfigError as e:
            [issue] = e.issues
            self.assertEqual((issue.filename, issue.line, issue.column), ("g.vibe", 2, 12))
            self.assertEqual(issue.code, "unterminated-string")
            self.assertIn('hostname "radio\n', issue.render())
        else:
            self.fail("accepted")

    def test_syntax_errors_on_several_lines(self):
        errors = errors_of('a "x\nserver { port 0 }\nb "\\q"\n')
        self.assertEqual([e.split(": ")[1] for e in errors],
                         ["unterminated-string", "server.port", "invalid-escape"])

    def test_no_recovery_across_brackets(self):
        # Dropping a line with a bracket would misplace everything after it.
        errors = errors_of('server { hostname "x\n  port 0\n}\n')
        self.assertEqual(len(errors), 1)
        self.assertIn("unterminated-string", errors[0])

    def test_every_error_reported(self):
        errors = errors_of(
            "server { port 0 hostnme x }\nlimits { queue_size lots }\nmounts { a { bitrate fast } }"
        )
        self.assertEqual(len(errors), 4)
        self.assertEqual([e.split(": ")[1] for e in errors],
                         ["server.port", "server.hostnme", "limits.queue_size", "mounts.a.bitrate"])

    def test_caret_rendering(self):
        try:
            parse_config("limits {\n\tburst_size 1G\n}\n", "g.vibe")
        except ConfigError as e:
            self.assertEqual(
                render_issues(e.issues),
                "g.vibe:2:13: limits.burst_size: burst_size (1073741824) must be smaller than "
                "queue_size (524288), or every new listener is dropped at once\n"
                "    \tburst_size 1G\n"
                "    \t           ^",
            )
        else:
            self.fail("accepted")

    def test_block_expected(self):
        self.assertEqual(
            errors_of("server 8000"),
            ["gocast.vibe:1:8: server: expected a block { ... }, got 8000"],
        )


class ValueKindTests(SynchronousTestCase):
    def config(self, text):
        return parse_config(text).config

    def test_charset_must_be_a_text_encoding(self):
        self.assertEqual(self.config("mounts { live { charset ISO-8859-1 } }").mounts["/live"].charset,
                         "ISO-8859-1")
        for bad in ("rot13", "zlib", "nonsense"):
            with self.assertRaises(ConfigError, msg=bad):
                parse_config("mounts { live { charset %s } }" % bad)

    def test_bounds_are_named(self):
        cases = {
            "directory { interval 10s }": "got \"10s\"; it must be at least 30s",
            "limits { header_timeout 0 }": "it must be more than 0",
            "mounts { live { hls { segment_duration 2h } } }": "it must be at most 1m",
            "mounts { live { hls { part_duration 0.05 } } }": "it must be at least 100ms",
        }
        for text, reason in cases.items():
            with self.assertRaises(ConfigError, msg=text) as caught:
                parse_config(text)
            self.assertIn(reason, str(caught.exception.issues[0]), text)

    def test_control_characters_refused_in_any_text(self):
        """Settings end up in headers, playlists and pages: a line break may not hide in one."""
        for text in ('mounts { live { stream_name "Radio\\rSet-Cookie: a=1" } }',
                     'mounts { live { genre "a\\u001bb" } }',
                     'webhooks { w { url "http://x/\\nHost: evil" } }'):
            with self.assertRaises(ConfigError, msg=text) as caught:
                parse_config(text)
            self.assertTrue([i for i in caught.exception.issues
                             if "control characters (line breaks, NUL, escapes) are not allowed" in str(i)],
                            render_issues(caught.exception.issues))
        self.assertEqual(self.config('mounts { live { stream_name "tab\\there" } }').mounts["/live"].stream_name,
                         "tab\there")

    def test_durations(self):
        limits = self.config(
            "limits { client_timeout 1h30m header_timeout 500ms source_timeout 7 }"
        ).limits
        self.assertEqual((limits.client_timeout, limits.header_timeout, limits.source_timeout),
                         (5400.0, 0.5, 7.0))
        for bad in ("10x", "-5s", "s", "0"):
            self.assertEqual(len(errors_of("limits { source_timeout %s }" % bad)), 1, bad)

    def test_sizes(self):
        limits = self.config("limits { queue_size 100MB burst_size 64k }").limits
        self.assertEqual((limits.queue_size, limits.burst_size), (100 * 1024**2, 65536))
        self.assertEqual(self.config("limits { burst_size 1000 }").limits.burst_size, 1000)

    def test_bitrates(self):
        mounts = self.config("mounts { a { bitrate 128k } b { bitrate 320 } c { bitrate 1.5M } }").mounts
        self.assertEqual([m.bitrate for m in mounts.values()], [128000, 320000, 1500000])

    def test_cidr_lists(self):
        mount = self.config('mounts { a { allowed_ips [10.0.0.0/8 "2001:db8::/32" 192.168.1.7] } }').mounts["/a"]
        self.assertEqual(
            mount.allowed_ips,
            (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"),
             ipaddress.ip_network("192.168.1.7/32")),
        )
        [error] = errors_of("mounts { a { denied_ips [10.0.0.0/8 300.1.1.1] } }")
        self.assertIn("mounts.a.denied_ips[1]: expected an IP address or network", error)

    def test_mount_names(self):
        mounts = self.config('mounts { live { } "/radio/jazz" { } "/x.mp3" { } }').mounts
        self.assertEqual(list(mounts), ["/live", "/radio/jazz", "/x.mp3"])
        [error] = errors_of('mounts { "/a/../b" { } }')
        self.assertIn("mounts./a/../b: '/a/../b' is not a mount path such as /live", error)

    def test_single_value_list(self):
        self.assertEqual(self.config("server { trusted_proxies 10.0.0.1 }").server.trusted_proxies,
                         (ipaddress.ip_network("10.0.0.1/32"),))

    def test_comma_lists_warn(self):
        self.assertEqual(
            warnings_of("server { trusted_proxies [10.0.0.0/8, 127.0.0.1] }"),
            ["gocast.vibe:1:10: warning: server.trusted_proxies: list items are separated by "
             "spaces in VIBE; the commas were ignored"],
        )

    def test_cron_keys(self):
        config = self.config('mounts { live { schedule { "0 6 * * 1-5" { source /live } '
                             '"@daily" { source /auto } } } }')
        self.assertEqual(list(config.mounts["/live"].schedule), ["0 6 * * 1-5", "@daily"])
        for bad in ("0 25 * * *", "* * *", "*/0 * * * *", "5-1 * * * *"):
            errors = errors_of('mounts { live { schedule { "%s" { source /a } } } }' % bad)
            self.assertEqual(len(errors), 1, bad)
            self.assertIn("is not a cron expression", errors[0])

    def test_dates(self):
        key = self.config('api_keys { k { key "gck_0123456789abcdef" expires "2025-12-31" } }'
                          ).api_keys["k"]
        self.assertEqual(key.expires, datetime.date(2025, 12, 31))
        [error] = errors_of('api_keys { k { key "gck_0123456789abcdef" expires 2025-13-01 } }')
        self.assertIn("expected a date such as 2025-12-31", error)

    def test_dimensions(self):
        config = self.config("mounts { a { metadata { artwork_size 640x480 } } }")
        self.assertEqual(config.mounts["/a"].metadata.artwork_size, (640, 480))

    def test_permissions_and_events(self):
        config = self.config(
            "api_keys { r { key gck_0123456789abcdef permissions [read_stats *] } }\n"
            "webhooks { w { url https://example.com/h events [source.connect] } }"
        )
        self.assertEqual(config.api_keys["r"].permissions, ("read_stats", "*"))
        self.assertEqual(config.webhooks["w"].events, ("source.connect",))
        [error] = errors_of("webhooks { w { url https://e.com events [source.conect] } }")
        self.assertIn("did you mean 'source.connect'?", error)


class CrossFieldTests(SynchronousTestCase):
    def test_fallback_forms(self):
        config = parse_config(
            "mounts { live { fallback /backup } music { fallback { mounts [/a /b] file x.mp3 } } }"
        ).config
        self.assertEqual(config.mounts["/live"].fallback.mounts, ("/backup",))
        self.assertEqual(config.mounts["/music"].fallback.mounts, ("/a", "/b"))
        self.assertEqual(config.mounts["/music"].fallback.file, "x.mp3")

    def test_fallback_loops(self):
        self.assertEqual(errors_of("mounts { a { fallback /a } }"),
                         ["gocast.vibe:1:23: mounts.a.fallback: /a falls back to itself"])
        errors = errors_of("mounts { a { fallback /b } b { fallback /c } c { fallback a } }")
        self.assertIn("fallback loop: /a -> /b -> /c -> /a", errors[0])

    def test_reserved_mount_names(self):
        [error] = errors_of("mounts { health { } }")
        self.assertEqual(error, "gocast.vibe:1:10: mounts.health: /health is one of GoCast's own URLs; "
                                "choose another mount name")

    def test_mount_burst_below_queue(self):
        [error] = errors_of("limits { queue_size 100k }\nmounts { live { burst_size 200k } }")
        self.assertIn("mounts.live.burst_size: burst_size (204800) must be smaller than "
                      "limits.queue_size (102400)", error)

    def test_listener_auth_needs_its_keys(self):
        self.assertEqual(
            errors_of("mounts { p { auth { type token } } }"),
            ["gocast.vibe:1:14: mounts.p.auth: auth type token needs secret or public_key or jwks_url"],
        )
        [error] = errors_of("mounts { p { auth { secret x } } }")
        self.assertIn("type is required", error)

    def test_ssl_needs_files(self):
        [error] = errors_of("ssl { enabled true }")
        self.assertIn("ssl: TLS is enabled but cert and key are not both set", error)

    def test_cluster_roles(self):
        [error] = errors_of("cluster { role relay }")
        self.assertIn("a relay needs primary (host:port)", error)

    def test_relays(self):
        [error] = errors_of("relays { a { mount /x } }")
        self.assertIn("relays.a: url is required", error)
        [error] = errors_of("relays { a { url http://up:8000/live }\n b { url http://other:8000/x mount live } }")
        self.assertIn("relays a and b both feed /live", error)
        [error] = errors_of("relays { a { url http://up:8000/ } }")
        self.assertIn("/ cannot be a mount", error)
        [error] = errors_of("relays { a { url ftp://up/live } }")
        self.assertIn("relays.a.url", error)
        relays = parse_config("relays { a { url \"http://up:8000/live?x=1\" on_demand true } }").config.relays
        self.assertEqual(relays["a"].local_mount, "/live")
        self.assertTrue(relays["a"].on_demand)


class WarningTests(SynchronousTestCase):
    def test_unimplemented_blocks(self):
        self.assertEqual(
            warnings_of("mounts {\n  live {\n    ads { preroll { enabled true } }\n  }\n}\n"),
            ["gocast.vibe:3:5: warning: mounts.live.ads: not implemented yet; ignored"],
        )

    def test_short_api_key(self):
        [warning] = warnings_of("api_keys { k { key short } }")  # api_keys is built: no other warning
        self.assertIn("api_keys.k.key: key is shorter than 16 characters", warning)


class JsonTests(SynchronousTestCase):
    def test_same_schema(self):
        text = json.dumps({"server": {"port": 9000}, "mounts": {"live": {"fallback": "/b",
                                                                        "allowed_ips": ["10.0.0.0/8"]}}})
        config = parse_config(text, "g.json").config
        self.assertEqual(config.server.port, 9000)
        self.assertEqual(config.mounts["/live"].fallback.mounts, ("/b",))

    def test_errors_located(self):
        text = '{\n  "server": {\n    "port": "x"\n  },\n  "mounts": {"a": {"genre": null}}\n}\n'
        self.assertEqual(
            errors_of(text, "g.json"),
            ['g.json:3:13: server.port: expected a whole number from 1 to 65535, got "x"',
             "g.json:5:29: mounts.a.genre: expected text, got null"],
        )

    def test_json_syntax_error(self):
        try:
            parse_config('{\n  "server": {"port": 1,}\n}', "g.json")
        except ConfigError as e:
            [issue] = e.issues
            self.assertEqual((issue.line, issue.column), (2, 24))
            self.assertIn("invalid JSON", issue.message)
        else:
            self.fail("accepted")

    def test_json_must_be_object(self):
        self.assertEqual(len(errors_of("[1]", "g.json")), 1)

    def test_objects_in_lists_refused(self):
        [error] = errors_of('{"server": {"trusted_proxies": [{"a": 1}]}}', "g.json")
        self.assertIn("server.trusted_proxies[0]: list items must be plain values", error)


class ShowTests(SynchronousTestCase):
    TEXT = (
        'auth { source_password "s3cret!" }\n'
        "mounts { live { password x fallback /b bitrate 128k\n"
        "  auth { type basic users { alice pw } } } }\n"
        'webhooks { w { url https://e.com headers { Authorization "Bearer t" } } }\n'
    )

    def test_secrets_redacted(self):
        tree = dump_config(parse_config(self.TEXT).config)
        self.assertEqual(tree["auth"]["source_password"], "<redacted>")
        self.assertEqual(tree["mounts"]["/live"]["password"], "<redacted>")
        self.assertEqual(tree["mounts"]["/live"]["auth"]["users"], {"alice": "<redacted>"})
        self.assertEqual(tree["webhooks"]["w"]["headers"], {"Authorization": "<redacted>"})
        self.assertNotIn("s3cret", vibe.dumps(tree))

    def test_round_trip_with_secrets(self):
        config = parse_config(self.TEXT).config
        tree = dump_config(config, reveal_secrets=True)
        self.assertEqual(parse_config(vibe.dumps(tree)).config, config)
        self.assertEqual(parse_config(json.dumps(tree), "x.json").config, config)

    def test_defaults_round_trip(self):
        tree = dump_config(default_config(), reveal_secrets=True)
        self.assertEqual(parse_config(vibe.dumps(tree)).config, default_config())

    def test_a_mount_without_auth_round_trips(self):
        config = parse_config("mounts { live { } other { max_listeners 3 } }").config
        tree = dump_config(config, reveal_secrets=True)
        self.assertEqual(parse_config(vibe.dumps(tree)).config, config)
        self.assertEqual(parse_config(json.dumps(tree), "x.json").config, config)
        with self.assertRaises(ConfigError) as caught:
            parse_config("mounts { live { auth { secret x } } }")
        self.assertIn("type is required", str(caught.exception.issues[0]))


class KindSchemaTests(SynchronousTestCase):
    """
    Each kind's JSON schema (the REST API's spec of a mount's settings)
    accepts what the kind accepts and refuses what it refuses.
    """

    def agree(self, kind, samples):
        from jsonschema import Draft4Validator  # OpenAPI 3.0's schemas are draft 4 with extensions

        validator = Draft4Validator(kind.schema())
        for raw in samples:
            report = Reporter("<t>", "", {})
            parsed = kind.parse(raw, ("x",), report) is not INVALID and not report.issues
            self.assertEqual(validator.is_valid(raw), parsed, "%s on %r" % (type(kind).__name__, raw))

    def test_scalars(self):
        from gocast.config._kinds import Bitrate, Bool, Duration, Int, Size, Str

        self.agree(Int(1, 10), [0, 1, 10, 11, 2.5, True, "3"])
        self.agree(Bool(), [True, False, "true", 0])
        self.agree(Str(("a", "b")), ["a", "c", 1])
        self.agree(Str(allow_empty=False), ["x", ""])
        self.agree(Duration(positive=True), [0, 1, 0.5, -1, "30s", "1h30m", "500ms", "5 minutes", "", True])
        self.agree(Size(), [0, 65536, "64k", "100MB", "1G", "lots", -1, 1.5])
        self.agree(Bitrate(), [128, 0, "128k", "1.5M", "128 kbps", "fast"])

    def test_text_kinds(self):
        from gocast.config._kinds import CIDR, URL, Dimensions, Int, ListOf, MapOf, MountPath

        self.agree(ListOf(Int()), [[1, 2], [], ["a"]])
        self.agree(MapOf(Int()), [{"a": 1}, {"a": "b"}, [1]])
        self.agree(MountPath(), ["live", "/live", "/radio/jazz.mp3", "/", "/a//b", "", 5])
        self.agree(URL(), ["http://x/cb", "https://x:8/", "ftp://x", "http://", ""])
        self.agree(Dimensions(), ["300x300", "0x1", "300"])
        # Text kinds check their syntax on the server; the schema says text.
        self.assertEqual(CIDR().schema()["type"], "string")

    def test_mount_section(self):
        from jsonschema import Draft4Validator

        from gocast.config import MountConfig
        from gocast.config._section import Section

        validator = Draft4Validator(Section(MountConfig).schema())
        good = {"max_listeners": 100, "public": True, "hls": {"enabled": True, "segment_duration": "4s"},
                "fallback": "/backup", "auth": {"type": "ip", "allowed": ["10.0.0.0/8"]}}
        self.assertEqual(list(validator.iter_errors(good)), [])
        self.assertFalse(validator.is_valid({"max_listenrs": 100}))
        self.assertFalse(validator.is_valid({"hls": {"enabled": "yes"}}))
        self.assertTrue(validator.is_valid({"fallback": {"mounts": ["/a"], "file": "x.mp3"}}))
