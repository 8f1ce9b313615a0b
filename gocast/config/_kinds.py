# -*- test-case-name: tests.test_config -*-
"""
Value kinds: how one configuration value is read from the raw tree (VIBE or
JSON), checked, turned into a typed Python value, and written back.

Every kind has ``parse(raw, path, report)``, which returns the typed value or
:data:`INVALID` after reporting why; ``dump(value)``, which returns what a
config file would say; ``expected``, the words used in errors and docs; and
``schema()``, the JSON schema (OpenAPI 3.0 dialect) of what it accepts, so
the REST API's spec describes a mount's settings as the config file does.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
import re
from difflib import get_close_matches
from typing import Any, Dict, List, Optional, Sequence, Tuple
from urllib.parse import urlsplit

from ._report import Path, Reporter

#: Returned by a kind that reported a problem; the key keeps its default.
INVALID = object()

#: Shown in place of a secret by ``gocast config show`` and the API.
REDACTED = "<redacted>"


def _show(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, dict):
        return "a block { ... }"
    if isinstance(raw, list):
        return "a list [ ... ]"
    if isinstance(raw, str):
        return '"%s"' % (raw if len(raw) <= 40 else raw[:37] + "...")
    if raw is None:
        return "null"
    return str(raw)


#: Control characters but tab: no setting may hold one (they end up in
#: headers, playlists, pages and log lines).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def refuse_control(raw: str, path: Path, report: Reporter) -> Any:
    # The value is not repeated: it may be a password.
    report.error(path, "control characters (line breaks, NUL, escapes) are not allowed")
    return INVALID


class Kind:
    """Base kind: a scalar passed through unchanged."""

    expected = "a value"

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        return raw

    def dump(self, value: Any, reveal: bool = False) -> Any:
        return value

    def fail(self, raw: Any, path: Path, report: Reporter, why: str = "") -> Any:
        report.error(path, "expected %s, got %s%s" % (self.expected, _show(raw), why))
        return INVALID

    def schema(self) -> Dict[str, Any]:
        return {"description": self.expected}


class TextKind(Kind):
    """
    A value written as text and converted by :meth:`convert`, which raises
    ``ValueError`` (with an explanation, or none) to refuse it.

    :cvar pattern: a regular expression (ECMA-262 and Python alike) the text
        must match, for the schema; ``convert`` may check more.
    """

    pattern: Optional[str] = None

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if not isinstance(raw, str):
            return self.fail(raw, path, report)
        if _CONTROL.search(raw):
            return refuse_control(raw, path, report)
        try:
            return self.convert(raw)
        except ValueError as e:
            return self.fail(raw, path, report, "; %s" % e if str(e) else "")

    def convert(self, text: str) -> Any:
        raise NotImplementedError

    def schema(self) -> Dict[str, Any]:
        out = {"type": "string", "description": self.expected}
        if self.pattern:
            out["pattern"] = "^(?:%s)$" % self.pattern
        return out


class Str(Kind):
    """Text, optionally limited to some choices or a pattern."""

    def __init__(
        self,
        choices: Optional[Sequence[str]] = None,
        pattern: Optional[str] = None,
        expected: Optional[str] = None,
        allow_empty: bool = True,
    ):
        self.choices = tuple(choices) if choices else None
        self.pattern = re.compile(pattern) if pattern else None
        self.allow_empty = allow_empty
        if expected:
            self.expected = expected
        elif self.choices:
            self.expected = "one of " + ", ".join(self.choices)
        else:
            self.expected = vars(type(self)).get("expected", "text")  # a subclass's own words

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and not self.choices:
            raw = str(raw)
        if not isinstance(raw, str):
            return self.fail(raw, path, report)
        if _CONTROL.search(raw):
            return refuse_control(raw, path, report)
        if self.choices is not None and raw not in self.choices:
            close = get_close_matches(raw, self.choices, n=1, cutoff=0.6)
            hint = "; did you mean '%s'?" % close[0] if close else ""
            return self.fail(raw, path, report, hint)
        if not raw and not self.allow_empty:
            return self.fail(raw, path, report)
        if self.pattern is not None and not self.pattern.fullmatch(raw):
            return self.fail(raw, path, report)
        return raw

    def schema(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"type": "string"}
        if self.choices:
            out["enum"] = list(self.choices)
        if self.pattern is not None:
            out["pattern"] = "^(?:%s)$" % self.pattern.pattern
        if not self.allow_empty:
            out["minLength"] = 1
        return out


class Int(Kind):
    def __init__(self, minimum: Optional[int] = None, maximum: Optional[int] = None):
        self.minimum = minimum
        self.maximum = maximum
        if minimum is not None and maximum is not None:
            self.expected = "a whole number from %d to %d" % (minimum, maximum)
        elif minimum is not None:
            self.expected = "a whole number of at least %d" % minimum
        else:
            self.expected = "a whole number"

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if isinstance(raw, bool) or not isinstance(raw, int):
            return self.fail(raw, path, report)
        if (self.minimum is not None and raw < self.minimum) or (
            self.maximum is not None and raw > self.maximum
        ):
            return self.fail(raw, path, report)
        return raw

    def schema(self) -> Dict[str, Any]:
        return _bounded("integer", self.minimum, self.maximum)


class Float(Kind):
    expected = "a number"

    def __init__(self, minimum: Optional[float] = None, maximum: Optional[float] = None):
        self.minimum = minimum
        self.maximum = maximum
        if minimum is not None and maximum is not None:
            self.expected = "a number from %g to %g" % (minimum, maximum)

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
            return self.fail(raw, path, report)
        if self.minimum is not None and raw < self.minimum:
            return self.fail(raw, path, report, "; it must be at least %g" % self.minimum)
        if self.maximum is not None and raw > self.maximum:
            return self.fail(raw, path, report, "; it must be at most %g" % self.maximum)
        return float(raw)

    def schema(self) -> Dict[str, Any]:
        return _bounded("number", self.minimum, self.maximum)


def _bounded(kind: str, minimum: Any, maximum: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {"type": kind}
    if minimum is not None:
        out["minimum"] = minimum
    if maximum is not None:
        out["maximum"] = maximum
    return out


class Bool(Kind):
    expected = "true or false"

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if isinstance(raw, bool):
            return raw
        hint = ""
        if isinstance(raw, str) and raw.lower() in ("true", "false", "yes", "no", "on", "off"):
            hint = " (VIBE booleans are lowercase true or false, unquoted)"
        return self.fail(raw, path, report, hint)

    def schema(self) -> Dict[str, Any]:
        return {"type": "boolean"}


def _number_or_text(number: Dict[str, Any], pattern: str, expected: str) -> Dict[str, Any]:
    """A value written as a number or as text with units."""
    return {"oneOf": [number, {"type": "string", "pattern": "^(?:%s)$" % pattern}], "description": expected}


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> Optional[float]:
    """``"1h30m"`` → 5400.0; ``None`` when ``text`` is not a duration."""
    text = text.strip()
    if not text:
        return None
    pos = 0
    total = 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            return None
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        return None
    return total


def format_duration(seconds: float) -> Any:
    """The shortest exact way to write ``seconds``: ``90`` → ``"90s"``, ``3600`` → ``"1h"``."""
    if seconds == 0:
        return "0s"
    for unit in ("w", "d", "h", "m", "s"):
        size = _DURATION_UNITS[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return "%d%s" % (seconds // size, unit)
    millis = seconds * 1000
    if float(millis).is_integer():
        return "%dms" % millis
    return float(seconds)


#: The longest duration accepted (ten years): longer ones are typos, and
#: would overflow timers and dates.
MAX_DURATION = 10 * 365 * 86400.0


class Duration(Kind):
    """A time span in seconds: a number, or text such as ``30s``, ``5m``, ``1h30m``, ``30d``."""

    expected = "a duration such as 30s, 5m, 1h or 30d (a bare number is seconds, at most ten years)"

    def __init__(self, minimum: float = 0.0, positive: bool = False, maximum: float = MAX_DURATION):
        self.minimum = minimum
        self.positive = positive
        self.maximum = maximum

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if isinstance(raw, bool):
            return self.fail(raw, path, report)
        if isinstance(raw, (int, float)):
            value: Optional[float] = float(raw)
        elif isinstance(raw, str):
            value = parse_duration(raw)
        else:
            value = None
        if value is None:
            return self.fail(raw, path, report)
        if value < self.minimum:
            return self.fail(raw, path, report, "; it must be at least %s" % format_duration(self.minimum))
        if self.positive and value <= 0:
            return self.fail(raw, path, report, "; it must be more than 0")
        if value > self.maximum:
            return self.fail(raw, path, report, "; it must be at most %s" % (
                format_duration(self.maximum) if self.maximum < MAX_DURATION else "ten years"))
        return value

    def dump(self, value: float, reveal: bool = False) -> Any:
        return format_duration(value)

    def schema(self) -> Dict[str, Any]:
        number: Dict[str, Any] = {"type": "number", "minimum": self.minimum, "maximum": self.maximum}
        if self.positive:
            number["exclusiveMinimum"] = True
        # Text durations are not bounded by the schema; the server checks them.
        return _number_or_text(number, "(?:%s)+" % _DURATION_PART.pattern, self.expected)


_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)(i?[bB])?")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> Optional[int]:
    """``"64k"`` → 65536, ``"100MB"`` → 104857600 (binary units); ``None`` if not a size."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        return None
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


