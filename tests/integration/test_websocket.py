"""
WebSocket audio against a real server: real ffmpeg sources (MP3 and Ogg
Opus), an Autobahn WebSocket client in this process; what it receives is
decoded by real ffmpeg, titles set through the admin arrive as metadata
frames, a reconnect resumes without a gap, and ``format=pcm`` is the sine
the source sends.
"""

import json
import os
import struct
from array import array

import treq
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial.unittest import TestCase

from ._process import eventually, spawn_tool, start_server, wait_for_source
from .test_hls import OPUS
from .test_relay import MP3, PASSWORD, set_title

HEADER = struct.Struct(">IB3x")


class AudioClient(WebSocketClientProtocol):
    """Keeps every message: text ones as dicts, binary ones as (seq, flags, payload)."""

    def onConnect(self, response):
        self.factory.response = response

    def onOpen(self):
        self.factory.opened.callback(self)

    def onMessage(self, payload, isBinary):
        if isBinary:
            seq, flags = HEADER.unpack(payload[:HEADER.size])
            self.factory.messages.append((seq, flags, payload[HEADER.size:]))
        else:
            self.factory.messages.append(json.loads(payload))

    def onClose(self, wasClean, code, reason):
        if not self.factory.opened.called:
            self.factory.opened.errback(AssertionError("refused: %s %s" % (code, reason)))
        self.factory.closed = True


async def connect(testcase, base, path, protocols=None):
    host, port = base[len("http://"):].split(":")
    factory = WebSocketClientFactory("ws://%s:%s%s" % (host, port, path), protocols=protocols)
    factory.protocol = AudioClient
    factory.messages, factory.opened, factory.closed = [], defer.Deferred(), False
    endpoint = TCP4ClientEndpoint(reactor, host, int(port))
    client = await endpoint.connect(factory)
    await factory.opened

    def close():
        if not factory.closed:
            client.dropConnection(abort=True)

    testcase.addCleanup(close)
    return client


def audio_of(client):
    return [m for m in client.factory.messages if isinstance(m, tuple)]


def texts(client, kind):
    return [m for m in client.factory.messages if isinstance(m, dict) and m["type"] == kind]


async def ffmpeg_decodes(testcase, data, container):
    """Real ffmpeg decodes ``data`` without one error; the seconds of audio it holds."""
    path = os.path.abspath(testcase.mktemp())
    with open(path, "wb") as f:
        f.write(data)
    probe = spawn_tool(testcase, reactor, ["ffprobe", "-v", "error", "-f", container, "-show_entries",
                                           "format=duration", "-of", "csv=p=0", path])
    decode = spawn_tool(testcase, reactor, ["ffmpeg", "-hide_banner", "-v", "error", "-f", container, "-i", path,
                                            "-f", "null", "-"])
    code, _ = await decode.ended
    testcase.assertEqual((code, decode.output.decode()), (0, ""))
    code, _ = await probe.ended
    testcase.assertEqual(code, 0, probe.output)
    return float(probe.output.decode().strip())


class WebSocketAudioTests(TestCase):
    timeout = 120

    async def server_with(self, source_args, mount="/live"):
        process, base = await start_server(self, reactor, "mounts { live { } opus { } }")
        url = "icecast://source:%s@%s%s" % (PASSWORD, base[len("http://"):], mount)
        spawn_tool(self, reactor, ["ffmpeg"] + source_args + [url])
        await wait_for_source(reactor, base, mount, process)
        return process, base

    async def test_mp3_decodes_titles_follow_and_a_reconnect_resumes(self):
        process, base = await self.server_with([a % 440 if "%d" in a else a for a in MP3])
        client = await connect(self, base, "/ws/live", protocols=["gocast.audio"])
        self.assertEqual(client.factory.response.protocol, "gocast.audio")
        await eventually(reactor, lambda: len(audio_of(client)) >= 12, timeout=15, what="3 s of chunks")
        hello = texts(client, "hello")[-1]  # the newest: one comes with the first audio
        self.assertEqual((hello["codec"], hello["sample_rate"], hello["channels"], hello["bitrate"]),
                         ("mp3", 44100, 1, 128))
        frames = audio_of(client)
        self.assertEqual([seq for seq, _, _ in frames], list(range(frames[0][0], frames[0][0] + len(frames))))
        seconds = await ffmpeg_decodes(self, b"".join(data for _, _, data in frames), "mp3")
        self.assertGreater(seconds, 2.0)

        status = json.loads(await (await treq.get(base + "/status-json.xsl", reactor=reactor, persistent=False)).content())
        self.assertEqual(status["icestats"]["source"]["listeners"], 1)

        await set_title(base, "/live", "Band - Tune")
        asked = reactor.seconds()
        await eventually(reactor, lambda: any(m["title"] == "Tune" for m in texts(client, "metadata")), timeout=5,
                         what="the title as a metadata frame")
        self.assertLess(reactor.seconds() - asked, 2.0)

        last = audio_of(client)[-1][0]
        client.dropConnection(abort=True)
        await eventually(reactor, lambda: client.factory.closed, what="the close")
        again = await connect(self, base, "/ws/live?since=%d&stream=%s" % (last, hello["stream"]))
        await eventually(reactor, lambda: audio_of(again), what="the chunks missed")
        self.assertTrue(texts(again, "hello")[0]["resumed"])
        self.assertEqual(audio_of(again)[0][0], last + 1)

    async def test_ogg_opus_starts_with_its_headers(self):
        _, base = await self.server_with(["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                                          "sine=frequency=440"] + OPUS, "/opus")
        client = await connect(self, base, "/ws/opus")
        await eventually(reactor, lambda: len(audio_of(client)) >= 10, timeout=15, what="chunks of Opus")
        hello = texts(client, "hello")[-1]
        self.assertEqual((hello["codec"], hello["sample_rate"], hello["channels"]), ("opus", 48000, 1))
        first = audio_of(client)[0]
        self.assertEqual(first[1] & 3, 3)  # the stream's start, with its header pages
        self.assertTrue(first[2].startswith(b"OggS") and b"OpusHead" in first[2][:100])
        seconds = await ffmpeg_decodes(self, b"".join(data for _, _, data in audio_of(client)), "ogg")
        self.assertGreater(seconds, 1.5)

    async def test_pcm_is_the_sine_the_source_sends(self):
        process, base = await self.server_with([a % 1000 if "%d" in a else a for a in MP3])
        client = await connect(self, base, "/ws/live?format=pcm&rate=48000&channels=1")
        await eventually(reactor, lambda: texts(client, "hello"), what="the hello")
        hello = texts(client, "hello")[0]
        self.assertEqual((hello["codec"], hello["sample_rate"], hello["channels"]), ("pcm_s16le", 48000, 1))
        await eventually(reactor, lambda: sum(len(d) for _, _, d in audio_of(client)) >= 2 * 48000 * 2,
                         timeout=15, what="two seconds of PCM")
        samples = array("h", b"".join(d for _, _, d in audio_of(client))[48000 * 2:])  # past the first second
        crossings = sum(1 for a, b in zip(samples, samples[1:]) if (a < 0) != (b < 0))
        frequency = crossings / 2 / (len(samples) / 48000)
        self.assertLess(abs(frequency - 1000), 20, frequency)  # (trial's assertAlmostEqual has no delta)
        self.assertGreater(max(samples), 2000)
