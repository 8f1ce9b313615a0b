# -*- test-case-name: tests.test_source -*-
"""
Source ingestion, as Icecast clients expect it.

- ``SOURCE /mount HTTP/1.0`` (libshout, BUTT, Mixxx, Liquidsoap) and
  ``SOURCE /mount ICE/1.0`` (old ices): ``HTTP/1.0 200 OK`` at once.
- ``PUT /mount HTTP/1.1`` (ffmpeg): with ``Expect: 100-continue`` the reply is
  ``HTTP/1.1 100 Continue`` and no final status until the source ends
  (Liquidsoap fails otherwise); without it, ``200 OK`` at once. Chunked
  bodies are decoded.
- Credentials are checked first, so libshout's unauthenticated probe gets a
  ``401`` with ``WWW-Authenticate`` and may retry on the same connection.
- Refusals use Icecast 2.5's codes with a one-line reason: 401 bad
  credentials, 400 no Content-Type, 415 not audio, 404 mount not allowed,
  409 mount in use, 503 too many sources.

The body is fed to the mount as it arrives and never buffered whole; a
source that sends nothing for ``limits.source_timeout`` is cut, so a
reconnecting source is not locked out by its own dead connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, BinaryIO, Optional

from twisted.logger import Logger

from ..config import MountConfig, is_reserved
from ..config._kinds import normalise_mount
from ..config.files import append_to_setting_file, describe
from ..core.credentials import source_credentials_ok
from ..core.throttle import TOO_MANY, retry_after
from ..core.mount import Mount, MountInUse, SourceInfo
from ..core.registry import MountNotAllowed, TranscodedMount
from ..media import normalise_content_type
from ._http import BadRequest, ChunkedDecoder, RequestHead, basic_credentials, reply_version

if TYPE_CHECKING:  # pragma: no cover
    from .frontdoor import FrontDoor

REALM = 'Basic realm="Icecast2 Server"'


def source_authorised(head: RequestHead, mount_config: MountConfig, global_password: str) -> bool:
    """Basic auth as the mount's user (``source``), or ICE/1.0's ``ice-password``."""
    credentials = basic_credentials(head)
    if credentials is None and head.get("ice-password") is not None:
        credentials = ("source", head.get("ice-password") or "")
    if credentials is None:
        return False
    user, password = credentials
    return source_credentials_ok(user, password, mount_config, global_password)


class SourceSession:
    """One source connection, after its head was read."""

    _log = Logger()

    def __init__(self, door: "FrontDoor", head: RequestHead):
        self.door = door
        self.head = head
        self.mount: Optional[Mount] = None
        self.decoder: Optional[ChunkedDecoder] = None
        self._idle: Any = None
        self.dump: Optional[BinaryIO] = None

    def start(self, rest: bytes) -> None:
        door, head = self.door, self.head
        factory = door.factory
        config = factory.config
        version = reply_version(head)
        path = normalise_mount(head.path)
        if path is None:
            door.reply(400, "not a mount path: %s" % head.path[:100], version)
            return
        if is_reserved(path, config.server.admin_root):
            door.reply(403, "%s is one of GoCast's own URLs, not a mount" % path, version)
            return
        mount_config = config.mounts.get(path) or MountConfig()
        wait = factory.auth_failures.blocked(door.peer)
        if wait is not None:
            door.reply(429, TOO_MANY, version, [("Retry-After", str(retry_after(wait)))])
            return
        if not source_authorised(head, mount_config, config.auth.source_password):
            if head.get("authorization") or head.get("ice-password"):
                factory.auth_failures.failed(door.peer)
                self._log.info("{mount}: source from {peer} refused: bad credentials", mount=path,
                               peer=door.peer)
            else:
                self._log.debug("{mount}: 401 to {peer}'s request without credentials (a libshout probe)",
                                mount=path, peer=door.peer)
            probe = head.keep_alive and not rest and (head.get("content-length") or "0") == "0"
            door.reply(401, "authentication required: user '%s' and the source password"
                       % mount_config.username, version, [("WWW-Authenticate", REALM)], close=not probe)
            if probe:
                door.next_request(head, b"")
            return
        declared = head.get("content-type")
        if not declared:
            door.reply(400, "no Content-Type: say what you stream, e.g. audio/mpeg", version)
            return
        content_type = normalise_content_type(declared)
        if content_type is None:
            door.reply(415, "unsupported Content-Type: send one audio or Ogg type such as audio/mpeg, "
                            "audio/aac or audio/ogg", version)
            return
        registry = factory.registry
        if registry.sources >= config.limits.max_sources:
            door.reply(503, "too many sources (limits.max_sources is %d)" % config.limits.max_sources,
                       version)
            return
        try:
            mount = registry.mount_for_source(path)
            mount.start_source(self.source_info(content_type))
        except MountNotAllowed:
            door.reply(404, "mount %s is not in the configuration" % path, version)
            return
        except TranscodedMount as e:
            door.reply(409, str(e), version)
            return
        except MountInUse:
            door.reply(409, "mount %s is in use by another source" % path, version)
            return
        self.mount = mount
        self.accept(version)
        self._log.info("{mount}: source connected from {client} ({content_type}, {agent})",
                       mount=path, client=door.peer, content_type=content_type,
                       agent=head.get("user-agent") or "-", request_id=door.request_id)
        registry.source_started(mount)
        if "chunked" in (head.get("transfer-encoding") or "").lower():
            self.decoder = ChunkedDecoder()
        self._idle = door.callLater(config.limits.source_timeout, self.timed_out)
        self.open_dump(mount.config.dump_file)
        if rest:
            self.dataReceived(rest)

    def open_dump(self, path: str) -> None:
        """``dump_file``: append the raw stream, as received, to a file."""
        if not path:
            return
        try:
            self.dump = append_to_setting_file(path)
        except OSError as e:
            self._log.error("{mount}: cannot open dump_file {path}: {why}", mount=self.head.path,
                            path=path, why=describe(e))

    def source_info(self, content_type: str) -> SourceInfo:
        head = self.head
        ice = {name: value for name, value in head.headers
               if name.startswith(("ice-", "icy-")) and name not in ("ice-password", "icy-metaint")}
        return SourceInfo(content_type, self.door.peer, head.get("user-agent") or "",
                          self.door.factory.reactor.seconds(), ice, self.door.transport.loseConnection)

    def accept(self, version: str) -> None:
        head = self.head
        if head.version == "ICY":
            return  # SHOUTcast v1: "OK2" was the answer
        if head.method == "PUT" and (head.get("expect") or "").lower() == "100-continue":
            self.door.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        else:
            self.door.write_head(200, [], version)

    def dataReceived(self, data: bytes) -> None:
        if self.mount is None:
            return
        if self._idle is not None and self._idle.active():
            self._idle.reset(self.door.factory.config.limits.source_timeout)
        if self.decoder is not None:
            try:
                data = self.decoder.feed(data)
            except BadRequest as e:
                self._log.warn("{mount}: source cut: {why}", mount=self.mount.path, why=str(e))
                self.door.transport.loseConnection()
                return
        if data:
            if self.dump is not None:
                self.dump.write(data)
            self.mount.feed(data)
        if self.decoder is not None and self.decoder.done:
            self.door.transport.loseConnection()

    def timed_out(self) -> None:
        self._log.warn("{mount}: source sent nothing for {seconds}s; cut",
                       mount=self.mount.path if self.mount else "?",
                       seconds=self.door.factory.config.limits.source_timeout)
        self.door.transport.abortConnection()

    def connectionLost(self, reason: Any = None) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        if self.dump is not None:
            self.dump.close()
            self.dump = None
        mount, self.mount = self.mount, None
        if mount is None:
            return
        mount.stop_source()
        self._log.info("{mount}: source from {client} left ({received} bytes)", mount=mount.path,
                       client=self.door.peer, received=mount.bytes_received,
                       request_id=self.door.request_id)
        self.door.factory.registry.source_stopped(mount)
