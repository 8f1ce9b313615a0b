"""
Debian's redis-server on a free loopback port, for the cluster tests:
started, stopped and started again by PID (a Redis that goes away
mid-stream), never left running.
"""

from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from ._process import ServerProcess, free_port, tool


class _Ping(protocol.Protocol):
    def __init__(self):
        self.answer = defer.Deferred()

    def connectionMade(self):
        self.transport.write(b"PING\r\n")

    def dataReceived(self, data):
        if not self.answer.called:
            self.answer.callback(data)
            self.transport.loseConnection()


def port_is_free(port, host="127.0.0.1"):
    import socket

    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class RedisServer:
    def __init__(self, testcase, reactor, port=None):
        """On ``port`` (Redis's default 6379, say) when given, else on a free one."""
        self.testcase = testcase
        self.reactor = reactor
        self.port = port or free_port()
        self.folder = testcase.mktemp()
        self.process = None
        testcase.addCleanup(self.stop)

    @property
    def url(self):
        return "redis://127.0.0.1:%d" % self.port

    @defer.inlineCallbacks
    def start(self, timeout=20.0):
        import os

        os.makedirs(self.folder, exist_ok=True)
        self.process = ServerProcess.spawn(self.reactor, [
            tool("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", self.folder, "--daemonize", "no"], checkout=False)
        deadline = self.reactor.seconds() + timeout
        while True:
            try:
                ping = yield connectProtocol(TCP4ClientEndpoint(self.reactor, "127.0.0.1", self.port), _Ping())
                answer = yield ping.answer
                if answer.startswith(b"+PONG"):
                    return
            except Exception:
                pass
            if self.process.ended.called or self.reactor.seconds() > deadline:
                raise AssertionError("redis-server did not start:\n%s" % self.process.output.decode())
            yield task.deferLater(self.reactor, 0.1, lambda: None)

    def stop(self):
        if self.process is None:
            return defer.succeed(None)
        process, self.process = self.process, None
        return process.stop()
