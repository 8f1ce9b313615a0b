"""The mount's shared frame stream: chunks, ring bound, burst, metadata."""

from twisted.trial.unittest import SynchronousTestCase

from gocast.config import parse_config
from gocast.core.events import EventBus
from gocast.core.mount import (
    CHUNK_SECONDS, FANOUT_SLICE, LATENCY_BUDGET, MIN_CHUNK_SECONDS, Mount, MountInUse, SourceInfo, chunk_seconds_for,
    icy_metadata,
)

from .media_builders import mp3_frame, opus_stream


class Recorder:
    """A subscriber that remembers what it was given."""

    def __init__(self):
        self.chunks = []
        self.metadata = 0
        self.detached = None
        self.mount = None

    def chunk(self, chunk):
        self.chunks.append(chunk)

    def metadata_changed(self):
        self.metadata += 1

    def moved(self, mount):
        self.mount = mount

    def detach(self, reason):
        self.detached = reason


def make_mount(text="", path="/live"):
    config = parse_config(text).config
    events = []
    bus = EventBus(lambda: 1000.0)
    bus.subscribe(events.append)
    mount_config = config.mounts.get(path) or parse_config("mounts { x { } }").config.mounts["/x"]
    return Mount(path, mount_config, config.limits, bus), events


class MountStreamTests(SynchronousTestCase):
    def test_frames_gathered_into_chunks(self):
        mount, events = make_mount()
        mount.start_source(SourceInfo("audio/mpeg", "1.2.3.4"))
        listener = Recorder()
        mount.add_subscriber(listener)
        frame = mp3_frame()
        per_chunk = int(CHUNK_SECONDS / (1152 / 44100)) + 1
        for _ in range(50):
            mount.feed(frame)
        self.assertTrue(listener.chunks)
        for chunk in listener.chunks:
            self.assertEqual(len(chunk.data) % len(frame), 0)
            self.assertGreaterEqual(chunk.duration, CHUNK_SECONDS)
        self.assertEqual(len(listener.chunks[0].data), per_chunk * len(frame))
        self.assertEqual([e.name for e in events], ["source.connect"])
        self.assertIs(listener.chunks[0].data, mount.ring[0].data)

    def test_same_bytes_object_for_every_subscriber(self):
        mount, _ = make_mount()
        mount.start_source(SourceInfo("audio/mpeg"))
        a, b = Recorder(), Recorder()
        mount.add_subscriber(a)
        mount.add_subscriber(b)
        mount.feed(mp3_frame() * 20)
        self.assertIs(a.chunks[0].data, b.chunks[0].data)

    def test_ring_bounded_by_queue_size(self):
        mount, _ = make_mount("limits { queue_size 20k burst_size 4k }")
        mount.start_source(SourceInfo("audio/mpeg"))
        for _ in range(50):
            mount.feed(mp3_frame() * 10)
        self.assertLessEqual(mount.ring_bytes, 20 * 1024)
        self.assertEqual(mount.ring_bytes, sum(len(c.data) for c in mount.ring))
        self.assertIsNone(mount.chunks_after(0))
        self.assertEqual(list(mount.chunks_after(mount.next_seq - 2)), [mount.ring[-1]])

    def test_burst_starts_on_frame_boundary_within_size(self):
        mount, _ = make_mount("limits { burst_size 8k }")
        mount.start_source(SourceInfo("audio/mpeg"))
        for _ in range(20):
            mount.feed(mp3_frame() * 5)
        burst = mount.burst()
        total = b"".join(burst)
        self.assertLessEqual(len(total), 8 * 1024)
        self.assertGreater(len(total), 4 * 1024)
        self.assertEqual(total[:2], b"\xff\xfb")
        self.assertEqual(total, b"".join(c.data for c in list(mount.ring)[-len(burst):]))

    def test_ogg_burst_sends_headers_first(self):
        headers, audio = opus_stream(pages=int(CHUNK_SECONDS / 0.02) * 3)
        mount, _ = make_mount()
        mount.start_source(SourceInfo("application/ogg"))
        mount.feed(headers + b"".join(audio))
        burst = mount.burst()
        self.assertEqual(burst[0], headers)
        self.assertTrue(b"".join(burst[1:]).startswith(b"OggS"))
        self.assertNotIn(b"OpusHead", b"".join(burst[1:]))

    def test_ogg_title_from_comments(self):
        headers, audio = opus_stream(title="In band")
        mount, events = make_mount()
        mount.start_source(SourceInfo("application/ogg"))
        mount.feed(headers + b"".join(audio))
        self.assertEqual((mount.title, mount.artist), ("In band", "Band"))
        self.assertIn("source.metadata", [e.name for e in events])

    def test_a_failing_subscriber_is_cut_off_and_the_others_go_on(self):
        mount, _ = make_mount()

        class Broken(Recorder):
            def chunk(self, chunk):
                raise RuntimeError("a bug")

        broken, good = Broken(), Recorder()
        mount.add_subscriber(broken)
        mount.add_subscriber(good)
        mount.start_source(SourceInfo("audio/mpeg"))
        mount.feed(mp3_frame() * 40)
        mount.stop_source()
        self.assertTrue(good.chunks)
        self.assertEqual(broken.detached, "internal error")
        self.assertNotIn(broken, mount.subscribers)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_second_source_refused(self):
        mount, _ = make_mount()
        mount.start_source(SourceInfo("audio/mpeg"))
        self.assertRaises(MountInUse, mount.start_source, SourceInfo("audio/mpeg"))

    def test_stop_flushes_and_publishes(self):
        mount, events = make_mount()
        mount.start_source(SourceInfo("audio/mpeg", "9.9.9.9"))
        listener = Recorder()
        mount.add_subscriber(listener)
        mount.feed(mp3_frame() * 2)
        self.assertEqual(listener.chunks, [])
        info = mount.stop_source()
        self.assertEqual(info.peer, "9.9.9.9")
        self.assertEqual(len(listener.chunks), 1)
        self.assertEqual(events[-1].name, "source.disconnect")


