# -*- test-case-name: tests.test_api -*-
"""
Mounts created through the REST API: validated with the config schema,
kept in the state store, and laid over the config file's mounts whenever
a config is applied (start, reload, API change). The config file stays
authoritative: a mount it names cannot be changed or deleted through the
API, and wins if both name one.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import attr
from twisted.logger import Logger

from ..cluster.shared import Collection
from ..config import Config, MountConfig
from ..config._kinds import INVALID, MountPath
from ..config._report import Reporter, dotted
from ..config._schema import is_reserved
from ..config._section import Section, operator_settings_in


class MountError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def validate_mount(name: Any, raw: Any) -> Tuple[str, MountConfig]:
    """(mount path, its config) from an API body; MountError 422 naming each bad field."""
    report = Reporter("<request>", "", {})
    path = MountPath().parse(name, ("name",), report) if isinstance(name, str) else INVALID
    if path is INVALID:
        raise MountError(422, "invalid_field", "name must be a mount name such as live or /live",
                         [{"field": "name", "message": "a mount name such as live or /live"}])
    if is_reserved(path):
        raise MountError(409, "conflict", "%s is a path GoCast serves itself; choose another name" % path,
                         [{"field": "name", "message": "reserved path"}])
    refused = operator_settings_in(raw, MountConfig, ("config",))
    if refused:
        names = [dotted(path) for path in refused]
        raise MountError(403, "operator_setting",
                         "%s: files on the server and URLs it fetches are set in the config file only, "
                         "not through the API" % ", ".join(names),
                         [{"field": name, "message": "set in the config file only"} for name in names])
    config = Section(MountConfig).parse(raw if raw is not None else {}, ("config",), report)
    errors = [issue for issue in report.issues if issue.severity == "error"]
    if errors or config is INVALID:
        details = [{"field": dotted(issue.path), "message": issue.message} for issue in errors]
        raise MountError(422, "invalid_field", "; ".join("%s: %s" % (d["field"], d["message"]) for d in details)
                         or "config must be an object", details)
    return path, config


class ApiMounts(Collection):
    """
    In a cluster the API's mounts are shared (a
    :class:`gocast.cluster.shared.Collection`): created, changed or deleted
    on one node, on every node at once.

    :param store: the state store.
    :param file_config: the config file's current config.
    :param apply: puts a config in force (the service's ``apply``).
    """

    _log = Logger()
    kind = "mounts"

    def __init__(self, store: Any, file_config: Callable[[], Config], apply: Callable[[Config], None],
                 now: Callable[[], float]):
        self.store = store
        self.file_config = file_config
        self.apply = apply
        self.now = now
        self.configs: Dict[str, MountConfig] = {}
        #: What the API was given for each, as stored and shared.
        self.raw: Dict[str, Dict[str, Any]] = {}
        for name, raw in (store.mounts() if store is not None else {}).items():
            try:
                path, config = validate_mount(name, raw)
            except MountError:
                continue  # a schema change made it invalid: left in the store, not used
            self.configs[path], self.raw[path] = config, raw

    def overlay(self, config: Config) -> Config:
        """``config`` with the API's mounts added (the file's own win)."""
        if not self.configs:
            return config
        mounts = dict(self.configs)
        mounts.update(config.mounts)
        return attr.evolve(config, mounts=mounts)

    def origin(self, path: str) -> str:
        if path in self.file_config().mounts:
            return "config"
        return "api" if path in self.configs else "dynamic"

    def create(self, name: Any, raw: Any) -> Tuple[str, Any]:
        path, config = validate_mount(name, raw)
        if path in self.file_config().mounts:
            raise MountError(409, "conflict", "%s is in the config file; edit the file and reload" % path)
        if path in self.configs:
            raise MountError(409, "conflict", "%s exists; use PUT to change it" % path)
        return path, self._put(path, raw or {}, config)

    def update(self, path: str, raw: Any) -> Any:
        self._guard(path)
        _, config = validate_mount(path, raw)
        return self._put(path, raw or {}, config)

    def delete(self, path: str) -> Any:
        self._guard(path)
        del self.configs[path]
        self.raw.pop(path, None)
        written = self.store.delete_mount(path.lstrip("/"))
        if self.sharing:
            self.shared.unshare(self.kind, path.lstrip("/"))
        self.apply(self.file_config())
        return written

    def _guard(self, path: str) -> None:
        if path in self.file_config().mounts:
            raise MountError(409, "config_file_mount",
                             "%s comes from the config file and cannot be changed through the API; "
                             "edit the file and reload" % path)
        if path not in self.configs:
            raise MountError(404, "not_found", "no mount %s was created through the API" % path)

    def _put(self, path: str, raw: Dict[str, Any], config: MountConfig) -> Any:
        before = self.configs.get(path)
        self.configs[path] = config
        try:
            self.apply(self.file_config())
        except ValueError as e:  # AuthSetupError: a key or users file that cannot be used
            self._restore(path, before)
            raise MountError(422, "invalid_field", str(e), [{"field": "config.auth", "message": str(e)}])
        raw_before = self.raw.get(path)
        self.raw[path] = raw
        written = self.store.put_mount(path.lstrip("/"), raw, self.now())
        if self.sharing:
            written.addCallback(lambda _: self.shared.share(self.kind, path.lstrip("/"), {"config": raw}))

        def unsaved(failure: Any) -> Any:
            """Not stored (here and in the cluster), so not kept: back to what was there."""
            self._restore(path, before)
            if raw_before is None:
                self.raw.pop(path, None)
                self.store.delete_mount(path.lstrip("/"))
            else:
                self.raw[path] = raw_before
                self.store.put_mount(path.lstrip("/"), raw_before, self.now())
            self.apply(self.file_config())
            return failure

        return written.addErrback(unsaved)

    def _restore(self, path: str, before: Optional[MountConfig]) -> None:
        if before is None:
            self.configs.pop(path, None)
        else:
            self.configs[path] = before

    # Shared with the cluster

    def records(self) -> Dict[str, Dict[str, Any]]:
        return {path.lstrip("/"): {"config": raw} for path, raw in self.raw.items()}

    def received(self, name: str, record: Optional[Dict[str, Any]]) -> None:
        records = dict(self.records())
        if record is None:
            records.pop(name, None)
        else:
            records[name] = record
        self.replace(records)

    def replace(self, records: Dict[str, Dict[str, Any]]) -> None:
        """Take the cluster's mounts (each checked as if it came through the API here) and apply them once."""
        configs, raws = {}, {}
        for name, record in records.items():
            raw = record.get("config")
            try:
                path, config = validate_mount(name, raw if isinstance(raw, dict) else None)
            except MountError as e:
                self._log.warn("cluster: shared mount {name} ignored: {why}", name=name, why=e.message)
                continue
            configs[path], raws[path] = config, raw
        if raws == self.raw:
            return
        before_configs, before_raw = self.configs, self.raw
        self.configs, self.raw = configs, raws
        try:
            self.apply(self.file_config())
        except ValueError as e:  # a listener auth setting this node cannot use: keep what it had
            self.configs, self.raw = before_configs, before_raw
            self._log.warn("cluster: shared mounts not applied here: {why}", why=str(e))
            return
        for path in set(before_raw) - set(raws):
            self.store.delete_mount(path.lstrip("/"))
        for path, raw in raws.items():
            if before_raw.get(path) != raw:
                self.store.put_mount(path.lstrip("/"), raw, self.now())