def format_size(size: int) -> Any:
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor and size % factor == 0:
            return "%d%s" % (size // factor, unit)
    return size


class Size(Kind):
    """A byte count: a number, or text with a binary unit (``64k``, ``100MB``, ``1G``)."""

    expected = "a size such as 65536, 64k or 100MB"

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if isinstance(raw, bool):
            return self.fail(raw, path, report)
        if isinstance(raw, int):
            value: Optional[int] = raw
        elif isinstance(raw, str):
            value = parse_size(raw)
        else:
            value = None
        if value is None or value < 0:
            return self.fail(raw, path, report)
        return value

    def dump(self, value: int, reveal: bool = False) -> Any:
        return format_size(value)

    def schema(self) -> Dict[str, Any]:
        return _number_or_text({"type": "integer", "minimum": 0}, _SIZE.pattern, self.expected)


_BITRATE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kKmM]?)(?:bps|b/s|bit/s)?")


class Bitrate(Kind):
    """
    An audio bitrate in bits per second. ``128k`` and ``1.5M`` use decimal
    units, as audio does; a bare number is kbit/s, as Icecast writes bitrates.
    """

    expected = "a bitrate such as 128k (a bare number is kbit/s; at most 100M)"
    maximum = 100000000

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        value: Optional[float] = None
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            value = float(raw) * 1000
        elif isinstance(raw, str):
            m = _BITRATE.fullmatch(raw.strip())
            if m:
                factor = {"": 1000, "k": 1000, "m": 1000000}[m.group(2).lower()]
                value = float(m.group(1)) * factor
        if value is None or not 0 < value <= self.maximum:
            return self.fail(raw, path, report)
        return int(value)

    def dump(self, value: int, reveal: bool = False) -> Any:
        if value % 1000 == 0:
            return "%dk" % (value // 1000)
        return "%gk" % (value / 1000)

    def schema(self) -> Dict[str, Any]:
        return _number_or_text({"type": "number", "minimum": 0, "exclusiveMinimum": True,
                                "maximum": self.maximum / 1000}, _BITRATE.pattern, self.expected)


class CIDR(TextKind):
    """An IPv4 or IPv6 network (``10.0.0.0/8``) or a single address."""

    expected = "an IP address or network such as 10.0.0.0/8 or 2001:db8::/32"

    def convert(self, text: str) -> Any:
        try:
            return ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError("")

    def dump(self, value: Any, reveal: bool = False) -> Any:
        if value.num_addresses == 1:
            return str(value.network_address)
        return str(value)


class NetworkText(CIDR):
    """A network as :class:`CIDR` checks it, kept as its normalised text (a key of a block)."""

    def convert(self, text: str) -> Any:
        return str(super().convert(text))

    def dump(self, value: Any, reveal: bool = False) -> Any:
        return value


_MOUNT_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")


def normalise_mount(text: str) -> Optional[str]:
    """``live`` and ``/live`` are the mount ``/live``; ``None`` if not a usable mount path."""
    if not text.startswith("/"):
        text = "/" + text
    if not _MOUNT_PATH.fullmatch(text) or text == "/" or "//" in text:
        return None
    if any(part in (".", "..") for part in text.split("/")):
        return None
    return text


class MountPath(TextKind):
    expected = "a mount path such as /live"
    pattern = r"/?[A-Za-z0-9_~!$&'()*+,;=:@%-][A-Za-z0-9._~!$&'()*+,;=:@%-]*(/[A-Za-z0-9_~!$&'()*+,;=:@%-][A-Za-z0-9._~!$&'()*+,;=:@%-]*)*"

    def convert(self, text: str) -> Any:
        mount = normalise_mount(text)
        if mount is None:
            raise ValueError("")
        return mount


class URL(TextKind):
    def __init__(self, schemes: Sequence[str] = ("http", "https")):
        self.schemes = tuple(schemes)
        self.expected = "a URL (%s)" % ", ".join(self.schemes)
        self.pattern = "(%s)://[^/?#]+([/?#].*)?" % "|".join(self.schemes)

    def convert(self, text: str) -> Any:
        parts = urlsplit(text)
        if parts.scheme not in self.schemes or not parts.netloc:
            raise ValueError("")
        return text

    def dump(self, value: Any, reveal: bool = False) -> Any:
        return value if reveal or value is None else redact_url(value)


#: Query parameters that carry a credential, whatever the URL (a regular
#: expression alternation, also used to redact logged request targets).
CREDENTIAL_PARAMS = (r"api_?key|key|token|access_token|secret|password|passwd|pass|auth|"
                     r"signature|sig|x-amz-signature|x-amz-credential|credential")
_SECRET_PARAMS = re.compile(r"(?i)^(%s)$" % CREDENTIAL_PARAMS)


def redact_url(url: str) -> str:
    """``url`` with the password of its user info and credential query parameters shown as <redacted>."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, sep, _ = userinfo.partition(":")
        netloc = "%s%s@%s" % (user, ":" + REDACTED if sep else "", host) if user else "%s@%s" % (REDACTED, host)
    query = "&".join(
        "%s=%s" % (name, REDACTED) if sep and _SECRET_PARAMS.match(name) else name + sep + value
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&"))
    ) if parts.query else ""
    return parts._replace(netloc=netloc, query=query).geturl()


class Charset(TextKind):
    """A text encoding Python can write (UTF-8, ISO-8859-1...), not a codec such as rot13 or zlib."""

    expected = "a character set such as UTF-8 or ISO-8859-1"

    def convert(self, text: str) -> Any:
        try:
            "Ünïcödé".encode(text, "replace")
        except (LookupError, TypeError, ValueError):
            raise ValueError("")
        return text


class HostPort(TextKind):
    expected = "host:port, such as radio.example.com:8000"
    pattern = ".+:[0-9]{1,5}"

    def convert(self, text: str) -> Any:
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("")
        return text


def split_endpoint(text: str) -> Tuple[List[str], Dict[str, str]]:
    """
    A Twisted endpoint string's fields, as Twisted reads them: split on
    ``:`` except where escaped with a backslash; ``key=value`` fields are
    keyword arguments, the others positional.
    """
    fields, current, escaped = [], "", False
    for char in text:
        if escaped:
            current, escaped = current + char, False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append(current)
            current = ""
        else:
            current += char
    fields.append(current)
    args, kwargs = [], {}
    for field in fields:
        key, sep, value = field.partition("=")
        if sep:
            kwargs[key] = value
        else:
            args.append(field)
    return args, kwargs


#: The endpoint types a listening address may use, with their arguments in
#: order (TLS has its own ``ssl { }`` block, so ``ssl:`` is not offered).
_ENDPOINT_ARGS = {
    "tcp": ("port", "backlog", "interface"),
    "tcp6": ("port", "backlog", "interface"),
    "unix": ("address", "backlog", "mode", "lockfile"),
    "systemd": ("domain", "index", "name"),
}
_PROXY_PREFIX = "haproxy:"


def check_endpoint(text: str) -> None:
    """
    Refuse (``ValueError`` saying why) an endpoint string GoCast cannot
    listen on. Whether systemd passed the socket is only known at start.
    """
    if text.startswith(_PROXY_PREFIX):
        text = text[len(_PROXY_PREFIX):]
        if text.startswith(_PROXY_PREFIX):
            raise ValueError("haproxy: wraps one endpoint, once")
    args, kwargs = split_endpoint(text)
    kind, args = args[0] if args else "", args[1:]
    names = _ENDPOINT_ARGS.get(kind)
    if names is None:
        raise ValueError("the type must be tcp, tcp6, unix or systemd, optionally after haproxy:")
    if len(args) > len(names):
        raise ValueError("%s: takes at most %d positional fields" % (kind, len(names)))
    unknown = sorted(set(kwargs) - set(names))
    if unknown:
        raise ValueError("%s: unknown option %s (it takes %s)" % (kind, unknown[0], ", ".join(names)))
    values = dict(zip(names, args))
    for key, value in kwargs.items():
        if key in values:
            raise ValueError("%s: %s given twice" % (kind, key))
        values[key] = value
    if kind in ("tcp", "tcp6"):
        port = values.get("port", "")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("%s: needs a port from 1 to 65535" % kind)
    elif kind == "unix" and not values.get("address"):
        raise ValueError("unix: needs the socket's path")
    elif kind == "systemd":
        if values.get("domain") not in ("INET", "INET6", "UNIX"):
            raise ValueError("systemd: needs domain=INET, INET6 or UNIX")
        if ("index" in values) == ("name" in values):
            raise ValueError("systemd: needs index=N or name=NAME (FileDescriptorName=), not both")
        if "index" in values and not values["index"].isdigit():
            raise ValueError("systemd: index is a number")
    if "backlog" in values and not values["backlog"].isdigit():
        raise ValueError("%s: backlog is a number" % kind)


class Endpoint(TextKind):
    """A Twisted server endpoint string for a listening address."""

    expected = ("a Twisted endpoint such as tcp:8000:interface=0.0.0.0, "
                "systemd:domain=INET:index=0 or haproxy:tcp:8001")
    pattern = "(haproxy:)?(tcp|tcp6|unix|systemd):.+"

    def convert(self, text: str) -> Any:
        check_endpoint(text)
        return text


_CRON_NAMES = {
    3: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
    4: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
}
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def _cron_value(text: str, field: int) -> Optional[int]:
    names = _CRON_NAMES.get(field)
    if names and text.lower() in names:
        return names.index(text.lower()) + (1 if field == 3 else 0)
    if text.isdigit():
        low, high = _CRON_RANGES[field]
        value = int(text)
        return value if low <= value <= high else None
    return None


def check_cron(expr: str) -> Optional[str]:
    """Return why ``expr`` is not a five-field cron expression, or ``None``."""
    expr = _CRON_MACROS.get(expr.strip(), expr)
    fields = expr.split()
    if len(fields) != 5:
        return "a cron expression has 5 fields (minute hour day month weekday), got %d" % len(fields)
    labels = ("minute", "hour", "day of month", "month", "weekday")
    for index, field in enumerate(fields):
        for item in field.split(","):
            base, _, step = item.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                return "bad step %r in the %s field" % (item, labels[index])
            if base == "*":
                continue
            low, dash, high = base.partition("-")
            bounds = [_cron_value(low, index)] + ([_cron_value(high, index)] if dash else [])
            if None in bounds or (dash and bounds[0] > bounds[1]):  # type: ignore[operator]
                low_ok, high_ok = _CRON_RANGES[index]
                return "%r is not valid in the %s field (%d-%d)" % (
                    item, labels[index], low_ok, high_ok)
    return None


class Cron(TextKind):
    expected = 'a cron expression such as "0 6 * * *"'

    def convert(self, text: str) -> Any:
        why = check_cron(text)
        if why:
            raise ValueError(why)
        return text


class Date(TextKind):
    """A calendar date (``2025-12-31``) or an ISO 8601 date and time."""

    expected = "a date such as 2025-12-31"

    def convert(self, text: str) -> Any:
        try:
            if len(text) == 10:
                return datetime.date.fromisoformat(text)
            return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("")

    def dump(self, value: Any, reveal: bool = False) -> Any:
        return value.isoformat()


class Dimensions(TextKind):
    expected = "a size in pixels such as 300x300"
    pattern = "[1-9][0-9]{0,4}x[1-9][0-9]{0,4}"

    def convert(self, text: str) -> Any:
        m = re.fullmatch(r"([1-9][0-9]{0,4})x([1-9][0-9]{0,4})", text)
        if not m:
            raise ValueError("")
        return (int(m.group(1)), int(m.group(2)))

    def dump(self, value: Tuple[int, int], reveal: bool = False) -> Any:
        return "%dx%d" % value


class ListOf(Kind):
    """
    A list of scalars. A single scalar is taken as a list of one. Items
    written with commas, as in ``[a, b]``, are accepted with a warning,
    because VIBE separates items by spaces.
    """

    def __init__(self, item: Kind):
        self.item = item
        self.expected = "a list of %s" % _plural(item.expected)

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if not isinstance(raw, list):
            if isinstance(raw, dict) or raw is None:
                return self.fail(raw, path, report)
            raw = [raw]
        out = []
        commas = False
        ok = True
        for index, item in enumerate(raw):
            if isinstance(item, str) and item.endswith(",") and len(item) > 1:
                item = item.rstrip(",")
                commas = True
            elif item == ",":
                commas = True
                continue
            if isinstance(item, (dict, list)):
                report.error(path + (index,), "list items must be plain values, got %s" % _show(item))
                ok = False
                continue
            value = self.item.parse(item, path + (index,), report)
            if value is INVALID:
                ok = False
            else:
                out.append(value)
        if commas:
            report.warning(
                path,
                "list items are separated by spaces in VIBE; the commas were ignored",
            )
        return tuple(out) if ok else INVALID

    def dump(self, value: Sequence[Any], reveal: bool = False) -> Any:
        return [self.item.dump(v, reveal) for v in value]

    def schema(self) -> Dict[str, Any]:
        return {"type": "array", "items": self.item.schema()}


def _plural(expected: str) -> str:
    if expected == "text":
        return "text items"
    return "items, each " + expected


class MapOf(Kind):
    """
    Named entries, ``NAME value`` or ``NAME { ... }``, all of one kind, as in
    ``mounts { live { ... } }`` or ``users { alice "secret" }``.

    :param key: the kind that checks and normalises each name (a mount path
        turns ``live`` into ``/live``).
    """

    def __init__(self, value: Kind, key: Optional[TextKind] = None):
        self.value = value
        self.key = key
        self.expected = "a block of named entries"

    def parse(self, raw: Any, path: Path, report: Reporter) -> Any:
        if not isinstance(raw, dict):
            return self.fail(raw, path, report)
        out: Dict[str, Any] = {}
        for name, item in raw.items():
            key = self.parse_key(name, path + (name,), report)
            if key is None:
                continue
            if key in out:
                report.warning(path + (name,), "%s is defined twice; the last one wins" % key)
            value = self.value.parse(item, path + (name,), report)
            if value is not INVALID:
                out[key] = value
        return out

    def parse_key(self, name: str, path: Path, report: Reporter) -> Optional[str]:
        if self.key is None:
            return name
        try:
            return self.key.convert(name)
        except ValueError as e:
            report.error(path, "%r is not %s%s" % (name, self.key.expected, "; %s" % e if str(e) else ""),
                         at="key")
            return None

    def dump(self, value: Dict[str, Any], reveal: bool = False) -> Any:
        return {k: self.value.dump(v, reveal) for k, v in value.items()}

    def schema(self) -> Dict[str, Any]:
        return {"type": "object", "additionalProperties": self.value.schema(), "description": self.expected}

