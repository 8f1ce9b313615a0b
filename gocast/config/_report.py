# -*- test-case-name: tests.test_config -*-
"""
Collecting configuration problems with their place in the file.

Validation never stops at the first problem: every error and warning is
gathered with the key path it concerns, then rendered as
``file:line:column: key.path: message`` so an operator can fix them all in
one pass.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import attr

from .vibe import Location, render_caret

Path = Tuple[Union[str, int], ...]


def dotted(path: Sequence[Union[str, int]]) -> str:
    """Render a key path the way operators write it: ``mounts.live.hls``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += "[%d]" % part
        else:
            text = str(part)
            if not text or any(c.isspace() or c == '"' for c in text):
                text = '"%s"' % text.replace('"', '\\"')
            out += ("." if out else "") + text
    return out


@attr.frozen
class Issue:
    """One error or warning, located in the file."""

    severity: str  # "error" or "warning"
    path: Path
    message: str
    filename: str
    line: int
    column: int
    source_line: str = ""
    code: Optional[str] = None

    def render(self, caret: bool = True) -> str:
        where = "%s:%d:%d" % (self.filename, self.line, self.column)
        label = "" if self.severity == "error" else "warning: "
        subject = dotted(self.path)
        text = "%s: %s%s%s" % (where, label, subject + ": " if subject else "", self.message)
        if caret:
            text += render_caret(self.source_line, self.column)
        return text

    def __str__(self) -> str:
        return self.render(caret=False)


class ConfigError(Exception):
    """
    A configuration was rejected; :attr:`issues` holds every problem found
    (errors first, then warnings), each with file, line and column.
    """

    def __init__(self, issues: List[Issue]):
        self.issues = issues
        errors = [i for i in issues if i.severity == "error"]
        super().__init__(
            "%d error(s) in configuration:\n%s"
            % (len(errors), "\n".join(i.render() for i in errors))
        )

    @property
    def errors(self) -> List[Issue]:
        return [i for i in self.issues if i.severity == "error"]


class Reporter:
    """
    Where the configuration layer writes problems. It knows the document's
    text and the location of every key, so a problem only names its key path.
    """

    def __init__(self, filename: str, text: str, locations: Dict[Path, Location]):
        self.filename = filename
        self.lines = text.split("\n")
        self.locations = locations
        self.issues: List[Issue] = []

    def _place(self, path: Path, at: str) -> Tuple[int, int]:
        probe = tuple(path)
        while probe:
            loc = self.locations.get(probe)
            if loc is not None:
                if at == "key" or probe != tuple(path):
                    return loc.key_line, loc.key_column
                return loc.line, loc.column
            probe = probe[:-1]
        return 1, 1

    def add(self, severity: str, path: Path, message: str, at: str = "value") -> None:
        line, column = self._place(path, at)
        source = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        self.issues.append(
            Issue(severity, tuple(path), message, self.filename, line, column, source)
        )

    def error(self, path: Path, message: str, at: str = "value") -> None:
        self.add("error", path, message, at)

    def warning(self, path: Path, message: str, at: str = "key") -> None:
        self.add("warning", path, message, at)

    @property
    def failed(self) -> bool:
        return any(i.severity == "error" for i in self.issues)

    def sorted_issues(self) -> List[Issue]:
        return sort_issues(self.issues)


def sort_issues(issues: List[Issue]) -> List[Issue]:
    """Errors first, then warnings, each in file order."""
    return sorted(issues, key=lambda i: (i.severity != "error", i.line, i.column))
