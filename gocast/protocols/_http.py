# -*- test-case-name: tests.test_source -*-
"""
Sans-IO pieces of HTTP that GoCast parses itself: the request head (which
must accept ``SOURCE`` and ``ICE/1.0``, unlike twisted.web), chunked bodies,
Basic credentials, and writing a response head. Everything is bounded.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlsplit

import attr

from ..core.text import scrub

#: The most a request head (line and headers) may take.
MAX_HEAD = 16 * 1024
MAX_HEADERS = 100
#: The most a chunk-size line of a chunked body may take.
MAX_CHUNK_LINE = 1024
#: The largest chunk accepted (encoders send a few KiB at a time).
MAX_CHUNK = 16 * 1024 * 1024
#: A chunk size: hex digits only (Python's int() would also take 0x, _ and +).
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")

#: Reason phrases for the codes GoCast writes itself.
REASONS = {
    100: "Continue", 200: "OK", 204: "No Content", 302: "Found", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
    409: "Conflict", 415: "Unsupported Media Type", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable",
}


#: A header name (RFC 9110 token).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_METHOD = re.compile(r"[A-Z]{1,20}")
#: Control characters, tab included: none belongs in a request line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadRequest(Exception):
    """The request is malformed; :attr:`status` says how to answer."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


#: The query of a head that kept only what it needs (never changed: shared by all of them).
_NO_QUERY: Dict[str, List[str]] = {}


