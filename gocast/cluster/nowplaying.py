# -*- test-case-name: tests.test_cluster_sync -*-
"""
One now-playing for the cluster: a metadata update made on any node
(Icecast's admin, SHOUTcast's admin.cgi, the API, the dashboard, a
source's in-band titles) is published on Redis (``gocast:metadata``) and
applied by every node carrying the mount, within the second. The copies
carry ``from_node`` in their ``source.metadata`` event: they are neither
published again nor sent to webhooks a second time.

Pub/sub keeps nothing for a node that is not subscribed (Redis restarted,
its connection dropped), so each update is also kept as the mount's last
word, and a node that subscribes again applies those newer than its own.
"""

from __future__ import annotations

from typing import Any, Dict

from twisted.logger import Logger

from ..core.events import Event
from ..core.track import TrackInfo, artwork_url

#: The pub/sub channel of now-playing updates, and the longest field taken from it.
METADATA = "metadata"
MAX_FIELD = 1024


class NowPlaying:
    _log = Logger()

    def __init__(self, node: Any):
        """:param node: the :class:`gocast.cluster.node.ClusterNode` (its id, store, clock and registry)."""
        self.node = node
        #: Mount: when its now-playing last changed here (wall clock, compared with other nodes' updates).
        self.changed: Dict[str, float] = {}
        node.registry.bus.subscribe(self.share, ["source.metadata"])

    def attach(self, store: Any) -> None:
        store.subscribe(METADATA, self.received, subscribed=self.catch_up)

    def share(self, event: Event) -> None:
        """An update made on this node (not one that came from another): tell every node."""
        node = self.node
        mount = node.registry.get(event.mount or "")
        if mount is None:
            return
        self.changed[mount.path] = node.now()
        if not node.enabled or node.store is None or event.data.get("from_node") or mount.config.hidden:
            return
        track = mount.track
        message = {"node": node.id, "mount": mount.path, "title": mount.title, "artist": mount.artist,
                   "url": mount.stream_url or "", "at": self.changed[mount.path], "album": track.album,
                   "genre": track.genre, "year": track.year, "duration": track.duration, "artwork": track.artwork}
        node.store.publish(METADATA, message, latest=mount.path).addErrback(
            lambda f: self._log.warn("cluster: metadata of {mount} not shared: {why}", mount=mount.path,
                                     why=f.getErrorMessage()))

    def received(self, message: Dict[str, Any]) -> None:
        """Another node's update: applied to the mount here if this node carries it."""
        node = self.node
        sender = str(message.get("node", ""))[:MAX_FIELD]
        mount = node.registry.get(str(message.get("mount", "")))
        if not node.enabled or not sender or sender == node.id or mount is None or mount.source is None:
            return
        title, artist, url = (str(message.get(key) or "")[:MAX_FIELD] for key in ("title", "artist", "url"))
        info = received_track(message)
        if (title, artist, info) == (mount.title, mount.artist, mount.track) and url in ("", mount.stream_url):
            return
        mount.set_metadata(title=title, artist=artist, url=url, from_node=sender, info=info)

    def catch_up(self) -> None:
        """Subscribed (again): apply each mount's last update made elsewhere after this node's own."""
        node = self.node
        if not node.enabled or node.store is None:
            return
        self.changed = {path: at for path, at in self.changed.items() if node.registry.get(path) is not None}

        def apply(latest: Dict[str, Dict[str, Any]]) -> None:
            for path, message in latest.items():
                at = message.get("at")
                if isinstance(at, (int, float)) and at > self.changed.get(path, 0.0):
                    self.received(message)

        node.store.latest(METADATA).addCallbacks(apply, lambda f: self._log.warn(
            "cluster: now-playing not caught up: {why}", why=f.getErrorMessage()))


def received_track(message: Dict[str, Any]) -> TrackInfo:
    """The album, genre, year, duration and cover URL another node sent, checked as the API checks them."""
    year, duration = message.get("year"), message.get("duration")
    return TrackInfo(
        album=str(message.get("album") or "")[:MAX_FIELD], genre=str(message.get("genre") or "")[:MAX_FIELD],
        year=year if isinstance(year, int) and not isinstance(year, bool) and 0 <= year <= 9999 else None,
        duration=float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool)
        and 0 <= duration <= 10 ** 7 else None,
        artwork=artwork_url(str(message.get("artwork") or "")) or "")
