"""
Zero-downtime operations with a real server: 20 reloads under load, graceful
shutdown on SIGTERM (and at once on a second one), TLS certificates rotated
by a reload.
"""

import json
import os
import signal
import sys

import treq
from twisted.internet import reactor, task
from twisted.internet.endpoints import SSL4ClientEndpoint, connectProtocol
from twisted.internet.ssl import CertificateOptions
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from ..tls_certs import self_signed
from ._process import (
    RawClient,
    ServerProcess,
    eventually,
    free_port,
    raw_request,
    spawn_tool,
    start_server,
    wait_for_source,
)

ADMIN = ("admin", "hackme")


def mp3_source(testcase, base, mount="/live", url_host=None):
    return spawn_tool(testcase, reactor, [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "sine",
        "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3",
        "icecast://source:hackme@%s%s" % (url_host or base[len("http://"):], mount)])


async def post_reload(base):
    response = await treq.post(base + "/admin/reload", auth=ADMIN, reactor=reactor, persistent=False)
    return response.code, json.loads(await response.content())


class ReloadUnderLoadTests(TestCase):
    timeout = 180

    async def test_twenty_reloads_with_fifty_listeners(self):
        config = "limits { source_timeout 5s }\nmounts { live { max_listeners %d } %s }\n"
        server, base = await start_server(self, reactor, config % (100, ""))
        config_file = server.config_path
        mp3_source(self, base)
        await wait_for_source(reactor, base, "/live", server)
        clients = [await raw_request(self, reactor, base, b"GET /live HTTP/1.0\r\n\r\n") for _ in range(50)]
        await eventually(reactor, lambda: all(len(c.data) > 70000 for c in clients), what="50 listeners")

        samples = []
        sampler = task.LoopingCall(lambda: samples.append([len(c.data) for c in clients]))
        sampler.clock = reactor
        sampler.start(0.5)
        self.addCleanup(lambda: sampler.running and sampler.stop())
        head = server.config_head
        for i in range(20):
            extra = "extra%d { genre Test%d }" % (i, i)
            FilePath(config_file).setContent((head + config % (101 + i, extra)).encode())
            if i % 2:
                os.kill(server.transport.pid, signal.SIGHUP)
                await task.deferLater(reactor, 0.3, lambda: None)
                code, result = await post_reload(base)
                self.assertEqual((code, result["changes"]), (200, []), "SIGHUP %d not applied" % i)
            else:
                code, result = await post_reload(base)
                self.assertEqual(code, 200, result)
                self.assertIn("mounts added: /extra%d" % i, result["changes"])
                self.assertIn("/live changed: max_listeners", result["changes"])
        await task.deferLater(reactor, 1.0, lambda: None)
        sampler.stop()

        self.assertFalse([c for c in clients if c.closed.called])
        # No gap: across every second, every listener got at least half of 128 kbit/s.
        for before, after in zip(samples, samples[2:]):
            self.assertGreater(min(b - a for a, b in zip(before, after)), 8000)
        status = await treq.get(base + "/status-json.xsl", reactor=reactor, persistent=False)
        source = json.loads(await status.content())["icestats"]["source"]
        self.assertEqual(source["listeners"], 50)


class ShutdownTests(TestCase):
    timeout = 60

    async def start(self):
        server, base = await start_server(self, reactor, "", server_extra="shutdown_timeout 3s")
        mp3_source(self, base)
        await wait_for_source(reactor, base, "/live", server)
        client = await raw_request(self, reactor, base, b"GET /live HTTP/1.0\r\n\r\n")
        await eventually(reactor, lambda: len(client.data) > 70000, what="audio")
        return server, base, client

    async def test_sigterm_drains_then_exits_zero(self):
        server, base, client = await self.start()
        os.kill(server.transport.pid, signal.SIGTERM)
        await task.deferLater(reactor, 0.5, lambda: None)
        ready = await treq.get(base + "/health/ready", reactor=reactor, persistent=False)
        self.assertEqual((ready.code, json.loads(await ready.content())), (503, {"status": "draining"}))
        refused = await treq.get(base + "/live", reactor=reactor, persistent=False)
        self.assertEqual(refused.code, 503)
        await refused.content()
        before = len(client.data)
        await task.deferLater(reactor, 1.0, lambda: None)
        self.assertGreater(len(client.data) - before, 8000)  # still streaming while draining
        code, sig = await server.ended
        self.assertEqual((code, sig), (0, None))
        self.assertTrue(client.closed.called)
        self.assertIn("stopped: served 1 listeners", server.output.decode())

    async def test_second_signal_stops_at_once(self):
        server, base, client = await self.start()
        os.kill(server.transport.pid, signal.SIGTERM)
        await task.deferLater(reactor, 0.3, lambda: None)
        started = reactor.seconds()
        os.kill(server.transport.pid, signal.SIGINT)
        code, sig = await server.ended
        self.assertEqual((code, sig), (0, None))
        self.assertLess(reactor.seconds() - started, 2.0)


class CertificateRotationTests(TestCase):
    timeout = 60

    async def tls_listener(self, port):
        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port, CertificateOptions(verify=False))
        client = await connectProtocol(endpoint, RawClient())
        self.addCleanup(lambda: client.closed if client.closed.called else (
            client.transport.loseConnection(), client.closed)[1])
        client.transport.write(b"GET /live HTTP/1.0\r\n\r\n")
        await eventually(reactor, lambda: len(client.data) > 1000, what="TLS audio")
        return client, client.transport.getPeerCertificate().get_subject().CN

    async def test_reload_rotates_the_certificate(self):
        folder = FilePath(self.mktemp())
        cert, key = self_signed(folder, "first.test")
        tls_port = free_port()
        server, base = await start_server(
            self, reactor, 'ssl { enabled true port %d cert "%s" key "%s" }' % (tls_port, cert, key))
        mp3_source(self, base)
        await wait_for_source(reactor, base, "/live", server)
        old, name = await self.tls_listener(tls_port)
        self.assertEqual(name, "first.test")
        self_signed(folder, "second.test")
        code, result = await post_reload(base)
        self.assertEqual(code, 200, result)
        new, name = await self.tls_listener(tls_port)
        self.assertEqual(name, "second.test")
        before = len(old.data)
        await task.deferLater(reactor, 1.0, lambda: None)
        self.assertFalse(old.closed.called)
        self.assertGreater(len(old.data) - before, 8000)


class ReloadCommandTests(TestCase):
    timeout = 60

    async def test_gocast_config_reload(self):
        server, base = await start_server(self, reactor, "")
        FilePath(server.config_path).setContent((server.config_head + "mounts { cli { } }\n").encode())
        command = ServerProcess.spawn(reactor, [sys.executable, "-m", "gocast", "config", "reload",
                                                server.config_path])
        self.addCleanup(command.stop)
        self.assertEqual(await command.ended, (0, None), command.output.decode())
        self.assertIn(b"reloaded: mounts added: /cli", command.output)
        FilePath(server.config_path).setContent((server.config_head + "mounts { cli { bitrate fast } }").encode())
        command = ServerProcess.spawn(reactor, [sys.executable, "-m", "gocast", "config", "reload",
                                                server.config_path])
        self.addCleanup(command.stop)
        code, _ = await command.ended
        self.assertEqual(code, 1)
        self.assertIn(b"mounts.cli.bitrate: expected a bitrate", command.output)
