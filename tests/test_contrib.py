"""
The files operators install from contrib/ (systemd units, logrotate) and
the container files say what GoCast does: they are checked against it here.
"""

import configparser
import shlex
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from gocast.config import find_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((ROOT / "contrib" / name).read_text())
    return parser


class SystemdUnitTests(SynchronousTestCase):
    def test_service(self):
        service = unit("gocast.service")["Service"]
        self.assertEqual(service["Type"], "notify")  # gocast._systemd sends READY=1
        self.assertEqual(service["RestartPreventExitStatus"], "78")  # gocast.tap.EX_CONFIG
        self.assertEqual((service["StateDirectory"], service["LogsDirectory"], service["ConfigurationDirectory"]),
                         ("gocast", "gocast", "gocast"))
        self.assertEqual(service["ExecReload"], "/bin/kill -HUP $MAINPID")
        argv = shlex.split(service["ExecStart"])
        self.assertTrue(argv[0].endswith("/twistd"))
        self.assertEqual(argv[1:], ["--nodaemon", "--pidfile=", "gocast"])
        # With no --config, the lookup reaches the ConfigurationDirectory's file.
        choice = find_config(None, {}, exists=lambda path: path == "/etc/gocast/gocast.vibe")
        self.assertEqual(choice.path, "/etc/gocast/gocast.vibe")

    def test_socket_matches_its_endpoint(self):
        socket_unit = unit("gocast.socket")
        text = (ROOT / "contrib" / "gocast.socket").read_text()
        name = socket_unit["Socket"]["FileDescriptorName"]
        endpoint = "systemd:domain=INET6:name=%s" % name
        self.assertIn('endpoints ["%s"]' % endpoint, text)
        self.assertEqual(parse_config('server { endpoints ["%s"] }' % endpoint).config.server.endpoints,
                         (endpoint,))
        self.assertEqual(socket_unit["Socket"]["Service"], "gocast.service")
