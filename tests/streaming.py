"""
A GoCast front door on a MemoryReactorClock with StringTransports: sources
and listeners as byte strings, no sockets, no sleeping.
"""

from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail, maybeDeferred, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from gocast.config import parse_config
from gocast.core.events import EventBus
from gocast.core.registry import MountRegistry
from gocast.outbound import ReplyTooLarge
from gocast.outputs.artwork import Artworks
from gocast.outputs.dash import DashOutputs
from gocast.outputs.hls import HlsOutputs
from gocast.observe.metrics import Metrics
from gocast.inputs.file import FilePlayers
from gocast.protocols.frontdoor import FrontDoorFactory
from gocast.resources.health import HealthState
from gocast.resources.root import build_root
from gocast.resources.site import GocastSite

from .media_builders import mp3_frame

AUTH = "Authorization: Basic c291cmNlOmhhY2ttZQ==\r\n"  # source:hackme


class Harness:
    def __init__(self, text=""):
        self.clock = MemoryReactorClock()
        self.config = parse_config(text).config
        self.events = []
        self.bus = EventBus(self.clock.seconds)
        self.bus.subscribe(self.events.append)
        self.hls = HlsOutputs(self.clock.seconds, clock=self.clock)
        self.dash = DashOutputs(self.clock.seconds, clock=self.clock, hls=self.hls)
        self.registry = MountRegistry(self.config, self.bus, FilePlayers(self.clock), self.attach)
        self.health = HealthState(self.clock, {})
        self.factory = FrontDoorFactory(self.registry, self.bus, None, self.clock)
        self.metrics = Metrics(self.registry, self.bus, lambda: self.factory.connections,
                               lambda: self.factory.total_connections, 0.0, self.clock.seconds)
        self.factory.count_response = self.metrics.count_response
        self.factory.geo.configure(self.config.geoip)
        self.auth_failures = self.factory.auth_failures  # one count for sources and the web side
        #: What a cover URL answers (an HttpReply) for the artwork fetcher, by URL; and the URLs asked.
        self.web = {}
        self.fetched = []
        self.artworks = Artworks(self.registry, self.bus, self.fetch, maybeDeferred, lambda: self.data_dir)
        self.data_dir = ""
        root = build_root(self.registry, self.health, self.clock, self.metrics, hls=self.hls,
                          gate=self.factory.gate, geo=self.factory.geo, auth_failures=self.auth_failures,
                          dash=self.dash, artworks=self.artworks)
        self.site = GocastSite(root, self.clock, self.factory.access_log, self.metrics.count_response,
                               lambda: self.registry.config.cors,
                               lambda: self.registry.config.server.trusted_proxies,
                               lambda: self.registry.config.server.product)
        self.factory.site = self.site

    def fetch(self, method, url, timeout, max_body):
        self.fetched.append(url)
        reply = self.web.get(url)
        if reply is None:
            return fail(ConnectionRefusedError("nothing at %s" % url))
        if len(reply.body) > max_body:
            return fail(ReplyTooLarge("the reply is larger than %d bytes" % max_body))
        return succeed(reply)

    def attach(self, mount):
        """A mount made or reconfigured: its HLS and DASH outputs follow its config."""
        self.hls.attach(mount)
        self.dash.attach(mount)

    def connect(self, data=b"", peer="10.0.0.5"):
        proto = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 8000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", peer, 40000))
        proto.makeConnection(transport)
        if data:
            proto.dataReceived(data)
        return proto, transport

    def source(self, mount="/live", content_type="audio/mpeg", extra=""):
        head = ("SOURCE %s HTTP/1.0\r\n%sContent-Type: %s\r\n%s\r\n"
                % (mount, AUTH, content_type, extra)).encode()
        return self.connect(head)

    def listener(self, mount="/live", extra="", peer="10.0.0.5"):
        return self.connect(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (mount, extra)).encode(), peer)

    def get(self, target, auth=None, extra="", peer="10.0.0.5"):
        """A web request through the front door; returns (status line, headers, body)."""
        extra += "Authorization: Basic %s\r\n" % auth if auth else ""
        proto, transport = self.connect(("GET %s HTTP/1.0\r\nHost: radio.test:8000\r\n%s\r\n"
                                         % (target, extra)).encode(), peer)
        answer = split_response(transport.value())
        if transport.disconnecting:
            close(proto)  # the client sees the end of the answer; its slot is free again
        return answer

    def event_names(self):
        return [e.name for e in self.events]


def close(proto):
    proto.connectionLost(Failure(ConnectionDone()))


def feed_frames(proto, count, frame=None):
    frame = frame or mp3_frame()
    for _ in range(count):
        proto.dataReceived(frame)


def split_response(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, data[:200]
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    return lines[0], headers, body
