"""A whole GocastService on a MemoryReactorClock, its config in a real file."""

from twisted.internet.address import IPv4Address
from twisted.internet.defer import maybeDeferred
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.filepath import FilePath

from gocast.config import load_config
from gocast.service import GocastService

from .streaming import AUTH, split_response


class ServiceHarness:
    def __init__(self, testcase, text):
        self.file = FilePath(testcase.mktemp() + ".vibe")
        self.file.setContent(text.encode())
        self.clock = MemoryReactorClock()
        self.service = GocastService(load_config(self.file.path), reactor=self.clock,
                                     run_in_thread=lambda f, *a: maybeDeferred(f, *a))
        self.service.privilegedStartService()
        self.service.startService()
        self.events = []
        self.service.bus.subscribe(self.events.append)

    def rewrite(self, text):
        self.file.setContent(text.encode())

    def connect(self, data=b""):
        proto = self.service.front_door.buildProtocol(IPv4Address("TCP", "127.0.0.1", 8000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.9", 4000))
        proto.makeConnection(transport)
        if data:
            proto.dataReceived(data)
        return proto, transport

    def source(self, mount="/live"):
        return self.connect(("SOURCE %s HTTP/1.0\r\n%sContent-Type: audio/mpeg\r\n\r\n"
                             % (mount, AUTH)).encode())

    def listener(self, mount="/live", extra=""):
        return self.connect(("GET %s HTTP/1.0\r\n%s\r\n" % (mount, extra)).encode())

    def request(self, method, target, auth=None):
        head = "%s %s HTTP/1.0\r\n" % (method, target)
        if auth:
            head += "Authorization: Basic %s\r\n" % auth
        _, transport = self.connect((head + "\r\n").encode())
        self.clock.advance(0)
        return split_response(transport.value())

    def names(self):
        self.clock.advance(0)
        return [e.name for e in self.events]
