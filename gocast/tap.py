# -*- test-case-name: tests.test_service -*-
"""
``twistd gocast``: command-line options and the service maker.

``twistd -n gocast --config gocast.vibe`` runs the server on a config file;
with no ``--config`` it runs on the embedded defaults.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.application.service import IService
from twisted.python import usage

from .auth.base import AuthSetupError
from .config import ConfigError, LoadedConfig, default_config, load_config, render_issues
from .protocols.tls import TLSSetupError, certificate_options
from .service import GocastService


class Options(usage.Options):
    synopsis = "[--config FILE]"
    longdesc = (
        "Run GoCast, the Icecast-compatible streaming server. FILE is a VIBE (.vibe) "
        "or JSON (.json) config; without one, GoCast runs on its built-in defaults "
        "(port 8000, any mount, source password 'hackme')."
    )
    optParameters = [["config", "c", None, "Configuration file (VIBE or JSON)."]]

    def postOptions(self) -> None:
        self["loaded"] = load(self["config"])
        if self["loaded"].config.ssl.enabled:
            try:
                certificate_options(self["loaded"].config)
            except TLSSetupError as e:
                raise usage.UsageError(str(e))


def load(path: Optional[str]) -> LoadedConfig:
    """
    Load ``path``, or the defaults when it is ``None``.

    :raises usage.UsageError: with every problem, located, when it is invalid.
    """
    if path is None:
        return LoadedConfig(default_config())
    try:
        return load_config(path)
    except ConfigError as e:
        raise usage.UsageError("invalid configuration:\n" + render_issues(e.issues))


def makeService(options: Any, reactor: Any = None) -> IService:
    loaded = options.get("loaded") or load(options.get("config"))
    try:
        return GocastService(loaded, reactor=reactor)
    except (TLSSetupError, AuthSetupError) as e:
        raise usage.UsageError(str(e))
