# -*- test-case-name: tests.test_hls -*-
"""
The twisted.web resources that serve what :mod:`gocast.outputs.hls` cut,
from memory:

- ``GET /hls/<mount>/playlist.m3u8``
- ``GET /hls/<mount>/segment_<N>.ts`` (standard HLS: MPEG-TS)
- ``GET /hls/<mount>/init_<K>.mp4``, ``segment_<N>.m4s``, ``part_<N>_<I>.m4s``
  (``low_latency true``: CMAF), with blocking playlist reload
  (``?_HLS_msn=N&_HLS_part=I``) and a blocking preload-hinted part.

A mount without a source (and no segment yet) answers 404. On a mount
with listener auth, the playlist and every segment and part pass the gate
(:mod:`gocast.auth.gate`); a ``?token=`` on the playlist is written into
the URIs it lists, so players need no support for it.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, List, Optional, Tuple, Union
from urllib.parse import quote

from twisted.internet.defer import CancelledError, Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ..auth.address import host_of
from ..auth.base import AuthRequest
from ..auth.gate import Admission, ListenerGate
from ..core.registry import MountRegistry
from ..core.throttle import address_key
from ..config import hls_variants
from ..media import sync_codec
from ..media.hls import Variant, master_playlist, measured_bandwidth
from ..media.llhls import PartSegmenter
from ..observe.geo import NOWHERE, GeoLocator
from ..outputs.hls import AnySegmenter, HlsOutput, HlsOutputs
from .site import request_arg

#: Segments and parts never change once cut, and their numbers are not reused.
IMMUTABLE = b"public, max-age=31536000, immutable"
#: The same, on a mount with listener auth: browsers may keep them, shared caches not.
PRIVATE_IMMUTABLE = b"private, max-age=31536000, immutable"


class _PrefixedHls(Resource):
    isLeaf = True

    def __init__(self, hls: "HlsResource", mount: str, name: str):
        super().__init__()
        self.hls = hls
        self.mount = mount
        self.name = name

    def render_GET(self, request: Request) -> bytes:
        return self.hls.serve(request, self.mount, self.name)


def session_key(request: Request) -> str:
    """One HLS listener: the ``session`` query parameter, else address and user agent (worked out once)."""
    key = getattr(request, "hls_session", None)
    if key is not None:
        return key
    session = request.args.get(b"session")
    if session:
        key = "s:" + session[-1].decode("utf-8", "replace")[:128]
    else:
        agent = (request.getHeader(b"user-agent") or b"").decode("latin-1", "replace")[:256]
        key = "c:%s|%s" % (host_of(request.getClientAddress()), agent)
    request.hls_session = key  # type: ignore[attr-defined]
    return key


class HlsResource(Resource):
    """``/hls/...``: the last path segment is the file, the rest the mount."""

    isLeaf = True
    #: The config block whose ``path`` is another prefix for these files.
    kind = "hls"
    #: The files a player starts from (a listener routed elsewhere is sent there for them).
    entry_points = ("playlist.m3u8", "master.m3u8")

    def __init__(self, outputs: HlsOutputs, registry: MountRegistry, gate: Optional[ListenerGate] = None,
                 geo: Optional[GeoLocator] = None):
        super().__init__()
        self.outputs = outputs
        self.registry = registry
        self.gate = gate
        self.geo = geo

    def render_GET(self, request: Request) -> bytes:
        parts = [p.decode("utf-8", "replace") for p in request.postpath]
        if len(parts) < 2:
            return self.missing(request)
        return self.serve(request, "/" + "/".join(parts[:-1]), parts[-1])

    def serve(self, request: Request, mount: str, name: str) -> Union[bytes, int]:
        if name in self.entry_points:
            # Routed to a nearer node: the player fetches the playlist there, and the
            # segments it lists, relative, from there too.
            routed = self.registry.route_listener(mount, host_of(request.getClientAddress()),
                                                  request.uri.decode("latin-1"))
            if routed is not None:
                request.setResponseCode(302)
                request.setHeader(b"location", routed.encode("latin-1"))
                request.setHeader(b"cache-control", b"no-store")
                return b""
        gate = self.gate
        if gate is None or not gate.protected(mount):
            return self.serve_allowed(request, mount, name)
        # Not for shared caches: they would hand it to clients that never passed the gate.
        request.private_cache = True  # type: ignore[attr-defined]
        headers = {key.decode("latin-1").lower(): values[-1].decode("latin-1")
                   for key, values in request.requestHeaders.getAllRawHeaders()}
        peer = request.getClientAddress()
        asked = AuthRequest.build(mount, host_of(peer), headers, request_arg(request, b"token"), protocol="hls")
        admission = gate.authorize(asked)
        if not isinstance(admission, Deferred):
            return self.through_gate(request, mount, name, admission)
        gone: List[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))
        admission.addCallback(lambda decided: gone or self.send_late(
            request, self.through_gate(request, mount, name, decided)))
        return NOT_DONE_YET

    def through_gate(self, request: Request, mount: str, name: str, admission: Admission) -> Union[bytes, int]:
        decision = admission.decision
        if not decision.allowed:
            if decision.challenge:
                request.setHeader(b"www-authenticate", decision.challenge.encode("latin-1"))
            return self.refuse(request, decision.status, decision.reason)
        return self.serve_allowed(request, mount, name)

    @staticmethod
    def send_late(request: Request, body: Union[bytes, int]) -> None:
        """Finish a request answered after render returned (unless the answer itself waits)."""
        if not isinstance(body, bytes):
            return
        request.setHeader(b"content-length", b"%d" % len(body))
        request.write(body)
        request.finish()

    def serve_allowed(self, request: Request, mount: str, name: str) -> Union[bytes, int]:
        if name == MASTER:
            return self.master(request, mount)
        output = self.outputs.output(mount)
        live = self.registry.get(mount)
        if name == "playlist.m3u8" and (live is None or live.source is None):
            self.registry.demand(mount)  # an on-demand relay starts; the player's next try finds it
        if output is None or live is None or not output.live:
            return self.missing(request)
        segmenter = output.segmenter
        if name == "playlist.m3u8":
            if segmenter is None or not segmenter.ready:
                # The source just connected: answer once the first segment (or part) is cut.
                return self.block(request, output, lambda: output.segmenter is not None and output.segmenter.ready,
                                  lambda: self.playlist(request, output, output.segmenter))  # type: ignore
            return self.playlist(request, output, segmenter)
        if segmenter is None:
            return self.missing(request)
        found = segmenter.lookup(name)
        if found is None and not (isinstance(segmenter, PartSegmenter) and name == segmenter.next_part_name()):
            return self.missing(request)
        refused = self.listening(request, output)
        if refused is not None:
            return refused
        key = session_key(request)

        def send(content_type: str, data: bytes) -> bytes:
            output.sent(key, len(data))
            return self.file(request, content_type, data)

        if found is not None:
            return send(*found)
        # The preload hint: answer as soon as that part is cut.
        return self.block(request, output, lambda: segmenter.lookup(name) is not None,
                          lambda: send(*segmenter.lookup(name)))  # type: ignore[misc]

    def master(self, request: Request, mount: str) -> bytes:
        """
        The master playlist of ``mount``'s variants that have audio now, each
        with its measured bitrate and codec; its URIs are relative (a
        reverse proxy's prefix stays) and carry the token and session.
        """
        config = self.registry.config
        depth = request.uri.split(b"?", 1)[0].count(b"/") - 1  # folders between the root and the master
        listed = []
        for path in hls_variants(config, mount):
            output = self.outputs.output(path)
            variant = self.registry.get(path)
            if output is None or variant is None or not output.live:
                continue
            segmenter = output.segmenter
            if segmenter is not None:
                codec, segments = segmenter.codec, segmenter.live()
            else:  # no segment yet: Ogg and low-latency streams are made AAC
                codec = sync_codec(output.feeding.content_type) or "aac"
                codec, segments = "aac" if variant.config.hls.low_latency else codec, []
            peak, average = measured_bandwidth(segments, expected_bitrate(variant))
            uri = "../" * depth + "hls/%s/playlist.m3u8" % quote(path.lstrip("/"), safe="/")
            listed.append(Variant(uri, peak, average, codec))
        if not listed:
            return self.refuse(request, 404, "no variant of %s is live" % mount)
        request.setHeader(b"content-type", b"application/vnd.apple.mpegurl")
        request.setHeader(b"cache-control", b"%s, max-age=2" % (
            b"private" if getattr(request, "private_cache", False) else b"public"))
        text = master_playlist(listed)
        query = _forwarded_query(request)
        return (with_query(text, query) if query else text).encode("ascii")

    def listening(self, request: Request, output: HlsOutput) -> Optional[bytes]:
        """
        Count the client fetching a segment or part as a listener; the
        refusal (503) when the mount is full, or when its address already
        holds ``limits.max_connections_per_ip`` sessions.
        """
        key = session_key(request)
        host = host_of(request.getClientAddress())
        if key not in output.sessions:
            if not output.room_for(key):
                return self.refuse(request, 503, "mount %s is full (%d listeners)"
                                   % (output.mount.path, output.mount.listeners))
            limit = self.registry.config.limits.max_connections_per_ip
            if limit and output.sessions_of(address_key(host)) >= limit:
                return self.refuse(request, 503, "too many sessions from your address "
                                                 "(limits.max_connections_per_ip is %d)" % limit)
        geo = self.geo
        agent = (request.getHeader(b"user-agent") or b"").decode("latin-1", "replace")[:256]
        output.seen(key, host, address_key(host), agent,
                    (lambda: geo.locate(host)) if geo is not None else (lambda: NOWHERE))
        return None

    def playlist(self, request: Request, output: HlsOutput, segmenter: AnySegmenter) -> Union[bytes, int]:
        if not output.room_for(session_key(request)):
            # As for ICY listeners: HLS clients count towards max_listeners (once they play).
            return self.refuse(request, 503, "mount %s is full (%d listeners)"
                               % (output.mount.path, output.mount.listeners))
        try:
            sequence, part = blocking_reload(request)
        except ValueError as e:
            return self.refuse(request, 400, str(e))
        if sequence is None or not isinstance(segmenter, PartSegmenter):
            return self.playlist_text(request, segmenter)
        if segmenter.too_far(sequence, part):
            return self.refuse(request, 400, "_HLS_msn/_HLS_part is too far ahead of the live edge")

        def ready() -> bool:
            return output.segmenter is not segmenter or segmenter.has(sequence, part)

        return self.block(request, output, ready, lambda: self.playlist_text(request, output.segmenter))

    def block(self, request: Request, output: HlsOutput, ready: Callable[[], bool],
              answer: Callable[[], Union[bytes, int]]) -> Union[bytes, int]:
        """
        Hold ``request`` until ``ready()``, then send ``answer()``; after
        three target durations, 503 (as LL-HLS asks of blocking reloads).
        """
        if ready():
            return answer()
        segmenter = output.segmenter
        target = segmenter.target_duration() if segmenter else math.ceil(output.mount.config.hls.segment_duration)
        waiting = output.wait(ready, 3 * target)
        if waiting is None:
            return self.refuse(request, 503, "too many blocked requests on this stream")

        def done(arrived: bool) -> None:
            # NOT_DONE_YET from answer(): a blocking reload now waits for its part.
            self.send_late(request, answer() if arrived else self.refuse(request, 503, "not available in time"))

        def gone(failure: Any) -> None:
            failure.trap(CancelledError)

        waiting.addCallback(done).addErrback(gone)
        request.notifyFinish().addErrback(lambda _: waiting.cancel())
        return NOT_DONE_YET

    @staticmethod
    def playlist_text(request: Request, segmenter: Optional[AnySegmenter]) -> bytes:
        if segmenter is None:
            return HlsResource.missing(request)
        # Fresh for at most half a part (LL-HLS) or half a segment.
        half = (segmenter.part_target() if isinstance(segmenter, PartSegmenter)
                else segmenter.target_duration()) / 2
        request.setHeader(b"content-type", b"application/vnd.apple.mpegurl")
        request.setHeader(b"cache-control", b"max-age=%d" % int(half))
        text = segmenter.playlist()
        query = _forwarded_query(request)
        if query:
            text = with_query(text, query)
        if getattr(request, "private_cache", False):
            request.setHeader(b"cache-control", b"private, max-age=%d" % int(half))
        return text.encode("ascii")

    @staticmethod
    def file(request: Request, content_type: str, data: bytes) -> bytes:
        request.setHeader(b"content-type", content_type.encode("ascii"))
        request.setHeader(b"cache-control",
                          PRIVATE_IMMUTABLE if getattr(request, "private_cache", False) else IMMUTABLE)
        return data

    def for_path(self, path: str) -> Optional[Resource]:
        """The resource for ``path`` under a mount's own ``hls.path`` prefix, if any."""
        found = self.locate(path)
        return _PrefixedHls(self, *found) if found is not None else None

    def locate(self, path: str) -> Optional[Tuple[str, str]]:
        """
        ``(mount, file)`` for ``path`` under a mount's own ``hls.path``
        prefix (read from the running config, so a reload moves it), if any.
        """
        for mount, config in self.registry.config.mounts.items():
            block = getattr(config, self.kind)
            prefix = block.path.rstrip("/")
            if block.enabled and prefix and path.startswith(prefix + "/"):
                return mount, path[len(prefix) + 1:]
        return None

    @staticmethod
    def missing(request: Request) -> bytes:
        return HlsResource.refuse(request, 404, "no such HLS stream or segment")

    @staticmethod
    def refuse(request: Request, code: int, reason: str) -> bytes:
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        return reason.encode("utf-8") + b"\n"


_URI_ATTRIBUTE = re.compile(r'URI="([^"?]*)"')
#: The master playlist's name, beside each mount's playlist.m3u8.
MASTER = "master.m3u8"


def expected_bitrate(mount: Any) -> int:
    """A variant's bitrate before its segments say: configured, else as its source announced, else 128k."""
    announced = mount.source.audio_info().get("bitrate", "") if mount.source is not None else ""
    return mount.config.bitrate or (int(announced) * 1000 if announced.isdigit() else 128000)


def _forwarded_query(request: Request) -> str:
    """The token and the session, to go on to every URI a playlist lists, so they are let in and counted."""
    return "&".join("%s=%s" % (name.decode("ascii"), quote(value, safe=""))
                    for name, value in ((b"token", request_arg(request, b"token")),
                                        (b"session", request_arg(request, b"session"))) if value)


def with_query(playlist: str, query: str) -> str:
    """Every URI of ``playlist`` (segment lines, ``URI="..."`` attributes) with ``?query`` added."""
    lines = []
    for line in playlist.split("\n"):
        if line.startswith("#"):
            line = _URI_ATTRIBUTE.sub(lambda m: 'URI="%s?%s"' % (m.group(1), query), line)
        elif line:
            line = "%s?%s" % (line, query)
        lines.append(line)
    return "\n".join(lines)


def blocking_reload(request: Request) -> Tuple[Optional[int], Optional[int]]:
    """``_HLS_msn`` and ``_HLS_part``; ValueError with the reason if they are malformed."""
    values = []
    for name in (b"_HLS_msn", b"_HLS_part"):
        given = request.args.get(name)
        if not given:
            values.append(None)
            continue
        text = given[-1].decode("ascii", "replace")
        if not text.isdigit() or len(text) > 19:
            raise ValueError("%s must be a non-negative integer" % name.decode())
        values.append(int(text))
    if values[0] is None and values[1] is not None:
        raise ValueError("_HLS_part needs _HLS_msn")
    return values[0], values[1]
