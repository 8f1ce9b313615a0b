"""
Every ```vibe snippet of the roadmap (the configuration users will copy) is
a valid GoCast config: features not built yet give warnings, never errors.

The snippets are kept in tests/roadmap/ so the suite runs without shared/;
when the roadmap is beside the checkout, a test checks they still match it.
"""

import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from gocast.config import ConfigError, load_config, render_issues

from .shared import require, shared_path

_HERE = Path(__file__).resolve().parent
_SNIPPETS = sorted((_HERE / "roadmap").glob("*.vibe"))
_ROADMAP = shared_path("GOCAST_ROADMAP", "roadmap.md")


class RoadmapSnippetTests(SynchronousTestCase):
    def test_there_are_snippets(self):
        self.assertEqual(len(_SNIPPETS), 21)

    def test_each_snippet_passes_check(self):
        for path in _SNIPPETS:
            try:
                loaded = load_config(str(path))
            except ConfigError as e:
                self.fail("%s was rejected:\n%s" % (path.name, render_issues(e.issues)))
            for issue in loaded.warnings:
                self.assertEqual(issue.severity, "warning")

    def test_commas_accepted_with_warning(self):
        loaded = load_config(str(_HERE / "roadmap" / "09-mounts-auth.vibe"))
        auth = loaded.config.mounts["/internal"].auth
        self.assertEqual([str(n) for n in auth.allowed], ["192.168.1.0/24", "10.0.0.0/8"])
        self.assertIn(
            "mounts.internal.auth.allowed: list items are separated by spaces in VIBE; "
            "the commas were ignored",
            [str(w).split(": warning: ")[1] for w in loaded.warnings],
        )

    def test_unbuilt_feature_warns(self):
        loaded = load_config(str(_HERE / "roadmap" / "20-mounts-ads.vibe"))
        self.assertIn("mounts.live.ads: not implemented yet; ignored", [str(w).split(": warning: ")[1]
                                                                          for w in loaded.warnings])

    def test_metadata_is_built(self):
        loaded = load_config(str(_HERE / "roadmap" / "16-mounts-metadata.vibe"))
        self.assertEqual(loaded.warnings, ())
        metadata = loaded.config.mounts["/live"].metadata
        self.assertEqual((metadata.artwork_enabled, metadata.artwork_cache, metadata.artwork_size),
                         (True, "/var/gocast/artwork", (300, 300)))

    def test_dash_is_built(self):
        loaded = load_config(str(_HERE / "roadmap" / "02-mounts-dash.vibe"))
        self.assertEqual(loaded.warnings, ())
        dash = loaded.config.mounts["/live"].dash
        self.assertEqual((dash.enabled, dash.segment_duration, dash.path), (True, 4.0, "/dash/live"))

    def test_transcoding_is_built(self):
        [path] = [p for p in _SNIPPETS if "transcoding" in p.read_text("utf-8")]
        loaded = load_config(str(path))
        self.assertEqual(loaded.warnings, ())
        outputs = loaded.config.mounts["/live"].transcoding.outputs
        self.assertEqual(sorted((o.path, o.format, o.bitrate) for o in outputs.values()),
                         [("/live-128", "mp3", 128000), ("/live-320", "mp3", 320000), ("/live-64", "aac", 64000)])

    def test_snippets_match_roadmap(self):
        require(_ROADMAP)
        blocks = re.findall(r"```vibe\n(.*?)```", _ROADMAP.read_text("utf-8"), re.S)
        self.assertEqual(blocks, [p.read_text("utf-8") for p in _SNIPPETS])
