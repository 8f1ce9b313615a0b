# -*- test-case-name: tests.test_logs -*-
"""
Structured logging through twisted.logger.

- :func:`build_observer` turns ``logging { format level output
  include_request_id }`` into the observer twistd uses (the service offers it
  to the application as its ``ILogObserver``). Without ``output``, lines go
  where twistd would put them (:func:`twistd_log_output`).
- Log files are reopened by name on SIGUSR1 and at every reload
  (:func:`reopen_logs`), so logrotate can move them away.
- JSON lines carry ``timestamp``, ``level``, ``message``, ``namespace`` and
  the event's own fields (``event``, ``mount``, ``client``, ``request_id``...),
  so Loki or ELK index them without parsing text.
- :class:`AccessLog` writes one line per finished request or listener, in
  combined log format or JSON, to the main log or to its own rotated file.
- Secrets never reach a log line: query values named like passwords or
  tokens are replaced by :func:`redact_target`.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import datetime, timezone
from typing import IO, Any, Callable, Dict, Mapping, Optional

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LegacyLogObserverWrapper,
    LogLevel,
    LogLevelFilterPredicate,
    Logger,
    formatEvent,
    formatEventAsClassicLogText,
    formatTime,
)
from twisted.python.logfile import DailyLogFile, LogFile
from twisted.python.syslog import SyslogObserver
from zope.interface import implementer

from ..config._kinds import CREDENTIAL_PARAMS, parse_size
from ..config._schema import LoggingConfig

_LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn, "error": LogLevel.error}
_SECRET_PARAMS = re.compile(r"([?&](?:%s)=)[^&#]*" % CREDENTIAL_PARAMS,
                            re.IGNORECASE)
_PLAIN = (str, int, float, bool, type(None))
#: A user name shown in a log line: no spaces, quotes or control characters.
_LOG_UNSAFE = re.compile(r'[\s"\\\x00-\x1f\x7f]')


_ESCAPED = re.compile(r'["\\\x00-\x1f\x7f-\x9f]')


def escape(field: str) -> str:
    """
    A client's text as a combined-format field: quotes, backslashes and
    control characters escaped (``\\"``, ``\\\\``, ``\\x1b``), so a user agent
    can neither forge a line nor send escape codes to a terminal.
    """
    if field.isascii() and field.isprintable() and '"' not in field and "\\" not in field:
        return field  # nearly always: no regular expression run for it
    return _ESCAPED.sub(lambda m: "\\" + m.group() if m.group() in '"\\' else "\\x%02x" % ord(m.group()), field)


def redact_target(target: str) -> str:
    """``/admin.cgi?pass=x&song=y`` → ``/admin.cgi?pass=<redacted>&song=y``."""
    if "?" not in target and "&" not in target:
        return target
    return _SECRET_PARAMS.sub(r"\1<redacted>", target)


#: Files opened for logs, by path: a reload reuses them instead of opening
#: (and leaking) another handle, and :func:`reopen_logs` reopens them all.
_OPEN: Dict[str, Any] = {}

#: A destination :func:`twistd_log_output` gives for ``twistd --syslog``:
#: ``syslog:<prefix>``.
SYSLOG = "syslog:"


def reopenable_file(path: str) -> LogFile:
    """
    A log file appended to and never rotated here: :meth:`LogFile.reopen`
    opens it again by name after logrotate moved it (the path is made
    absolute, as twistd may chdir to --rundir later).
    """
    return LogFile.fromFullPath(path, rotateLength=None)


def open_output(output: str) -> IO[str]:
    # The process's own streams: twistd swaps sys.stdout for a file that
    # logs what is written to it, and an observer writing there would feed
    # itself (twistd then drops it: no more log after a reload).
    if output == "stdout":
        return sys.__stdout__ or sys.stdout
    if output == "stderr":
        return sys.__stderr__ or sys.stderr
    if output not in _OPEN:
        _OPEN[output] = reopenable_file(output)
    return _OPEN[output]


def reopen_logs() -> None:
    """Reopen every log file by name (SIGUSR1, a reload): logrotate's ``postrotate``."""
    for log in _OPEN.values():
        log.reopen()


def twistd_log_output(twistd: Optional[Mapping[str, Any]]) -> str:
    """
    Where twistd would have logged, given its options (``None``: not run by
    twistd's command line): ``stdout``, a file, or ``syslog:<prefix>``. The
    service takes over twistd's observer, so it must honour these itself.
    """
    if twistd is None:
        return "stdout"
    if twistd.get("syslog"):
        return SYSLOG + (twistd.get("prefix") or "twisted")
    logfile = twistd.get("logfile") or ""
    if logfile == "-" or (not logfile and twistd.get("nodaemon")):
        return "stdout"
    return logfile or "twistd.log"


def event_fields(event: Dict[str, Any]) -> Dict[str, Any]:
    """The JSON-ready fields of a log event, without twisted.logger's own."""
    return {key: value for key, value in event.items()
            if not key.startswith("log_") and isinstance(value, _PLAIN)}


@implementer(ILogObserver)
class JSONLinesObserver:
    """One JSON object per line."""

    def __init__(self, out: IO[str], include_request_id: bool = True):
        self.out = out
        self.include_request_id = include_request_id

    def __call__(self, event: Dict[str, Any]) -> None:
        record: Dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(event.get("log_time", time.time()), timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": getattr(event.get("log_level"), "name", "info"),
            "message": formatEvent(event),
            "namespace": event.get("log_namespace", ""),
        }
        record.update(event_fields(event))
        if not self.include_request_id:
            record.pop("request_id", None)
        failure = event.get("log_failure")
        if failure is not None:
            record["error"] = failure.getTraceback()
        self.out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.out.flush()


def build_observer(config: LoggingConfig, out: Optional[IO[str]] = None,
                   default_output: str = "stdout", clock: Any = None) -> ILogObserver:
    """
    The observer for ``logging { ... }``: format, destination, level. An
    empty ``output`` means ``default_output``, where twistd would log.
    ``clock`` lets a text log flush access lines in batches.
    """
    output = config.output or default_output
    if out is None and output.startswith(SYSLOG):
        # Syslog takes text; it stamps the time and the program itself.
        observer: ILogObserver = LegacyLogObserverWrapper(SyslogObserver(output[len(SYSLOG):]).emit)
    else:
        out = out or open_output(output)
        if config.format == "json":
            observer = JSONLinesObserver(out, config.include_request_id)
        else:
            observer = TextLogObserver(out, clock)
    predicate = LogLevelFilterPredicate(defaultLogLevel=_LEVELS[config.level])
    filtered = FilteringLogObserver(observer, [predicate])
    if isinstance(observer, TextLogObserver):
        # The access log's way around the event machinery, under the same level rule.
        filtered.access_line = (observer.access_line if _LEVELS[config.level] <= LogLevel.info  # type: ignore
                                else _ignore_access_line)
    return filtered


_access = Logger(namespace="gocast.access")
ACCESS_FORMAT = "{access_line}"
#: The system an access line names in the text log, as Twisted would.
ACCESS_SYSTEM = "gocast.access#info"


@implementer(ILogObserver)
class TextLogObserver:
    """
    The lines of Twisted's ``textFileLogObserver`` (``<time> [<system>]
    <message>``), made cheaper for the line every request writes: the time
    is formatted once a second, and an access line is written as it comes
    rather than through the format machinery (24 µs a line down to 6).
    """

    def __init__(self, out: IO[str], clock: Any = None):
        """:param clock: schedules the batched flush of access lines (without one, each is flushed)."""
        self.out = out
        self._second: Optional[int] = None
        self._stamp = ""
        self.flusher = SoonFlushed(out, clock)

    def stamp(self, when: Optional[float]) -> str:
        if when is None:
            return "-"
        second = int(when)
        if second != self._second:
            self._second, self._stamp = second, formatTime(second)
        return self._stamp

    def __call__(self, event: Dict[str, Any]) -> None:
        if event.get("log_format") == ACCESS_FORMAT and "access_line" in event:
            system = event.get("log_system") or "%s#%s" % (event.get("log_namespace"), event["log_level"].name)
            text: Optional[str] = "%s [%s] %s\n" % (self.stamp(event.get("log_time")), system, event["access_line"])
        else:
            text = formatEventAsClassicLogText(event, formatTime=self.stamp)
        if text:
            self.out.write(text)
            self.out.flush()

    def access_line(self, line: str, fields: Callable[[], Dict[str, Any]]) -> None:
        """
        An access line, on the access log's fast way in (the reactor
        thread only): no log event is built, and lines are flushed in
        batches (:class:`SoonFlushed`).
        """
        self.out.write("%s [%s] %s\n" % (self.stamp(time.time()), ACCESS_SYSTEM, line))
        self.flusher.written()


class SoonFlushed:
    """
    Flushes a log file a little after a line is written rather than after
    every line: at thousands of requests a second, a ``write`` system call
    per access line was a good share of a request's cost. Without a clock
    (tests, tools), every line is flushed at once.
    """

    #: The longest a written line waits to reach the file.
    DELAY = 0.05

    def __init__(self, out: Any, clock: Any = None):
        self.out = out
        self.clock = clock
        self._pending: Any = None

    def written(self) -> None:
        if self.clock is None:
            self.out.flush()
        elif self._pending is None:
            self._pending = self.clock.callLater(self.DELAY, self.flush)

    def flush(self) -> None:
        self._pending = None
        self.out.flush()


def _ignore_access_line(line: str, fields: Callable[[], Dict[str, Any]]) -> None:
    """``logging.level`` above info: access lines are not logged."""


@implementer(ILogObserver)
class SwitchableObserver:
    """The observer twistd keeps; a reload swaps what it forwards to."""

    def __init__(self, observer: ILogObserver):
        self.observer = observer
        #: Whether twistd logs through this observer (else, in tests, log events go elsewhere).
        self.installed = False

    def __call__(self, event: Dict[str, Any]) -> None:
        self.observer(event)

    def access_line(self, line: str, fields: Callable[[], Dict[str, Any]]) -> None:
        """An access line for the server log: straight to a text log this observer writes, else as a log event."""
        fast = getattr(self.observer, "access_line", None) if self.installed else None
        if fast is not None:
            fast(line, fields)
        else:
            _access.info(ACCESS_FORMAT, access_line=line, **fields())


class AccessLog:
    """One line per finished HTTP request or listener."""

    def __init__(self, config: LoggingConfig,
                 server_log: Optional[Callable[[str, Callable[[], Dict[str, Any]]], None]] = None,
                 clock: Any = None):
        """
        :param server_log: where lines go without an ``access_log`` file:
            the server log's fast way in (``SwitchableObserver.access_line``);
            by default, log events.
        :param clock: flushes the ``access_log`` file in batches (without
            one, after every line).
        """
        self.json = config.format == "json"
        self.file: Any = None
        self.server_log = server_log
        if config.access_log:
            self.file = open_rotating(config.access_log, config.access_log_rotation)
            self.flusher = SoonFlushed(self.file, clock)

    def record(self, client: str, method: str, target: str, version: str, status: int, size: int,
               referer: str, agent: str, seconds: float, request_id: str, mount: str = "",
               user: str = "") -> None:
        """
        One line; ``user`` is who the listener authenticated as (a token's
        listener_id, a user name), in the combined format's user field.
        """
        target = redact_target(target)
        date = self.date()
        shown_user = _LOG_UNSAFE.sub("_", user) if user else "-"
        line = '%s - %s [%s] "%s %s %s" %d %d "%s" "%s" %d' % (
            escape(client), shown_user, date, escape(method), escape(target), escape(version), status, size,
            escape(referer) or "-", escape(agent) or "-", seconds)

        def fields() -> Dict[str, Any]:
            found = dict(client=client, method=method, path=target, status=status, bytes=size,
                         referer=referer, user_agent=agent, duration=round(seconds, 3), request_id=request_id)
            if mount:
                found["mount"] = mount
            if user:
                found["user"] = user
            return found

        if self.file is not None:
            text = json.dumps(dict(fields(), timestamp=time.time())) if self.json else line
            self.file.write(text + "\n")
            self.flusher.written()
        elif self.server_log is not None:
            self.server_log(line, fields)
        else:
            _access.info(ACCESS_FORMAT, access_line=line, **fields())

    _second = -1
    _date = ""

    def date(self) -> str:
        """The combined format's date, formatted once a second."""
        second = int(time.time())
        if second != self._second:
            self._second, self._date = second, time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(second))
        return self._date