class MetadataTests(SynchronousTestCase):
    def test_song_split(self):
        mount, events = make_mount()
        listener = Recorder()
        mount.add_subscriber(listener)
        mount.set_metadata(song="Queen - Bohemian Rhapsody")
        self.assertEqual((mount.artist, mount.title), ("Queen", "Bohemian Rhapsody"))
        self.assertEqual(listener.metadata, 1)
        self.assertEqual(events[-1].data["song"], "Queen - Bohemian Rhapsody")

    def test_metadata_is_bounded_and_clean_from_every_door(self):
        mount, events = make_mount()
        mount.set_metadata(song="Band - Title';StreamUrl='http://evil/';\x1b[2J" + "x" * 5000)
        self.assertLessEqual(max(len(mount.title), len(mount.artist)), 1024)
        self.assertNotIn("';", mount.song)
        self.assertNotIn("\x1b", mount.song)
        self.assertTrue(icy_metadata(mount.song)[1:].startswith(b"StreamTitle='Band - Title' ;StreamUrl='http"))
        self.assertEqual(icy_metadata(mount.song).count(b"';"), 1)  # only the real end of StreamTitle
        mount.set_metadata(title="T\r\nX", artist="A\x00B")
        self.assertEqual((mount.title, mount.artist), ("T  X", "A B"))

    def test_icy_block(self):
        block = icy_metadata("It's - O'Clock", "http://x")
        text = b"StreamTitle='It's - O'Clock';StreamUrl='http://x';"
        self.assertEqual(block[0], -(-len(text) // 16))
        self.assertEqual(block[1:], text.ljust(block[0] * 16, b"\x00"))

    def test_icy_block_always_ends_with_nul(self):
        """Icecast relaying us reads the block as a C string: a full block would lose its ';'."""
        text = b"StreamTitle='GoCast - Upstream';"
        self.assertEqual(len(text), 32)
        block = icy_metadata("GoCast - Upstream")
        self.assertEqual(block[0], 3)
        self.assertEqual(block[1:], text + b"\x00" * 16)
        self.assertEqual(icy_metadata("é" * 5000)[-1:], b"\x00")

    def test_icy_block_limit_and_charset(self):
        block = icy_metadata("é" * 5000)
        self.assertEqual(block[0], 255)
        self.assertEqual(len(block), 1 + 255 * 16)
        block[1:].rstrip(b"\x00").decode("utf-8")  # never cut inside a character
        self.assertIn(b"caf\xe9", icy_metadata("café", charset="ISO-8859-1"))

    def test_icy_block_cached(self):
        mount, _ = make_mount()
        mount.set_metadata(song="A")
        self.assertIs(mount.icy_block(), mount.icy_block())
        mount.set_metadata(song="B")
        self.assertIn(b"'B'", mount.icy_block())

    def test_listener_headers(self):
        mount, _ = make_mount('mounts { live { genre "Jazz" bitrate 192k } }')
        mount.start_source(SourceInfo("audio/mpeg", ice={
            "ice-name": "Src", "ice-genre": "Rock", "ice-public": "1",
            "ice-audio-info": "bitrate=128;samplerate=44100;channels=2"}))
        headers = dict(mount.listener_headers())
        self.assertEqual(headers["icy-name"], "Src")
        self.assertEqual(headers["icy-genre"], "Jazz")
        self.assertEqual(headers["icy-br"], "192")
        self.assertEqual(headers["icy-pub"], "1")
        self.assertEqual(headers["ice-audio-info"], "bitrate=128;samplerate=44100;channels=2")


class SlicedFanOutTests(SynchronousTestCase):
    """Past FANOUT_SLICE subscribers a chunk goes out in slices, one reactor turn each, in order."""

    def setUp(self):
        from twisted.internet.task import Clock

        self.clock = Clock()
        mount, self.events = make_mount()
        self.mount = Mount("/live", mount.config, mount.limits, mount.bus, lambda f: self.clock.callLater(0, f))
        self.mount.start_source(SourceInfo("audio/mpeg"))
        self.subscribers = [Recorder() for _ in range(FANOUT_SLICE * 2 + 10)]
        for subscriber in self.subscribers:
            self.mount.add_subscriber(subscriber)

    def feed_chunk(self):
        for _ in range(12):  # 12 frames of 26 ms: one chunk
            self.mount.feed(mp3_frame())

    def test_slices_in_order(self):
        self.feed_chunk()
        told = [len(s.chunks) for s in self.subscribers]
        self.assertEqual(sum(told), FANOUT_SLICE)  # the first slice only, now
        self.feed_chunk()  # a second chunk while the first is still going out
        self.assertEqual(sum(len(s.chunks) for s in self.subscribers), FANOUT_SLICE)
        for _ in range(10):
            self.clock.advance(0)
        for subscriber in self.subscribers:
            self.assertEqual([c.seq for c in subscriber.chunks], [0, 1])

    def test_gone_and_new_subscribers(self):
        self.feed_chunk()
        gone = self.subscribers[-1]
        self.mount.remove_subscriber(gone)
        late = Recorder()
        self.mount.add_subscriber(late)  # it gets the burst; the chunk already in flight is not for it
        for _ in range(10):
            self.clock.advance(0)
        self.assertEqual(gone.chunks, [])
        self.assertEqual(late.chunks, [])
        self.feed_chunk()
        for _ in range(10):
            self.clock.advance(0)
        self.assertEqual([c.seq for c in late.chunks], [1])

    def test_chunks_shorten_while_fan_outs_take_long_and_grow_back(self):
        from gocast.core.events import EventBus

        mount = Mount("/live", self.mount.config, self.mount.limits, EventBus(self.clock.seconds),
                      lambda f: self.clock.callLater(0.004, f))  # each slice of 500 takes 4 ms
        mount.start_source(SourceInfo("audio/mpeg"))
        crowd = [Recorder() for _ in range(FANOUT_SLICE * 20)]  # 10,000: a chunk takes 76 ms to reach all
        for subscriber in crowd:
            mount.add_subscriber(subscriber)
        for _ in range(40):
            for _ in range(int(mount.chunk_seconds / (1152 / 44100)) + 1):
                mount.feed(mp3_frame())
            self.clock.pump([0.004] * 75)
        self.assertAlmostEqual(mount.fanout_seconds, 0.076, places=3)  # the first slice at once, 19 more
        self.assertAlmostEqual(mount.chunk_seconds, LATENCY_BUDGET - 0.076, places=3)
        self.assertLess(crowd[-1].chunks[-1].duration, CHUNK_SECONDS - 0.02)  # the chunks did shorten
        for subscriber in crowd[FANOUT_SLICE:]:
            mount.remove_subscriber(subscriber)
        for _ in range(40):  # a small audience again: chunks go out at once
            mount.feed(mp3_frame())
            self.clock.pump([0.004] * 8)
        self.assertEqual(mount.chunk_seconds, CHUNK_SECONDS)

    def test_chunk_length_by_fan_out_time(self):
        self.assertEqual(chunk_seconds_for(0.0), CHUNK_SECONDS)
        self.assertEqual(chunk_seconds_for(0.02), CHUNK_SECONDS)  # a thousand listeners
        self.assertAlmostEqual(chunk_seconds_for(0.12), LATENCY_BUDGET - 0.12)  # ten thousand
        self.assertAlmostEqual(chunk_seconds_for(0.15), 0.15 / 0.75)  # latency no longer worth the CPU
        self.assertEqual(chunk_seconds_for(0.5), CHUNK_SECONDS)
        self.assertGreaterEqual(min(chunk_seconds_for(x / 100) for x in range(100)), MIN_CHUNK_SECONDS)

    def test_a_failing_subscriber_is_cut_off_alone(self):
        bad = self.subscribers[FANOUT_SLICE + 3]
        bad.chunk = lambda chunk: 1 / 0
        self.feed_chunk()
        for _ in range(10):
            self.clock.advance(0)
        self.assertEqual(bad.detached, "internal error")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertTrue(all(len(s.chunks) == 1 for s in self.subscribers if s is not bad))
