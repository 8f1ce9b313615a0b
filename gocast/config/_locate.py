# -*- test-case-name: tests.test_config_locate -*-
"""
Which config file the server runs on: one lookup for ``twistd gocast``,
``gocast serve`` and ``gocast.tac``, in the order Linux daemons use.

1. ``--config FILE``
2. ``$GOCAST_CONFIG``
3. ``./gocast.vibe`` in the working folder
4. ``/etc/gocast/gocast.vibe``
5. the built-in defaults
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Optional

import attr

#: Where a packaged or containerised GoCast keeps its config.
SYSTEM_CONFIG = "/etc/gocast/gocast.vibe"
LOCAL_CONFIG = "gocast.vibe"
ENVIRONMENT_VARIABLE = "GOCAST_CONFIG"


@attr.frozen
class ConfigChoice:
    """The file chosen (``None``: the built-in defaults) and what chose it."""

    path: Optional[str]
    reason: str

    def describe(self) -> str:
        if self.path is None:
            return "built-in defaults (no --config, $%s, ./%s or %s)" % (
                ENVIRONMENT_VARIABLE, LOCAL_CONFIG, SYSTEM_CONFIG)
        return "%s (%s)" % (self.path, self.reason)


def find_config(explicit: Optional[str], environ: Mapping[str, str],
                exists: Callable[[str], bool] = os.path.isfile,
                system: str = SYSTEM_CONFIG) -> ConfigChoice:
    """
    The config file to run on. A file named by ``--config`` or the variable
    is used even when it is missing, so that mistake is reported rather than
    silently replaced by the defaults.
    """
    if explicit:
        return ConfigChoice(explicit, "--config")
    if environ.get(ENVIRONMENT_VARIABLE):
        return ConfigChoice(environ[ENVIRONMENT_VARIABLE], "$" + ENVIRONMENT_VARIABLE)
    if exists(LOCAL_CONFIG):
        return ConfigChoice(os.path.abspath(LOCAL_CONFIG), "found in the working folder")
    if exists(system):
        return ConfigChoice(system, "the system config")
    return ConfigChoice(None, "defaults")
