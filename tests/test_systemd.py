"""systemd's side of a daemon: Type=notify readiness and StateDirectory."""

import os
import shutil
import socket
import tempfile

from twisted.internet.defer import maybeDeferred
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from gocast._systemd import notify_address, sd_notify, state_directory
from gocast.config import parse_config
from gocast.service import GocastService
from gocast.state import data_dir_in_use


class NotifySocket:
    """The datagram socket systemd listens on, bound in a test folder."""

    def __init__(self, testcase, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        testcase.addCleanup(self.sock.close)
        if abstract:
            name = "gocast-test-%d-%s" % (os.getpid(), id(self))
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            # Socket paths must fit in 108 bytes: trial's temp folders are too deep.
            folder = tempfile.mkdtemp(prefix="gocast-notify-")
            testcase.addCleanup(shutil.rmtree, folder)
            self.address = os.path.join(folder, "notify")
            self.sock.bind(self.address)
        self.sock.setblocking(False)

    def messages(self):
        received = []
        while True:
            try:
                received.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return received


class NotifyTests(SynchronousTestCase):
    def test_address_forms(self):
        self.assertIsNone(notify_address({}))
        self.assertIsNone(notify_address({"NOTIFY_SOCKET": ""}))
        self.assertEqual(notify_address({"NOTIFY_SOCKET": "/run/systemd/notify"}), "/run/systemd/notify")
        self.assertEqual(notify_address({"NOTIFY_SOCKET": "@abstract"}), "\0abstract")

    def test_sends_to_a_socket_path(self):
        listener = NotifySocket(self)
        self.assertTrue(sd_notify("READY=1", {"NOTIFY_SOCKET": listener.address}))
        self.assertEqual(listener.messages(), ["READY=1"])

    def test_sends_to_an_abstract_socket(self):
        listener = NotifySocket(self, abstract=True)
        self.assertTrue(sd_notify("STOPPING=1", {"NOTIFY_SOCKET": listener.address}))
        self.assertEqual(listener.messages(), ["STOPPING=1"])

    def test_without_systemd_nothing_is_sent(self):
        self.assertFalse(sd_notify("READY=1", {}))

    def test_a_dead_socket_is_logged_not_raised(self):
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        missing = FilePath(self.mktemp()).path
        self.assertFalse(sd_notify("READY=1", {"NOTIFY_SOCKET": missing}))
        self.assertTrue([e for e in events if e.get("address") == missing])


class StateDirectoryTests(SynchronousTestCase):
    def test_first_of_the_list(self):
        self.assertEqual(state_directory({"STATE_DIRECTORY": "/var/lib/gocast:/var/lib/other"}),
                         "/var/lib/gocast")
        self.assertIsNone(state_directory({"STATE_DIRECTORY": ""}))
        self.assertIsNone(state_directory({}))

    def test_data_dir_choice(self):
        self.assertEqual(data_dir_in_use("/srv/gocast", "/var/lib/gocast"), "/srv/gocast")
        self.assertEqual(data_dir_in_use("", "/var/lib/gocast"), "/var/lib/gocast")
        self.assertEqual(data_dir_in_use("", None), "gocast-data")


class ServiceTests(SynchronousTestCase):
    """The service tells systemd it is ready once running, and when it stops."""

    def setUp(self):
        self.notify = NotifySocket(self)
        self.state = FilePath(self.mktemp())
        self.state.makedirs()
        environ = dict(os.environ, NOTIFY_SOCKET=self.notify.address, STATE_DIRECTORY=self.state.path)
        self.patch(os, "environ", environ)

    def service(self, text="server { listen 127.0.0.1 }"):
        reactor = MemoryReactorClock()
        service = GocastService(parse_config(text), reactor=reactor,
                                run_in_thread=lambda f, *a: maybeDeferred(f, *a))
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        return service, reactor

    def test_ready_once_running_then_stopping(self):
        service, reactor = self.service()
        self.assertEqual(reactor.tcpServers[0][0], 8000)  # bound before anything is said
        self.assertEqual(self.notify.messages(), [])
        reactor.run()
        [ready] = self.notify.messages()
        self.assertTrue(ready.startswith("READY=1\nSTATUS=GoCast "), ready)
        service.shutdown()
        self.assertEqual(self.notify.messages(), ["STOPPING=1\nSTATUS=draining"])

    def test_state_in_systemd_state_directory(self):
        service, _ = self.service()
        self.assertEqual(service.data_dir, self.state.path)
        self.assertTrue(self.state.child("state.db").exists())

    def test_state_database_is_private(self):
        """API key hashes and dashboard sessions: GoCast's user's alone, whatever the umask."""
        folder = FilePath(self.mktemp()).child("data")
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)
        self.service('server { data_dir "%s" }' % folder.path)
        self.assertEqual(os.stat(folder.child("state.db").path).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(folder.path).st_mode & 0o777, 0o700)

    def test_data_dir_in_the_config_wins(self):
        chosen = FilePath(self.mktemp())
        service, _ = self.service('server { data_dir "%s" }' % chosen.path)
        self.assertTrue(chosen.child("state.db").exists())
        self.assertFalse(self.state.child("state.db").exists())
