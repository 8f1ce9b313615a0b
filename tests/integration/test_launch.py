"""
End to end: start GoCast the three documented ways as real processes on a
free loopback port, query it over HTTP, stop it with SIGTERM.
"""

import json
import os
import shutil
import signal
import socket
import sys
import tempfile

import treq

from twisted.internet import reactor
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from ._process import ROOT, ServerProcess, eventually, free_port, twistd_command, wait_for_http


class LaunchTests(TestCase):
    timeout = 90

    def config_file(self, text, name="gocast.vibe"):
        folder = FilePath(self.mktemp())
        folder.makedirs()
        path = folder.child(name)
        path.setContent(text.encode("utf-8"))
        return path.path

    def start(self, argv, env=None):
        process = ServerProcess.spawn(reactor, argv, env=env)
        self.addCleanup(process.stop)
        return process

    async def check_serves_and_stops(self, process, port):
        response, body = await wait_for_http(
            reactor, "http://127.0.0.1:%d/health/live" % port, process)
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(body), {"status": "alive"})
        self.assertIn(await process.stop(), [(0, None), (None, signal.SIGTERM)])
        output = process.output.decode()
        self.assertIn("Server Shut Down.", output)
        return output

    async def test_twistd_plugin_with_config(self):
        port = free_port()
        path = self.config_file("server {\n  listen 127.0.0.1\n  port %d\n}\n" % port)
        process = self.start(twistd_command("--nodaemon", "--pidfile=", "gocast", "--config", path))
        output = await self.check_serves_and_stops(process, port)
        self.assertIn("GoCast", output)
        self.assertIn("config %s (--config)" % path, output)

    async def test_twistd_plugin_with_json_config(self):
        port = free_port()
        path = self.config_file(json.dumps({"server": {"listen": "127.0.0.1", "port": port}}),
                                "gocast.json")
        process = self.start(twistd_command("--nodaemon", "--pidfile=", "gocast", "--config", path))
        await self.check_serves_and_stops(process, port)

    async def test_tac_file(self):
        port = free_port()
        path = self.config_file("server { listen 127.0.0.1 port %d }" % port)
        process = self.start(
            twistd_command("--nodaemon", "--pidfile=", "-y", str(ROOT / "gocast.tac")),
            env={"GOCAST_CONFIG": path})
        await self.check_serves_and_stops(process, port)

    async def test_gocast_serve(self):
        port = free_port()
        path = self.config_file("server { listen 127.0.0.1 port %d }" % port)
        process = self.start([sys.executable, "-m", "gocast", "serve", "--config", path])
        await self.check_serves_and_stops(process, port)

    async def test_config_found_in_working_folder(self):
        port = free_port()
        path = self.config_file("server { listen 127.0.0.1 port %d }" % port)
        folder = path.rsplit("/", 1)[0]
        process = ServerProcess.spawn(reactor, twistd_command("--nodaemon", "--pidfile=", "gocast"),
                                      cwd=folder, env={"GOCAST_CONFIG": ""})
        self.addCleanup(process.stop)
        output = await self.check_serves_and_stops(process, port)
        first = [line for line in output.splitlines() if "GoCast" in line][0]
        self.assertIn("config %s (found in the working folder)" % path, first)

    async def test_systemd_notify_and_state_directory(self):
        """Type=notify: READY=1 comes once the port answers; StateDirectory= holds the state."""
        port = free_port()
        path = self.config_file("server { listen 127.0.0.1 port %d }" % port)
        runtime = tempfile.mkdtemp(prefix="gocast-notify-")  # socket paths fit in 108 bytes
        self.addCleanup(shutil.rmtree, runtime)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(os.path.join(runtime, "notify"))
        notify.setblocking(False)
        state = FilePath(self.mktemp())
        state.makedirs()
        process = self.start(twistd_command("--nodaemon", "--pidfile=", "gocast", "--config", path),
                             env={"NOTIFY_SOCKET": os.path.join(runtime, "notify"),
                                  "STATE_DIRECTORY": state.path})
        messages = []

        def received():
            try:
                messages.append(notify.recv(4096).decode())
            except BlockingIOError:
                pass
            return messages or process.ended.called

        await eventually(reactor, received, timeout=30, what="READY=1 from GoCast")
        self.assertTrue(messages and messages[0].startswith("READY=1\n"), process.output.decode())
        response = await treq.get("http://127.0.0.1:%d/health/live" % port, timeout=5, reactor=reactor,
                                  pool=HTTPConnectionPool(reactor, persistent=False))
        await treq.content(response)
        self.assertEqual(response.code, 200)
        self.assertTrue(state.child("state.db").exists())
        await process.stop()
        self.assertIn("STOPPING=1\nSTATUS=draining", messages + [notify.recv(4096).decode()])

    async def assert_refused(self, argv, env=None):
        """Exit status 78 (EX_CONFIG) with the located problem on stderr."""
        process = self.start(argv, env)
        code, _ = await process.ended
        self.assertEqual(code, 78, process.output.decode())
        return process.errors.decode()

    async def test_bad_config_exits_78_from_twistd(self):
        path = self.config_file("server {\n  port 80000\n}\n")
        errors = await self.assert_refused(twistd_command("--nodaemon", "--pidfile=", "gocast", "--config", path))
        self.assertIn("%s:2:8: server.port: expected a whole number from 1 to 65535, got 80000" % path, errors)
        self.assertNotIn("Usage:", errors)

    async def test_bad_config_exits_78_from_gocast_serve(self):
        path = self.config_file("server {\n  port 80000\n}\n")
        errors = await self.assert_refused([sys.executable, "-m", "gocast", "serve", "--config", path])
        self.assertIn("%s:2:8: server.port" % path, errors)

    async def test_bad_config_exits_78_from_the_tac(self):
        path = self.config_file("mounts {\n  live { max_listenrs 3 }\n}\n")
        errors = await self.assert_refused(twistd_command("--nodaemon", "--pidfile=", "-y", str(ROOT / "gocast.tac")),
                                           env={"GOCAST_CONFIG": path})
        self.assertIn("%s:2:10: mounts.live.max_listenrs: unknown key" % path, errors)
