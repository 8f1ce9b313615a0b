"""Hot reload: applied as a difference, refused whole when invalid, serialised."""

import base64
import json

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from gocast.observe import logs
from gocast.config import Config
from gocast.reload import Reloader, describe_changes

from .service_harness import ServiceHarness
from .streaming import feed_frames
from .tls_certs import self_signed

ADMIN = base64.b64encode(b"admin:hackme").decode()
BASE = "server { listen 127.0.0.1 port 8000 }\nshoutcast { enabled false }\n"


class ReloadTests(SynchronousTestCase):
    def test_mounts_and_limits_change_live(self):
        h = ServiceHarness(self, BASE + "mounts { live { max_listeners 5 } old { } }")
        source, _ = h.source()
        feed_frames(source, 20)
        _, listener = h.listener()
        h.rewrite(BASE + "limits { queue_size 1MB }\nmounts { live { max_listeners 50 } new { } }")
        result = self.successResultOf(h.service.reloader.reload())
        self.assertTrue(result.ok, result.errors)
        self.assertIn("mounts added: /new", result.changes)
        self.assertIn("mounts removed: /old", result.changes)
        self.assertIn("/live changed: max_listeners", result.changes)
        self.assertIn("limits changed: queue_size", result.changes)
        live = h.service.registry.get("/live")
        self.assertEqual((live.max_listeners, live.limits.queue_size), (50, 1024 * 1024))
        self.assertIsNotNone(h.service.registry.get("/new"))
        self.assertIsNone(h.service.registry.get("/old"))
        self.assertIs(h.service.front_door.config, h.service.registry.config)
        self.assertFalse(listener.disconnecting)
        listener.clear()
        feed_frames(source, 20)
        self.assertGreater(len(listener.value()), 0)
        self.assertIn("config.reloaded", h.names())

    def test_invalid_file_changes_nothing(self):
        h = ServiceHarness(self, BASE + "mounts { live { } }")
        before = h.service.config
        h.rewrite(BASE + "mounts { live { max_listenrs 5 } }")
        result = self.successResultOf(h.service.reloader.reload())
        self.assertFalse(result.ok)
        self.assertIn("%s:3:17: mounts.live.max_listenrs: unknown key; did you mean 'max_listeners'?"
                      % h.file.path, result.errors)
        self.assertIs(h.service.config, before)
        self.assertIn("config.reload_failed", h.names())

    def test_a_refused_reload_never_quotes_the_file(self):
        """The log, webhooks and stats streams see where the problem is, not the line (a password)."""
        h = ServiceHarness(self, BASE + "mounts { live { } }")
        events = []
        h.service.bus.subscribe(events.append)
        h.rewrite(BASE + 'auth { source_pasword "Sup3rSecret!" }')
        result = self.successResultOf(h.service.reloader.reload())
        self.assertFalse(result.ok)
        self.assertIn("auth.source_pasword: unknown key; did you mean 'source_password'?", result.errors)
        h.clock.advance(0)
        [failed] = [e for e in events if e.name == "config.reload_failed"]
        for text in (result.errors, json.dumps(failed.data)):
            self.assertNotIn("Sup3rSecret!", text)

    def test_restart_only_settings_are_reported(self):
        h = ServiceHarness(self, BASE)
        h.rewrite(BASE.replace("8000", "9000"))
        result = self.successResultOf(h.service.reloader.reload())
        self.assertEqual(result.restart_required, ("server.port",))
        # What the server reports is what it runs with, until a restart.
        self.assertEqual(h.service.config.server.port, 8000)
        self.assertEqual(h.service.loaded.config.server.port, 8000)

    def test_credentials_change_without_showing_them(self):
        h = ServiceHarness(self, BASE)
        h.rewrite(BASE + "auth { admin_password n3w }")
        result = self.successResultOf(h.service.reloader.reload())
        self.assertEqual(result.changes, ("auth changed: credentials",))
        self.assertNotIn("n3w", json.dumps(result.as_json()))
        status, _, _ = h.request("GET", "/admin/stats", ADMIN)
        self.assertIn(" 401 ", status)

    def test_failure_while_applying_rolls_back(self):
        cert, key = self_signed(FilePath(self.mktemp()))
        tls = 'ssl { enabled true port 8443 cert "%s" key "%s" }\n' % (cert, key)
        h = ServiceHarness(self, BASE + tls + "mounts { a { } }")
        FilePath(cert).setContent(b"not a certificate any more")
        h.rewrite(BASE + tls + "mounts { b { } }")
        result = self.successResultOf(h.service.reloader.reload())
        self.assertFalse(result.ok)
        self.assertIn("no PEM certificate", result.errors)
        self.assertIsNotNone(h.service.registry.get("/a"))
        self.assertIsNone(h.service.registry.get("/b"))

    def test_new_certificate_for_new_connections(self):
        folder = FilePath(self.mktemp())
        cert, key = self_signed(folder, "first.test")
        h = ServiceHarness(self, BASE + 'ssl { enabled true port 8443 cert "%s" key "%s" }' % (cert, key))
        old = h.service.tls.getContext()
        self_signed(folder, "second.test")
        self.assertTrue(self.successResultOf(h.service.reloader.reload()).ok)
        self.assertIsNot(h.service.tls.getContext(), old)
        self.assertEqual(h.service.tls.options.certificate.get_subject().CN, "second.test")

    def test_log_files_reopened(self):
        """A reload reopens the log files (and logrotate's SIGUSR1 does the same, without one)."""
        folder = FilePath(self.mktemp())
        folder.makedirs()
        server, access = folder.child("gocast.log"), folder.child("access.log")
        text = BASE + 'logging { output "%s" access_log "%s" access_log_rotation none }' % (server.path, access.path)
        h = ServiceHarness(self, text)
        self.addCleanup(lambda: [logs._OPEN.pop(key).close() for key in (server.path, access.path + "|none")
                                 if key in logs._OPEN])
        log = Logger(observer=h.service.log_observer)
        log.info("before rotation")
        h.service.front_door.access_log.record("192.0.2.1", "GET", "/a", "HTTP/1.1", 200, 1, "", "", 0.1, "r1")
        server.moveTo(folder.child("gocast.log.1"))
        access.moveTo(folder.child("access.log.1"))
        self.assertTrue(self.successResultOf(h.service.reloader.reload()).ok)
        log.info("after rotation")
        h.service.front_door.access_log.record("192.0.2.2", "GET", "/b", "HTTP/1.1", 200, 1, "", "", 0.1, "r2")
        self.assertIn(b"after rotation", server.getContent())
        self.assertNotIn(b"before rotation", server.getContent())
        self.assertIn(b"192.0.2.2", access.getContent())
        self.assertNotIn(b"192.0.2.1", access.getContent())

    def test_defaults_cannot_reload(self):
        h = ServiceHarness(self, BASE)
        h.service.loaded = h.service.loaded.__class__(h.service.config)
        result = self.successResultOf(h.service.reloader.reload())
        self.assertIn("built-in defaults", result.errors)


