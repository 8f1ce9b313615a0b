"""Fallback files, played at their real bitrate on the reactor's clock."""

import json

from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from gocast.inputs.file import LEAD

from .media_builders import mp3_frame
from .streaming import Harness, close, feed_frames, split_response

FRAME = mp3_frame()  # 417 bytes, 1152 samples at 44.1 kHz: 16,000 bytes/s
BYTES_PER_SECOND = len(FRAME) * 44100 / 1152


class FileFallbackTests(SynchronousTestCase):
    def harness(self, loop="true", frames=100):
        path = FilePath(self.mktemp() + ".mp3")
        path.setContent(FRAME * frames)
        return Harness('limits { burst_size 4k } mounts { live { fallback { file "%s" loop %s } } }'
                       % (path.path, loop))

    def test_listeners_hear_the_file_in_real_time(self):
        h = self.harness()
        source, _ = h.source()
        feed_frames(source, 20)
        _, transport = h.listener()
        close(source)
        transport.clear()
        h.clock.advance(0)
        for _ in range(100):  # ten seconds, in ticks
            h.clock.advance(0.1)
        received = len(transport.value())
        self.assertGreater(received, 9.5 * BYTES_PER_SECOND)
        self.assertLess(received, (10 + LEAD + 0.2) * BYTES_PER_SECOND)
        self.assertFalse(transport.disconnecting)

    def test_source_return_stops_the_player(self):
        h = self.harness()
        source, _ = h.source()
        _, transport = h.listener()
        close(source)
        h.clock.advance(1)
        source, _ = h.source()
        self.assertEqual(h.registry.get("/live").listeners, 1)
        self.assertEqual(h.registry.file_mounts, {})
        self.assertFalse([c for c in h.clock.getDelayedCalls() if c.active()
                          and "tick" in repr(c.func)])

    def test_new_listener_of_silent_mount_gets_the_file(self):
        h = self.harness()
        _, transport = h.listener()
        status, headers, body = split_response(transport.value())
        self.assertEqual(status, "HTTP/1.0 200 OK")
        self.assertEqual(headers["content-type"], "audio/mpeg")
        self.assertTrue(body.startswith(b"\xff\xfb"))

    def test_last_listener_leaving_stops_the_player(self):
        h = self.harness()
        proto, _ = h.listener()
        self.assertTrue(h.registry.file_mounts)
        close(proto)
        self.assertEqual(h.registry.file_mounts, {})

    def test_without_loop_the_file_ends(self):
        h = self.harness(loop="false", frames=40)  # about one second
        _, transport = h.listener()
        for _ in range(30):
            h.clock.advance(0.1)
        self.assertTrue(transport.disconnecting)

    def test_missing_file_is_no_fallback(self):
        h = Harness('mounts { live { fallback { file "/nonexistent/x.mp3" } } }')
        _, transport = h.listener()
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 404"))

    def test_hls_follows_the_file_without_any_listener(self):
        path = FilePath(self.mktemp() + ".mp3")
        path.setContent(FRAME * 100)
        h = Harness('mounts { live { fallback { file "%s" loop true } hls { enabled true segment_duration 1 } } }'
                    % path.path)
        source, _ = h.source()
        feed_frames(source, 60)
        close(source)
        self.assertTrue(h.registry.file_mounts)  # played for the HLS output alone
        for _ in range(30):
            h.clock.advance(0.1)
        status, _, body = h.get("/hls/live/playlist.m3u8")
        self.assertIn(" 200 ", status)
        self.assertIn(b"#EXT-X-DISCONTINUITY", body)
        h.source()
        self.assertEqual(h.registry.file_mounts, {})
        self.assertIs(h.hls.output("/live").feeding, h.registry.get("/live"))

    def test_file_started_for_nobody_stops(self):
        h = self.harness()
        source, _ = h.source()
        close(source)
        self.assertEqual(h.registry.file_mounts, {})


def tagged_mp3(path, frames=200, cover=True):
    """An MP3 file of test frames, tagged by mutagen (title, artist, album, year, genre, a front cover)."""
    import io

    from mutagen.id3 import APIC, ID3, TALB, TCON, TDRC, TIT2, TPE1
    from PIL import Image

    path.setContent(FRAME * frames)
    tags = ID3()
    for frame in (TIT2(encoding=3, text="Night Loop"), TPE1(encoding=3, text="The Automation"),
                  TALB(encoding=3, text="Overnight"), TDRC(encoding=3, text="2024-05-01"),
                  TCON(encoding=3, text="Ambient")):
        tags.add(frame)
    if cover:
        png = io.BytesIO()
        Image.new("RGB", (64, 64), (10, 20, 200)).save(png, "PNG")
        tags.add(APIC(encoding=3, mime="image/png", type=3, desc="front", data=png.getvalue()))
    tags.save(path.path)


class FileTagsTests(SynchronousTestCase):
    def test_listeners_of_a_fallback_file_see_its_tags_and_cover(self):
        path = FilePath(self.mktemp() + ".ogg")  # an MP3 whatever its name says: read from its bytes
        tagged_mp3(path)
        h = Harness('mounts { live { fallback { file "%s" loop true } metadata { artwork_enabled true '
                    'artwork_size 32x32 } } }' % path.path)
        source, _ = h.source()
        feed_frames(source, 20)
        _, transport = h.listener(extra="Icy-MetaData: 1\r\n")
        close(source)
        for _ in range(30):
            h.clock.advance(0.1)
        self.assertIn(b"StreamTitle='The Automation - Night Loop';", transport.value())
        playing = h.registry.file_mounts["/live"]
        self.assertEqual(playing.content_type, "audio/mpeg")
        track = playing.track
        self.assertEqual((track.album, track.genre, track.year), ("Overnight", "Ambient", 2024))
        self.assertAlmostEqual(track.duration, 200 * 1152 / 44100, places=1)
        self.assertEqual((track.picture.mime, track.picture.data[:4]), ("image/png", b"\x89PNG"))
        self.assertIsNotNone(playing.cover)  # made from the picture
        document = json.loads(h.get("/live/metadata.json")[2])
        self.assertEqual((document["mount"], document["playing_from"], document["title"], document["album"]),
                         ("/live", "/live#fallback-file", "Night Loop", "Overnight"))
        self.assertTrue(document["artwork"].startswith("http://radio.test:8000/live/artwork.jpg?v="))
        self.assertEqual(h.get("/live/artwork.jpg")[2], playing.cover.jpeg)

    def test_a_file_without_tags_plays_untitled(self):
        from gocast.inputs.filetags import read_tags

        self.assertEqual(read_tags(FRAME * 50)[:2], ("", ""))
        self.assertEqual(read_tags(b"not audio at all")[:2], ("", ""))
