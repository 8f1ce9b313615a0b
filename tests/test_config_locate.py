"""The one config lookup of twistd gocast, gocast serve and gocast.tac."""

import os

from twisted.trial.unittest import SynchronousTestCase

from gocast.config import find_config


def files(*present):
    return lambda path: path in present


class FindConfigTests(SynchronousTestCase):
    def test_explicit_first(self):
        choice = find_config("my.vibe", {"GOCAST_CONFIG": "env.vibe"}, files("gocast.vibe", "/etc/g.vibe"),
                             "/etc/g.vibe")
        self.assertEqual((choice.path, choice.reason), ("my.vibe", "--config"))

    def test_environment_next(self):
        choice = find_config(None, {"GOCAST_CONFIG": "env.vibe"}, files("gocast.vibe"), "/etc/g.vibe")
        self.assertEqual((choice.path, choice.reason), ("env.vibe", "$GOCAST_CONFIG"))

    def test_empty_environment_variable_is_unset(self):
        choice = find_config(None, {"GOCAST_CONFIG": ""}, files(), "/etc/g.vibe")
        self.assertIsNone(choice.path)

    def test_working_folder_next(self):
        choice = find_config(None, {}, files("gocast.vibe", "/etc/g.vibe"), "/etc/g.vibe")
        self.assertEqual(choice.path, os.path.abspath("gocast.vibe"))

    def test_system_config_next(self):
        choice = find_config(None, {}, files("/etc/g.vibe"), "/etc/g.vibe")
        self.assertEqual((choice.path, choice.describe()), ("/etc/g.vibe", "/etc/g.vibe (the system config)"))

    def test_defaults_last(self):
        choice = find_config(None, {}, files(), "/etc/g.vibe")
        self.assertIsNone(choice.path)
        self.assertTrue(choice.describe().startswith("built-in defaults"))

    def test_named_file_used_even_when_missing(self):
        """A typo in --config or the variable is reported, not replaced by the defaults."""
        self.assertEqual(find_config(None, {"GOCAST_CONFIG": "/no/such.vibe"}, files()).path, "/no/such.vibe")
