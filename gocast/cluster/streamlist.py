# -*- test-case-name: tests.test_relay -*-
"""
Icecast's master mode, from the relay's side: ``cluster { role relay
primary host:port }`` reads the primary's ``/admin/streamlist.txt`` (with
``auth.relay_user`` and ``auth.relay_password``) every
``cluster.update_interval`` and relays every mount it names (or those of
``cluster.mounts``), adding and dropping relays as the list changes. The
primary may be GoCast or Icecast.
"""

from __future__ import annotations

import base64
from typing import Any, List, Optional
from urllib.parse import quote

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from ..config import Config, is_reserved
from ..config._kinds import normalise_mount
from ..inputs.relay import RelaySpec, Relays

#: How long one read of the stream list may take.
TIMEOUT = 10.0
#: The most of a stream list read, and the most mounts taken from it.
MAX_BODY = 256 * 1024
MAX_MOUNTS = 1000


def parse_stream_list(body: bytes, admin_root: str = "/admin") -> List[str]:
    """The mount paths of a stream list, one per line; anything else is skipped."""
    mounts: List[str] = []
    for line in body.decode("utf-8", "replace").splitlines():
        mount = normalise_mount(line.strip()) if line.startswith("/") else None
        if mount is not None and not is_reserved(mount, admin_root) and mount not in mounts:
            mounts.append(mount)
        if len(mounts) >= MAX_MOUNTS:
            break
    return mounts


class StreamListFollower:
    """Keeps :class:`Relays` in step with the primary's stream list."""

    _log = Logger()

    def __init__(self, relays: Relays, http: Any, clock: Any):
        self.relays = relays
        self.http = http
        self.clock = clock
        self.config: Optional[Config] = None
        self._loop: Optional[LoopingCall] = None
        self._interval = 0.0
        self._reading = False
        #: What the last read found, and why the last read failed (for status pages).
        self.mounts: List[str] = []
        self.last_error = ""

    @property
    def primary(self) -> Optional[str]:
        cluster = self.config.cluster if self.config is not None else None
        return cluster.primary if cluster is not None and cluster.role == "relay" else None

    def configure(self, config: Config) -> None:
        before = self.primary, self._interval
        self.config = config
        after = self.primary, config.cluster.update_interval
        if after == before and self._loop is not None:
            self.relays.set("primary", self.specs(self.mounts))  # credentials or on_demand may have changed
            return
        self.stop()
        if self.primary is None:
            self.relays.set("primary", [])
            return
        self._interval = config.cluster.update_interval
        self._loop = LoopingCall(self.read)
        self._loop.clock = self.clock
        self._loop.start(self._interval, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def read(self) -> None:
        if self._reading or self.primary is None or self.config is None:
            return
        auth = self.config.auth
        token = base64.b64encode(("%s:%s" % (auth.relay_user, auth.relay_password)).encode("utf-8"))
        url = "http://%s%s/streamlist.txt" % (self.primary, self.config.server.admin_root)
        self._reading = True
        d = self.http.request("GET", url, TIMEOUT, headers={"Authorization": "Basic " + token.decode("ascii")},
                              max_body=MAX_BODY)
        d.addCallbacks(self.got, self.failed)
        d.addBoth(self._done)

    def _done(self, _: Any) -> None:
        self._reading = False

    def got(self, reply: Any) -> None:
        if reply.code != 200:
            self.failed(None, "the primary answered %d to the stream list request (check auth.relay_user and "
                              "auth.relay_password)" % reply.code)
            return
        mounts = parse_stream_list(reply.body, self.config.server.admin_root if self.config else "/admin")
        if mounts != self.mounts:
            self._log.info("primary {primary} lists {count} mounts: {mounts}", primary=self.primary,
                           count=len(mounts), mounts=" ".join(mounts) or "none")
        self.mounts = mounts
        self.last_error = ""
        self.relays.set("primary", self.specs(mounts))

    def failed(self, failure: Any, why: str = "") -> None:
        """Relays keep what they have: the primary may be restarting, and its mounts with it."""
        why = why or "cannot read %s's stream list: %s" % (self.primary, failure.getErrorMessage())
        if why != self.last_error:
            self._log.warn("{why}; relays keep what they have", why=why)
        self.last_error = why

    def specs(self, mounts: List[str]) -> List[RelaySpec]:
        config = self.config
        if config is None or self.primary is None:
            return []
        only = set(config.cluster.mounts)
        auth = config.auth
        return [RelaySpec("http://%s%s" % (self.primary, quote(mount)), mount, config.cluster.on_demand, True,
                          auth.relay_user, auth.relay_password)
                for mount in mounts if not only or mount in only]
