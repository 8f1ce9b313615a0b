# -*- test-case-name: tests.test_events -*-
"""
The event bus: everything that happens is published once, as an
:class:`Event`; stats, logs, metrics, webhooks and dashboards subscribe.
Producers never learn who listens, and a failing subscriber is logged and
isolated from the others.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, Dict, FrozenSet, List, Optional, Tuple

import attr
from twisted.logger import Logger

Subscriber = Callable[["Event"], None]


@attr.frozen
class Event:
    """
    One thing that happened.

    :ivar name: e.g. ``source.connect`` (see ``gocast.config.EVENT_NAMES``).
    :ivar timestamp: seconds since the epoch, from the bus's clock.
    :ivar mount: the mount concerned, if any.
    :ivar data: details, JSON-ready.
    """

    name: str
    timestamp: float
    mount: Optional[str] = None
    data: Dict[str, Any] = attr.Factory(dict)


#: Events waiting for delivery; past this the oldest are dropped (and counted).
MAX_PENDING = 10000


class EventBus:
    """
    Isolated fan-out of events to subscribers.

    With ``schedule`` (the service passes ``lambda f: reactor.callLater(0, f)``)
    ``publish`` only queues the event: subscribers run in a later reactor
    turn, so the code that published (a source's ``dataReceived``, say) never
    waits for them. Without it, delivery is immediate (unit tests).
    """

    _log = Logger()

    def __init__(self, now: Callable[[], float],
                 schedule: Optional[Callable[[Callable[[], None]], Any]] = None):
        self._now = now
        self._schedule = schedule
        self._pending: Deque[Event] = deque()
        self._scheduled = False
        self.dropped = 0
        self._subscribers: List[Tuple[Optional[FrozenSet[str]], Subscriber]] = []

    def now(self) -> float:
        """The clock events are stamped with."""
        return self._now()

    def subscribe(self, subscriber: Subscriber, names: Optional[List[str]] = None) -> Callable[[], None]:
        """
        Call ``subscriber`` with every event (or those named in ``names``).

        :return: a function that unsubscribes.
        """
        entry = (frozenset(names) if names else None, subscriber)
        self._subscribers.append(entry)
        return lambda: self._subscribers.remove(entry) if entry in self._subscribers else None

    def publish(self, name: str, mount: Optional[str] = None, **data: Any) -> Event:
        event = Event(name, self._now(), mount, data)
        if self._schedule is None:
            self._deliver(event)
            return event
        if len(self._pending) >= MAX_PENDING:
            self._pending.popleft()
            self.dropped += 1
        self._pending.append(event)
        if not self._scheduled:
            self._scheduled = True
            self._schedule(self._drain)
        return event

    def _drain(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, deque()
        for event in pending:
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        name = event.name
        for names, subscriber in list(self._subscribers):
            if names is not None and name not in names:
                continue
            try:
                subscriber(event)
            except Exception:
                self._log.failure("event subscriber {subscriber!r} failed on {name}",
                                  subscriber=subscriber, name=name)
