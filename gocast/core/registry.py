# -*- test-case-name: tests.test_registry -*-
"""
All mounts, and the one operation that fallback, override, ``moveclients``
and (later) scheduled switching share: moving subscribers between mounts.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import attr

from ..config import Config, MountConfig, all_variants, transcoding_outputs
from ..config._mount import FallbackConfig
from .events import EventBus
from .mount import Mount, MountInUse


class MountNotAllowed(Exception):
    """The config restricts sources to its listed mounts."""


class TranscodedMount(MountInUse):
    """The mount is a transcoding output: its transcoder is its only source."""


class MountRegistry:
    """
    :param file_players: starts and stops fallback-file players (see
        :class:`gocast.playout.file.FilePlayers`); ``None`` disables file
        fallbacks.
    """

    def __init__(self, config: Config, bus: EventBus, file_players: Any = None,
                 attach: Optional[Callable[[Mount], None]] = None,
                 later: Optional[Callable[[Callable[[], None]], Any]] = None):
        """:param later: given to every mount, for fan-outs in slices (see :class:`Mount`)."""
        self.bus = bus
        self.later = later
        self.mounts: Dict[str, Mount] = {}
        #: The mount a fallback file plays on, by the mount whose file it is.
        self.file_mounts: Dict[str, Mount] = {}
        self.file_players = file_players
        #: Called with each mount when it is created or reconfigured (HLS outputs).
        self.attach = attach or (lambda mount: None)
        #: Inputs that start when a listener asks (on-demand relays), by mount:
        #: called with no argument, they return what :meth:`demand` returns.
        self.on_demand: Dict[str, Callable[[], Any]] = {}
        #: Listeners of each mount on the cluster's other nodes, as they last told (``None``: no cluster).
        self.elsewhere: Callable[[], Optional[Dict[str, int]]] = lambda: None
        #: Where a new listener of a mount should go instead, by its address and request target
        #: (``cluster.routing``): a URL, or ``None`` to serve it here.
        self.route_listener: Callable[[str, str, str], Optional[str]] = lambda mount, address, target: None
        #: Whether a mount this server does not have is one the cluster routes listeners of to another node.
        self.routed_elsewhere: Callable[[str], bool] = lambda mount: False
        #: Disconnects a listener a worker process serves: ``(mount, id) -> found``.
        self.remote_kick: Callable[[str, str], bool] = lambda mount, listener: False
        #: Bytes sent and received by mounts since forgotten (dynamic mounts that went idle).
        self._forgotten_bytes = (0, 0)
        self.config = config
        self.configure(config)

    def configure(self, config: Config) -> None:
        """Create or update the configured mounts (unknown ones stay until idle)."""
        self.config = config
        #: The mount each transcoding output is made from, by the output's mount.
        self.transcoded = {path: parent for path, (parent, _, _) in transcoding_outputs(config).items()}
        #: The mounts master playlists list: their HLS segments line up.
        self.variants = all_variants(config)
        for path, mount_config in config.mounts.items():
            mount = self.mounts.get(path)
            if mount is None:
                self._create(path, mount_config)
            else:
                mount.reconfigure(mount_config, config.limits)
                self.attach(mount)
        for mount in list(self.mounts.values()):
            if mount.path not in config.mounts:
                mount.reconfigure(MountConfig(), config.limits)
                self.attach(mount)  # its outputs (HLS) go with its config, and their memory
                self._forget_if_idle(mount)  # a removed mount with a source stays until it leaves

    def _create(self, path: str, mount_config: MountConfig) -> Mount:
        mount = Mount(path, mount_config, self.config.limits, self.bus, self.later)
        self.mounts[path] = mount
        self.attach(mount)
        self.bus.publish("mount.created", path)
        return mount

    def get(self, path: str) -> Optional[Mount]:
        return self.mounts.get(path)

    def find(self, path: str) -> Optional[Mount]:
        """Any mount by its path, a fallback file's own (``/live#fallback-file``) included."""
        mount = self.mounts.get(path)
        if mount is None:
            mount = next((m for m in self.file_mounts.values() if m.path == path), None)
        return mount

    def is_configured(self, path: str) -> bool:
        return path in self.config.mounts

    def mount_for_source(self, path: str) -> Mount:
        """
        The mount a source on ``path`` streams to, created on demand.

        :raises MountNotAllowed: if ``server.restrict_mounts`` and ``path`` is not listed.
        :raises TranscodedMount: ``path`` is a transcoding output.
        """
        if path in self.transcoded:
            raise TranscodedMount("%s is a transcoding output of %s: its transcoder is its source"
                                  % (path, self.transcoded[path]))
        mount = self.mounts.get(path)
        if mount is not None and (self.is_configured(path) or not self.config.server.restrict_mounts):
            return mount
        if self.config.server.restrict_mounts and not self.is_configured(path):
            raise MountNotAllowed(path)
        return self._create(path, MountConfig())

    def mount_for_relay(self, path: str) -> Mount:
        """The mount a relay feeds: the operator configured the relay, so ``restrict_mounts`` does not apply."""
        mount = self.mounts.get(path)
        if mount is not None:
            return mount
        return self._create(path, self.config.mounts.get(path) or MountConfig())

    def demand(self, path: str) -> Any:
        """
        A listener asks for ``path``: start what feeds it on demand. Returns
        ``None`` when nothing needs waiting for, else a Deferred that fires
        once the mount has a source (or the input gave up).
        """
        starter = self.on_demand.get(path)
        return starter() if starter is not None else None

    def listeners_wanting(self, path: str) -> int:
        """Listeners of ``path``: on it, or waiting on its fallbacks for it to come back."""
        count = 0
        mount = self.mounts.get(path)
        if mount is not None:
            count += mount.listeners
        chain = self.fallback_chain(path)
        owners = {path} | {m.path for m in chain}
        for fallback in chain + [m for owner, m in self.file_mounts.items() if owner in owners]:
            count += sum(1 for s in fallback.subscribers
                         if getattr(s, "is_listener", True) and getattr(s, "home", None) == path)
        return count

    @property
    def sources(self) -> int:
        return sum(1 for m in self.mounts.values() if m.source is not None)

    # Fallback

    def fallback_chain(self, path: str) -> List[Mount]:
        """The mounts listeners of ``path`` may fall back to, nearest first."""
        chain: List[Mount] = []
        seen = {path}
        queue = list(self._fallbacks_of(path))
        origin = self.mounts.get(path)
        while queue:
            candidate = queue.pop(0)
            if candidate in seen:
                continue
            seen.add(candidate)
            mount = self.mounts.get(candidate)
            if mount is not None and (origin is None or may_serve(origin.config, mount.config)):
                chain.append(mount)
            queue.extend(self._fallbacks_of(candidate))
        return chain

    def _fallbacks_of(self, path: str) -> Iterable[str]:
        mount = self.mounts.get(path)
        return mount.config.fallback.mounts if mount is not None else ()

    def live_mount_for(self, path: str) -> Optional[Mount]:
        """Where a listener asking for ``path`` is served: the mount or its nearest live fallback."""
        mount = self.mounts.get(path)
        if mount is not None and mount.source is not None:
            return mount
        return self.first_live_fallback(path)

    def on_air(self, path: str) -> Optional[Mount]:
        """
        What listeners of ``path`` hear now: the mount, its nearest live
        fallback, or a fallback file already playing for it (none is started).
        """
        mount = self.mounts.get(path)
        if mount is None or mount.source is not None:
            return mount
        chain = self.fallback_chain(path)
        for candidate in chain:
            if candidate.source is not None:
                return candidate
        for owner in [path] + [m.path for m in chain]:
            playing = self.file_mounts.get(owner)
            if playing is not None and playing.source is not None:
                return playing
        return mount

    def first_live_fallback(self, path: str) -> Optional[Mount]:
        """The nearest fallback mount with a source, else the nearest fallback file, started."""
        chain = self.fallback_chain(path)
        for candidate in chain:
            if candidate.source is not None:
                return candidate
        for owner in [path] + [m.path for m in chain]:
            mount = self.file_mount(owner)
            if mount is not None:
                return mount
        return None

    def file_mount(self, owner: str) -> Optional[Mount]:
        """The mount playing ``owner``'s fallback file, starting it if needed."""
        mount = self.file_mounts.get(owner)
        if mount is not None:
            return mount
        owner_mount = self.mounts.get(owner)
        if owner_mount is None or self.file_players is None:
            return None
        fallback = owner_mount.config.fallback
        if not fallback.file:
            return None
        config = attr.evolve(owner_mount.config, fallback=FallbackConfig(), max_listeners=0)
        mount = Mount(owner + "#fallback-file", config, self.config.limits, self.bus, self.later)
        self.file_mounts[owner] = mount  # findable while it starts (its tags are its first now-playing)
        if not self.file_players.start(mount, fallback.file, fallback.loop,
                                       on_end=lambda: self._file_ended(owner, mount)):
            del self.file_mounts[owner]
            return None
        return mount

    def _file_ended(self, owner: str, mount: Mount) -> None:
        """A fallback file without loop played to its end."""
        self.file_mounts.pop(owner, None)
        self.source_stopped(mount)

    def _stop_idle_file(self, mount: Mount) -> None:
        for owner, file_mount in list(self.file_mounts.items()):
            if file_mount is mount and not mount.listeners and not any(map(_follows, mount.subscribers)):
                del self.file_mounts[owner]
                self.file_players.stop(mount)

    def move(self, source: Mount, destination: Mount, subscribers: Optional[Iterable[Any]] = None) -> int:
        """
        Move ``subscribers`` (default: all) of ``source`` to ``destination``:
        listeners, and outputs that follow their mount's fallbacks (HLS).
        """
        moving = [s for s in (source.subscribers if subscribers is None else subscribers)
                  if (getattr(s, "is_listener", True) or _follows(s)) and self.may_enter(s, destination)]
        for subscriber in moving:
            source.remove_subscriber(subscriber)
            destination.add_subscriber(subscriber)
            subscriber.moved(destination)
        if moving:
            self.bus.publish("source.fallback", source.path, destination=destination.path,
                             listeners=sum(1 for s in moving if getattr(s, "is_listener", True)))
        self._stop_idle_file(source)
        return len(moving)

    def source_stopped(self, mount: Mount, hold: bool = False) -> None:
        """
        Move the mount's listeners down its fallback chain, or let them go.

        :param hold: the source is coming back at once (a relay switching
            upstreams): listeners no fallback takes stay on the mount.
        """
        target = self.first_live_fallback(mount.path)
        if target is not None:
            self.move(mount, target)
            self._stop_idle_file(target)  # a fallback file started for nobody
        if hold:
            return
        for subscriber in mount.listener_subscribers():  # none, or those the fallback's auth keeps out
            mount.remove_subscriber(subscriber)
            subscriber.detach("the source of %s left and no fallback is live" % mount.path)
        self._forget_if_idle(mount)

    def source_started(self, mount: Mount) -> None:
        """
        Bring listeners back from the fallbacks, as ``fallback_override``
        says; outputs that follow fallbacks (HLS) always come home.
        """
        own_file = self.file_mounts.get(mount.path)
        if own_file is not None:
            self.move(own_file, mount)
        chain = self.fallback_chain(mount.path)
        for fallback in chain + [m for p, m in self.file_mounts.items() if p in {c.path for c in chain}]:
            outputs = [s for s in fallback.subscribers if _follows(s) and s.home == mount.path]
            if outputs:
                self.move(fallback, mount, outputs)
        override = mount.config.fallback_override
        if override == "none":
            return
        for fallback in self.fallback_chain(mount.path):
            if override == "all":
                self.move(fallback, mount)
            else:
                own = [s for s in fallback.subscribers if getattr(s, "home", None) == mount.path]
                self.move(fallback, mount, own)

    def may_enter(self, subscriber: Any, destination: Mount) -> bool:
        """
        Whether ``subscriber`` may be served ``destination``: listeners were
        let in by the auth of the mount they asked for (their ``home``), so
        they never move into a mount that lets fewer in.
        """
        home = self.mounts.get(getattr(subscriber, "home", "") or "")
        return home is None or may_serve(home.config, destination.config)

    def subscriber_left(self, mount: Mount, subscriber: Any) -> None:
        mount.remove_subscriber(subscriber)
        self._stop_idle_file(mount)
        self._forget_if_idle(mount)

    def _forget_if_idle(self, mount: Mount) -> None:
        """An unconfigured mount with no source and no listener is removed."""
        if (mount.source is None and not mount.listeners and not self.is_configured(mount.path)
                and self.mounts.get(mount.path) is mount):
            del self.mounts[mount.path]
            sent, received = self._forgotten_bytes
            self._forgotten_bytes = (sent + mount.total_bytes_sent, received + mount.bytes_received)
            self.bus.publish("mount.removed", mount.path)

    def total_bytes(self) -> Tuple[int, int]:
        """Bytes sent to listeners and received from sources since start, mounts gone since included."""
        sent, received = self._forgotten_bytes
        for mount in self.mounts.values():
            sent += mount.total_bytes_sent
            received += mount.bytes_received
        return sent, received


def open_to_all(config: MountConfig) -> bool:
    return not config.auth.type and not config.allowed_ips and not config.denied_ips


def may_serve(origin: MountConfig, target: MountConfig) -> bool:
    """
    Whether listeners admitted to ``origin`` may hear ``target`` (as its
    fallback, or moved there): when ``target`` lets anyone in, or asks
    exactly what ``origin`` asked. A fallback or a move never skips auth.
    """
    return open_to_all(target) or (target.auth, target.allowed_ips, target.denied_ips) == (
        origin.auth, origin.allowed_ips, origin.denied_ips)


def _follows(subscriber: Any) -> bool:
    """An output (not a listener) that moves down its mount's fallbacks, as HLS does."""
    return getattr(subscriber, "follows_fallback", False)
