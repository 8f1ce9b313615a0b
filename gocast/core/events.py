# -*- test-case-name: tests.test_events -*-
"""
The event bus: everything that happens is published once, as an
:class:`Event`; stats, logs, metrics, webhooks and dashboards subscribe.
Producers never learn who listens, and a failing subscriber is logged and
isolated from the others.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

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


class EventBus:
    """Synchronous, isolated fan-out of events to subscribers."""

    _log = Logger()

    def __init__(self, now: Callable[[], float]):
        self._now = now
        self._subscribers: List[Tuple[Optional[FrozenSet[str]], Subscriber]] = []

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
        for names, subscriber in list(self._subscribers):
            if names is not None and name not in names:
                continue
            try:
                subscriber(event)
            except Exception:
                self._log.failure("event subscriber {subscriber!r} failed on {name}",
                                  subscriber=subscriber, name=name)
        return event
