"""Fallback cascades, overrides and moving listeners between mounts."""

from twisted.trial.unittest import SynchronousTestCase

from gocast.config import parse_config
from gocast.core.events import EventBus
from gocast.core.mount import SourceInfo
from gocast.core.registry import MountNotAllowed, MountRegistry

from .test_mount import Recorder


def registry(text):
    events = []
    bus = EventBus(lambda: 0.0)
    bus.subscribe(events.append)
    return MountRegistry(parse_config(text).config, bus), events


def listen(reg, path):
    listener = Recorder()
    listener.home = path
    mount = reg.live_mount_for(path)
    mount.add_subscriber(listener)
    listener.mount = mount
    return listener


CASCADE = ("mounts { live { fallback { mounts [/backup /emergency] } } backup { } "
           "emergency { } other { fallback /backup fallback_override own } }")


class RegistryTests(SynchronousTestCase):
    def test_dynamic_mounts(self):
        reg, events = registry("")
        mount = reg.mount_for_source("/anything")
        self.assertIs(reg.get("/anything"), mount)
        self.assertEqual(events[-1].name, "mount.created")
        mount.start_source(SourceInfo("audio/mpeg"))
        mount.stop_source()
        reg.source_stopped(mount)
        self.assertIsNone(reg.get("/anything"))
        self.assertEqual(events[-1].name, "mount.removed")

    def test_total_bytes_keep_forgotten_mounts(self):
        reg, _ = registry("mounts { live { } }")
        dynamic = reg.mount_for_source("/anything")
        dynamic.start_source(SourceInfo("audio/mpeg"))
        dynamic.bytes_received, dynamic.bytes_sent = 1000, 50
        dynamic.stop_source()
        reg.source_stopped(dynamic)
        self.assertIsNone(reg.get("/anything"))
        reg.get("/live").bytes_received = 7
        self.assertEqual(reg.total_bytes(), (50, 1007))

    def test_restricted(self):
        reg, _ = registry("server { restrict_mounts true } mounts { live { } }")
        self.assertRaises(MountNotAllowed, reg.mount_for_source, "/other")
        self.assertIs(reg.mount_for_source("/live"), reg.get("/live"))

    def test_cascade_skips_dead_mounts(self):
        reg, _ = registry(CASCADE)
        for path in ("/live", "/emergency"):
            reg.get(path).start_source(SourceInfo("audio/mpeg"))
        listener = listen(reg, "/live")
        live = reg.get("/live")
        live.stop_source()
        reg.source_stopped(live)
        self.assertIs(listener.mount, reg.get("/emergency"))
        self.assertIn(listener, reg.get("/emergency").subscribers)
        self.assertIsNone(listener.detached)

    def test_no_fallback_detaches(self):
        reg, _ = registry("mounts { live { } }")
        reg.get("/live").start_source(SourceInfo("audio/mpeg"))
        listener = listen(reg, "/live")
        reg.get("/live").stop_source()
        reg.source_stopped(reg.get("/live"))
        self.assertIn("no fallback is live", listener.detached)

    def test_override_all_brings_everyone(self):
        reg, events = registry(CASCADE)
        backup = reg.get("/backup")
        backup.start_source(SourceInfo("audio/mpeg"))
        fell_back = listen(reg, "/live")  # /live has no source: served by /backup
        direct = listen(reg, "/backup")
        self.assertIs(fell_back.mount, backup)
        live = reg.get("/live")
        live.start_source(SourceInfo("audio/mpeg"))
        reg.source_started(live)
        self.assertEqual(set(live.subscribers), {fell_back, direct})
        self.assertEqual(events[-1].name, "source.fallback")

    def test_override_own_brings_only_its_listeners(self):
        reg, _ = registry(CASCADE)
        backup = reg.get("/backup")
        backup.start_source(SourceInfo("audio/mpeg"))
        mine = listen(reg, "/other")
        theirs = listen(reg, "/live")
        other = reg.get("/other")
        other.start_source(SourceInfo("audio/mpeg"))
        reg.source_started(other)
        self.assertEqual(set(other.subscribers), {mine})
        self.assertEqual(set(backup.subscribers), {theirs})

    def test_no_live_mount(self):
        reg, _ = registry(CASCADE)
        self.assertIsNone(reg.live_mount_for("/live"))
        self.assertIsNone(reg.live_mount_for("/nope"))
