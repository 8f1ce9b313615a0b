# -*- test-case-name: tests.test_api -*-
"""
What an operator can do to a running station, whatever the door: the
Icecast admin endpoints and the REST API both call these, so both publish
the same events.
"""

from __future__ import annotations

from typing import Any, List, Optional

from .mount import Mount
from .registry import MountRegistry, may_serve
from .track import NO_INFO, TrackInfo


def listener_sessions(mount: Mount) -> List[Any]:
    """The mount's connected listeners (those with an ID)."""
    return [s for s in mount.subscribers if getattr(s, "id", None) is not None]


def find_listener(mount: Mount, listener_id: str) -> Optional[Any]:
    for session in listener_sessions(mount):
        if str(session.id) == listener_id:
            return session
    return None


def kick_listener(registry: MountRegistry, mount: Mount, listener_id: str) -> bool:
    """Disconnect one listener; False if the mount has no such listener."""
    session = find_listener(mount, listener_id)
    if session is None:
        if registry.remote_kick(mount.path, listener_id):  # a worker process serves it
            registry.bus.publish("listener.kicked", mount.path, id=listener_id)
            return True
        return False
    session.transport.loseConnection()
    registry.bus.publish("listener.kicked", mount.path, id=session.id, ip=session.peer)
    return True


def kill_source(mount: Mount) -> bool:
    """Disconnect the mount's source; False if it has none."""
    if mount.source is None:
        return False
    mount.source.disconnect()
    return True


def move_listeners(registry: MountRegistry, mount: Mount, destination: Optional[Mount]) -> int:
    """Move every listener of ``mount`` to ``destination``; ValueError saying why it cannot."""
    if destination is None or destination.source is None:
        raise ValueError("destination has no source")
    if destination is mount:
        raise ValueError("destination is the same mount")
    if not may_serve(mount.config, destination.config):
        raise ValueError("%s asks listeners for auth that those of %s did not pass" % (destination.path, mount.path))
    return registry.move(mount, destination)


def update_metadata(mount: Mount, song: str = "", title: str = "", artist: str = "", url: str = "",
                    info: TrackInfo = NO_INFO) -> None:
    mount.set_metadata(song=song, title=title, artist=artist, url=url, info=info)
