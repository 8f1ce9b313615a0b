"""
Recordings (gocast.outputs.recorder): a subscriber writing what the source
sends, in files named from a template, rotated by size or at the
wall-clock hour or midnight of a time zone (DST included), written under a
.part name and renamed when closed; Ogg files each start with the stream's
headers; a folder that cannot be written stops the recording, not the
stream.
"""

import json
import os
from datetime import datetime
from zoneinfo import ZoneInfo

import mutagen
from mutagen.id3 import ID3
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gocast.config import ConfigError, parse_config
from gocast.core.events import EventBus
from gocast.core.mount import Mount, SourceInfo
from gocast.outputs.recorder import (
    RETENTION_EVERY, RETRY_AFTER, Recorder, Recorders, expired, file_name, next_boundary,
)

from .media_builders import mp3_frame, opus_stream
from .test_transcode import FakeProcessTransport

PARIS = ZoneInfo("Europe/Paris")


class Time:
    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now


class RecorderTests(SynchronousTestCase):
    def setUp(self):
        self.folder = self.mktemp()
        self.time = Time(datetime(2026, 12, 3, 10, 59, 0, tzinfo=PARIS).timestamp())

    def mount(self, recording="enabled true", content_type="audio/mpeg"):
        config = parse_config("mounts { live { recording { %s } } }" % recording).config
        self.events = []
        bus = EventBus(self.time)
        bus.subscribe(self.events.append)
        mount = Mount("/live", config.mounts["/live"], config.limits, bus)
        recorders = Recorders(self.time, lambda path: self.folder)
        recorders.attach(mount)
        mount.start_source(SourceInfo(content_type))
        return mount, recorders.recorders["/live"]

    def files(self):
        """The recordings (their track lists aside)."""
        return sorted(n for n in os.listdir(self.folder) if not n.endswith(".tracks.json"))

    def tracks(self, name):
        with open(os.path.join(self.folder, name + ".tracks.json")) as f:
            return json.load(f)

    def audio(self, name):
        """An MP3 recording's frames, after its ID3 tag."""
        content = self.content(name)
        return content[content.index(b"\xff\xfb"):]

    def content(self, name):
        with open(os.path.join(self.folder, name), "rb") as f:
            return f.read()

    def test_records_the_source_as_it_came_under_a_part_name_until_closed(self):
        mount, recorder = self.mount('enabled true timezone "Europe/Paris" format source')
        mount.set_metadata(song="Artist - First")
        audio = mp3_frame() * 40
        mount.feed(audio[:len(audio) // 2])
        self.time.now += 12.5
        mount.set_metadata(song="Artist - Second")
        mount.feed(audio[len(audio) // 2:])
        self.assertEqual(self.files(), ["live-20261203-105900.mp3.part"])
        self.time.now += 30
        mount.stop_source()
        recorder.source_stopped()
        name = "live-20261203-105900.mp3"
        self.assertEqual(self.files(), [name])
        self.assertTrue(audio.startswith(self.audio(name)))  # the source's bytes, whole frames
        tags = ID3(os.path.join(self.folder, name))
        self.assertEqual(str(tags["TIT2"]), "/live 2026-12-03 10:59:00-10:59:42")
        self.assertEqual((str(tags["TPE1"]), str(tags["TALB"]), str(tags["TDRC"])), ("/live", "/live", "2026-12-03"))
        self.assertEqual(str(tags.getall("COMM")[0]), "last title: Artist - Second")
        self.assertEqual(self.tracks(name)["tracks"], [{"offset": 0.0, "title": "Artist - First"},
                                                      {"offset": 12.5, "title": "Artist - Second"}])
        self.assertEqual([e.name for e in self.events if e.name.startswith("recording.")],
                         ["recording.started", "recording.finished"])
        finished = [e for e in self.events if e.name == "recording.finished"][0]
        self.assertEqual(finished.data["file"], name)

    def test_hourly_rotation_at_the_top_of_the_hour_in_the_time_zone(self):
        mount, _ = self.mount('enabled true rotation hourly timezone "Europe/Paris"')
        for _ in range(4):  # 10:59:00 to 11:01:00, a chunk every 30 s
            mount.feed(mp3_frame() * 10)
            self.time.now += 30
        self.assertEqual(self.files(), ["live-20261203-105900.mp3", "live-20261203-110000.mp3.part"])

    def test_size_rotation_between_chunks(self):
        mount, _ = self.mount("enabled true rotation size:10KB")
        audio = [mp3_frame() * 10 for _ in range(12)]  # 12 chunks of 4.2 KB
        for chunk in audio:
            mount.feed(chunk)
            self.time.now += 1
        names = self.files()
        self.assertEqual(len(names), 4)  # three files of three chunks, the fourth still open
        self.assertTrue(names[-1].endswith(".part"))
        recorded = b"".join(self.audio(name) for name in names[:-1])
        self.assertEqual(recorded, b"".join(audio)[:len(recorded)])
        self.assertTrue(all(10 * 1024 <= len(self.audio(n)) < 14 * 1024 for n in names[:-1]))

    def test_each_ogg_file_starts_with_the_stream_headers(self):
        mount, _ = self.mount("enabled true rotation size:2KB", content_type="application/ogg")
        headers, pages = opus_stream(pages=150)
        mount.feed(headers)
        for page in pages:
            mount.feed(page)
            self.time.now += 0.02
        names = self.files()
        self.assertGreater(len(names), 2)
        opus_head = headers[:headers.index(b"OggS", 4)]  # the first page; the next, OpusTags, gets the tags
        for name in names:
            self.assertTrue(name.endswith((".ogg", ".ogg.part")))
            self.assertTrue(self.content(name).startswith(opus_head), name)
        tagged = mutagen.File(os.path.join(self.folder, names[0]))
        self.assertEqual(tagged.tags["album"], ["/live"])

    def test_an_unwritable_folder_stops_the_recording_not_the_stream(self):
        with open(self.folder, "w"):
            pass  # a file where the folder should be
        mount, recorder = self.mount()
        listener = Listener()
        mount.add_subscriber(listener)
        mount.feed(mp3_frame() * 40)
        self.assertEqual([e.name for e in self.events if e.name.startswith("recording.")], ["recording.failed"])
        self.assertTrue(listener.chunks)  # the stream goes on
        self.assertEqual(len(self.flushLoggedErrors()), 0)
        os.remove(self.folder)
        mount.feed(mp3_frame() * 40)
        self.assertFalse(os.path.exists(self.folder))  # not before RETRY_AFTER
        self.time.now += RETRY_AFTER
        mount.feed(mp3_frame() * 40)
        self.assertEqual(len(os.listdir(self.folder)), 1)

    def test_record_fallback_follows_listeners(self):
        mount, recorder = self.mount("enabled true record_fallback true")
        self.assertTrue(recorder.follows_fallback)
        mount.feed(mp3_frame() * 40)
        recorder.source_stopped()
        self.assertTrue(self.files()[0].endswith(".part"))  # still recording (what the fallback plays next)
        other, _ = self.mount("enabled true")
        recorder.moved(other)
        self.assertFalse(self.files()[0].endswith(".part"))  # a new stream: a new file


class RetentionTests(SynchronousTestCase):
    def setUp(self):
        self.folder = self.mktemp()
        os.makedirs(self.folder)
        self.now = 1_800_000_000.0
        # Three of /live's recordings a day apart (one renamed with a counter), /news's, another file, one open.
        for name, days_old, size in (("live-20270112-100000.mp3", 3, 3000), ("live-20270113-100000.mp3", 2.2, 2000),
                                     ("live-20270113-100000-1.mp3", 1.5, 1500), ("live-20270114-100000.mp3", 1, 1000),
                                     ("news-20270101-100000.mp3", 30, 5000), ("notes.txt", 30, 10),
                                     ("live-20270115-100000.mp3.part", 40, 10)):
            path = os.path.join(self.folder, name)
            with open(path, "wb") as f:
                f.write(b"x" * size)
            os.utime(path, (self.now - days_old * 86400,) * 2)

    def recorders(self, recording):
        config = parse_config('mounts { live { recording { enabled true path "%s" %s } } }'
                              % (self.folder, recording)).config
        mount = Mount("/live", config.mounts["/live"], config.limits, EventBus(lambda: self.now))
        clock = Clock()
        recorders = Recorders(lambda: self.now, lambda path: path, clock)
        recorders.attach(mount)  # retention at start
        return recorders, clock

    def test_max_age_at_start_and_hourly_touches_only_the_mounts_closed_files(self):
        recorders, clock = self.recorders("max_age 2d")
        self.assertEqual(sorted(os.listdir(self.folder)), [
            "live-20270113-100000-1.mp3", "live-20270114-100000.mp3", "live-20270115-100000.mp3.part",
            "news-20270101-100000.mp3", "notes.txt"])
        self.now += 86400 * 0.6
        clock.advance(RETENTION_EVERY)
        self.assertNotIn("live-20270113-100000-1.mp3", os.listdir(self.folder))
        self.assertIn("live-20270114-100000.mp3", os.listdir(self.folder))
        recorders.close_all()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_hourly_also_for_a_mount_that_records_no_more(self):
        config = parse_config('mounts { live { recording { path "%s" max_age 2d } } }' % self.folder).config
        mount = Mount("/live", config.mounts["/live"], config.limits, EventBus(lambda: self.now))
        clock = Clock()
        recorders = Recorders(lambda: self.now, lambda path: path, clock)
        recorders.mounts = lambda: [mount]
        recorders.attach(mount)  # not enabled: no recorder, but schedules or a hand might have recorded it
        self.assertIn("live-20270112-100000.mp3", os.listdir(self.folder))
        clock.advance(RETENTION_EVERY)
        self.assertNotIn("live-20270112-100000.mp3", os.listdir(self.folder))
        self.assertIn("live-20270114-100000.mp3", os.listdir(self.folder))
        recorders.close_all()

    def test_max_size_deletes_the_oldest_first(self):
        self.recorders("max_size 3000")
        self.assertEqual(sorted(n for n in os.listdir(self.folder) if n.startswith("live")), [
            "live-20270113-100000-1.mp3", "live-20270114-100000.mp3", "live-20270115-100000.mp3.part"])

    def test_expired(self):
        recordings = [("a", 10.0, 5), ("b", 20.0, 5), ("c", 30.0, 5)]
        self.assertEqual(expired(recordings, 0, 0, 100.0), [])
        self.assertEqual(expired(recordings, 85, 0, 100.0), ["a"])
        self.assertEqual(expired(recordings, 0, 10, 100.0), ["a"])
        self.assertEqual(expired(recordings, 85, 5, 100.0), ["a", "b"])


class Listener:
    is_listener = True

    def __init__(self):
        self.chunks = []

    def chunk(self, chunk):
        self.chunks.append(chunk)


class NamesAndBoundariesTests(SynchronousTestCase):
    def test_file_names_are_never_paths(self):
        start = datetime(2026, 12, 3, 10, 0, 0, tzinfo=PARIS)
        self.assertEqual(file_name("{mount}-{start:%Y%m%d-%H%M%S}.{ext}", "/radio/live", start, "mp3"),
                         "radio_live-20261203-100000.mp3")
        self.assertEqual(file_name("{mount}.{ext}", "/../../etc/passwd", start, "mp3"), "etc_passwd.mp3")

    def test_hourly_and_daily_across_dst(self):
        spring = datetime(2026, 3, 29, 1, 30, tzinfo=PARIS)  # 02:00 does not exist that night
        self.assertEqual(next_boundary("hourly", spring).timestamp() - spring.timestamp(), 1800)
        self.assertEqual(next_boundary("hourly", spring).strftime("%H:%M %z"), "03:00 +0200")
        autumn = datetime(2026, 10, 25, 2, 30, tzinfo=PARIS)  # the first 02:30 (summer time)
        following = next_boundary("hourly", autumn)
        self.assertEqual(following.timestamp() - autumn.timestamp(), 1800)
        self.assertEqual(following.strftime("%H:%M %z"), "02:00 +0100")  # the second 02:00
        day = datetime(2026, 3, 29, 0, 0, tzinfo=PARIS)
        self.assertEqual(next_boundary("daily", day).timestamp() - day.timestamp(), 23 * 3600)
        self.assertEqual(next_boundary("daily", day).strftime("%Y-%m-%d %H:%M"), "2026-03-30 00:00")
        self.assertIsNone(next_boundary("size:100MB", day))


class RecordingConfigTests(SynchronousTestCase):
    def test_checked_settings(self):
        for text, message in (('timezone "Mars/Olympus"', "IANA time zone"),
                              ('template "../{mount}.{ext}"', "without / or .."),
                              ('template "{nope}.{ext}"', "without / or .."),
                              ("rotation weekly", "hourly, daily or size")):
            with self.assertRaises(ConfigError) as raised:
                parse_config("mounts { live { recording { %s } } }" % text)
            self.assertIn(message, str(raised.exception), text)
        loaded = parse_config("mounts { live { recording { enabled true format mp3 bitrate 96k } } }")
        self.assertEqual(loaded.warnings, ())
        self.assertEqual((loaded.config.mounts["/live"].recording.format,
                          loaded.config.mounts["/live"].recording.bitrate), ("mp3", 96000))


class RecorderUnitTests(SynchronousTestCase):
    def test_not_a_listener(self):
        self.assertFalse(Recorder.is_listener)


class FinishingTests(SynchronousTestCase):
    def test_a_file_that_cannot_be_finished_does_not_stop_the_next(self):
        from twisted.internet.defer import fail

        folder = self.mktemp()
        config = parse_config("mounts { live { recording { enabled true rotation size:4KB } } }").config
        events = []
        bus = EventBus(lambda: 1000.0)
        bus.subscribe(events.append)
        mount = Mount("/live", config.mounts["/live"], config.limits, bus)
        recorders = Recorders(lambda: 1000.0, lambda path: folder,
                              run_in_thread=lambda f, *args: fail(OSError(28, "No space left on device")))
        recorders.attach(mount)
        mount.start_source(SourceInfo("audio/mpeg"))
        for _ in range(3):
            mount.feed(mp3_frame() * 10)
        recorder = recorders.recorders["/live"]
        self.assertIsNotNone(recorder.file)  # the current file goes on
        self.assertEqual(recorder.failures, 2)  # two files closed, neither finished
        self.assertIn("No space left on device", [e for e in events if e.name == "recording.failed"][0].data["reason"])
        self.assertEqual(len(self.flushLoggedErrors()), 0)


class ScheduleTests(SynchronousTestCase):
    """Scheduled recordings on a Clock: started at the cron time of the time zone, stopped after duration."""

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(datetime(2026, 12, 3, 17, 59, 0, tzinfo=PARIS).timestamp())
        self.folder = self.mktemp()

    def recorders(self, schedule='evening { cron "0 18 * * 1-5" duration 1h }', leads=True):
        config = parse_config('mounts { live { recording { timezone "Europe/Paris" schedule { %s } } } }'
                              % schedule).config
        self.events = []
        bus = EventBus(self.clock.seconds)
        bus.subscribe(self.events.append)
        self.mount = Mount("/live", config.mounts["/live"], config.limits, bus)
        recorders = Recorders(self.clock.seconds, lambda path: self.folder, self.clock)
        recorders.mounts = lambda: [self.mount]
        recorders.leads = lambda: leads
        recorders.attach(self.mount)
        self.mount.start_source(SourceInfo("audio/mpeg"))
        self.addCleanup(recorders.close_all)
        return recorders

    def starts(self):
        """The armed starts of scheduled recordings."""
        return [call for call in self.clock.getDelayedCalls() if getattr(call.func, "__name__", "") == "_due"]

    def feed_for(self, seconds):
        for _ in range(int(seconds)):
            self.mount.feed(mp3_frame() * 38)  # about a second of 128 kbps
            self.clock.advance(1)

    def test_starts_at_the_cron_time_and_stops_after_its_duration(self):
        recorders = self.recorders()
        self.feed_for(30)
        self.assertEqual(recorders.recorders, {})  # 17:59:30: not yet
        self.feed_for(60)
        recorder = recorders.recorders["/live"]
        self.assertEqual(recorder.schedule_name, "evening")
        self.assertEqual(os.listdir(self.folder), ["live-20261203-180000.mp3.part"])
        self.clock.advance(3600)
        self.assertEqual(recorders.recorders, {})
        self.assertEqual(sorted(os.listdir(self.folder)),
                         ["live-20261203-180000.mp3", "live-20261203-180000.mp3.tracks.json"])
        [next_day] = [call.getTime() for call in self.starts()]
        self.assertEqual(datetime.fromtimestamp(next_day, PARIS), datetime(2026, 12, 4, 18, 0, tzinfo=PARIS))

    def test_only_on_the_leader(self):
        recorders = self.recorders(leads=False)
        self.feed_for(90)
        self.assertEqual(recorders.recorders, {})

    def test_a_reload_rearms_and_a_removed_entry_is_forgotten(self):
        recorders = self.recorders()
        config = parse_config('mounts { live { recording { schedule { } } } }').config
        self.mount.reconfigure(config.mounts["/live"], config.limits)
        recorders.attach(self.mount)
        self.feed_for(90)
        self.assertEqual(recorders.recorders, {})
        self.assertEqual(self.starts(), [])

    def test_across_a_dst_change(self):
        from gocast.outputs.recorder import next_start

        before = datetime(2026, 3, 28, 18, 0, tzinfo=PARIS).timestamp()
        self.assertEqual(next_start("0 18 * * *", before, "Europe/Paris") - before, 23 * 3600)
        autumn = datetime(2026, 10, 24, 18, 0, tzinfo=PARIS).timestamp()
        self.assertEqual(next_start("0 18 * * *", autumn, "Europe/Paris") - autumn, 25 * 3600)

    def test_schedule_settings_are_checked(self):
        with self.assertRaises(ConfigError) as raised:
            parse_config('mounts { live { recording { schedule { x { duration 1h } } } } }')
        self.assertIn("cron is required", str(raised.exception))
        with self.assertRaises(ConfigError):
            parse_config('mounts { live { recording { schedule { x { cron "61 * * * *" } } } } }')


class TranscodingTests(SynchronousTestCase):
    """format mp3|aac|opus: one ffmpeg a file, fed the chunks, its output the file; a file ends when it exits."""

    def setUp(self):
        self.folder = self.mktemp()
        self.spawned = []

    def spawn(self, encoder, fmt, bitrate):
        encoder.makeConnection(FakeProcessTransport())
        self.spawned.append((encoder, fmt, bitrate))

    def recorder(self, recording, content_type="application/ogg"):
        config = parse_config("mounts { live { recording { enabled true %s } } }" % recording).config
        self.events = []
        bus = EventBus(lambda: 1000.0)
        bus.subscribe(self.events.append)
        mount = Mount("/live", config.mounts["/live"], config.limits, bus)
        recorders = Recorders(lambda: 1000.0, lambda path: self.folder, spawn=self.spawn)
        recorders.attach(mount)
        mount.start_source(SourceInfo(content_type))
        return mount, recorders.recorders["/live"]

    def test_each_file_is_its_own_ffmpeg_stream(self):
        mount, recorder = self.recorder("format opus bitrate 64k rotation size:1KB")
        headers, pages = opus_stream(pages=30)
        mount.feed(headers)
        mount.feed(b"".join(pages[:15]))
        [(first, fmt, bitrate)] = self.spawned
        self.assertEqual((fmt, bitrate), ("opus", 64000))
        self.assertTrue(first.transport.written.startswith(headers))  # ffmpeg reads the Ogg headers first
        first.outReceived(b"OggS encoded" * 100)  # ffmpeg's output: 1.2 KB, past the size
        self.assertEqual(os.listdir(self.folder), ["live-19700101-001640.opus.part"])
        mount.feed(b"".join(pages[15:]))  # the next chunk: a new file, a new ffmpeg; the first one flushes
        self.assertTrue(first.transport.stdin_closed)
        self.assertEqual(len(self.spawned), 2)
        self.assertTrue(self.spawned[1][0].transport.written.startswith(headers))
        first.outReceived(b" tail")
        first.processEnded(Failure(ProcessDone(0)))
        names = sorted(os.listdir(self.folder))
        self.assertEqual(names, ["live-19700101-001640-1.opus.part", "live-19700101-001640.opus",
                                 "live-19700101-001640.opus.tracks.json"])
        with open(os.path.join(self.folder, "live-19700101-001640.opus"), "rb") as f:
            self.assertTrue(f.read().endswith(b"encoded tail"))  # (mutagen could not tag this fake; logged)
        self.flushLoggedErrors()

    def test_an_ffmpeg_that_dies_keeps_its_output_and_starts_again(self):
        mount, recorder = self.recorder("format mp3", content_type="audio/mpeg")
        mount.feed(mp3_frame() * 10)
        [(encoder, _, _)] = self.spawned
        encoder.outReceived(mp3_frame() * 3)
        encoder.errReceived(b"Error while encoding\n")
        encoder.processEnded(Failure(ProcessTerminated(1)))
        self.assertEqual([e.data["reason"] for e in self.events if e.name == "recording.failed"],
                         ["ffmpeg stopped: Error while encoding"])
        self.assertIn("live-19700101-001640.mp3", os.listdir(self.folder))  # what it made is kept
        self.assertIsNone(recorder.file)
        self.assertEqual(len(self.flushLoggedErrors()), 0)
