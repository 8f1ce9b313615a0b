"""
``twistd gocast`` as a daemon, the way an init script or a bare server runs
it: it forks away, writes its pid file and twistd.log in its working folder,
reopens its logs on SIGUSR1 after logrotate moved them, and stops on SIGTERM
sent to the pid in its pid file.
"""

import os
import signal

import treq
from twisted.internet import reactor, task
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from ._process import ROOT, ServerProcess, eventually, free_port, tool, twistd_command


def running(pid):
    """True while ``pid`` is a live process (a zombie nobody reaped counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def stop_pid(pid):
    """SIGTERM to ``pid`` (a daemon: not our child), then wait until it is gone."""
    if running(pid):
        os.kill(pid, signal.SIGTERM)
    await eventually(reactor, lambda: not running(pid), timeout=30, what="pid %d to exit" % pid)


class DaemonTests(TestCase):
    timeout = 120

    def setUp(self):
        self.folder = FilePath(self.mktemp())
        self.folder.makedirs()
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.pidfile = self.folder.child("gocast.pid")
        self.access = self.folder.child("access.log")

    async def get(self, path):
        response = await treq.get(self.base + path, timeout=5, reactor=reactor,
                                  pool=HTTPConnectionPool(reactor, persistent=False))
        await treq.content(response)
        return response.code

    async def answers(self):
        try:
            return await self.get("/health/live") == 200
        except Exception:
            return False

    async def wait_until(self, condition, what, timeout=30.0):
        deadline = reactor.seconds() + timeout
        while not await condition():
            if reactor.seconds() > deadline:
                log = self.folder.child("twistd.log")
                raise AssertionError("timed out waiting for %s; twistd.log:\n%s"
                                     % (what, log.getContent().decode() if log.exists() else "(none)"))
            await task.deferLater(reactor, 0.1, lambda: None)

    async def start_daemon(self):
        config = self.folder.child("gocast.vibe")
        config.setContent(('server { listen 127.0.0.1 port %d shutdown_timeout 2s data_dir "%s" }\n'
                           'logging { access_log "%s" access_log_rotation none }\n'
                           % (self.port, self.folder.child("data").path, self.access.path)).encode())
        launcher = ServerProcess.spawn(
            reactor, twistd_command("--pidfile", self.pidfile.path, "gocast", "--config", config.path),
            cwd=self.folder.path)
        code, _ = await launcher.ended
        self.assertEqual(code, 0, launcher.output.decode())
        await self.wait_until(self.answers, "the daemon to answer /health/live")
        pid = int(self.pidfile.getContent())
        self.addCleanup(stop_pid, pid)
        self.assertTrue(running(pid))
        self.assertNotEqual(pid, launcher.transport.pid)  # it forked away
        return pid

    def log_text(self, name="twistd.log"):
        child = self.folder.child(name)
        return child.getContent().decode() if child.exists() else ""

    async def test_daemon_logs_to_twistd_log_and_stops_by_pid(self):
        pid = await self.start_daemon()
        first = self.log_text().splitlines()[0]
        self.assertIn("GoCast", first)
        self.assertIn("config %s (--config)" % self.folder.child("gocast.vibe").path, first)
        await stop_pid(pid)
        self.assertIn("Server Shut Down.", self.log_text())
        self.assertFalse(self.pidfile.exists())  # twistd removes it on a clean stop

    async def test_logs_reopened_after_logrotate(self):
        """contrib/gocast.logrotate, run by the real logrotate on this folder's logs."""
        pid = await self.start_daemon()
        self.assertEqual(await self.get("/status-json.xsl?before"), 200)
        await eventually(reactor, lambda: "/status-json.xsl?before" in self.log_text("access.log"),
                         what="the first access line")
        conf = (ROOT / "contrib" / "gocast.logrotate").read_text()
        self.assertIn("/var/log/gocast/*.log", conf)
        self.assertIn("systemctl kill --signal=USR1 gocast.service", conf)
        conf = conf.replace("/var/log/gocast/", self.folder.path + "/").replace(
            "systemctl kill --signal=USR1 gocast.service", "kill -USR1 %d" % pid)
        self.folder.child("logrotate.conf").setContent(conf.encode())
        rotate = ServerProcess.spawn(reactor, [tool("logrotate"), "--force", "--state",
                                               self.folder.child("logrotate.state").path,
                                               self.folder.child("logrotate.conf").path])
        code, _ = await rotate.ended
        self.assertEqual(code, 0, rotate.output.decode())
        await eventually(reactor, lambda: "log files reopened" in self.log_text(),
                         what="a new twistd.log")
        self.assertEqual(await self.get("/status-json.xsl?after"), 200)
        await eventually(reactor, lambda: "/status-json.xsl?after" in self.log_text("access.log"),
                         what="a new access.log")
        self.assertNotIn("?before", self.log_text("access.log"))
        self.assertIn("?before", self.log_text("access.log.1"))  # delaycompress: the newest stays plain
        self.assertNotIn("?after", self.log_text("access.log.1"))
        self.assertIn("GoCast", self.log_text("twistd.log.1"))
        self.assertNotIn("log files reopened", self.log_text("twistd.log.1"))
