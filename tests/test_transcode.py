"""The AAC transcoder's life cycle, with a fake process reactor and a Clock."""

from twisted.internet.error import ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gocast.config import parse_config
from gocast.media.oggchain import pages
from gocast.outputs.transcode import AACTranscoder, ffmpeg_argv

from .media_builders import adts_frame, opus_stream
from .streaming import Harness, feed_frames


class FakeProcessTransport:
    def __init__(self):
        self.written = b""
        self.stdin_closed = False

    def write(self, data):
        self.written += data

    def closeStdin(self):
        self.stdin_closed = True


class ProcessClock(Clock):
    def __init__(self):
        super().__init__()
        self.spawned = []

    def spawnProcess(self, protocol, executable, args, env=None, childFDs=None):
        transport = FakeProcessTransport()
        protocol.makeConnection(transport)
        self.spawned.append((protocol, args))
        return transport


class TranscoderTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = ProcessClock()
        self.out = []
        self.transcoder = AACTranscoder(self.reactor, self.out.append, lambda: b"OggS-headers", "/live HLS")

    def test_headers_first_then_stream_and_frames_back(self):
        self.transcoder.start()
        [(protocol, args)] = self.reactor.spawned
        self.assertEqual(args, ffmpeg_argv())
        self.transcoder.feed(b"OggS-audio")
        self.assertEqual(protocol.transport.written, b"OggS-headersOggS-audio")
        protocol.outReceived(adts_frame() * 3)
        self.assertEqual(b"".join(p.data for p in self.out), adts_frame() * 3)

    def test_death_restarts_with_backoff(self):
        self.transcoder.start()
        for attempt, delay in enumerate((1, 2, 4)):
            protocol = self.reactor.spawned[-1][0]
            protocol.errReceived(b"Invalid data found")
            protocol.processEnded(Failure(ProcessTerminated(1)))
            self.reactor.advance(delay - 0.01)
            self.assertEqual(len(self.reactor.spawned), attempt + 1)
            self.reactor.advance(0.01)
            self.assertEqual(len(self.reactor.spawned), attempt + 2)
        self.assertEqual(self.reactor.spawned[-1][0].transport.written, b"OggS-headers")

    def test_stop_closes_stdin_and_does_not_restart(self):
        self.transcoder.start()
        protocol = self.reactor.spawned[0][0]
        self.transcoder.stop()
        self.assertTrue(protocol.transport.stdin_closed)
        protocol.processEnded(Failure(ProcessTerminated(0)))
        self.reactor.advance(60)
        self.assertEqual(len(self.reactor.spawned), 1)


class LowLatencyMp3Tests(SynchronousTestCase):
    """LL-HLS from an MP3 source is made from AAC, through ffmpeg reading MP3."""

    def test_mp3_source_goes_through_the_transcoder(self):
        text = "mounts { live { hls { enabled true low_latency true segment_duration 2 } } }"
        h = Harness(text)
        reactor = ProcessClock()
        output = h.hls.outputs["/live"]
        output.reactor = reactor
        source, _ = h.source()
        feed_frames(source, 40)
        [(protocol, args)] = reactor.spawned
        self.assertEqual(args, ffmpeg_argv("mp3"))
        self.assertTrue(protocol.transport.written.startswith(b"\xff\xfb"))  # MP3 frames in
        protocol.outReceived(adts_frame() * 30)
        self.assertEqual(output.segmenter.codec, "aac")
        h.registry.configure(parse_config(text.replace("true segment", "false segment")).config)
        feed_frames(source, 20)
        self.assertTrue(protocol.transport.stdin_closed)  # standard HLS takes MP3 as it is
        self.assertIsNone(output.transcoder)
        self.assertEqual(output.segmenter.codec, "mp3")


class ChainedOggTests(SynchronousTestCase):
    """A chained Ogg stream (a new track from Liquidsoap or ices) through the HLS transcoder."""

    def setUp(self):
        self.h = Harness("mounts { live { hls { enabled true segment_duration 2 } } }")
        self.reactor = ProcessClock()
        self.output = self.h.hls.outputs["/live"]
        self.output.reactor = self.reactor
        self.source, _ = self.h.source(content_type="audio/ogg")

    def stream(self, serial, title, channels=2):
        """One chain: its header pages (returned) and 300 ms of audio pages."""
        head, audio = opus_stream(serial, title, pages=15)
        if channels != 2:
            head = head.replace(b"OpusHead\x01\x02", b"OpusHead\x01" + bytes([channels]), 1)
        self.source.dataReceived(head + b"".join(audio))
        return head

    def transcoded(self, frames=100):
        self.reactor.spawned[-1][0].outReceived(adts_frame() * frames)

    def test_same_layout_goes_on_through_the_same_ffmpeg(self):
        first = self.stream(1, "First")
        self.transcoded()
        second = self.stream(2, "Second")
        self.transcoded()
        [(protocol, _)] = self.reactor.spawned
        self.assertFalse(protocol.transport.stdin_closed)
        # ffmpeg reads one logical stream: the first chain's headers, then every page as serial 1.
        written = protocol.transport.written
        self.assertTrue(written.startswith(first))
        self.assertNotIn(second, written)
        found = [(serial, sequence) for _, _, _, serial, sequence, _ in pages(written)]
        self.assertGreater(len(found), 2 + 15)  # the second chain's audio arrived too
        self.assertEqual(found, [(1, n) for n in range(len(found))])
        self.transcoded()
        self.assertNotIn("#EXT-X-DISCONTINUITY\n", self.output.segmenter.playlist())

    def test_another_layout_restarts_ffmpeg_with_a_discontinuity(self):
        self.stream(1, "Stereo")
        self.transcoded()
        mono = self.stream(2, "Mono", channels=1)
        self.assertEqual(len(self.reactor.spawned), 2)
        self.assertTrue(self.reactor.spawned[0][0].transport.stdin_closed)
        self.assertTrue(self.reactor.spawned[1][0].transport.written.startswith(mono))
        self.transcoded()
        self.assertIn("#EXT-X-DISCONTINUITY\n", self.output.segmenter.playlist())

    def test_a_new_source_restarts_ffmpeg(self):
        self.stream(1, "First")
        self.source.connectionLost(None)
        self.source, _ = self.h.source(content_type="audio/ogg")
        self.stream(2, "Again")
        self.assertEqual(len(self.reactor.spawned), 2)


class BackoffTests(SynchronousTestCase):
    def test_a_child_that_ran_a_while_is_restarted_at_once_again(self):
        reactor = ProcessClock()
        transcoder = AACTranscoder(reactor, [].append, lambda: b"", "/live HLS")
        transcoder.start()
        for delay in (1, 2, 4):  # dying at once: longer and longer waits
            reactor.spawned[-1][0].processEnded(Failure(ProcessTerminated(1)))
            reactor.advance(delay)
        count = len(reactor.spawned)
        reactor.advance(120)  # this one runs two minutes, then dies
        reactor.spawned[-1][0].processEnded(Failure(ProcessTerminated(1)))
        reactor.advance(1)
        self.assertEqual(len(reactor.spawned), count + 1)
