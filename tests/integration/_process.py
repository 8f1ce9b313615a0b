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


def free_port(host: str = "127.0.0.1") -> int:
    """
    A TCP port on ``host`` that nothing listens on right now, and whose
    next port is free too (the SHOUTcast source port is server.port + 1).
    """
    while True:
        with socket.socket() as first, socket.socket() as second:
            first.bind((host, 0))
            port = first.getsockname()[1]
            try:
                second.bind((host, port + 1))
            except OSError:
                continue
            return port


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
        self.errors = b""  # stderr alone (output has it too)
        self.ended = defer.Deferred()
        self.exit_code = None
        self.signal = None

    def outReceived(self, data):
        self.output += data

    def errReceived(self, data):
        self.output += data
        self.errors += data

    def processEnded(self, reason):
        if reason.check(ProcessDone):
            self.exit_code = 0
        else:
            self.exit_code, self.signal = reason.value.exitCode, reason.value.signal
        self.ended.callback((self.exit_code, self.signal))

    @classmethod
    def spawn(cls, reactor, argv, env=None, cwd=None, checkout=True, child_fds=None):
        """
        :param checkout: put the checkout on ``PYTHONPATH``; ``False`` runs
            what is installed and nothing of the checkout.
        :param cwd: where it runs; by default trial's temporary folder, so
            whatever it writes (a ``gocast-data`` folder) stays out of the checkout.
        :param child_fds: more descriptors the child inherits, ``{number in
            the child: descriptor here}`` (a socket systemd would pass).
        """
        proto = cls()
        environ = dict(os.environ)
        if checkout:
            environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
        else:
            environ.pop("PYTHONPATH", None)
        environ.update(env or {})
        fds = {0: "w", 1: "r", 2: "r", **(child_fds or {})}
        proto.transport = reactor.spawnProcess(proto, argv[0], argv, env=environ,
                                               path=str(cwd or os.getcwd()), childFDs=fds)
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


def tool(name):
    """The path of a real client program the integration tests drive."""
    import shutil

    path = shutil.which(name)
    if path is None:
        raise AssertionError("%s is not installed: run ./dev setup (it installs ffmpeg)" % name)
    return path


@defer.inlineCallbacks
def start_server(testcase, reactor, config_text, server_extra="shutdown_timeout 2s", host="127.0.0.1",
                 port=None):
    """
    Run ``twistd gocast`` on a free port of ``host`` (a loopback address)
    with ``config_text``, and ``server_extra`` inside its ``server { }``
    block; stopped by PID at cleanup (SIGTERM: it drains for at most its
    shutdown_timeout). ``config_text`` may name ``{host}`` and ``{port}``.

    :return: ``(process, base_url)``
    """
    from twisted.python.filepath import FilePath

    port = port or free_port(host)
    config_text = config_text.replace("{host}", host).replace("{port}", str(port))
    folder = FilePath(testcase.mktemp())
    folder.makedirs()
    config = folder.child("gocast.vibe")
    data = folder.child("data").path  # the state database: each server its own
    head = 'server { listen %s port %d data_dir "%s" %s }\n' % (host, port, data, server_extra)
    config.setContent((head + config_text).encode())
    process = ServerProcess.spawn(
        reactor, twistd_command("--nodaemon", "--pidfile=", "gocast", "--config", config.path))
    process.config_path = config.path
    process.config_head = head
    testcase.addCleanup(process.stop)
    base = "http://%s:%d" % (host, port)
    yield wait_for_http(reactor, base + "/health/live", process)
    return process, base


def spawn_tool(testcase, reactor, argv):
    """Start a client program; it is stopped by PID at cleanup if still running."""
    process = ServerProcess.spawn(reactor, [tool(argv[0])] + list(argv[1:]))
    testcase.addCleanup(process.stop)
    return process


@defer.inlineCallbacks
def wait_for_source(reactor, base, mount, process, timeout=20.0):
    """Poll /status-json.xsl until ``mount`` has a source."""
    import json

    deadline = reactor.seconds() + timeout
    while True:
        _, body = yield wait_for_http(reactor, base + "/status-json.xsl", process)
        sources = json.loads(body)["icestats"].get("source", [])
        sources = [sources] if isinstance(sources, dict) else sources
        if any(s["listenurl"].endswith(mount) for s in sources):
            return
        if reactor.seconds() > deadline:
            raise AssertionError("no source on %s:\n%s" % (mount, process.output.decode()))
        yield task.deferLater(reactor, 0.1, lambda: None)


class RawClient(protocol.Protocol):
    """A bare TCP client that keeps everything it receives."""

    def __init__(self):
        self.data = bytearray()
        self.closed = defer.Deferred()

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.closed.callback(None)


@defer.inlineCallbacks
def raw_request(testcase, reactor, base, request):
    """Open a raw connection to the server at ``base`` and send ``request`` bytes."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    host, port = base[len("http://"):].split(":")
    client = yield connectProtocol(TCP4ClientEndpoint(reactor, host, int(port)), RawClient())

    def close():
        if not client.closed.called:
            client.transport.loseConnection()
        return client.closed

    testcase.addCleanup(close)
    client.transport.write(request)
    return client


@defer.inlineCallbacks
def eventually(reactor, condition, timeout=20.0, what="condition"):
    """Poll ``condition()`` every 100 ms until it is true."""
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        yield task.deferLater(reactor, 0.1, lambda: None)
