"""TLS options from the config's PEM files, and clear errors when they are wrong."""

import io
import sys

from OpenSSL import SSL
from twisted.internet.testing import MemoryReactorClock
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from gocast import tap
from gocast.config import parse_config
from gocast.protocols.tls import TLSSetupError, certificate_options
from gocast.service import GocastService

from .tls_certs import self_signed


class TLSOptionsTests(SynchronousTestCase):
    def config(self, cert, key, extra=""):
        return parse_config('ssl { enabled true port 8443 cert "%s" key "%s" %s }' % (cert, key, extra)).config

    def test_loads_pem_files(self):
        cert, key = self_signed(FilePath(self.mktemp()))
        options = certificate_options(self.config(cert, key))
        context = options.getContext()
        self.assertIsInstance(context, SSL.Context)

    def test_missing_file(self):
        cert, _ = self_signed(FilePath(self.mktemp()))
        with self.assertRaises(TLSSetupError) as caught:
            certificate_options(self.config(cert, "/nonexistent/key.pem"))
        self.assertEqual(str(caught.exception),
                         "ssl.key: cannot read /nonexistent/key.pem: No such file or directory")

    def test_key_of_another_certificate(self):
        cert, _ = self_signed(FilePath(self.mktemp()))
        _, other_key = self_signed(FilePath(self.mktemp()))
        with self.assertRaises(TLSSetupError) as caught:
            certificate_options(self.config(cert, other_key))
        self.assertIn("cannot use", str(caught.exception))

    def test_not_a_certificate(self):
        folder = FilePath(self.mktemp())
        _, key = self_signed(folder)
        junk = folder.child("junk.pem")
        junk.setContent(b"hello")
        with self.assertRaises(TLSSetupError) as caught:
            certificate_options(self.config(junk.path, key))
        self.assertIn("no PEM certificate", str(caught.exception))

    def test_service_listens_on_the_tls_port(self):
        cert, key = self_signed(FilePath(self.mktemp()))
        reactor = MemoryReactorClock()
        loaded = parse_config('server { listen 127.0.0.1 } shoutcast { enabled false }\n'
                              'ssl { enabled true port 8443 cert "%s" key "%s" }' % (cert, key))
        service = GocastService(loaded, reactor=reactor)
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        self.assertEqual([(p[0], p[3], p[4]) for p in reactor.sslServers], [(8443, 1024, "127.0.0.1")])

    def test_tap_refuses_bad_files(self):
        config = FilePath(self.mktemp() + ".vibe")
        config.setContent(b'ssl { enabled true cert /nonexistent/c.pem key /nonexistent/k.pem }')
        self.patch(sys, "stderr", io.StringIO())
        with self.assertRaises(SystemExit) as caught:
            tap.Options().parseOptions(["--config", config.path])
        self.assertEqual(caught.exception.code, tap.EX_CONFIG)
        self.assertIn("ssl.cert: cannot read /nonexistent/c.pem", sys.stderr.getvalue())
