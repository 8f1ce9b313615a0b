"""
The service tree, the twistd plugin and its options, on a MemoryReactor:
no sockets are opened.
"""

import io
import os
import sys

from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.plugin import getPlugins
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase
from twisted.internet.testing import EventLoggingObserver

from gocast import tap
from gocast._version import __version__
from gocast.config import LoadedConfig, find_config, parse_config
from gocast.service import GocastService, default_credentials, listen_description


def loaded(text):
    return parse_config(text, "test.vibe")


class ServiceTests(SynchronousTestCase):
    def start(self, config):
        reactor = MemoryReactorClock()
        service = GocastService(config, reactor=reactor)
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        return reactor, service, events

    def test_listens_on_configured_port(self):
        reactor, service, _ = self.start(loaded("server { listen 127.0.0.1 port 8123 }"))
        [(port, factory, backlog, interface), shoutcast] = reactor.tcpServers
        self.assertEqual((port, interface, backlog), (8123, "127.0.0.1", 1024))
        self.assertIs(factory, service.front_door)
        self.assertEqual((shoutcast[0], shoutcast[3]), (8124, "127.0.0.1"))

    def test_shoutcast_port_can_be_off(self):
        reactor, _, _ = self.start(loaded("server { listen 127.0.0.1 } shoutcast { enabled false }"))
        self.assertEqual(len(reactor.tcpServers), 1)

    def test_ipv6_listen_description(self):
        config = loaded("server { listen \"::\" port 8000 }").config
        self.assertEqual(listen_description(config), "tcp:port=8000:interface=\\:\\::backlog=1024")

    def test_loud_warning_for_default_passwords_beyond_loopback(self):
        _, _, events = self.start(LoadedConfig(loaded("").config))
        warnings = [e for e in events if "default password" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)
        self.assertEqual(warnings[0]["names"], "source_password, admin_password")

    def test_no_warning_on_loopback(self):
        _, _, events = self.start(loaded("server { listen 127.0.0.1 }"))
        self.assertFalse([e for e in events if "default password" in e.get("log_format", "")])

    def test_no_warning_with_real_passwords(self):
        _, _, events = self.start(loaded(
            "auth { source_password a1 relay_password b2 admin_password c3 }"))
        self.assertFalse([e for e in events if "default password" in e.get("log_format", "")])

    def test_default_mount_password_is_named(self):
        config = loaded("auth { source_password a relay_password b admin_password c }\n"
                        "mounts { live { password hackme } }").config
        self.assertEqual(default_credentials(config), ["mounts.live.password"])

    def test_config_warnings_logged(self):
        _, _, events = self.start(loaded("mounts { live { ads { } } }"))
        logged = [e["issue"] for e in events if e.get("log_format") == "config: {issue}"]
        self.assertEqual(logged, ["test.vibe:1:17: warning: mounts.live.ads: not implemented yet; ignored"])

    def test_stop_marks_draining(self):
        _, service, _ = self.start(loaded("server { listen 127.0.0.1 }"))
        self.assertFalse(service.health.draining)
        service.stopService()
        self.assertTrue(service.health.draining)


class TapTests(SynchronousTestCase):
    def test_plugin_is_discoverable(self):
        makers = {p.tapname: p for p in getPlugins(IServiceMaker)}
        self.assertIn("gocast", makers)
        self.assertEqual(makers["gocast"].options, tap.Options)

    def setUp(self):
        # The lookup must not find the machine's or the working folder's config.
        self.patch(tap, "find_config", lambda explicit, environ: find_config(
            explicit, environ, exists=lambda path: False))
        self.stderr = io.StringIO()
        self.patch(sys, "stderr", self.stderr)

    def test_defaults_without_config(self):
        options = tap.Options()
        options.parseOptions([])
        service = tap.makeService(options, reactor=MemoryReactorClock())
        self.assertEqual(service.config.server.port, 8000)

    def test_config_file(self):
        path = FilePath(self.mktemp())
        path.setContent(b"server { port 9100 }")
        options = tap.Options()
        options.parseOptions(["--config", path.path])
        self.assertEqual(tap.makeService(options, reactor=MemoryReactorClock()).config.server.port, 9100)

    def test_config_from_environment(self):
        path = FilePath(self.mktemp())
        path.setContent(b"server { port 9101 }")
        self.patch(os, "environ", {"GOCAST_CONFIG": path.path})
        loaded = tap.load(None, os.environ)
        self.assertEqual((loaded.filename, loaded.config.server.port), (path.path, 9101))

    def test_first_log_line_names_the_config(self):
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        tap.load(None, {})
        path = FilePath(self.mktemp())
        path.setContent(b"server { port 9100 }")
        tap.load(path.path, {})
        lines = [formatEvent(e) for e in events if e.get("log_namespace") == "gocast.tap"]
        self.assertEqual(lines[0], "GoCast %s: config built-in defaults (no --config, $GOCAST_CONFIG, "
                                   "./gocast.vibe or /etc/gocast/gocast.vibe)" % __version__)
        self.assertEqual(lines[1], "GoCast %s: config %s (--config)" % (__version__, path.path))

    def test_bad_config_exits_78_with_locations(self):
        path = FilePath(self.mktemp() + ".vibe")
        path.setContent(b"server {\n  prot 9100\n}\n")
        options = tap.Options()
        with self.assertRaises(SystemExit) as caught:
            options.parseOptions(["--config", path.path])
        self.assertEqual(caught.exception.code, tap.EX_CONFIG)
        self.assertIn("%s:2:3: server.prot: unknown key; did you mean 'port'?" % path.path,
                      self.stderr.getvalue())

    def test_missing_named_file_is_not_replaced_by_defaults(self):
        with self.assertRaises(SystemExit) as caught:
            tap.load(None, {"GOCAST_CONFIG": "/nonexistent/gocast.vibe"})
        self.assertEqual(caught.exception.code, 78)
        self.assertIn("/nonexistent/gocast.vibe:1:1: cannot read the config file", self.stderr.getvalue())

    def test_unusable_data_dir_exits_78(self):
        blocker = FilePath(self.mktemp())
        blocker.setContent(b"a file where the data folder should be")
        options = {"loaded": parse_config('server { data_dir "%s" }' % blocker.path)}
        with self.assertRaises(SystemExit) as caught:
            tap.makeService(options, reactor=MemoryReactorClock())
        self.assertEqual(caught.exception.code, 78)
        self.assertIn("cannot open the state database", self.stderr.getvalue())
