"""Files a config names: only regular files, bounded, and errors without their contents."""

import os
import threading

from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from gocast.auth.base import AuthSetupError
from gocast.auth.basic import read_htpasswd
from gocast.config.files import SettingFileError, append_to_setting_file, read_setting_file
from gocast.protocols.tls import TLSSetupError, _read


class SettingFileTests(SynchronousTestCase):
    def setUp(self):
        self.folder = FilePath(self.mktemp())
        self.folder.makedirs()

    def fifo(self):
        path = self.folder.child("fifo").path
        os.mkfifo(path)
        return path

    def in_time(self, f, *args):
        """Run ``f`` in a thread, failing if it has not returned in 5 s (it would block the reactor)."""
        outcome = {}

        def run():
            try:
                outcome["value"] = f(*args)
            except BaseException as e:  # noqa: B902 - handed back to the test
                outcome["error"] = e

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(5)
        self.assertFalse(thread.is_alive(), "%s blocked on a FIFO" % f.__name__)
        return outcome

    def test_regular_file_within_the_bound(self):
        path = self.folder.child("f")
        path.setContent(b"x" * 100)
        self.assertEqual(read_setting_file(path.path, 100), b"x" * 100)
        with self.assertRaises(SettingFileError) as caught:
            read_setting_file(path.path, 99)
        self.assertIn("larger than", str(caught.exception))

    def test_fifo_refused_without_blocking(self):
        fifo = self.fifo()
        outcome = self.in_time(read_setting_file, fifo, 1024)
        self.assertIsInstance(outcome.get("error"), SettingFileError)
        self.assertIn("not a regular file", str(outcome["error"]))
        # Opened for writing with no reader, a FIFO is refused at once too (ENXIO).
        self.assertIsInstance(self.in_time(append_to_setting_file, fifo).get("error"), SettingFileError)

    def test_users_file_and_certificate_name_the_problem_not_the_contents(self):
        fifo = self.fifo()
        outcome = self.in_time(read_htpasswd, fifo)
        self.assertIsInstance(outcome["error"], AuthSetupError)
        self.assertIn("not a regular file", str(outcome["error"]))
        shadow = self.folder.child("shadow")
        shadow.setContent(b"root:$6$secretsalt$hash:19000:0:99999:7:::\n")
        with self.assertRaises(AuthSetupError) as caught:
            read_htpasswd(shadow.path)
        self.assertNotIn("root", str(caught.exception))
        self.assertNotIn("secretsalt", str(caught.exception))
        with self.assertRaises(TLSSetupError) as caught:
            _read(fifo, "cert")
        self.assertIn("ssl.cert: cannot read %s: not a regular file" % fifo, str(caught.exception))

    def test_dump_file_created_private(self):
        path = self.folder.child("dump.mp3").path
        with append_to_setting_file(path) as f:
            f.write(b"abc")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
