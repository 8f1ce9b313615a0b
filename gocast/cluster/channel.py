# -*- test-case-name: tests.test_workers -*-
"""
The control channel between the main process and a worker: a Unix socket
pair carrying length-prefixed JSON messages, and the listeners' sockets
themselves (``SCM_RIGHTS``), each sent just before the message about it.
"""

from __future__ import annotations

import json
import os
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional

from twisted.internet.interfaces import IFileDescriptorReceiver
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver
from zope.interface import implementer

#: No control message comes near this; a larger one is a bug, and ends the channel.
MAX_MESSAGE = 1024 * 1024
#: Descriptors received and not yet claimed by a message. Twisted sends each
#: queued descriptor with one byte of whatever is next in the buffer, so a
#: burst of hand-overs delivers its sockets ahead of their messages (in
#: order): hundreds may wait at once. Past this the peer is misbehaving.
MAX_PENDING_FDS = 4096

Message = Dict[str, Any]


@implementer(IFileDescriptorReceiver)
class Channel(Int32StringReceiver):
    MAX_LENGTH = MAX_MESSAGE
    _log = Logger()

    def __init__(self, on_message: Callable[["Channel", Message], None], on_lost: Callable[["Channel"], None]):
        self.on_message = on_message
        self.on_lost = on_lost
        self.fds: Deque[int] = deque()
        self.connected = False

    def connectionMade(self) -> None:
        self.connected = True

    def fileDescriptorReceived(self, fd: int) -> None:
        if len(self.fds) >= MAX_PENDING_FDS:
            os.close(fd)
            self._log.error("control channel: too many unclaimed sockets; closing")
            self.transport.loseConnection()
            return
        self.fds.append(fd)

    def take_fd(self) -> Optional[int]:
        return self.fds.popleft() if self.fds else None

    def stringReceived(self, data: bytes) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self._log.error("control channel: a message that is not JSON; closing")
            self.transport.loseConnection()
            return
        if isinstance(message, dict):
            self.on_message(self, message)

    def lengthLimitExceeded(self, length: int) -> None:
        self._log.error("control channel: a {length}-byte message; closing", length=length)
        self.transport.loseConnection()

    def send(self, message: Message, fd: Optional[int] = None) -> None:
        if not self.connected:
            return
        if fd is not None:
            self.transport.sendFileDescriptor(fd)
        self.sendString(json.dumps(message).encode("utf-8"))

    def connectionLost(self, reason: Any = None) -> None:
        self.connected = False
        while self.fds:
            os.close(self.fds.popleft())
        self.on_lost(self)


class ChannelFactory(Factory):
    """Builds the one channel of an adopted socket, and keeps it."""

    noisy = False

    def __init__(self, on_message: Callable[[Channel, Message], None], on_lost: Callable[[Channel], None]):
        self.on_message = on_message
        self.on_lost = on_lost
        self.channel: Optional[Channel] = None

    def buildProtocol(self, addr: Any) -> Channel:
        self.channel = Channel(self.on_message, self.on_lost)
        return self.channel
