# -*- test-case-name: tests.test_source -*-
"""
Text a client sent, made safe to repeat: in a response header, a playlist,
a status page or a log line, a stray control character (a CR most of all)
could start a header, an entry or a line of its own.
"""

from __future__ import annotations

import re

_CONTROL_BUT_TAB = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def scrub(value: str) -> str:
    """``value`` with every control character but tab replaced by a space."""
    return _CONTROL_BUT_TAB.sub(" ", value)
