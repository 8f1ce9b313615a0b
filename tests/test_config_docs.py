"""docs/configuration.md is generated from the schema and must be current."""

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import attr

from gocast.config import Config
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
