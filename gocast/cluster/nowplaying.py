# -*- test-case-name: tests.test_cluster_sync -*-
"""
One now-playing for the cluster: a metadata update made on any node
(Icecast's admin, SHOUTcast's admin.cgi, the API, the dashboard, a
source's in-band titles) is published on Redis (``gocast:metadata``) and
applied by every node carrying the mount, within the second. The copies
carry ``from_node`` in their ``source.metadata`` event: they are neither
published again nor sent to webhooks a second time.
"""

from __future__ import annotations

from typing import Any, Dict

from twisted.logger import Logger

from ..core.events import Event

#: The pub/sub channel of now-playing updates, and the longest field taken from it.
METADATA = "metadata"
MAX_FIELD = 1024


class NowPlaying:
    _log = Logger()

    def __init__(self, node: Any):
        """:param node: the :class:`gocast.cluster.node.ClusterNode` (its id, store and registry)."""
        self.node = node
        node.registry.bus.subscribe(self.share, ["source.metadata"])

    def attach(self, store: Any) -> None:
        store.subscribe(METADATA, self.received)

    def share(self, event: Event) -> None:
        """An update made on this node (not one that came from another): tell every node."""
        node = self.node
        mount = node.registry.get(event.mount or "")
        if not node.enabled or node.store is None or event.data.get("from_node") or mount is None:
            return
        if mount.config.hidden:
            return
        message = {"node": node.id, "mount": mount.path, "title": mount.title, "artist": mount.artist,
                   "url": mount.stream_url or ""}
        node.store.publish(METADATA, message).addErrback(
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
        if (title, artist) == (mount.title, mount.artist) and url in ("", mount.stream_url):
            return
        mount.set_metadata(title=title, artist=artist, url=url, from_node=sender)