@attr.s(slots=True, auto_attribs=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: List[Tuple[str, str]]
    path: str = ""
    query: Dict[str, List[str]] = attr.Factory(dict)
    #: Each header's last value by name, made at the first lookup (a request asks for several).
    _index: Optional[Dict[str, str]] = attr.ib(default=None, init=False, repr=False, eq=False)

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The last value of header ``name`` (case-insensitive)."""
        index = self._index
        if index is None:
            index = self._index = dict(self.headers)  # a repeated header: its last value
        return index.get(name.lower(), default)

    def all(self, name: str) -> List[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    def arg(self, name: str) -> Optional[str]:
        values = self.query.get(name)
        return values[-1] if values else None

    def keep_only(self, *names: str) -> None:
        """Forget every header but ``names``, and the parsed query: what a long-lived connection keeps."""
        self.headers = [pair for pair in self.headers if pair[0] in names]
        self.query = _NO_QUERY
        self._index = None

    @property
    def keep_alive(self) -> bool:
        connection = (self.get("connection") or "").lower()
        if self.version == "HTTP/1.1":
            return "close" not in connection
        return "keep-alive" in connection


def find_head_end(buf: bytes) -> Optional[Tuple[int, int]]:
    """``(end of head, start of body)``, accepting CRLF or bare LF lines."""
    crlf = buf.find(b"\r\n\r\n")
    lf = buf.find(b"\n\n")
    candidates = [(crlf, crlf + 4)] if crlf >= 0 else []
    if lf >= 0:
        candidates.append((lf, lf + 2))
    return min(candidates) if candidates else None


def _head_lines(buf: bytes, what: str, status: int) -> Optional[Tuple[List[str], int]]:
    """The lines of the head at the start of ``buf`` and where the body starts; ``None`` until it is whole."""
    found = find_head_end(buf)
    if found is None:
        if len(buf) > MAX_HEAD:
            raise BadRequest("%s head larger than %d bytes" % (what, MAX_HEAD), status)
        return None
    end, body = found
    if end > MAX_HEAD:
        raise BadRequest("%s head larger than %d bytes" % (what, MAX_HEAD), status)
    text = buf[:end].decode("iso-8859-1")  # any byte decodes
    return text.replace("\r\n", "\n").split("\n"), body


def parse_head(buf: bytes) -> Optional[Tuple[RequestHead, int]]:
    """
    Parse a request head from the start of ``buf``.

    :return: the head and where the body starts, or ``None`` if more bytes
        are needed.
    :raises BadRequest: for a malformed or oversized head.
    """
    found = _head_lines(buf, "request", 431)
    if found is None:
        return None
    lines, body = found
    if _CONTROL.search(lines[0]):
        raise BadRequest("control characters in the request line")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest("malformed request line")
    method, target, version = parts
    method, version = sys.intern(method), sys.intern(version)  # one copy each, however many connections
    if version not in ("HTTP/1.0", "HTTP/1.1", "ICE/1.0"):
        raise BadRequest("unsupported protocol %r" % version[:20])
    if not _METHOD.fullmatch(method):
        # Methods are case-sensitive; twisted.web, which answers the web side, reads them as sent.
        raise BadRequest("malformed method: upper-case letters only, such as GET or SOURCE")
    headers = parse_header_lines(lines[1:])
    if target.startswith("/") and not target.startswith("//") and "#" not in target:
        raw_path, _, query = target.partition("?")  # origin form, nearly every request: urlsplit's answer
    else:
        split = urlsplit(target)
        raw_path, query = split.path, split.query
    path = unquote(raw_path) if "%" in raw_path else raw_path
    head = RequestHead(method, target, version, headers, path if target != "*" else "*",
                       parse_qs(query, keep_blank_values=True) if query else {})
    return head, body


def parse_header_lines(lines: List[str]) -> List[Tuple[str, str]]:
    """``Name: value`` lines as (lower-case name, scrubbed value) pairs. :raises BadRequest:"""
    if len(lines) > MAX_HEADERS:
        raise BadRequest("more than %d headers" % MAX_HEADERS, 431)
    headers = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.fullmatch(name):
            raise BadRequest("malformed header line")
        if "\r" in value or "\0" in value:
            # A bare CR would end the line for whoever this value is echoed to.
            raise BadRequest("header %s contains CR or NUL" % name.lower())
        headers.append((name.lower(), scrub(value).strip(" \t")))
    return headers


@attr.s(slots=True, auto_attribs=True)
class ResponseHead:
    """The head of an upstream's answer (a relay pull)."""

    version: str
    status: int
    reason: str
    headers: List[Tuple[str, str]]

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The last value of header ``name`` (case-insensitive)."""
        name = name.lower()
        for key, value in reversed(self.headers):
            if key == name:
                return value
        return default


#: ``HTTP/1.x 200 OK``, or SHOUTcast's ``ICY 200 OK``.
_STATUS_LINE = re.compile(r"(HTTP/1\.[01]|ICY) ([1-5][0-9][0-9])(?: (.*))?")


def parse_response_head(buf: bytes) -> Optional[Tuple[ResponseHead, int]]:
    """
    Parse a response head from the start of ``buf``, tolerant as players
    are: ``ICY 200 OK`` is a status line too (Twisted's client refuses it).

    :return: the head and where the body starts, or ``None`` if more bytes
        are needed.
    :raises BadRequest: for a malformed or oversized head.
    """
    found = _head_lines(buf, "response", 400)
    if found is None:
        return None
    lines, body = found
    status = _STATUS_LINE.fullmatch(lines[0])
    if status is None:
        raise BadRequest("not an HTTP or ICY status line: %r" % scrub(lines[0][:60]))
    version, code, reason = status.groups()
    return ResponseHead(version, int(code), scrub(reason or ""), parse_header_lines(lines[1:])), body


def declares_body(head: RequestHead) -> bool:
    """Whether a body follows the head (``Content-Length`` above 0, or any ``Transfer-Encoding``)."""
    return head.get("transfer-encoding") is not None or (head.get("content-length") or "0").strip() != "0"


def reply_version(head: RequestHead) -> str:
    """Answer in the request's HTTP version; ``ICE/1.0`` clients get HTTP/1.0."""
    return "HTTP/1.1" if head.version == "HTTP/1.1" else "HTTP/1.0"


def basic_credentials(head: RequestHead) -> Optional[Tuple[str, str]]:
    """The user and password of an ``Authorization: Basic`` header."""
    value = head.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def response_head(status: int, headers: List[Tuple[str, str]], version: str = "HTTP/1.0") -> bytes:
    lines = ["%s %d %s" % (version, status, REASONS.get(status, "Unknown"))]
    # Values are scrubbed as they go out too: whatever a source, a key holder or
    # a config put in them, a header stays one header.
    lines.extend("%s: %s" % (name, scrub(value)) for name, value in headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class ChunkedDecoder:
    """Decodes a ``Transfer-Encoding: chunked`` body as it arrives."""

    def __init__(self) -> None:
        self._buf = b""
        self._remaining = 0  # bytes of chunk data still to come
        self._state = "size"  # size, data, crlf, trailer, done

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> bytes:
        """Return the body bytes in ``data``. :raises BadRequest: on bad framing."""
        out = []
        buf = self._buf + data
        pos = 0
        while pos < len(buf) and self._state != "done":
            if self._state == "data":
                take = min(self._remaining, len(buf) - pos)
                out.append(buf[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._state = "crlf"
                continue
            newline = buf.find(b"\n", pos)
            if newline < 0:
                if len(buf) - pos > MAX_CHUNK_LINE:
                    raise BadRequest("chunk-size line too long")
                break
            line = buf[pos:newline].rstrip(b"\r")
            pos = newline + 1
            if self._state == "crlf":
                if line:
                    raise BadRequest("chunk data longer than its size")
                self._state = "size"
            elif self._state == "size":
                digits = line.split(b";", 1)[0].rstrip(b" \t")
                if not _CHUNK_SIZE.fullmatch(digits):
                    raise BadRequest("bad chunk size: 1 to 8 hex digits, nothing else")
                size = int(digits, 16)
                if size > MAX_CHUNK:
                    raise BadRequest("chunk larger than %d MiB" % (MAX_CHUNK >> 20))
                self._remaining = size
                self._state = "data" if size else "trailer"
            elif not line:  # end of trailer
                self._state = "done"
        self._buf = buf[pos:]
        return b"".join(out)