#: Bus events logged at debug rather than info: one per listener, and the
#: access log already has a line for each.
_QUIET_EVENTS = ("listener.connect", "listener.disconnect")
#: Bus events that say something is wrong with a source or an upstream.
_WARN_EVENTS = ("source.codec_mismatch", "relay.disconnected")


def log_events(bus: Any) -> None:
    """Log every bus event as a structured line (``event``, ``mount`` and its data)."""
    log = Logger(namespace="gocast.events")

    def emit(event: Any) -> None:
        level = log.debug if event.name in _QUIET_EVENTS else log.warn if event.name in _WARN_EVENTS else log.info
        fields = {k: v for k, v in event.data.items() if isinstance(v, _PLAIN) and not k.startswith("log_")}
        level("{event} {mount}", event=event.name, mount=event.mount or "-", **fields)

    bus.subscribe(emit)


def open_rotating(path: str, rotation: str) -> Any:
    """
    A log file rotated daily, past a size (``size:10MB``), or never
    (``none``: logrotate's job); one per path and rotation.
    """
    key = "%s|%s" % (path, rotation)
    if key not in _OPEN:
        if rotation == "daily":
            _OPEN[key] = DailyLogFile.fromFullPath(path)
        elif rotation == "none":
            _OPEN[key] = reopenable_file(path)
        else:
            size = parse_size(rotation.partition(":")[2]) if rotation.startswith("size:") else None
            _OPEN[key] = LogFile.fromFullPath(path, rotateLength=size or 10 * 1024 * 1024,
                                              maxRotatedFiles=10)
    return _OPEN[key]
