# -*- test-case-name: tests.test_config -*-
"""
Configuration sections: frozen attrs classes whose fields say, through
:func:`setting`, their default, their kind, a one-line description, whether
they hold a secret, and whether the feature behind them exists yet.

:class:`Section` is the kind that reads such a class from a raw block: it
reports unknown keys with a "did you mean", feature blocks that are not
built yet with a warning, and runs the class's own cross-field checks.
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import Any, Callable, Dict, List, Optional

import attr

from ._kinds import INVALID, REDACTED, Bool, Float, Int, Kind, MapOf, Str
from ._report import Path, Reporter


def setting(
    default: Any,
    doc: str,
    kind: Optional[Kind] = None,
    secret: bool = False,
    implemented: bool = True,
    operator: bool = False,
) -> Any:
    """
    Declare one configuration key.

    :param default: the value when the key is absent; a section class or a
        zero-argument callable gives a fresh default per instance.
    :param doc: one line for ``gocast config show`` and docs/configuration.md.
    :param kind: how the value is read; inferred from ``default`` for plain
        text, numbers and booleans.
    :param secret: redact the value wherever the config is shown.
    :param implemented: ``False`` for a feature not built yet: the key is
        accepted with a warning and ignored.
    :param operator: a file on the server or a URL it fetches: only the
        config file may set it, never the REST API (a key that writes mounts
        must not gain the server's files or network).
    """
    if kind is None:
        kind = _infer_kind(default)
    if isinstance(default, type) and attr.has(default):
        factory: Any = attr.Factory(default)
    elif callable(default):
        factory = attr.Factory(default)
    else:
        factory = default
    return attr.field(
        default=factory,
        metadata={
            "doc": doc,
            "kind": kind,
            "secret": secret,
            "implemented": implemented,
            "operator": operator,
        },
    )


def _infer_kind(default: Any) -> Kind:
    if isinstance(default, type) and attr.has(default):
        return Section(default)
    if isinstance(default, bool):
        return Bool()
    if isinstance(default, int):
        return Int()
    if isinstance(default, float):
        return Float()
    if isinstance(default, str):
        return Str()
    raise TypeError("give a kind for a setting defaulting to %r" % (default,))


def fields_of(cls: type) -> Dict[str, "attr.Attribute[Any]"]:
    return {f.name: f for f in attr.fields(cls)}


class Section(Kind):
    """A block ``name { ... }`` read into the attrs class ``cls``."""

    def __init__(self, cls: type):
        self.cls = cls
        self.expected = "a block { ... }"

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if not isinstance(raw, dict):
            return self.fail(raw, path, report)
        fields = fields_of(self.cls)
        values: Dict[str, Any] = {}
        for key, item in raw.items():
            field = fields.get(key)
            here = path + (key,)
            if field is None:
                report.error(here, "unknown key" + did_you_mean(key, fields), at="key")
                continue
            meta = field.metadata
            if not meta["implemented"]:
                report.warning(here, "not implemented yet; ignored")
            value = meta["kind"].parse(item, here, report)
            if value is not INVALID:
                values[key] = value
        try:
            instance = self.cls(**values)
        except (TypeError, ValueError) as e:  # pragma: no cover - schema bug
            report.error(path, str(e))
            return INVALID
        check: Optional[Callable[..., None]] = getattr(instance, "check", None)
        if check is not None:
            check(path, report, raw)
        return instance

    def schema(self) -> Dict[str, Any]:
        """The block's keys, each described by its one-line doc."""
        properties = {}
        for field in attr.fields(self.cls):
            meta = field.metadata
            doc = meta["doc"] if meta["implemented"] else meta["doc"] + " Not implemented yet."
            properties[field.name] = dict(meta["kind"].schema(), description=doc)
            if meta["operator"]:
                # A file or URL of the server's: the API shows it, never takes it.
                properties[field.name].update(readOnly=True, description=doc + " Config file only.")
        return {"type": "object", "properties": properties, "additionalProperties": False}

    def dump(self, value: Any, reveal: bool = False) -> Dict[str, Any]:
        """The raw tree a config file would need to produce ``value``."""
        out: Dict[str, Any] = {}
        for field in attr.fields(type(value)):
            meta = field.metadata
            item = getattr(value, field.name)
            if item is None:
                continue
            if meta["secret"] and not reveal and item:
                out[field.name] = {k: REDACTED for k in item} if isinstance(item, dict) else REDACTED
                continue
            out[field.name] = meta["kind"].dump(item, reveal)
        return out


def did_you_mean(key: str, known: Any) -> str:
    close = get_close_matches(key, list(known), n=1, cutoff=0.6)
    if close:
        return "; did you mean '%s'?" % close[0]
    return "; known keys: " + ", ".join(sorted(known))


def walk_settings(cls: type, prefix: Path = ()):
    """
    Yield ``(path, field)`` for every key of ``cls``, depth first, for docs;
    the entries of a named map appear under ``NAME``.
    """
    for field in attr.fields(cls):
        path = prefix + (field.name,)
        yield path, field
        kind = field.metadata["kind"]
        if isinstance(kind, MapOf) and isinstance(kind.value, Section):
            yield from walk_settings(kind.value.cls, path + ("NAME",))
        elif isinstance(getattr(kind, "section", kind), Section):
            yield from walk_settings(getattr(kind, "section", kind).cls, path)


def operator_settings_in(raw: Any, cls: type, prefix: Path = ()) -> List[Path]:
    """The keys of ``raw`` (a block read into ``cls``) that only the config file may set."""
    if not isinstance(raw, dict):
        return []
    found: List[Path] = []
    fields = fields_of(cls)
    for key, value in raw.items():
        field = fields.get(key)
        if field is None:
            continue
        path = prefix + (key,)
        kind = field.metadata["kind"]
        if field.metadata["operator"]:
            found.append(path)
        elif isinstance(kind, MapOf) and isinstance(kind.value, Section) and isinstance(value, dict):
            for name, entry in value.items():
                found += operator_settings_in(entry, kind.value.cls, path + (name,))
        elif isinstance(getattr(kind, "section", kind), Section):
            found += operator_settings_in(value, getattr(kind, "section", kind).cls, path)
    return found


__all__ = ["REDACTED", "Section", "operator_settings_in", "setting", "walk_settings"]
