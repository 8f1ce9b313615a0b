# -*- test-case-name: tests.test_config -*-
"""
From a file (VIBE or JSON) to a validated, immutable :class:`Config`.

Loading never stops at the first problem: syntax errors stop parsing, but
every schema error and warning in a well-formed file is reported at once.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Union

import attr

from . import vibe
from ._json import parse_json
from ._kinds import INVALID
from ._report import ConfigError, Issue, Reporter, sort_issues
from ._schema import Config
from ._section import Section

#: Formats a config file may be written in, by file name extension.
FORMATS = {".json": "json", ".vibe": "vibe", ".conf": "vibe"}


@attr.frozen
class LoadedConfig:
    """A configuration that passed validation, with the warnings it raised."""

    config: Config
    warnings: Tuple[Issue, ...] = ()
    filename: Optional[str] = None


def format_for(filename: str) -> str:
    """``json`` for ``*.json``, else ``vibe``."""
    return FORMATS.get(os.path.splitext(filename)[1].lower(), "vibe")


def _syntax_issue(err: vibe.VibeError) -> Issue:
    return Issue("error", (), "%s: %s" % (err.code, err.message), err.filename,
                 err.line, err.column, err.source_line, err.code)


def parse_config(
    data: Union[str, bytes], filename: str = "<string>", fmt: Optional[str] = None
) -> LoadedConfig:
    """
    Parse and validate configuration text.

    :param fmt: ``vibe`` or ``json``; by default from ``filename``'s extension.
    :raises ConfigError: listing every error (and the warnings).
    """
    fmt = fmt or format_for(filename)
    try:
        if fmt == "json":
            tree, locations, text = parse_json(data, filename)
            syntax: List[Issue] = []
        else:
            text = vibe.decode(data, filename)
            tree, locations, syntax = _parse_vibe_recovering(text, filename)
    except vibe.VibeError as err:
        raise ConfigError([_syntax_issue(err)])
    report = Reporter(filename, text, locations)
    if syntax:
        if tree is not None:
            Section(Config).parse(tree, (), report)
        raise ConfigError(sort_issues(syntax + report.issues))
    return build_config(tree, report, filename)


#: Syntax errors confined to their line: parsing can resume on the next one.
_LINE_LOCAL = {"unterminated-string", "invalid-escape", "invalid-number",
               "illegal-character", "unexpected-token"}
_MAX_SYNTAX_ERRORS = 20


def _parse_vibe_recovering(text: str, filename: str) -> Tuple[Any, Dict[Any, Any], List[Issue]]:
    """
    Parse, and after a syntax error confined to one line (a bad string or
    value, no brackets on the line) parse again without that line, so one
    run reports every syntax error and the schema errors of the rest. The
    tree is ``None`` when parsing could not recover.
    """
    lines = text.split("\n")
    issues: List[Issue] = []
    while True:
        try:
            tree, locations = vibe.parse("\n".join(lines), filename)
            return tree, locations, issues
        except vibe.VibeError as err:
            issues.append(_syntax_issue(err))
            line = lines[err.line - 1] if err.line <= len(lines) else ""
            if (err.code not in _LINE_LOCAL or any(c in line for c in "{}[]")
                    or len(issues) >= _MAX_SYNTAX_ERRORS or not line.strip()):
                return None, {}, issues
            lines[err.line - 1] = ""


def build_config(tree: Dict[str, Any], report: Reporter, filename: Optional[str] = None) -> LoadedConfig:
    """Validate a raw tree against the schema."""
    config = Section(Config).parse(tree, (), report)
    issues = report.sorted_issues()
    if report.failed or config is INVALID:
        raise ConfigError(issues)
    return LoadedConfig(config, tuple(issues), filename)


def load_config(path: str) -> LoadedConfig:
    """
    Read and validate the config file at ``path``.

    :raises ConfigError: if the file cannot be read or is not valid.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(vibe.Limits.document_bytes + 1)
    except OSError as e:
        raise ConfigError([Issue("error", (), "cannot read the config file: %s" % (e.strerror or e),
                                 path, 1, 1)])
    return parse_config(data, path)


def default_config() -> Config:
    """The embedded defaults: what ``twistd gocast`` runs on with no ``--config``."""
    return Config()


def dump_config(config: Config, reveal_secrets: bool = False) -> Dict[str, Any]:
    """The effective configuration as a raw tree (VIBE or JSON ready)."""
    return Section(Config).dump(config, reveal_secrets)


def render_issues(issues: List[Issue]) -> str:
    return "\n".join(issue.render() for issue in issues)
