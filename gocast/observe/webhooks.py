# -*- test-case-name: tests.test_webhooks -*-
"""
Webhooks: ``webhooks { NAME { url events [..] format generic|discord|slack
headers {..} retry N timeout 10s secret ... } }``.

Each webhook subscribes to the event bus and keeps its own bounded queue
(the oldest delivery is dropped, and counted, when it is full); it sends one
delivery at a time with treq, retrying with exponential backoff. A dead
endpoint therefore delays only its own webhook, never streaming or the
others. Every delivery carries ``X-GoCast-Delivery`` (for de-duplication)
and, with a ``secret``, ``X-GoCast-Signature: sha256=<HMAC of the body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections import deque
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Deque, Dict, List, Optional, Tuple

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from .._version import __version__
from ..config._schema import WebhookConfig
from ..core.events import Event

#: Deliveries waiting per webhook; past this one is dropped (listener events first).
MAX_QUEUE = 1000
_LISTENER = "listener."
#: Seconds before retry N (1, 2, 4, ... capped).
MAX_BACKOFF = 60.0

_PHRASES = {
    "source.connect": "Source connected to {mount}",
    "source.disconnect": "Source left {mount}",
    "source.metadata": "Now playing on {mount}: {song}",
    "source.fallback": "{listeners} listeners of {mount} moved to {destination}",
    "source.codec_mismatch": "The source of {mount} says {declared} but sends {found}",
    "listener.connect": "Listener joined {mount}",
    "listener.disconnect": "Listener left {mount}",
    "listener.kicked": "Listener {id} kicked from {mount}",
    "listener.denied": "Listener from {ip} refused on {mount}: {reason}",
    "mount.created": "Mount {mount} created",
    "mount.removed": "Mount {mount} removed",
    "stats.milestone": "{mount} reached {milestone} listeners",
    "config.reloaded": "Configuration reloaded",
    "relay.connected": "{mount} relays {upstream}",
    "relay.disconnected": "{mount} lost its upstream {upstream}: {reason}",
    "relay.failover": "{mount} switched from {upstream} to {to}: {reason}",
    "cluster.node_joined": "Node {node} joined the cluster ({role}, region {region})",
    "cluster.node_left": "Node {node} left the cluster",
    "cluster.leader": "Node {node} {what}",
}

Post = Callable[[str, bytes, Dict[str, str], float], Awaitable[int]]


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def describe(event: Event) -> str:
    """A sentence for chat formats: ``/live reached 100 listeners``."""
    fields: Dict[str, Any] = dict(event.data, mount=event.mount or "", event=event.name)
    try:
        return _PHRASES.get(event.name, "{event} on {mount}").format(**fields)
    except (KeyError, IndexError, ValueError):
        return "%s on %s" % (event.name, event.mount or "-")


def payload(event: Event, fmt: str) -> Dict[str, Any]:
    """The body for one event, in the webhook's format."""
    generic = {"event": event.name, "timestamp": iso(event.timestamp), "mount": event.mount,
               "data": event.data}
    if fmt == "discord":
        fields = [{"name": key, "value": str(value)[:1000], "inline": True}
                  for key, value in list(event.data.items())[:20]]
        return {"content": describe(event),
                "embeds": [{"title": event.name, "timestamp": generic["timestamp"], "fields": fields}]}
    if fmt == "slack":
        details = ", ".join("%s: %s" % (k, v) for k, v in event.data.items())
        return {"text": "*%s*%s" % (describe(event), " (%s)" % details if details else "")}
    return generic


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class Gate:
    """
    Which events this node delivers. Alone, all of them; in a cluster
    (:class:`gocast.cluster.node.ClusterNode`) each event is delivered by
    one node only: ``cluster.*`` by the leader, while it leads, and an
    update that came from another node by the node it was made on.
    """

    def accepts(self, event: Event) -> bool:
        return True

    def sends(self, name: str) -> bool:
        """Checked again before each attempt: a leader that stopped leading stops sending."""
        return True

    @property
    def node_name(self) -> str:
        """The node sending, named in ``X-GoCast-Node`` (none when alone)."""
        return ""


EVERYTHING = Gate()


