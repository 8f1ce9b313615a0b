# -*- test-case-name: tests.test_service -*-
"""
``twistd gocast``: command-line options and the service maker.

``twistd -n gocast --config gocast.vibe`` runs the server on a config file;
without ``--config`` it looks for one (:func:`gocast.config.find_config`)
and runs on the embedded defaults when there is none.

A configuration the server cannot run on ends the process with exit status
78 (``EX_CONFIG`` from sysexits.h) and every problem on stderr as
``file:line:column: key: message``, whether it was started by twistd,
``gocast serve`` or ``gocast.tac``: systemd's ``RestartPreventExitStatus=78``
then stops restarting a server that cannot start until the file is fixed.
"""

from __future__ import annotations

import os
import sys
from typing import Any, List, Mapping, NoReturn, Optional

from twisted.application.service import IService
from twisted.logger import Logger
from twisted.python import usage

from ._version import __version__
from .auth.base import AuthSetupError
from .observe.logs import twistd_log_output
from .config import ConfigError, LoadedConfig, default_config, find_config, load_config, render_issues
from .protocols.tls import TLSSetupError, certificate_options
from ._startup import EndpointError
from .service import GocastService, StateError

#: sysexits.h: configuration error.
EX_CONFIG = 78

_log = Logger()


class ConfigRefused(SystemExit):
    """The server cannot run on its configuration; exits with :data:`EX_CONFIG`."""

    def __init__(self, message: str):
        super().__init__(EX_CONFIG)
        self.message = message


def refuse(message: str) -> NoReturn:
    """Say why on stderr (twistd prints nothing for a SystemExit), then exit 78."""
    sys.stderr.write("gocast: %s\n" % message)
    sys.stderr.flush()
    raise ConfigRefused(message)


class Options(usage.Options):
    synopsis = "[--config FILE]"
    longdesc = (
        "Run GoCast, the Icecast-compatible streaming server. FILE is a VIBE (.vibe) "
        "or JSON (.json) config; without --config, GoCast reads $GOCAST_CONFIG, else "
        "./gocast.vibe, else /etc/gocast/gocast.vibe, else runs on its built-in defaults "
        "(port 8000, any mount, source password 'hackme')."
    )
    optParameters = [["config", "c", None, "Configuration file (VIBE or JSON)."]]

    def postOptions(self) -> None:
        self["loaded"] = load(self["config"])
        if self["loaded"].config.ssl.enabled:
            try:
                certificate_options(self["loaded"].config)
            except TLSSetupError as e:
                refuse(str(e))


def load(path: Optional[str], environ: Mapping[str, str] = os.environ) -> LoadedConfig:
    """
    Load the config file the lookup finds (``path`` is ``--config``), or
    the defaults; the first log line says which.

    :raises ConfigRefused: with every problem, located, when it is invalid.
    """
    choice = find_config(path, environ)
    _log.info("GoCast {version}: config {config}", version=__version__, config=choice.describe())
    if choice.path is None:
        return LoadedConfig(default_config())
    try:
        return load_config(choice.path)
    except ConfigError as e:
        refuse("invalid configuration:\n" + render_issues(e.issues))


def twistd_command_line(argv: List[str]) -> Optional[usage.Options]:
    """
    twistd's options as typed, for a .tac file (twistd hands it none), so
    GoCast logs where twistd would: ``twistd -y gocast.tac`` to twistd.log.
    """
    from twisted.scripts.twistd import ServerOptions

    options = ServerOptions()
    try:
        options.parseOptions(argv[1:])
    except (usage.UsageError, SystemExit):
        return None
    return options


def makeService(options: Any, reactor: Any = None) -> IService:
    """
    :param options: this plugin's :class:`Options` (twistd's own are its
        ``parent``), or for a .tac a dict with ``loaded`` and ``twistd``.
    """
    loaded = options.get("loaded") or load(options.get("config"))
    twistd = getattr(options, "parent", None) or options.get("twistd")
    try:
        return GocastService(loaded, reactor=reactor, log_output=twistd_log_output(twistd))
    except (TLSSetupError, AuthSetupError, StateError, EndpointError) as e:
        refuse(str(e))
