"""
Uploads of recordings (gocast.outputs.uploader) on a Clock with a fake
store: one at a time, retried with backoff until they succeed, a marker
beside each file until then (retention keeps it, a restart resumes it),
deleted after upload when asked; object keys and ETags as S3 makes them.
The real S3 protocol is tested against moto's server in
tests/integration/test_recording.py.
"""

import hashlib
import os

from twisted.internet.defer import fail, maybeDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gocast.config import parse_config
from gocast.core.events import EventBus
from gocast.core.mount import Mount
from gocast.outputs.recorder import Recorders
from gocast.outputs.uploader import PENDING, Uploads, expected_etag, object_key, pending_uploads

UPLOAD = 'upload { bucket archive endpoint "http://127.0.0.1:9" access_key k secret_key s %s }'


class Store:
    """Fails the first ``failures`` uploads, then takes them."""

    def __init__(self, failures=0):
        self.failures = failures
        self.objects = {}

    def upload(self, config, path, key):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the store is down")
        with open(path, "rb") as f:
            self.objects[key] = f.read()
        return expected_etag(path), len(self.objects[key])


class UploadsTests(SynchronousTestCase):
    def setUp(self):
        self.folder = self.mktemp()
        os.makedirs(self.folder)
        self.clock = Clock()
        self.events = []
        self.config = parse_config("mounts { live { recording { %s } } }" % (UPLOAD % "prefix radio")).config
        self.upload = self.config.mounts["/live"].recording.upload

    def uploads(self, store):
        return Uploads(self.clock, lambda f, *args: maybeDeferred(f, *args),
                       lambda name, mount, **data: self.events.append((name, data)), store.upload)

    def recording(self, name, content=b"audio"):
        path = os.path.join(self.folder, name)
        with open(path, "wb") as f:
            f.write(content)
        return path

    def test_retried_with_backoff_until_it_is_up(self):
        store = Store(failures=2)
        uploads = self.uploads(store)
        path = self.recording("live-1.mp3")
        uploads.add("/live", self.upload, path, False)
        self.assertTrue(os.path.exists(path + PENDING))
        self.assertEqual(store.objects, {})
        self.clock.advance(2)  # the second try, 2 s later
        self.assertEqual(store.objects, {})
        self.clock.advance(4)  # the third, 4 s after that
        self.assertEqual(store.objects, {"radio/live/live-1.mp3": b"audio"})
        self.assertFalse(os.path.exists(path + PENDING))
        self.assertTrue(os.path.exists(path))  # kept (delete_after_upload false)
        self.assertEqual([name for name, _ in self.events],
                         ["recording.upload_failed", "recording.upload_failed", "recording.uploaded"])
        self.assertEqual(uploads.results, {"success": 1, "failed": 2})

    def test_one_at_a_time_and_deleted_after_upload_when_asked(self):
        store = Store()
        calls = []
        uploads = Uploads(self.clock, lambda f, *args: calls.append(args) or fail(Exception("later")),
                          lambda *a, **k: None, store.upload)
        uploads.add("/live", self.upload, self.recording("a.mp3"), True)
        uploads.add("/live", self.upload, self.recording("b.mp3"), True)
        self.assertEqual(len(calls), 1)  # b waits for a
        uploads = self.uploads(store)
        uploads.add("/live", self.upload, self.recording("c.mp3"), True)
        self.assertFalse(os.path.exists(os.path.join(self.folder, "c.mp3")))
        self.assertIn("radio/live/c.mp3", store.objects)

    def test_waiting_uploads_survive_a_restart_and_retention(self):
        mount = Mount("/live", parse_config("mounts { live { recording { enabled true max_size 1 %s } } }"
                                            % (UPLOAD % "")).config.mounts["/live"],
                      self.config.limits, EventBus(lambda: 0.0))
        waiting = self.recording("live-20261203-100000.mp3", b"x" * 100)
        with open(waiting + PENDING, "w") as marker:
            marker.write("/live")
        self.assertEqual(pending_uploads(self.folder), {waiting: "/live"})
        store = Store(failures=1)  # the store is down when GoCast starts again
        recorders = Recorders(lambda: 0.0, lambda path: self.folder)
        uploads = recorders.uploads = self.uploads(store)
        recorders.attach(mount)  # the upload resumes (and fails), retention (max_size 1 byte) runs
        self.assertTrue(os.path.exists(waiting))  # kept: not uploaded yet
        self.clock.advance(2)
        self.assertEqual(list(store.objects), ["live/live-20261203-100000.mp3"])
        self.assertEqual(uploads.results, {"success": 1, "failed": 1})
        recorders.apply_retention()
        self.assertFalse(os.path.exists(waiting))  # uploaded: now retention may take it


class NamesTests(SynchronousTestCase):
    def test_object_keys(self):
        self.assertEqual(object_key("", "/live", "a.mp3"), "live/a.mp3")
        self.assertEqual(object_key("/archive/2026/", "/radio/jazz", "a.mp3"), "archive/2026/radio/jazz/a.mp3")

    def test_etags_single_and_multipart(self):
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(b"a" * 10)
        self.assertEqual(expected_etag(path), hashlib.md5(b"a" * 10).hexdigest())
        with open(path, "wb") as f:
            f.write(b"a" * 10 + b"b" * 5)
        parts = [hashlib.md5(b"a" * 10).digest(), hashlib.md5(b"b" * 5).digest()]
        self.assertEqual(expected_etag(path, part_size=10), hashlib.md5(b"".join(parts)).hexdigest() + "-2")
        with open(path, "wb") as f:
            f.write(b"a" * 20)
        parts = [hashlib.md5(b"a" * 10).digest()] * 2
        self.assertEqual(expected_etag(path, part_size=10), hashlib.md5(b"".join(parts)).hexdigest() + "-2")

    def test_upload_settings(self):
        from gocast.config import ConfigError

        with self.assertRaises(ConfigError) as raised:
            parse_config("mounts { live { recording { upload { region eu-west-1 } } } }")
        self.assertIn("bucket is required", str(raised.exception))
        with self.assertRaises(ConfigError) as raised:
            parse_config("mounts { live { recording { upload { type gcs bucket b } } } }")
        self.assertIn("https://storage.googleapis.com", str(raised.exception))
        from gocast.config import Config
        from gocast.config._section import Section

        loaded = parse_config("mounts { live { recording { %s } } }" % (UPLOAD % "")).config
        self.assertEqual(loaded.mounts["/live"].recording.upload.secret_key, "s")
        shown = Section(Config).dump(loaded)["mounts"]["/live"]["recording"]["upload"]  # config show, the API
        self.assertEqual((shown["access_key"], shown["secret_key"], shown["bucket"]),
                         ("<redacted>", "<redacted>", "archive"))