class Webhook:
    """One configured webhook: its filter, queue and delivery loop."""

    _log = Logger()

    def __init__(self, name: str, config: WebhookConfig, post: Post, clock: Any,
                 count: Callable[[str, str], None], gate: Optional["Gate"] = None):
        self.name = name
        self.config = config
        self.post = post
        self.clock = clock
        self.count = count
        self.gate = gate or EVERYTHING
        self.queue: Deque[Tuple[str, bytes, str]] = deque()
        self.busy = False

    def wants(self, event: Event) -> bool:
        events = self.config.events
        return "*" in events or event.name in events

    def __call__(self, event: Event) -> None:
        if not self.wants(event) or not self.gate.accepts(event):
            return
        body = json.dumps(payload(event, self.config.format), default=str).encode("utf-8")
        if len(self.queue) >= MAX_QUEUE and not self.make_room(event.name):
            self.count(self.name, "dropped")
            return
        self.queue.append((uuid.uuid4().hex, body, event.name))
        if not self.busy:
            self.busy = True
            ensureDeferred(self._drain())

    def make_room(self, incoming: str) -> bool:
        """
        The queue is full: drop the oldest listener event to make room (a
        source or config event is never lost to listener noise), else the
        oldest of any kind, unless the one coming is a listener event itself.
        False when it is the incoming one that must go.
        """
        for index, (_, _, name) in enumerate(self.queue):
            if name.startswith(_LISTENER):
                del self.queue[index]
                self.count(self.name, "dropped")
                return True
        if incoming.startswith(_LISTENER):
            return False
        self.queue.popleft()
        self.count(self.name, "dropped")
        return True

    async def _drain(self) -> None:
        try:
            while self.queue:
                delivery, body, name = self.queue.popleft()
                result = await self._deliver(delivery, body, name)
                self.count(self.name, result)
        finally:
            self.busy = False

    async def _deliver(self, delivery: str, body: bytes, name: str) -> str:
        headers = {"Content-Type": "application/json", "User-Agent": "GoCast/%s" % __version__,
                   "X-GoCast-Event": name, "X-GoCast-Delivery": delivery}
        if self.gate.node_name:
            headers["X-GoCast-Node"] = self.gate.node_name
        if self.config.secret:
            headers["X-GoCast-Signature"] = signature(self.config.secret, body)
        headers.update(self.config.headers)
        for attempt in range(self.config.retry + 1):
            if attempt:
                await deferLater(self.clock, min(2.0 ** (attempt - 1), MAX_BACKOFF), lambda: None)
            if not self.gate.sends(name):
                return "dropped"
            try:
                code = await self.post(self.config.url, body, headers, self.config.timeout)
            except Exception as e:
                why = str(e) or e.__class__.__name__
            else:
                if 200 <= code < 300:
                    return "success"
                why = "HTTP %d" % code
            self._log.warn("webhook {webhook}: delivery {delivery} of {event} failed ({why}), "
                           "attempt {attempt}", webhook=self.name, delivery=delivery, event=name, why=why,
                           attempt=attempt + 1)
        return "failed"


class Webhooks:
    """The configured webhooks, subscribed to the bus; a reload replaces them."""

    def __init__(self, bus: Any, post: Post, clock: Any, count: Callable[[str, str], None],
                 show: Callable[[str], None]):
        self.bus = bus
        self.post = post
        self.clock = clock
        self.count = count
        self.show = show
        self.gate = EVERYTHING
        self._unsubscribe: List[Callable[[], None]] = []

    def configure(self, configs: Dict[str, WebhookConfig]) -> None:
        """Deliveries already queued by the old webhooks still go out."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        for name, config in configs.items():
            self.show(name)
            hook = Webhook(name, config, self.post, self.clock, self.count, self.gate)
            self._unsubscribe.append(self.bus.subscribe(hook))


def treq_post(reactor: Any) -> Post:
    """POST with treq; the response body is read and thrown away, never kept."""
    import treq

    async def post(url: str, body: bytes, headers: Dict[str, str], timeout: float) -> int:
        response = await treq.post(url, data=body, headers=headers, timeout=timeout, reactor=reactor,
                                   persistent=False)
        await treq.collect(response, lambda chunk: None)
        return response.code

    return post
