"""Tests for the ``gocast`` command (run in-process, output captured)."""

import contextlib
import io
import json

from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from gocast import __version__, cli
from gocast.outputs import transcode
from gocast.config import vibe

BROKEN = (
    "server {\n"
    "  port eighty\n"          # a type error
    "}\n"
    "mounts {\n"
    "  live {\n"
    "    max_listenrs 10\n"     # a typo
    "  }\n"
    "}\n"
)


class CliTests(SynchronousTestCase):
    def run_cli(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with self.assertRaises(SystemExit) as caught:
            cli.main(list(argv), out=out, err=err)
        return caught.exception.code, out.getvalue(), err.getvalue()

    def write(self, name, text):
        path = FilePath(self.mktemp())
        path.makedirs()
        child = path.child(name)
        child.setContent(text.encode("utf-8"))
        return child.path

    def test_version(self):
        out = io.StringIO()
        with self.assertRaises(SystemExit) as caught:
            with contextlib.redirect_stdout(out):
                cli.main(["--version"])
        self.assertEqual(caught.exception.code, 0)
        self.assertEqual(out.getvalue().strip(), "gocast %s" % __version__)

    def test_output_cut_off_ends_quietly(self):
        class ClosedPipe(io.StringIO):
            def write(self, text):
                raise BrokenPipeError(32, "Broken pipe")

        err = io.StringIO()
        with self.assertRaises(SystemExit) as caught:
            cli.main(["config", "docs"], out=ClosedPipe(), err=err)
        self.assertEqual(caught.exception.code, cli.EXIT_BROKEN_PIPE)
        self.assertEqual(err.getvalue(), "")

    def test_check_ok(self):
        path = self.write("g.vibe", "mounts { live { } }\n")
        code, out, err = self.run_cli("config", "check", path)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out, "%s: OK (1 mount, 0 warnings)\n" % path)

    def test_check_warns_when_ffmpeg_is_needed_and_missing(self):
        path = self.write("g.vibe", "mounts {\n  live { hls { enabled true } }\n"
                                    "  mp3 { type audio/mpeg hls { enabled true } }\n"
                                    "  ll { type audio/mpeg hls { enabled true low_latency true } }\n"
                                    "  aac { type audio/aac hls { enabled true low_latency true } }\n}\n")
        self.patch(transcode.shutil, "which", lambda name: None)
        code, out, err = self.run_cli("config", "check", path)
        self.assertEqual(code, 0)
        self.assertEqual(out, "%s: OK (4 mounts, 1 warning)\n" % path)
        self.assertEqual(err, "%s: warning: ffmpeg is not on PATH, and these mounts need it: /live (HLS of an "
                              "Ogg source, if one comes), /ll (low-latency HLS of MP3); install ffmpeg "
                              "(Debian and Ubuntu: apt install ffmpeg)\n" % path)
        self.patch(transcode.shutil, "which", lambda name: "/usr/bin/" + name)
        self.assertEqual(self.run_cli("config", "check", path), (0, "%s: OK (4 mounts, 0 warnings)\n" % path, ""))

    def test_check_reads_every_file_the_config_names(self):
        missing = FilePath(self.mktemp()).path
        path = self.write("g.vibe", 'mounts {\n  live { auth { type basic users_file "%s" } }\n'
                                    '  other { fallback { file "%s.mp3" } }\n}\n' % (missing, missing))
        code, out, err = self.run_cli("config", "check", path)
        self.assertEqual((code, out), (1, ""))
        self.assertIn("%s: mounts./live.auth.users_file: cannot read %s: No such file or directory" % (path, missing),
                      err)
        self.assertIn("mounts./other.fallback.file: cannot read %s.mp3" % missing, err)
        self.assertIn("%s: 2 errors" % path, err)

    def test_check_reports_every_error(self):
        path = self.write("g.vibe", BROKEN)
        code, out, err = self.run_cli("config", "check", path)
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertIn("%s:2:8: server.port: expected a whole number from 1 to 65535, got \"eighty\"" % path, err)
        self.assertIn("%s:6:5: mounts.live.max_listenrs: unknown key; did you mean 'max_listeners'?" % path, err)
        self.assertIn("        max_listenrs 10\n        ^\n", err)
        self.assertTrue(err.endswith("%s: 2 errors\n" % path))

    def test_check_typo_type_error_and_syntax_error_together(self):
        path = self.write("g.vibe", (
            "server {\n"
            "  port eighty\n"
            '  hostname "radio.example.com\n'
            "}\n"
            "mounts {\n"
            "  live {\n"
            "    max_listenrs 10\n"
            "  }\n"
            "}\n"))
        code, out, err = self.run_cli("config", "check", path)
        self.assertEqual(code, 1)
        located = [line for line in err.splitlines() if line.startswith(path)]
        self.assertEqual(located, [
            '%s:2:8: server.port: expected a whole number from 1 to 65535, got "eighty"' % path,
            "%s:3:12: unterminated-string: string is not closed on this line; "
            "add the closing '\"'" % path,
            "%s:7:5: mounts.live.max_listenrs: unknown key; did you mean 'max_listeners'?" % path,
            "%s: 3 errors" % path,
        ])

    def test_check_syntax_error(self):
        path = self.write("g.vibe", "server {\n  port 8000\n")
        code, out, err = self.run_cli("config", "check", path)
        self.assertEqual(code, 1)
        self.assertIn("%s:1:8: unclosed-object: '{' is never closed; add '}'" % path, err)

    def test_check_missing_file(self):
        code, out, err = self.run_cli("config", "check", "/nonexistent/gocast.vibe")
        self.assertEqual(code, 1)
        self.assertIn("cannot read the config file: No such file or directory", err)

    def test_check_several_files(self):
        good = self.write("a.vibe", "")
        bad = self.write("b.vibe", "x 1")
        code, out, err = self.run_cli("config", "check", good, bad)
        self.assertEqual(code, 1)
        self.assertIn("a.vibe: OK", out)
        self.assertIn("b.vibe: 1 error", err)

    def test_show_fills_defaults_and_redacts(self):
        path = self.write("g.vibe", 'auth { admin_password "t0psecret" }\nmounts { live { } }\n')
        code, out, err = self.run_cli("config", "show", path)
        self.assertEqual(code, 0)
        tree = vibe.loads(out)
        self.assertEqual(tree["server"]["port"], 8000)
        self.assertEqual(tree["auth"]["admin_password"], "<redacted>")
        self.assertIn("/live", tree["mounts"])
        self.assertNotIn("t0psecret", out)

    def test_show_json_reveal(self):
        path = self.write("g.json", '{"auth": {"admin_password": "t0psecret"}}')
        code, out, err = self.run_cli("config", "show", path, "--format", "json", "--reveal-secrets")
        self.assertEqual(code, 0)
        self.assertEqual(json.loads(out)["auth"]["admin_password"], "t0psecret")

    def test_show_defaults(self):
        code, out, err = self.run_cli("config", "show")
        self.assertEqual(code, 0)
        self.assertEqual(vibe.loads(out)["limits"]["burst_size"], "64KB")

    def test_show_invalid(self):
        path = self.write("g.vibe", "server { port 0 }")
        code, out, err = self.run_cli("config", "show", path)
        self.assertEqual((code, out), (1, ""))
        self.assertIn("server.port", err)

    def test_no_command(self):
        code, out, err = self.run_cli()
        self.assertEqual(code, 2)
        self.assertIn("usage: gocast", err)

    def test_client_options_before_or_after_the_command(self):
        for argv in (["--url", "http://a:1", "--api-key", "gck_x", "--json", "mount", "list"],
                     ["mount", "list", "--url", "http://a:1", "--api-key", "gck_x", "--json"],
                     ["--url", "http://a:1", "mount", "list", "--api-key", "gck_x", "--json"]):
            args = cli._parser().parse_args(argv)
            self.assertEqual((args.url, args.api_key, bool(args.json)), ("http://a:1", "gck_x", True), argv)
        args = cli._parser().parse_args(["mount", "list"])
        self.assertEqual((args.url, args.api_key, bool(args.json)), (None, None, False))
        args = cli._parser().parse_args(["--url", "http://a:1", "config", "reload", "g.vibe"])
        self.assertEqual((args.url, args.file), ("http://a:1", "g.vibe"))

    def test_config_option_without_a_command_serves(self):
        """The roadmap's ``gocast --config config.json`` runs the server."""
        served = []
        self.patch(cli, "serve", lambda config: served.append(config) or 0)
        for argv in (["--config", "station.json"], ["serve", "--config", "station.json"],
                     ["-c", "station.json", "serve"]):
            self.assertEqual(self.run_cli(*argv)[0], 0)
        self.assertEqual(served, ["station.json"] * 3)
