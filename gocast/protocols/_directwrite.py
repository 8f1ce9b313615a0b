# -*- test-case-name: tests.test_directwrite -*-
"""
Writing a listener's chunk straight to its socket (and keeping each
connection's transport small).

Twisted's ``transport.write`` queues the bytes, registers the socket for
writability with epoll, and sends them when the reactor hears back: for a
chunk that fits in the kernel's send buffer (nearly always, for a
listener keeping up) that is an ``epoll_ctl`` and a wakeup per listener per
chunk, the largest cost of fan-out. When Twisted has nothing queued for a
plain TCP connection, the bytes can go out with one ``send`` instead; only
what the kernel does not take (a slow listener) is handed to Twisted,
whose buffer, producer pausing and error handling then work as usual.
Anything else (TLS, the PROXY protocol wrapper, a test transport) goes
through ``transport.write`` unchanged.
"""

from __future__ import annotations

from typing import Any, List

from twisted.internet.tcp import Connection
from twisted.protocols.policies import ProtocolWrapper


def _queued_in(transport: Connection) -> bool:
    return bool(transport._tempDataBuffer) or len(transport.dataBuffer) > transport.offset


def queued(transport: Any) -> bool:
    """
    Whether Twisted holds bytes for this connection that the kernel has not
    taken yet (seen through a PROXY-protocol wrapper; other transports say no).
    """
    while isinstance(transport, ProtocolWrapper):
        transport = transport.transport
    return isinstance(transport, Connection) and _queued_in(transport)


def _idle_socket(transport: Any) -> Any:
    """The socket to send on directly: a plain TCP transport, connected, with nothing queued in Twisted."""
    if not isinstance(transport, Connection):
        return None
    if (not transport.connected or transport.disconnecting or transport._writeDisconnected
            or _queued_in(transport)):
        return None
    return transport.socket


def write(transport: Any, data: bytes) -> None:
    """``transport.write(data)``, with one ``send`` when nothing waits before it."""
    sock = _idle_socket(transport)
    if sock is None:
        transport.write(data)
        return
    try:
        sent = sock.send(data)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        transport.write(data)  # Twisted's own attempt meets the error and closes the connection its way
        return
    if sent < len(data):
        transport.write(data[sent:])


def write_sequence(transport: Any, parts: List[bytes]) -> None:
    """``transport.writeSequence(parts)``, with one ``sendmsg`` (no joining) when nothing waits before it."""
    sock = _idle_socket(transport)
    if sock is None:
        transport.writeSequence(parts)
        return
    try:
        sent = sock.sendmsg(parts)
    except (BlockingIOError, InterruptedError):
        sent = 0
    except OSError:
        transport.writeSequence(parts)
        return
    rest = []
    for part in parts:
        if sent >= len(part):
            sent -= len(part)
            continue
        rest.append(part[sent:] if sent else part)
        sent = 0
    if rest:
        transport.writeSequence(rest)


#: What every connection's transport says of itself in Twisted's logs and reprs.
_LOG_PREFIX = "FrontDoor"
_REPR = "<FrontDoor connection>"


def lighten(transport: Any) -> None:
    """
    Share the two strings Twisted builds for each TCP connection (its log
    prefix and repr, with the session number and peer in them): with tens
    of thousands of listeners they are a good share of each one's memory,
    and GoCast's own log lines name the listener and its address anyway.
    """
    if isinstance(transport, Connection):
        transport.logstr = _LOG_PREFIX
        if hasattr(transport, "repstr"):
            transport.repstr = _REPR

