"""
The transcoding ladder with a fake process reactor: one ffmpeg for a
mount's outputs, each pipe feeding its own mount; fallbacks, restarts,
on-demand outputs, now-playing, and the config that makes the output mounts.
"""

from twisted.internet.error import ProcessTerminated
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gocast.config import ConfigError, parse_config, with_transcoding_outputs
from gocast.dashboard.live import mount_figures
from gocast.outputs.ladder import ON_DEMAND_LINGER, Ladders, encoder_args, ladder_argv

from .media_builders import adts_frame, mp3_frame, opus_stream
from .streaming import Harness, close, feed_frames, split_response
from .test_transcode import ProcessClock

LADDER = """
mounts {
    live {
        %s
        transcoding {
            enabled true
            outputs {
                high { path /live-320 format mp3 bitrate 320k }
                opus { path /live-96 format opus bitrate 96k }
                low { path /live-64 format aac bitrate 64k %s }
            }
        }
    }
    %s
}
"""


def ladder_config(parent="", low="", more=""):
    return LADDER % (parent, low, more)


class Ladder:
    """A Harness whose registry has the output mounts and a ladder on a fake process reactor."""

    def __init__(self, text):
        self.h = h = Harness(text)
        self.reactor = ProcessClock()
        self.ladders = Ladders(self.reactor)
        self.ladders.registry = h.registry
        h.registry.attach = lambda mount: (h.attach(mount), self.ladders.attach(mount))
        h.registry.configure(with_transcoding_outputs(h.config))

    def reconfigure(self, text):
        self.h.registry.configure(with_transcoding_outputs(parse_config(text).config))

    @property
    def spawned(self):
        return self.reactor.spawned

    def write(self, fd, data):
        """ffmpeg writes ``data`` to pipe ``fd``."""
        self.spawned[-1][0].childDataReceived(fd, data)

    def encode(self):
        """ffmpeg's outputs: MP3 on pipe 3, AAC on 4, Ogg Opus on 5 (outputs sorted by name)."""
        self.write(3, mp3_frame(320) * 20)
        self.write(4, adts_frame() * 20)
        head, audio = opus_stream(7, "ffmpeg's own comment", pages=5)
        self.write(5, head + b"".join(audio))

    def mount(self, path):
        return self.h.registry.get(path)


class ArgvTests(SynchronousTestCase):
    def outputs(self, text=""):
        config = parse_config(ladder_config(low=text)).config
        return [o for _, o in sorted(config.mounts["/live"].transcoding.outputs.items())]

    def test_one_ffmpeg_each_output_to_its_own_pipe(self):
        argv = ladder_argv("mp3", self.outputs())
        self.assertEqual(argv[:10], ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "mp3",
                                     "-i", "pipe:0", "-vn"])
        self.assertEqual([a for a in argv if a.startswith("pipe:")], ["pipe:0", "pipe:3", "pipe:4", "pipe:5"])
        self.assertEqual(argv.count("-map"), 3)
        high, low, opus = self.outputs()
        self.assertIn("libmp3lame", encoder_args(high))
        self.assertEqual(encoder_args(high)[-2:], ["-f", "mp3"])
        self.assertIn("-write_xing", encoder_args(high))  # a stream has no length to write
        self.assertEqual(encoder_args(opus)[-2:], ["-f", "ogg"])
        self.assertEqual(encoder_args(low)[-2:], ["-f", "adts"])
        self.assertEqual(encoder_args(low)[encoder_args(low).index("-b:a") + 1], "64000")

    def test_sample_rate_channels_and_quality(self):
        config = parse_config("""mounts { live { transcoding { enabled true outputs {
            a { path /a format mp3 bitrate 64k sample_rate 22050 channels 1 quality 10 }
            b { path /b format opus bitrate 32k sample_rate 44100 quality 3 } } } } }""").config
        a, b = [o for _, o in sorted(config.mounts["/live"].transcoding.outputs.items())]
        args = encoder_args(a)
        self.assertEqual(args[args.index("-ar") + 1], "22050")
        self.assertEqual(args[args.index("-ac") + 1], "1")
        self.assertEqual(args[args.index("-compression_level") + 1], "0")  # LAME's best
        args = encoder_args(b)
        self.assertNotIn("-ar", args)  # Opus is always 48 kHz
        self.assertEqual(args[args.index("-compression_level") + 1], "3")


