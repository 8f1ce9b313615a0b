# -*- test-case-name: tests.test_vibe -*-
"""
VIBE 1.0 ("Values In Bracket Expression") parser and canonical emitter.

VIBE is GoCast's configuration format::

    server {
      port 8000
      hostname radio.example.com
    }
    mounts {
      live { stream_name "My Station"  max_listeners 500 }
    }

The rules, in brief: a document is UTF-8 without BOM or NUL; it is a sequence
of ``key value`` statements filling an implicit root object; a value is a
scalar, a ``{ ... }`` object or a ``[ ... ]`` array of scalars; a scalar's type
is inferred from the whole token (``-?\\d+`` integer, ``-?\\d+\\.\\d+`` float,
``true``/``false`` boolean, anything else a string); ``#`` starts a comment;
the last of duplicate keys wins.

GoCast adds one rule of its own that the format leaves open: a scalar value
must stand on the same line as its key. It turns the classic mistake
``name My Station`` into an error that points at the unquoted space instead
of a silently wrong tree.

This module is pure: no Twisted, no I/O beyond :func:`load`'s ``fp.read()``.
:func:`parse` also returns where every key and value stands, which the
configuration layer uses to put ``file:line:column`` on its messages.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import IO, Any, Dict, List, Optional, Tuple, Union

__all__ = [
    "ERROR_CODES",
    "Limits",
    "Location",
    "VibeError",
    "decode",
    "dumps",
    "load",
    "loads",
    "parse",
]

#: The closed set of error codes a VIBE parser reports.
ERROR_CODES = (
    "encoding-error",
    "illegal-character",
    "unexpected-token",
    "unclosed-object",
    "unclosed-array",
    "unterminated-string",
    "nested-container",
    "invalid-escape",
    "invalid-number",
    "limit-exceeded",
)

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

#: Printable ASCII except the structural characters ``{ } [ ] # "``.
_BARE_CHARS = r"!\x24-\x5a\x5c\x5e-\x7a|~"

_SCANNER = re.compile(
    r"""
      (?P<ws>[ \t\r]+)
    | (?P<nl>\n)
    | (?P<comment>\#[^\n]*)
    | (?P<open>[{\[])
    | (?P<close>[}\]])
    | (?P<quoted>"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*")
    | (?P<bare>[BARE]+)
    | (?P<bad>.)
    """.replace(
        "BARE", _BARE_CHARS
    ),
    re.VERBOSE | re.DOTALL,
)
_BARE_ONLY = re.compile("[%s]+" % _BARE_CHARS)
_INTEGER = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_ESCAPE = re.compile(r"\\(u[0-9A-Fa-f]{4}|.?)", re.DOTALL)
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}

Scalar = Union[int, float, bool, str]
Tree = Dict[str, Any]
#: A path into the tree: object keys and array indexes.
Path = Tuple[Union[str, int], ...]


class Limits:
    """
    The resource caps this parser enforces; each is at least what the VIBE
    specification requires a parser to accept.
    """

    document_bytes = 16 * 1024 * 1024
    depth = 64
    string_chars = 1024 * 1024
    key_chars = 1024
    array_items = 65536
    object_keys = 65536


class Location:
    """
    Where a key and its value stand in a document (1-based lines and columns,
    columns counted in code points).
    """

    __slots__ = ("key_line", "key_column", "line", "column")

    def __init__(self, key_line: int, key_column: int, line: int, column: int):
        self.key_line = key_line
        self.key_column = key_column
        self.line = line
        self.column = column

    def __repr__(self) -> str:
        return "<Location key %d:%d value %d:%d>" % (
            self.key_line,
            self.key_column,
            self.line,
            self.column,
        )


class VibeError(ValueError):
    """
    A document is not valid VIBE.

    :ivar code: one of :data:`ERROR_CODES`.
    :ivar line: 1-based line (lines end at LF only).
    :ivar column: 1-based column, in code points.
    :ivar offset: 0-based byte offset into the UTF-8 document.
    :ivar message: what is wrong, in words.
    :ivar filename: the document's name, for messages.
    :ivar source_line: the text of the offending line, for the caret.
    """

    def __init__(
        self,
        code: str,
        message: str,
        line: int,
        column: int,
        offset: int,
        filename: str = "<string>",
        source_line: str = "",
    ):
        super().__init__(message)
        assert code in ERROR_CODES, code
        self.code = code
        self.message = message
        self.line = line
        self.column = column
        self.offset = offset
        self.filename = filename
        self.source_line = source_line

    def __str__(self) -> str:
        head = "%s:%d:%d: %s: %s" % (
            self.filename,
            self.line,
            self.column,
            self.code,
            self.message,
        )
        return head + render_caret(self.source_line, self.column)


def render_caret(source_line: str, column: int, width: int = 120) -> str:
    """
    Render the offending line and a caret under ``column``, as compilers do.

    Control characters are shown as U+FFFD so the terminal stays sane; tabs
    are kept so the caret lines up; a long line is cut to a window around
    the column.
    """
    if not source_line:
        return ""
    text = _CONTROL.sub("\ufffd", source_line.rstrip("\r\n"))
    start = 0
    if len(text) > width:
        start = max(0, min(column - 1 - width // 2, len(text) - width))
        text = text[start : start + width]
        prefix = "..." if start else ""
        suffix = "..." if start + width < len(source_line) else ""
        text = prefix + text + suffix
        column = column - start + len(prefix)
    pad = "".join("\t" if c == "\t" else " " for c in text[: column - 1])
    return "\n    %s\n    %s^" % (text, pad)


class _Document:
    """The text being parsed, and how to turn a position into an error."""

    def __init__(self, text: str, filename: str):
        self.text = text
        self.filename = filename

    def error(self, code: str, message: str, pos: int) -> VibeError:
        text = self.text
        pos = max(0, min(pos, len(text)))
        line_start = text.rfind("\n", 0, pos) + 1
        line_end = text.find("\n", pos)
        if line_end < 0:
            line_end = len(text)
        line = text.count("\n", 0, pos) + 1
        offset = len(text[:pos].encode("utf-8", "surrogatepass"))
        return VibeError(
            code,
            message,
            line,
            pos - line_start + 1,
            offset,
            self.filename,
            text[line_start:line_end],
        )


def decode(data: Union[str, bytes], filename: str = "<string>") -> str:
    """
    Check the encoding rules (UTF-8, no BOM, no NUL, size) and return the
    document as text.

    :raises VibeError: ``encoding-error`` or ``limit-exceeded``.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if len(raw) > Limits.document_bytes:
            raise VibeError(
                "limit-exceeded",
                "document is %d bytes; the limit is %d" % (len(raw), Limits.document_bytes),
                1, 1, 0, filename,
            )
        if raw.startswith(b"\xef\xbb\xbf"):
            raise VibeError(
                "encoding-error",
                "document starts with a byte order mark; save it as UTF-8 without BOM",
                1, 1, 0, filename,
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            good = raw[: e.start].decode("utf-8")
            doc = _Document(good, filename)
            err = doc.error(
                "encoding-error",
                "invalid UTF-8 byte 0x%02x; save the file as UTF-8" % raw[e.start],
                len(good),
            )
            err.offset = e.start
            raise err
    else:
        text = str(data)
        if len(text) > Limits.document_bytes:
            raise VibeError(
                "limit-exceeded",
                "document is over %d bytes" % (Limits.document_bytes,),
                1, 1, 0, filename,
            )
        if text.startswith("\ufeff"):
            raise VibeError(
                "encoding-error",
                "document starts with a byte order mark; remove it",
                1, 1, 0, filename,
            )
        surrogate = re.search("[\ud800-\udfff]", text)
        if surrogate:
            raise _Document(text, filename).error(
                "encoding-error",
                "lone surrogate code point; the text is not valid Unicode",
                surrogate.start(),
            )
    nul = text.find("\x00")
    if nul >= 0:
        raise _Document(text, filename).error(
            "encoding-error", "NUL character in the document", nul
        )
    return text


def _scalar(token: str) -> Scalar:
    """Infer the type of an unquoted token, or return ``None`` for a bad number."""
    first = token[0]
    if first.isdigit() or (first == "-" and len(token) > 1):
        if _INTEGER.fullmatch(token):
            digits = len(token) - (first == "-")
            if digits > 19:
                return None  # type: ignore[return-value]
            value = int(token)
            if _INT64_MIN <= value <= _INT64_MAX:
                return value
            return None  # type: ignore[return-value]
        if _FLOAT.fullmatch(token):
            value = float(token)
            if math.isinf(value):
                return None  # type: ignore[return-value]
            return value
    if token == "true":
        return True
    if token == "false":
        return False
    return token


class _Parser:
    """
    One pass over the token stream with an explicit stack, so nesting depth
    is bounded by :class:`Limits` and never by Python's recursion limit.
    """

    def __init__(self, text: str, filename: str, track: bool):
        self.doc = _Document(text, filename)
        self.text = text
        self.track = track
        self.locations: Dict[Path, Location] = {}

    def fail(self, code: str, message: str, pos: int) -> VibeError:
        return self.doc.error(code, message, pos)

    def unquote(self, token: str, pos: int) -> str:
        """Decode a quoted string token (quotes included)."""
        body = token[1:-1]
        if "\\" not in body:
            return body

        def replace(m: "re.Match[str]") -> str:
            esc = m.group(1)
            simple = _SIMPLE_ESCAPES.get(esc)
            if simple is not None:
                return simple
            at = pos + 1 + m.start()
            if len(esc) != 5:
                if esc.startswith("u"):
                    raise self.fail("invalid-escape", "\\u must be followed by four hex digits", at)
                raise self.fail(
                    "invalid-escape",
                    "invalid escape '\\%s'; valid escapes are \\\" \\\\ \\n \\r \\t \\uXXXX" % esc,
                    at,
                )
            code_point = int(esc[1:], 16)
            if 0xD800 <= code_point <= 0xDFFF:
                raise self.fail(
                    "invalid-escape", "\\%s is a surrogate; write the character itself" % esc, at
                )
            if code_point == 0:
                raise self.fail("invalid-escape", "\\u0000 (NUL) is not allowed", at)
            return chr(code_point)

        return _ESCAPE.sub(replace, body)

    def bad_string(self, pos: int) -> VibeError:
        """Explain why the quoted string starting at ``pos`` did not scan."""
        text = self.text
        n = len(text)
        i = pos + 1
        while i < n:
            c = text[i]
            if c == "\\":
                i += 1
                if i < n and text[i] in '"\\':
                    i += 1
                    continue
                continue
            if c == '"' or c == "\n" or (c == "\r" and text[i + 1 : i + 2] == "\n"):
                break
            if (c < " " and c != "\t") or c == "\x7f":
                return self.fail(
                    "illegal-character",
                    "raw control character U+%04X inside a string; "
                    "use an escape such as \\n or \\t" % ord(c),
                    i,
                )
            i += 1
        return self.fail(
            "unterminated-string",
            "string is not closed on this line; add the closing '\"'",
            pos,
        )

    def tokens(self):
        """Yield ``(kind, text, pos, line, line_start)`` for significant tokens."""
        line = 1
        line_start = 0
        for m in _SCANNER.finditer(self.text):
            kind = m.lastgroup
            if kind == "ws" or kind == "comment":
                continue
            pos = m.start()
            if kind == "nl":
                line += 1
                line_start = pos + 1
                continue
            if kind == "bad":
                c = m.group()
                if c == '"':
                    raise self.bad_string(pos)
                if ord(c) > 0x7E:
                    msg = "character %r outside quotes; put the value in double quotes" % c
                else:
                    msg = "control character U+%04X outside a string" % ord(c)
                raise self.fail("illegal-character", msg, pos)
            yield kind, m.group(), pos, line, line_start

    def parse(self) -> Tree:
        root: Tree = {}
        # Each frame: (container, path, opening position)
        stack: List[Tuple[Any, Path, int]] = [(root, (), -1)]
        container: Any = root
        path: Path = ()
        key: Optional[str] = None
        key_pos = key_line = key_col = 0
        last_value_line = 0
        track = self.track
        locations = self.locations
        for kind, tok, pos, line, line_start in self.tokens():
            if type(container) is list:
                if kind == "close":
                    if tok == "]":
                        stack.pop()
                        container, path, _ = stack[-1]
                        last_value_line = line
                        continue
                    raise self.fail(
                        "unexpected-token",
                        "'}' inside an array; close the array with ']' first",
                        pos,
                    )
                if kind == "open":
                    raise self.fail(
                        "nested-container",
                        "an array holds scalars only; use a named object instead of %s"
                        % ("an object" if tok == "{" else "a nested array"),
                        pos,
                    )
                if len(container) >= Limits.array_items:
                    raise self.fail(
                        "limit-exceeded", "array has more than %d items" % Limits.array_items, pos
                    )
                value = self.scalar(kind, tok, pos)
                if track:
                    col = pos - line_start + 1
                    locations[path + (len(container),)] = Location(line, col, line, col)
                container.append(value)
                continue

            if key is None:
                # Expecting a key, or the end of the current object.
                if kind == "close":
                    if tok == "}" and len(stack) > 1:
                        stack.pop()
                        container, path, _ = stack[-1]
                        last_value_line = line
                        continue
                    raise self.fail("unexpected-token", "unmatched '%s'" % tok, pos)
                if kind == "open":
                    raise self.fail(
                        "unexpected-token", "'%s' needs a key before it, e.g. name %s" % (tok, tok), pos
                    )
                key = self.key(kind, tok, pos)
                key_pos, key_line, key_col = pos, line, pos - line_start + 1
                continue

            # Expecting the value of ``key``.
            if kind == "close":
                raise self.fail("unexpected-token", "'%s' has no value" % key, key_pos)
            if kind == "open":
                if len(stack) > Limits.depth:
                    raise self.fail(
                        "limit-exceeded", "nesting deeper than %d levels" % Limits.depth, pos
                    )
                value = {} if tok == "{" else []
            else:
                if line != key_line:
                    raise self.missing_value(key, key_pos, key_line, last_value_line)
                value = self.scalar(kind, tok, pos)
            self.store(container, key, value, key_pos)
            if track:
                locations[path + (key,)] = Location(
                    key_line, key_col, line, pos - line_start + 1
                )
            if kind == "open":
                path = path + (key,)
                stack.append((value, path, pos))
                container = value
            last_value_line = line
            key = None

        if key is not None:
            raise self.missing_value(key, key_pos, key_line, last_value_line)
        if len(stack) > 1:
            _, _, opened = stack[-1]
            if type(container) is list:
                raise self.fail("unclosed-array", "'[' is never closed; add ']'", opened)
            raise self.fail("unclosed-object", "'{' is never closed; add '}'", opened)
        return root

    def missing_value(self, key: str, pos: int, line: int, last_value_line: int) -> VibeError:
        if line == last_value_line:
            return self.fail(
                "unexpected-token",
                "'%s' has no value; a value with spaces must be quoted, e.g. \"My Station\"" % key,
                pos,
            )
        return self.fail(
            "unexpected-token", "'%s' has no value on its line" % key, pos
        )

    def key(self, kind: str, tok: str, pos: int) -> str:
        if kind == "quoted":
            key = self.unquote(tok, pos)
            if not key:
                raise self.fail("unexpected-token", "a key cannot be the empty string", pos)
        else:
            key = tok
            if not _IDENTIFIER.fullmatch(key):
                raise self.fail(
                    "unexpected-token",
                    "%r is not a valid key; start it with a letter or '_', or quote it" % key,
                    pos,
                )
        if len(key) > Limits.key_chars:
            raise self.fail("limit-exceeded", "key is longer than %d characters" % Limits.key_chars, pos)
        return key

    def scalar(self, kind: str, tok: str, pos: int) -> Scalar:
        if kind == "quoted":
            value: Any = self.unquote(tok, pos)
        else:
            value = _scalar(tok)
            if value is None:
                raise self.fail(
                    "invalid-number",
                    "number %s is out of range (64-bit integers, finite floats)"
                    % (tok if len(tok) <= 24 else tok[:20] + "..."),
                    pos,
                )
        if type(value) is str and len(value) > Limits.string_chars:
            raise self.fail(
                "limit-exceeded", "string is longer than %d characters" % Limits.string_chars, pos
            )
        return value

    def store(self, container: Tree, key: str, value: Any, pos: int) -> None:
        if key not in container and len(container) >= Limits.object_keys:
            raise self.fail(
                "limit-exceeded", "object has more than %d keys" % Limits.object_keys, pos
            )
        container[key] = value


def parse(
    data: Union[str, bytes], filename: str = "<string>"
) -> Tuple[Tree, Dict[Path, Location]]:
    """
    Parse a document and report where each key and value stands.

    :return: the tree, and a map from each path (keys, and indexes inside
        arrays) to its :class:`Location`.
    :raises VibeError: if the document is not valid VIBE.
    """
    parser = _Parser(decode(data, filename), filename, track=True)
    return parser.parse(), parser.locations


def loads(data: Union[str, bytes], filename: str = "<string>") -> Tree:
    """
    Parse a VIBE document into ``dict``, ``list``, ``int``, ``float``,
    ``bool`` and ``str``.

    :raises VibeError: if the document is not valid VIBE.
    """
    return _Parser(decode(data, filename), filename, track=False).parse()


def load(fp: IO[Any]) -> Tree:
    """Parse a VIBE document from a file object (text or binary)."""
    return loads(fp.read(), filename=getattr(fp, "name", "<stream>"))


# Emitter


def _format_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        raise ValueError("VIBE has no representation for %r" % (value,))
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    if "." not in text:
        text += ".0"
    return text


def _quote(text: str) -> str:
    out = ['"']
    for c in text:
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c < " " or c == "\x7f":
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _format_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError("VIBE keys are non-empty strings, not %r" % (key,))
    if _IDENTIFIER.fullmatch(key):
        return key
    return _quote(key)


def _format_scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError("integer %d does not fit in 64 bits" % value)
        return str(int(value))
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, str):
        if _BARE_ONLY.fullmatch(value) and type(_scalar(value)) is str:
            return value
        return _quote(value)
    raise TypeError("VIBE cannot represent %r" % (value,))


def _emit(tree: Dict[str, Any], indent: str, out: List[str], depth: int) -> None:
    if depth > Limits.depth:
        raise ValueError("tree nests deeper than %d levels" % Limits.depth)
    for key, value in tree.items():
        name = _format_key(key)
        if isinstance(value, dict):
            if not value:
                out.append("%s%s {}\n" % (indent, name))
                continue
            out.append("%s%s {\n" % (indent, name))
            _emit(value, indent + "  ", out, depth + 1)
            out.append("%s}\n" % indent)
        elif isinstance(value, (list, tuple)):
            if not value:
                out.append("%s%s []\n" % (indent, name))
                continue
            out.append("%s%s [\n" % (indent, name))
            for item in value:
                if isinstance(item, (dict, list, tuple)):
                    raise ValueError("%s: an array holds scalars only" % key)
                out.append("%s  %s\n" % (indent, _format_scalar(item)))
            out.append("%s]\n" % indent)
        else:
            out.append("%s%s %s\n" % (indent, name, _format_scalar(value)))


def dumps(tree: Dict[str, Any]) -> str:
    """
    Emit ``tree`` in canonical VIBE: insertion order, two-space indent, one
    statement per line, LF endings, minimal quoting, shortest round-tripping
    floats.

    :raises TypeError: for a value VIBE has no type for (``None``, bytes...).
    :raises ValueError: for a value VIBE cannot hold (NaN, a nested array...).
    """
    if not isinstance(tree, dict):
        raise TypeError("a VIBE document is an object (dict), not %r" % type(tree).__name__)
    out: List[str] = []
    _emit(tree, "", out, 0)
    return "".join(out)
