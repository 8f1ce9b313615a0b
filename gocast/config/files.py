# -*- test-case-name: tests.test_config_files -*-
"""
Files a config names (a users file, a key, a certificate, a fallback, a
dump file), opened the one safe way: only a regular file (a FIFO or a
device would block the reactor, or never end), never more than a bound,
and an error that names the file and why, never what is inside it.
"""

from __future__ import annotations

import os
import stat
from typing import IO, Any, Iterator, List, Tuple


class SettingFileError(OSError):
    """The file cannot be used; ``str()`` says why, without its contents."""


def open_regular(path: str, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """
    A descriptor for ``path``, refused unless it is a regular file. Opened
    without blocking first: opening a FIFO for reading would otherwise wait
    for a writer, and the whole server with it.
    """
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), mode)
    except OSError as e:
        raise SettingFileError(e.errno, e.strerror or str(e), path) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SettingFileError(0, "not a regular file", path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_setting_file(path: str, limit: int) -> bytes:
    """
    The contents of the regular file ``path``, at most ``limit`` bytes.

    :raises SettingFileError: unreadable, not a regular file, or larger
        than ``limit`` (a users file or a key that size is a mistake).
    """
    with os.fdopen(open_regular(path), "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SettingFileError(0, "larger than %d KiB" % (limit // 1024), path)
    return data


def append_to_setting_file(path: str) -> IO[bytes]:
    """``path`` opened for appending (created 0600 if new); refused unless it is a regular file."""
    return os.fdopen(open_regular(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")


def describe(error: OSError) -> str:
    """Why a file could not be used, for an error message (no contents, no traceback)."""
    return error.strerror or str(error)


def named_files(config: Any) -> Iterator[Tuple[str, str]]:
    """``(setting, path)`` for every file the server will read with ``config``."""
    if config.ssl.enabled:
        for name in ("cert", "key", "chain"):
            if getattr(config.ssl, name):
                yield "ssl." + name, getattr(config.ssl, name)
    if config.geoip.enabled and config.geoip.database:
        yield "geoip.database", config.geoip.database
    for mount, settings in sorted(config.mounts.items()):
        where = "mounts.%s." % mount
        auth = settings.auth
        if auth.type == "basic" and auth.users_file:
            yield where + "auth.users_file", auth.users_file
        if auth.type == "token" and auth.public_key:
            yield where + "auth.public_key", auth.public_key
        if settings.fallback.file:
            yield where + "fallback.file", settings.fallback.file


def unusable_files(config: Any) -> List[str]:
    """One line for each file ``config`` names that the server could not read."""
    problems = []
    for setting, path in named_files(config):
        try:
            os.close(open_regular(path))
        except OSError as e:
            problems.append("%s: cannot read %s: %s" % (setting, path, describe(e)))
    return problems