class EndpointTests(SynchronousTestCase):
    def test_post_reload(self):
        h = ServiceHarness(self, BASE)
        h.rewrite(BASE + "mounts { extra { } }")
        status, headers, body = h.request("POST", "/admin/reload", ADMIN)
        self.assertIn(" 200 ", status)
        self.assertEqual(json.loads(body)["changes"], ["mounts added: /extra"])
        h.rewrite(BASE + "mounts { ")
        status, _, body = h.request("POST", "/admin/reload", ADMIN)
        self.assertIn(" 400 ", status)
        self.assertIn("unclosed-object", json.loads(body)["errors"][0])
        self.assertIn(" 401 ", h.request("POST", "/admin/reload")[0])
        self.assertIn(" 405 ", h.request("GET", "/admin/reload", ADMIN)[0])


class SerialisedTests(SynchronousTestCase):
    def test_second_reload_waits_for_the_first(self):
        parses = []

        def run_in_thread(f, *args):
            parses.append(Deferred())
            return parses[-1]

        loaded = ServiceHarness(self, BASE).service.loaded
        applied = []
        reloader = Reloader(lambda: loaded, applied.append, lambda *a, **k: None, run_in_thread)
        first, second = reloader.reload(), reloader.reload()
        self.assertEqual(len(parses), 1)
        parses[0].callback(loaded)
        self.assertEqual(len(parses), 2)
        parses[1].callback(loaded)
        self.assertTrue(self.successResultOf(first).ok)
        self.assertTrue(self.successResultOf(second).ok)
        self.assertEqual(len(applied), 2)  # one run each
        self.assertEqual(describe_changes(Config(), Config()), ([], []))
