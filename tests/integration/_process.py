"""
Helpers for integration tests that start real GoCast processes on loopback
and stop them by PID.
"""

import os
import signal
import socket
import sys
from pathlib import Path

import treq
from twisted.internet import defer, protocol, task
from twisted.internet.error import ProcessDone
from twisted.web.client import HTTPConnectionPool

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def twistd_command(*args):
    """``twistd ARGS`` with the interpreter running the tests."""
    script = Path(sys.executable).with_name("twistd")
    if script.exists():
        return [sys.executable, str(script)] + list(args)
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"] + list(args)


class ServerProcess(protocol.ProcessProtocol):
    """A child process whose output is kept and whose exit can be awaited."""

    def __init__(self):
        self.output = b""
        self.ended = defer.Deferred()
        self.exit_code = None
        self.signal = None

    def outReceived(self, data):
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason):
        if reason.check(ProcessDone):
            self.exit_code = 0
        else:
            self.exit_code, self.signal = reason.value.exitCode, reason.value.signal
        self.ended.callback((self.exit_code, self.signal))

    @classmethod
    def spawn(cls, reactor, argv, env=None, cwd=None):
        proto = cls()
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
        environ.update(env or {})
        proto.transport = reactor.spawnProcess(proto, argv[0], argv, env=environ,
                                               path=str(cwd or ROOT))
        return proto

    def stop(self):
        """
        SIGTERM by PID; fires with ``(exit code, signal)`` once it has exited.
        twistd ends a SIGTERM shutdown by re-raising the signal, so a clean
        stop is ``(None, 15)``.
        """
        if not self.ended.called:
            os.kill(self.transport.pid, signal.SIGTERM)
        return self.ended


@defer.inlineCallbacks
def wait_for_http(reactor, url, process, timeout=30.0):
    """Poll ``url`` until it answers; fail early if ``process`` exits."""
    deadline = reactor.seconds() + timeout
    while True:
        if process.ended.called:
            raise AssertionError("server exited with %s:\n%s" % (process.exit_code, process.output.decode()))
        try:
            response = yield treq.get(url, timeout=2, reactor=reactor,
                                      pool=HTTPConnectionPool(reactor, persistent=False))
            body = yield treq.content(response)
            return response, body
        except Exception:
            if reactor.seconds() > deadline:
                raise AssertionError("no answer from %s:\n%s" % (url, process.output.decode()))
            yield task.deferLater(reactor, 0.1, lambda: None)