class ConfigTests(SynchronousTestCase):
    def errors(self, text):
        with self.assertRaises(ConfigError) as caught:
            parse_config(text)
        return "\n".join(str(issue) for issue in caught.exception.issues)

    def test_output_mounts_take_the_parents_settings(self):
        config = with_transcoding_outputs(parse_config(ladder_config(
            parent='hls { enabled true path /radio } auth { type basic users { ann "pw" } } max_listeners 5',
            more="live-64 { max_listeners 50 }")).config)
        high, low = config.mounts["/live-320"], config.mounts["/live-64"]
        self.assertEqual((high.type, high.bitrate, high.max_listeners), ("audio/mpeg", 320000, 5))
        self.assertEqual(config.mounts["/live-96"].type, "audio/ogg")
        self.assertTrue(high.hls.enabled)
        self.assertEqual(high.hls.path, "")  # /radio is the parent's
        self.assertFalse(high.transcoding.enabled)
        self.assertEqual(high.auth.type, "basic")
        # Its own block wins, but never lets in more listeners than the parent does.
        self.assertEqual((low.max_listeners, low.type, low.auth.type), (50, "audio/aac", "basic"))

    def test_an_output_with_its_own_auth_keeps_it(self):
        config = with_transcoding_outputs(parse_config(ladder_config(
            parent='auth { type basic users { ann "pw" } }',
            more='live-64 { auth { type token secret "s3cr3t-s3cr3t-s3cr3t-s3cr3t" } }')).config)
        self.assertEqual(config.mounts["/live-64"].auth.type, "token")

    def test_mistakes_are_named(self):
        self.assertIn("/live cannot be its own transcoding output",
                      self.errors("mounts { live { transcoding { enabled true outputs { a { path /live } } } } }"))
        self.assertIn("outputs a and b are both published on /x", self.errors(
            "mounts { live { transcoding { enabled true outputs { a { path /x } b { path /x } } } } }"))
        self.assertIn("/x is already the transcoding output of /a", self.errors(
            "mounts { a { transcoding { enabled true outputs { o { path /x } } } } "
            "b { transcoding { enabled true outputs { o { path /x } } } } }"))
        self.assertIn("an output cannot have outputs of its own", self.errors(
            "mounts { a { transcoding { enabled true outputs { o { path /b } } } } "
            "b { transcoding { enabled true outputs { o { path /c } } } } }"))
        self.assertIn("the aac encoder has none", self.errors(ladder_config(low="quality 5")))
        self.assertIn("path is required", self.errors(
            "mounts { live { transcoding { enabled true outputs { a { format mp3 } } } } }"))
        self.assertIn("enabled with no outputs", self.errors("mounts { live { transcoding { enabled true } } }"))


