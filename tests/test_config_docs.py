"""docs/configuration.md is generated from the schema and must be current."""

import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import attr

from gocast.config import Config, parse_config
from gocast.config._docs import generate
from gocast.config._section import walk_settings

_DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


class ConfigDocsTests(SynchronousTestCase):
    def test_doc_is_current(self):
        self.assertEqual(
            _DOC.read_text("utf-8"),
            generate(),
            "docs/configuration.md is stale: run `gocast config docs > docs/configuration.md`",
        )

    def test_every_key_documented(self):
        text = generate()
        for path, field in walk_settings(Config):
            self.assertTrue(field.metadata["doc"].strip(), ".".join(path))
            self.assertIn("`%s`" % ".".join(path), text)

    def test_every_key_has_default(self):
        for path, field in walk_settings(Config):
            self.assertIsNot(field.default, attr.NOTHING, ".".join(path))


class OperationsGuideTests(SynchronousTestCase):
    """docs/operations.md's config snippets are whole configs GoCast accepts."""

    def test_snippets_parse(self):
        text = (_DOC.parent / "operations.md").read_text()
        blocks = re.findall(r"```vibe\n(.*?)```", text, re.S)
        self.assertGreaterEqual(len(blocks), 5)
        for block in blocks:
            parse_config(block)  # raises ConfigError with the located problem
        endpoints = parse_config([b for b in blocks if "endpoints" in b][0]).config.server.endpoints
        self.assertIn("tcp6:8000:interface=\\:\\:", endpoints)


class ClusterGuideTests(SynchronousTestCase):
    """docs/cluster.md's configs are accepted as written, and set up what the guide says."""

    def test_snippets_parse(self):
        text = (_DOC.parent / "cluster.md").read_text()
        blocks = re.findall(r"```vibe\n(.*?)```", text, re.S)
        self.assertEqual(len(blocks), 9)
        configs = [parse_config(block) for block in blocks]
        for loaded in configs:
            self.assertEqual(loaded.warnings, ())
        static, primary_auth, master, smallest, primary, relay, hooks, routed, workers = (c.config for c in configs)
        self.assertTrue(smallest.cluster.discovery)
        self.assertEqual(smallest.cluster.node_role, "primary")
        self.assertTrue(routed.cluster.routing.enabled and routed.cluster.discovery)
        self.assertEqual(routed.cluster.routing.regions["eu"], ("DE", "FR", "NL", "europe"))
        self.assertEqual(workers.server.workers, 2)
        self.assertIn("cluster.node_left", hooks.webhooks["ops"].events)
        self.assertEqual(static.relays["main"].local_mount, "/live")
        self.assertEqual(master.cluster.primary, "radio.example.com:8000")
        self.assertTrue(primary.cluster.discovery)
        self.assertTrue(relay.cluster.discovery and relay.cluster.auto_relay)
        self.assertEqual(relay.cluster.max_bandwidth, 100 * 1024 * 1024)


class RecordingGuideTests(SynchronousTestCase):
    """docs/recording.md's config is accepted as written, without warnings."""

    def test_snippet_parses(self):
        text = (_DOC.parent / "recording.md").read_text()
        continuous, retention, scheduled, uploaded = [parse_config(block)
                                                      for block in re.findall(r"```vibe\n(.*?)```", text, re.S)]
        self.assertEqual(continuous.warnings + scheduled.warnings + retention.warnings + uploaded.warnings, ())
        self.assertEqual(uploaded.config.mounts["/live"].recording.upload.bucket, "my-radio-archive")
        shows = scheduled.config.mounts["/live"].recording.schedule
        self.assertEqual((shows["evening_show"].cron, shows["sunday_mass"].duration), ("0 18 * * 1-5", 5400.0))
        recording = continuous.config.mounts["/live"].recording
        self.assertEqual((recording.enabled, recording.rotation, recording.timezone),
                         (True, "hourly", "Europe/Paris"))
        kept = retention.config.mounts["/live"].recording
        self.assertEqual((kept.max_age, kept.max_size), (30 * 86400, 50 * 1024 ** 3))


class TranscodingGuideTests(SynchronousTestCase):
    """docs/transcoding.md's and docs/hls.md's configs are accepted as written, without warnings."""

    def test_snippets_parse(self):
        for name in ("transcoding.md", "hls.md"):
            blocks = [block for block in re.findall(r"```vibe\n(.*?)```", (_DOC.parent / name).read_text(), re.S)
                      if "transcoding" in block]
            self.assertEqual(len(blocks), 1, name)
            for block in blocks:
                loaded = parse_config(block)
                self.assertEqual(loaded.warnings, (), name)
                self.assertEqual(len(loaded.config.mounts["/live"].transcoding.outputs), 3, name)


class DashGuideTests(SynchronousTestCase):
    """docs/dash.md's configs are accepted as written, without warnings."""

    def test_snippets_parse(self):
        blocks = re.findall(r"```vibe\n(.*?)```", (_DOC.parent / "dash.md").read_text(), re.S)
        alone, low_latency, ladder = [parse_config(block) for block in blocks]
        self.assertEqual(alone.warnings + low_latency.warnings + ladder.warnings, ())
        self.assertTrue(low_latency.config.mounts["/live"].dash.low_latency)
        self.assertEqual(alone.config.mounts["/live"].dash.path, "/dash/live")
        self.assertEqual(len(ladder.config.mounts["/live"].transcoding.outputs), 3)


class ProgrammingGuideTests(SynchronousTestCase):
    """docs/programming.md's config is accepted as written, without warnings."""

    def test_snippet_parses(self):
        [block] = re.findall(r"```vibe\n(.*?)```", (_DOC.parent / "programming.md").read_text(), re.S)
        loaded = parse_config(block)
        self.assertEqual(loaded.warnings, ())
        metadata = loaded.config.mounts["/live"].metadata
        self.assertEqual((metadata.artwork_enabled, metadata.artwork_size, metadata.artwork_hosts),
                         (True, (300, 300), ("covers.example.com", "*.cdn.example.com")))
