"""WebSocket audio: the handshake through the gate, hello and metadata, numbered frames, resuming, limits."""

import base64
import json
import os
import struct
import time

import jwt
from twisted.trial.unittest import SynchronousTestCase

from gocast.core.operations import move_listeners
from gocast.outputs.pcm import PcmDecoders
from gocast.protocols.wsaudio import FLAG_BURST, FLAG_HEADERS, FLAG_START, FRAME_HEADER, mount_of

from .media_builders import mp3_frame, opus_stream
from .streaming import Harness, close, feed_frames, split_response
from .test_transcode import ProcessClock

FRAME = mp3_frame()
SECRET = "a-test-secret-of-thirty-two-bytes!"


def handshake(path, extra=""):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET %s HTTP/1.1\r\nHost: radio.test:8000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n" % (path, key, extra)).encode()


def client_frame(opcode, payload=b""):
    """A masked frame, as a client sends it."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def server_frames(data):
    """(opcode, payload) of each whole frame a server sent (unmasked)."""
    frames, pos = [], 0
    while pos + 2 <= len(data):
        opcode, length = data[pos] & 0x0F, data[pos + 1] & 0x7F
        pos += 2
        if length == 126:
            (length,) = struct.unpack(">H", data[pos:pos + 2])
            pos += 2
        elif length == 127:
            (length,) = struct.unpack(">Q", data[pos:pos + 8])
            pos += 8
        if pos + length > len(data):
            break
        frames.append((opcode, data[pos:pos + length]))
        pos += length
    return frames


class Client:
    """One WebSocket audio client on a StringTransport."""

    def __init__(self, harness, path="/ws/live", extra="", peer="10.0.0.5"):
        self.proto, self.transport = harness.connect(handshake(path, extra), peer)
        self.read = 0

    @property
    def status(self):
        return split_response(self.transport.value())[0]

    def messages(self):
        """Text frames as dicts and binary frames as (seq, flags, payload), received since the last call."""
        body = split_response(self.transport.value())[2]
        frames = server_frames(body)
        new, self.read = frames[self.read:], len(frames)
        out = []
        for opcode, payload in new:
            if opcode == 1:
                out.append(json.loads(payload))
            elif opcode == 2:
                seq, flags = FRAME_HEADER.unpack(payload[:FRAME_HEADER.size])
                out.append((seq, flags, payload[FRAME_HEADER.size:]))
            elif opcode == 8:
                out.append(("close", struct.unpack(">H", payload[:2])[0], payload[2:].decode()))
        return out

    def audio(self, messages):
        return [m for m in messages if isinstance(m, tuple) and m[0] != "close"]


class WebSocketAudioTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness("limits { burst_size 8k queue_size 64k }")
        self.source, _ = self.h.source(extra="ice-name: Radio\r\nice-bitrate: 128\r\n")
        feed_frames(self.source, 100)
        self.mount = self.h.registry.get("/live")

    def test_paths(self):
        self.assertEqual(mount_of("/ws/live"), "/live")
        self.assertEqual(mount_of("/ws/radio/hq.mp3"), "/radio/hq.mp3")
        self.assertIsNone(mount_of("/live"))

    def test_hello_metadata_then_the_burst_in_one_frame(self):
        self.mount.set_metadata(song="Artist - Title")
        client = Client(self.h)
        self.assertEqual(client.status, "HTTP/1.1 101 Switching Protocols")
        hello, metadata, burst = client.messages()
        self.assertEqual((hello["type"], hello["mount"], hello["codec"], hello["content_type"]),
                         ("hello", "/live", "mp3", "audio/mpeg"))
        self.assertEqual((hello["sample_rate"], hello["channels"], hello["bitrate"]), (44100, 2, 128))
        self.assertEqual((hello["stream"], hello["seq"], hello["resumed"]),
                         (self.mount.stream_id, self.mount.next_seq - 1, False))
        self.assertEqual((metadata["type"], metadata["title"], metadata["artist"]), ("metadata", "Title", "Artist"))
        seq, flags, data = burst
        self.assertEqual((seq, flags), (self.mount.next_seq - 1, FLAG_START | FLAG_BURST))
        self.assertEqual(data, b"".join(self.mount.burst()))
        self.assertTrue(0 < len(data) <= 8 * 1024 and len(data) % len(FRAME) == 0)
        self.assertEqual(self.mount.listeners, 1)
        self.assertIn("listener.connect", self.h.event_names())

    def test_each_chunk_a_numbered_frame_and_metadata_as_it_changes(self):
        client = Client(self.h)
        client.messages()
        feed_frames(self.source, 40)
        self.mount.set_metadata(title="Next")
        feed_frames(self.source, 40)
        messages = client.messages()
        audio = client.audio(messages)
        self.assertEqual([seq for seq, _, _ in audio], list(range(audio[0][0], self.mount.next_seq)))
        self.assertTrue(all(flags == 0 and len(data) % len(FRAME) == 0 for _, flags, data in audio))
        self.assertIn({"type": "metadata", "mount": "/live", "title": "Next", "artist": None, "song": "Next",
                       "album": None, "url": None, "artwork": None}, messages)

    def test_resume_since_a_chunk_still_in_the_ring(self):
        client = Client(self.h)
        hello = client.messages()[0]
        last = hello["seq"]
        close(client.proto)
        feed_frames(self.source, 30)  # missed while away
        again = Client(self.h, "/ws/live?since=%d&stream=%s" % (last, hello["stream"]))
        messages = again.messages()
        self.assertTrue(messages[0]["resumed"])
        self.assertEqual([seq for seq, _, _ in again.audio(messages)], list(range(last + 1, self.mount.next_seq)))
        missed = b"".join(c.data for c in self.mount.chunks_after(last))
        self.assertEqual(b"".join(d for _, _, d in again.audio(messages)), missed)

    def test_no_resume_from_another_stream_or_a_chunk_gone(self):
        for query in ("since=1&stream=elsewhere", "since=0", "since=99999", "since=x"):
            feed_frames(self.source, 200)  # chunk 0 is long gone from a 64k ring
            client = Client(self.h, "/ws/live?" + query)
            hello, _, burst = client.messages()
            self.assertFalse(hello["resumed"], query)
            self.assertEqual(burst[1], FLAG_START | FLAG_BURST)

    def test_ogg_burst_starts_with_the_headers_and_a_move_says_hello_again(self):
        ogg, _ = self.h.source("/opus", "audio/ogg")
        headers, pages = opus_stream(title="Song", pages=30)
        ogg.dataReceived(headers + b"".join(pages))
        client = Client(self.h, "/ws/opus")
        hello, metadata, burst = client.messages()
        self.assertEqual((hello["codec"], hello["sample_rate"], hello["channels"]), ("opus", 48000, 2))
        self.assertEqual(burst[1], FLAG_START | FLAG_BURST | FLAG_HEADERS)
        self.assertTrue(burst[2].startswith(self.h.registry.get("/opus").header_pages))
        move_listeners(self.h.registry, self.h.registry.get("/opus"), self.mount)
        hello, metadata = client.messages()[:2]
        self.assertEqual((hello["type"], hello["mount"], hello["codec"]), ("hello", "/live", "mp3"))
        feed_frames(self.source, 20)
        first = client.audio(client.messages())[0]
        self.assertEqual(first[1], FLAG_START)

    def test_the_gate_decides_before_the_handshake(self):
        h = Harness('mounts { live { auth { type token  secret "%s" } } }' % SECRET)
        source, _ = h.source()
        feed_frames(source, 20)
        refused = Client(h)
        self.assertIn("401", refused.status)
        self.assertEqual(h.registry.get("/live").listeners, 0)
        token = jwt.encode({"exp": time.time() + 600}, SECRET, algorithm="HS256")
        by_query = Client(h, "/ws/live?token=" + token)
        self.assertEqual(by_query.status, "HTTP/1.1 101 Switching Protocols", by_query.transport.value())
        by_subprotocol = Client(h, extra="Sec-WebSocket-Protocol: gocast.audio, gocast.token.%s\r\n" % token)
        self.assertEqual(split_response(by_subprotocol.transport.value())[1]["sec-websocket-protocol"],
                         "gocast.audio")
        self.assertEqual(h.registry.get("/live").listeners, 2)

    def test_refusals_are_plain_http(self):
        _, plain = self.h.connect(b"GET /ws/live HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn("426", split_response(plain.value())[0])
        h = Harness('mounts { live { max_listeners 1 } }  cors { allowed_origins ["https://radio.example"] }')
        source, _ = h.source()
        feed_frames(source, 20)
        self.assertIn("403", Client(h, extra="Origin: https://evil.example\r\n").status)
        self.assertIn("101", Client(h, extra="Origin: https://radio.example\r\n").status)
        self.assertIn("503", Client(h).status)
        self.assertIn("404", Client(h, "/ws/nothing").status)

    def test_a_slow_client_is_dropped_at_queue_size_alone(self):
        slow, fast = Client(self.h), Client(self.h)
        slow.proto.delegate.pauseProducing()
        feed_frames(self.source, 400)  # far more than the 64k ring
        self.assertTrue(slow.transport.disconnecting)
        self.assertFalse(fast.transport.disconnecting)
        self.assertEqual(self.mount.slow_listeners, 1)

    def test_access_line_and_disconnect_event(self):
        lines = []
        self.h.factory.access_log.record = lambda *args, **kw: lines.append(args)
        client = Client(self.h, "/ws/live?token=abc")
        client.messages()
        client.proto.dataReceived(client_frame(8, struct.pack(">H", 1000)))  # the client closes
        close(client.proto)
        self.assertEqual(self.mount.listeners, 0)
        self.assertIn("listener.disconnect", self.h.event_names())
        [line] = lines
        self.assertEqual((line[1], line[2], line[4]), ("GET", "/ws/live?token=abc", 101))
        self.assertGreater(line[5], 0)  # the bytes of audio it was sent

    def test_source_gone_without_fallback_closes_with_a_reason(self):
        client = Client(self.h)
        client.messages()
        close(self.source)
        last = client.messages()[-1]
        self.assertEqual(last[0], "close")
        self.assertEqual(last[1], 4002)


class PcmTests(SynchronousTestCase):
    """``?format=pcm``: one fake ffmpeg per mount and rate, shared, primed with the burst, lingering after the last."""

    def setUp(self):
        self.h = Harness("limits { burst_size 8k }")
        self.processes = ProcessClock()
        self.h.factory.pcm = PcmDecoders(self.processes)
        self.source, _ = self.h.source()
        feed_frames(self.source, 100)
        self.mount = self.h.registry.get("/live")

    def decode(self, seconds, index=-1, rate=44100, channels=2):
        """The fake ffmpeg ``index`` writes ``seconds`` of PCM (a counting pattern)."""
        protocol = self.processes.spawned[index][0]
        protocol.outReceived(bytes(range(256)) * int(rate * channels * 2 * seconds / 256))

    def test_hello_then_decoded_audio_in_numbered_blocks(self):
        client = Client(self.h, "/ws/live?format=pcm")
        hello, metadata = client.messages()
        self.assertEqual((hello["codec"], hello["format"], hello["sample_rate"], hello["channels"]),
                         ("pcm_s16le", "pcm", 44100, 2))
        [(protocol, args)] = self.processes.spawned
        self.assertEqual(args[args.index("-f") + 1], "mp3")
        self.assertEqual(args[args.index("-ar") + 1:args.index("-ar") + 4], ["44100", "-ac", "2"])
        self.assertEqual(protocol.transport.written, b"".join(self.mount.burst()))  # primed with the burst
        feed_frames(self.source, 20)
        self.assertTrue(protocol.transport.written.endswith(FRAME * 5))  # and the live stream after it
        self.decode(0.35)
        audio = client.audio(client.messages())
        self.assertEqual([(seq, flags) for seq, flags, _ in audio], [(0, FLAG_START), (1, 0), (2, 0)])
        self.assertTrue(all(len(data) == 4410 * 4 for _, _, data in audio))
        self.assertEqual(self.mount.listeners, 1)

    def test_clients_share_a_decoder_and_a_newcomer_gets_the_burst(self):
        first = Client(self.h, "/ws/live?format=pcm")
        self.decode(2.0)
        second = Client(self.h, "/ws/live?format=pcm")
        self.assertEqual(len(self.processes.spawned), 1)
        hello, _, burst = second.messages()
        self.assertEqual((burst[0], burst[1]), (hello["seq"], FLAG_START | FLAG_BURST))
        self.assertEqual(len(burst[2]), 10 * 4410 * 4)  # the newest second
        other = Client(self.h, "/ws/live?format=pcm&rate=48000&channels=1")
        self.assertEqual(len(self.processes.spawned), 2)
        self.assertEqual(other.messages()[0]["sample_rate"], 48000)
        self.assertEqual(self.mount.listeners, 3)
        self.assertTrue(first.messages())

    def test_the_decoder_lingers_after_the_last_client_and_a_reconnect_resumes(self):
        client = Client(self.h, "/ws/live?format=pcm")
        hello = client.messages()[0]
        self.decode(0.5)
        last = client.audio(client.messages())[-1][0]
        close(client.proto)
        self.decode(0.3)  # decoded while nobody listens: kept for a returning client
        again = Client(self.h, "/ws/live?format=pcm&since=%d&stream=%s" % (last, hello["stream"]))
        messages = again.messages()
        self.assertTrue(messages[0]["resumed"])
        self.assertEqual([seq for seq, _, _ in again.audio(messages)], [last + 1, last + 2, last + 3])
        close(again.proto)
        protocol = self.processes.spawned[0][0]
        self.processes.advance(9)
        self.assertFalse(protocol.transport.stdin_closed)
        self.processes.advance(2)
        self.assertTrue(protocol.transport.stdin_closed)
        self.assertEqual(self.h.factory.pcm.running, {})
        self.assertNotIn(self.h.factory.pcm, self.mount.subscribers)

    def test_a_fallback_gets_its_own_decoder(self):
        h2 = Harness("mounts { live { fallback /backup } }")
        h2.factory.pcm = PcmDecoders(self.processes)
        live, _ = h2.source()
        spare, _ = h2.source("/backup")
        feed_frames(live, 40)
        feed_frames(spare, 40)
        client = Client(h2, "/ws/live?format=pcm")
        client.messages()
        close(live)
        hello = client.messages()[0]
        self.assertEqual((hello["type"], hello["mount"], hello["codec"]), ("hello", "/backup", "pcm_s16le"))
        self.assertEqual(len(self.processes.spawned), 2)

    def test_a_slow_pcm_client_is_dropped_alone(self):
        slow, fast = Client(self.h, "/ws/live?format=pcm"), Client(self.h, "/ws/live?format=pcm")
        slow.proto.delegate.pauseProducing()
        self.decode(12.0)  # more than the decoder keeps
        self.assertTrue(slow.transport.disconnecting)
        self.assertFalse(fast.transport.disconnecting)

    def test_bad_parameters_are_400s(self):
        for query in ("format=wav", "format=pcm&rate=12345", "format=pcm&channels=6", "rate=48000"):
            self.assertIn("400", Client(self.h, "/ws/live?" + query).status, query)
        self.assertEqual(self.processes.spawned, [])


class ClientMessageTests(SynchronousTestCase):
    def test_a_client_that_sends_too_much_is_cut_off_alone(self):
        h = Harness()
        source, _ = h.source()
        feed_frames(source, 20)
        chatty, quiet = Client(h), Client(h)
        chatty.proto.dataReceived(client_frame(1, b"{}"))  # small messages are read and ignored
        self.assertFalse(chatty.transport.disconnecting)
        big = os.urandom(5000)
        mask = os.urandom(4)
        chatty.proto.dataReceived(bytes([0x82, 0xFE]) + struct.pack(">H", len(big)) + mask
                                  + bytes(b ^ mask[i % 4] for i, b in enumerate(big)))
        self.assertTrue(chatty.transport.disconnecting)
        self.assertFalse(quiet.transport.disconnecting)


class MetadataOnlyTests(SynchronousTestCase):
    def test_titles_without_audio_not_counted_nor_refused_when_full(self):
        h = Harness("mounts { live { max_listeners 1 } }")
        source, _ = h.source()
        feed_frames(source, 40)
        mount = h.registry.get("/live")
        listener = Client(h)
        display = Client(h, "/ws/live?format=metadata")
        self.assertIn("101", display.status)
        hello, metadata = display.messages()
        self.assertEqual((hello["type"], metadata["type"]), ("hello", "metadata"))
        feed_frames(source, 40)
        mount.set_metadata(song="Band - Tune")
        self.assertEqual(display.messages(), [{"type": "metadata", "mount": "/live", "title": "Tune",
                                               "artist": "Band", "song": "Band - Tune", "album": None,
                                               "url": None, "artwork": None}])
        self.assertEqual(mount.listeners, 1)
        self.assertEqual(h.event_names().count("listener.connect"), 1)
        self.assertTrue(listener.messages())
        self.assertIn("400", Client(h, "/ws/live?format=metadata&rate=48000").status)