class LadderTests(SynchronousTestCase):
    def setUp(self):
        self.t = Ladder(ladder_config(more="backup { }"))
        self.h = self.t.h

    def test_one_ffmpeg_feeds_every_output_mount(self):
        source, _ = self.h.source()
        self.assertEqual(self.t.spawned, [])  # nothing before the first chunk
        feed_frames(source, 40)
        [(protocol, argv)] = self.t.spawned
        self.assertIn("pipe:5", argv)
        self.assertTrue(protocol.transport.written.startswith(mp3_frame()))  # the stream in
        self.assertIsNone(self.t.mount("/live-320").source)  # until ffmpeg writes for it
        self.t.encode()
        listener, transport = self.h.listener("/live-320")
        for path, kind in (("/live-320", "audio/mpeg"), ("/live-96", "audio/ogg"), ("/live-64", "audio/aac")):
            mount = self.t.mount(path)
            self.assertEqual(mount.source.content_type, kind, path)
            self.assertEqual(mount.source.user_agent, "GoCast transcoder (ffmpeg)")
        self.t.write(3, mp3_frame(320) * 40)
        status, headers, body = split_response(transport.value())
        self.assertEqual((status, headers["content-type"], headers["icy-br"]), ("HTTP/1.0 200 OK", "audio/mpeg",
                                                                                 "320"))
        self.assertIn(mp3_frame(320) * 20, body)
        self.assertIn("transcoder.started", self.h.event_names())
        # The dashboard's row for the output says where it comes from.
        figures = mount_figures(self.t.mount("/live-64"))
        self.assertEqual((figures["transcoded_from"], figures["bitrate"]), ("/live", "64"))

    def test_now_playing_is_the_parents_on_every_output(self):
        source, _ = self.h.source()
        feed_frames(source, 40)
        self.t.encode()
        self.h.registry.get("/live").set_metadata(song="Artist - Title")
        for path in ("/live-320", "/live-96", "/live-64"):
            mount = self.t.mount(path)
            self.assertEqual((mount.artist, mount.title), ("Artist", "Title"), path)
        # ffmpeg's Ogg comments are not a title: the parent's stays.
        head, audio = opus_stream(8, "Lavf", pages=3)
        self.t.write(5, head + b"".join(audio))
        self.assertEqual(self.t.mount("/live-96").title, "Title")

    def test_without_a_fallback_the_outputs_stop_with_the_source(self):
        source, _ = self.h.source()
        feed_frames(source, 40)
        self.t.encode()
        listener, transport = self.h.listener("/live-64")
        protocol = self.t.spawned[0][0]
        close(source)
        self.t.reactor.advance(0)
        self.assertTrue(protocol.transport.stdin_closed)
        self.assertIsNone(self.t.mount("/live-64").source)
        self.assertTrue(transport.disconnecting)

    def test_the_fallback_is_transcoded_and_output_listeners_stay(self):
        self.t.reconfigure(ladder_config(parent="fallback /backup", more="backup { }"))
        backup, _ = self.h.source("/backup")
        feed_frames(backup, 10)
        source, _ = self.h.source()
        feed_frames(source, 40)
        self.t.encode()
        info = self.t.mount("/live-64").source
        listener, transport = self.h.listener("/live-64")
        close(source)
        feed_frames(backup, 40)
        self.t.reactor.advance(0)
        self.assertEqual(len(self.t.spawned), 2)  # ffmpeg again, on the fallback's stream
        self.assertTrue(self.t.spawned[0][0].transport.stdin_closed)
        self.assertTrue(self.t.spawned[1][0].transport.written.startswith(mp3_frame()))
        self.assertIs(self.t.mount("/live-64").source, info)
        self.assertFalse(transport.disconnecting)
        # The source comes back: the ladder goes home, and ffmpeg starts on its stream.
        source, _ = self.h.source()
        feed_frames(source, 40)
        self.assertEqual(len(self.t.spawned), 3)
        self.assertFalse(transport.disconnecting)

    def test_a_dead_ffmpeg_restarts_and_listeners_keep_their_connection(self):
        source, _ = self.h.source()
        feed_frames(source, 40)
        self.t.encode()
        info = self.t.mount("/live-320").source
        listener, transport = self.h.listener("/live-320")
        protocol = self.t.spawned[0][0]
        protocol.childDataReceived(2, b"Segmentation fault")
        protocol.processEnded(Failure(ProcessTerminated(signal=11)))
        self.t.reactor.advance(1)
        self.assertEqual(len(self.t.spawned), 2)
        self.assertEqual(self.t.ladders.of("/live").restarts, 1)
        self.assertIn("transcoder.restarted", self.h.event_names())
        self.t.write(3, mp3_frame(320) * 10)
        self.assertIs(self.t.mount("/live-320").source, info)
        self.assertFalse(transport.disconnecting)
        # A pipe of the dead process writes nothing any more.
        before = self.t.mount("/live-320").bytes_received
        protocol.childDataReceived(3, mp3_frame(320))
        self.assertEqual(self.t.mount("/live-320").bytes_received, before)

    def test_a_source_cannot_take_an_output_mount(self):
        _, transport = self.h.source("/live-64")
        self.assertIn(b"409", transport.value().split(b"\r\n")[0])
        self.assertIn(b"transcoding output of /live", transport.value())

    def test_an_output_removed_from_the_config_loses_its_source(self):
        source, _ = self.h.source()
        feed_frames(source, 40)
        self.t.encode()
        self.t.reconfigure(ladder_config().replace("high { path /live-320 format mp3 bitrate 320k }", ""))
        self.assertIsNone(self.t.mount("/live-320") and self.t.mount("/live-320").source)
        self.assertTrue(self.t.spawned[0][0].transport.stdin_closed)
        feed_frames(source, 20)
        self.assertNotIn("pipe:5", self.t.spawned[-1][1])  # two outputs now
        self.t.reconfigure(ladder_config().replace("enabled true", "enabled false"))
        self.assertTrue(self.t.spawned[-1][0].transport.stdin_closed)
        self.assertIsNone(self.t.ladders.of("/live"))


class OnDemandTests(SynchronousTestCase):
    def setUp(self):
        self.t = Ladder(ladder_config(low="on_demand true"))
        self.h = self.t.h
        self.source, _ = self.h.source()
        feed_frames(self.source, 40)

    def test_started_by_the_first_listener_stopped_after_the_last(self):
        [(_, always)] = self.t.spawned
        self.assertNotIn("adts", always)
        listener, transport = self.h.listener("/live-64")
        self.assertEqual(transport.value(), b"")  # waiting for it to start
        feed_frames(self.source, 20)
        [(protocol, argv)] = self.t.spawned[1:]
        self.assertEqual([a for a in argv if a.startswith("pipe:")], ["pipe:0", "pipe:3"])
        protocol.childDataReceived(3, adts_frame() * 30)
        status, headers, _ = split_response(transport.value())
        self.assertEqual((status, headers["content-type"]), ("HTTP/1.0 200 OK", "audio/aac"))
        self.t.reactor.advance(ON_DEMAND_LINGER)
        self.assertFalse(protocol.transport.stdin_closed)  # still listened to
        close(listener)
        self.t.reactor.advance(ON_DEMAND_LINGER)
        self.assertTrue(protocol.transport.stdin_closed)
        self.assertIsNone(self.t.mount("/live-64").source)
        self.assertFalse(self.t.spawned[0][0].transport.stdin_closed)  # the others go on

    def test_a_listener_waits_no_longer_than_the_linger_for_audio(self):
        listener, transport = self.h.listener("/live-64")
        feed_frames(self.source, 20)  # ffmpeg starts, and never writes
        self.t.reactor.advance(ON_DEMAND_LINGER)
        self.assertIn(b"404", transport.value().split(b"\r\n")[0])
        self.t.reactor.advance(ON_DEMAND_LINGER)
        self.assertTrue(self.t.spawned[-1][0].transport.stdin_closed)  # nobody left: it stops
