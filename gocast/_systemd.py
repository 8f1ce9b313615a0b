# -*- test-case-name: tests.test_systemd -*-
"""
What systemd expects of a service it starts: readiness told over
``$NOTIFY_SOCKET`` (``Type=notify``), and the folders it made for us
(``StateDirectory=`` in ``$STATE_DIRECTORY``).

The notify protocol is one datagram per message on a Unix socket; a path
beginning with ``@`` names a socket in the abstract namespace. It is a few
lines of the standard library, so no libsystemd binding is needed.
"""

from __future__ import annotations

import os
import socket
from typing import Mapping, Optional

from twisted.logger import Logger

_log = Logger()


def notify_address(environ: Mapping[str, str]) -> Optional[str]:
    """The notify socket systemd gave us, in the form ``socket.sendto`` takes."""
    address = environ.get("NOTIFY_SOCKET", "")
    if not address:
        return None
    if address.startswith("@"):
        return "\0" + address[1:]
    return address


def sd_notify(state: str, environ: Optional[Mapping[str, str]] = None) -> bool:
    """
    Send ``state`` (``READY=1``, ``STOPPING=1``, ``STATUS=...``) to systemd.
    Without ``$NOTIFY_SOCKET`` (not run by systemd with ``Type=notify``) it
    does nothing; a failure to send is logged, never raised: readiness is a
    courtesy to the supervisor, not a reason to stop serving.

    :return: whether the message was sent.
    """
    environ = os.environ if environ is None else environ
    address = notify_address(environ)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(state.encode("utf-8"), address)
    except OSError as e:
        _log.warn("could not notify systemd at {address}: {error}", address=environ["NOTIFY_SOCKET"],
                  error=str(e))
        return False
    return True


def state_directory(environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """
    The first folder of ``StateDirectory=`` (systemd sets ``$STATE_DIRECTORY``
    to a colon-separated list), or ``None`` when systemd did not set one.
    """
    environ = os.environ if environ is None else environ
    first = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return first or None
