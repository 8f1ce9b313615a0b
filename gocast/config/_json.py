# -*- test-case-name: tests.test_config -*-
"""
JSON configuration files: the same tree as VIBE, with the location of every
key and value so errors carry ``file:line:column`` just as they do for VIBE.

The standard library parses; this module only walks the already-valid text a
second time to note where each key and value starts.
"""

from __future__ import annotations

import bisect
import json
import re
from typing import Any, Dict, List, Tuple

from .vibe import Limits, Location, Path, VibeError

_WS = re.compile(r"[ \t\n\r]*")


class _Locator:
    def __init__(self, text: str):
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.scan = json.JSONDecoder().scan_once
        self.locations: Dict[Path, Location] = {}

    def line_col(self, pos: int) -> Tuple[int, int]:
        line = bisect.bisect_right(self.starts, pos)
        return line, pos - self.starts[line - 1] + 1

    def skip(self, pos: int) -> int:
        return _WS.match(self.text, pos).end()  # type: ignore[union-attr]

    def value(self, pos: int, path: Path, key_pos: int) -> int:
        """Record the value at ``pos`` (and everything inside it); return its end."""
        if len(path) > Limits.depth:
            raise ValueError("nesting deeper than %d levels" % Limits.depth)
        key_line, key_col = self.line_col(key_pos)
        line, col = self.line_col(pos)
        if path:
            self.locations[path] = Location(key_line, key_col, line, col)
        char = self.text[pos]
        if char == "{":
            return self.members(pos + 1, path)
        if char == "[":
            return self.items(pos + 1, path)
        return self.scan(self.text, pos)[1]

    def members(self, pos: int, path: Path) -> int:
        pos = self.skip(pos)
        if self.text[pos] == "}":
            return pos + 1
        while True:
            key_pos = pos
            key, pos = json.decoder.scanstring(self.text, pos + 1)
            pos = self.skip(self.skip(pos) + 1)  # the colon
            pos = self.skip(self.value(pos, path + (key,), key_pos))
            if self.text[pos] == "}":
                return pos + 1
            pos = self.skip(pos + 1)  # the comma

    def items(self, pos: int, path: Path) -> int:
        pos = self.skip(pos)
        if self.text[pos] == "]":
            return pos + 1
        index = 0
        while True:
            pos = self.skip(self.value(pos, path + (index,), pos))
            index += 1
            if self.text[pos] == "]":
                return pos + 1
            pos = self.skip(pos + 1)


def parse_json(data: Any, filename: str) -> Tuple[Dict[str, Any], Dict[Path, Location], str]:
    """
    Parse a JSON config file.

    :return: the tree, the locations of its keys and values, and the text.
    :raises VibeError: with the JSON decoder's line and column, so both
        formats report syntax errors the same way.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise VibeError("encoding-error", "invalid UTF-8 byte at offset %d" % e.start,
                            1, 1, e.start, filename)
    else:
        text = data
    try:
        tree = json.loads(text)
    except json.JSONDecodeError as e:
        lines: List[str] = text.split("\n")
        raise VibeError("unexpected-token", "invalid JSON: %s" % e.msg, e.lineno, e.colno, e.pos,
                        filename, lines[e.lineno - 1] if e.lineno <= len(lines) else "")
    except RecursionError:
        raise VibeError("limit-exceeded", "JSON nests too deeply", 1, 1, 0, filename)
    if not isinstance(tree, dict):
        raise VibeError("unexpected-token", "a JSON config must be an object { ... }", 1, 1, 0, filename)
    locator = _Locator(text)
    try:
        locator.value(locator.skip(0), (), 0)
    except ValueError as e:
        raise VibeError("limit-exceeded", str(e), 1, 1, 0, filename)
    return tree, locator.locations, text
