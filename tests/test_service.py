"""
The service tree, the twistd plugin and its options, on a MemoryReactor:
no sockets are opened.
"""

from twisted.application.service import IServiceMaker
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase
from twisted.internet.testing import EventLoggingObserver

from gocast import tap
from gocast.config import LoadedConfig, parse_config
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
        self.assertEqual(warnings[0]["names"], "source_password, relay_password, admin_password")

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
        _, _, events = self.start(loaded("mounts { live { dash { enabled true } } }"))
        logged = [e["issue"] for e in events if e.get("log_format") == "config: {issue}"]
        self.assertEqual(logged, ["test.vibe:1:17: warning: mounts.live.dash: not implemented yet; ignored"])

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

    def test_bad_config_is_usage_error_with_locations(self):
        path = FilePath(self.mktemp() + ".vibe")
        path.setContent(b"server {\n  prot 9100\n}\n")
        options = tap.Options()
        with self.assertRaises(usage.UsageError) as caught:
            options.parseOptions(["--config", path.path])
        self.assertIn("%s:2:3: server.prot: unknown key; did you mean 'port'?" % path.path,
                      str(caught.exception))
