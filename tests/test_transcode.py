"""The AAC transcoder's life cycle, with a fake process reactor and a Clock."""

from twisted.internet.error import ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gocast.config import parse_config
from gocast.transcode import AACTranscoder, ffmpeg_argv

from .media_builders import adts_frame
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

    def spawnProcess(self, protocol, executable, args, env=None):
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
