# -*- test-case-name: tests.test_reload -*-
"""
Hot configuration reload (SIGHUP, ``POST /admin/reload``, ``gocast config reload``).

The file is read and validated off the reactor; if anything is wrong the
running config stays and the errors (``file:line:column``, as ``gocast
config check`` prints them) are logged, returned and published as
``config.reload_failed``. A valid config is applied as a difference: mounts
added, removed (their listeners stay until their source leaves, then move
to the fallback) and changed; passwords; limits; logging; metrics and
webhook settings; CORS; TLS certificates. Listening addresses and URL
paths are reported as needing a restart and left as they are. If applying
fails half-way, the previous config is applied again. Reloads never run
two at a time.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Tuple

import attr
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.logger import Logger

from .config import Config, ConfigError, LoadedConfig, load_config

#: Settings a reload cannot change (listening sockets, paths served, the
#: state database): reported as needing a restart, and kept as they run.
RESTART_ONLY: Tuple[str, ...] = (
    "server.listen", "server.port", "server.endpoints", "server.admin_root", "server.data_dir",
    "ssl.enabled", "ssl.port", "shoutcast.enabled", "shoutcast.port", "metrics.path", "server.workers",
)


def _read(config: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        config = getattr(config, name)
    return config


def _with(config: Any, dotted: str, value: Any) -> Any:
    """``config`` with the setting at ``dotted`` replaced."""
    name, _, rest = dotted.partition(".")
    return attr.evolve(config, **{name: _with(getattr(config, name), rest, value) if rest else value})


def as_running(old: Config, new: Config) -> Config:
    """
    ``new`` as it can be put in force: the restart-only settings keep the
    values the server runs with, so what it reports is what it does.
    """
    for dotted in RESTART_ONLY:
        new = _with(new, dotted, _read(old, dotted))
    return new


@attr.frozen
class ReloadResult:
    ok: bool
    changes: Tuple[str, ...] = ()
    restart_required: Tuple[str, ...] = ()
    errors: str = ""

    def as_json(self) -> dict:
        return {"success": self.ok, "changes": list(self.changes),
                "restart_required": list(self.restart_required),
                "errors": self.errors.splitlines() if self.errors else []}


def _changed_fields(old: Any, new: Any) -> List[str]:
    return [f.name for f in attr.fields(type(old)) if getattr(old, f.name) != getattr(new, f.name)]


def describe_changes(old: Config, new: Config) -> Tuple[List[str], List[str]]:
    """What a reload changes, in words, and what it cannot change without a restart."""
    changes: List[str] = []
    added = sorted(set(new.mounts) - set(old.mounts))
    removed = sorted(set(old.mounts) - set(new.mounts))
    if added:
        changes.append("mounts added: " + ", ".join(added))
    if removed:
        changes.append("mounts removed: " + ", ".join(removed))
    for path in sorted(set(old.mounts) & set(new.mounts)):
        fields = _changed_fields(old.mounts[path], new.mounts[path])
        if fields:
            changes.append("%s changed: %s" % (path, ", ".join(fields)))
    for section in ("server", "auth", "limits", "logging", "metrics", "cors", "ssl", "webhooks",
                    "shoutcast", "geoip", "admin", "directory", "api_keys", "oauth", "cluster"):
        before, after = getattr(old, section), getattr(new, section)
        if before == after:
            continue
        if attr.has(type(before)):
            names = [n for n in _changed_fields(before, after) if "password" not in n and n != "secret"]
            secret = any("password" in n or n == "secret" for n in _changed_fields(before, after))
            detail = ", ".join(names + (["credentials"] if secret else []))
            changes.append("%s changed: %s" % (section, detail))
        else:
            changes.append("%s changed" % section)
    restart = [dotted for dotted in RESTART_ONLY if _read(old, dotted) != _read(new, dotted)]
    return changes, restart


class Reloader:
    """
    Serialised reloads of the service's config file.

    :param apply: puts a config in force (and raises if it cannot).
    :param restore: puts the previous config back after ``apply`` failed.
    :param run_in_thread: runs the file parse off the reactor.
    """

    _log = Logger()

    def __init__(self, get_loaded: Callable[[], LoadedConfig], apply: Callable[[Config], None],
                 publish: Callable[..., Any], run_in_thread: Callable[..., Deferred],
                 restore: Optional[Callable[[Config], None]] = None):
        self.get_loaded = get_loaded
        self.apply = apply
        self.restore = restore or apply
        self.publish = publish
        self.run_in_thread = run_in_thread
        self._waiters: List[Deferred] = []
        self._busy = False
        self._again = False

    def reload(self) -> Deferred:
        """
        Reload now, or once more after the reload under way. Fires with a
        :class:`ReloadResult`.
        """
        waiter: Deferred = Deferred()
        self._waiters.append(waiter)
        if self._busy:
            self._again = True
        else:
            self._busy = True
            ensureDeferred(self._loop())
        return waiter

    async def _loop(self) -> None:
        try:
            while True:
                self._again = False
                waiters, self._waiters = self._waiters, []
                try:
                    result = await self._reload_once()
                except Exception as e:  # a bug, not a bad file: never leave callers waiting
                    self._log.failure("reload crashed")
                    result = ReloadResult(False, errors="reload failed: %s" % e)
                for waiter in waiters:
                    waiter.callback(result)
                if not self._again:
                    return
        finally:
            self._busy = False

    async def _reload_once(self) -> ReloadResult:
        current = self.get_loaded()
        if current.filename is None:
            return self.failed("GoCast runs on its built-in defaults: start it with --config FILE "
                               "to reload one")
        try:
            loaded = await self.run_in_thread(load_config, current.filename)
        except ConfigError as e:
            # Located, without the quoted lines: the log, webhooks and stats
            # streams get this, and a line may hold a password.
            return self.failed("\n".join(str(issue) for issue in e.issues))
        changes, restart = describe_changes(current.config, loaded.config)
        try:
            self.apply(as_running(current.config, loaded.config))
        except Exception as e:
            if not isinstance(e, ValueError):  # ValueError: a file the operator must fix
                self._log.failure("reload failed while applying; the previous config is back")
            self.restore(current.config)
            return self.failed("could not apply the new config: %s" % e)
        for issue in loaded.warnings:
            self._log.warn("config: {issue}", issue=str(issue))
        self._log.info("configuration reloaded from {file}: {changes}", file=current.filename,
                       changes="; ".join(changes) or "no change")
        if restart:
            self._log.warn("reload: {fields} changed but need a restart to take effect",
                           fields=", ".join(restart))
        self.publish("config.reloaded", changes=changes, restart_required=restart)
        return ReloadResult(True, tuple(changes), tuple(restart))

    def failed(self, errors: str) -> ReloadResult:
        self._log.error("reload refused; the running configuration stays:\n{errors}", errors=errors)
        self.publish("config.reload_failed", errors=errors)
        return ReloadResult(False, errors=errors)
