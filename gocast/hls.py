# -*- test-case-name: tests.test_hls -*-
"""
HLS output for mounts with ``hls { enabled true }``: a subscriber of the
mount's frame stream that cuts MPEG-TS segments (MP3 and AAC sources with
no extra process; Ogg Vorbis/Opus/FLAC through an ffmpeg AAC transcoder),
and the twisted.web resources that serve them from memory:

- ``GET /hls/<mount>/playlist.m3u8``
- ``GET /hls/<mount>/segment_<N>.ts``

A mount without a source (and no segment yet) answers 404.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Request

from .core.mount import Chunk, Mount
from .core.registry import MountRegistry
from .media import Packet, media_type
from .media._sync import adts_header
from .media.hls import Segmenter
from .transcode import AACTranscoder

_CODECS = {"audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mpeg3": "mp3", "audio/aac": "aac",
           "audio/aacp": "aac", "audio/x-aac": "aac", "audio/x-aacp": "aac", "audio/adts": "aac"}


class HlsOutput:
    """Segments one mount's stream; never counted or moved as a listener."""

    is_listener = False

    def __init__(self, mount: Mount, now: Callable[[], float], reactor: Any = None):
        self.mount = mount
        self.now = now
        self.reactor = reactor
        self.segmenter: Optional[Segmenter] = None
        self.transcoder: Optional[AACTranscoder] = None
        self._generation = -1
        self._ogg_generation = -1
        #: HLS clients by (address, user agent) or session parameter: when last seen.
        self.sessions: Dict[str, float] = {}

    def seen(self, key: str) -> None:
        """A client fetched the playlist."""
        self.sessions[key] = self.now()
        self.mount.note_peak()

    def session_count(self) -> int:
        """Clients seen on the playlist within two target durations count as listeners."""
        if not self.sessions:
            return 0
        horizon = self.now() - 2 * self.mount.config.hls.segment_duration
        for key in [k for k, when in self.sessions.items() if when < horizon]:
            del self.sessions[key]
        return len(self.sessions)

    def chunk(self, chunk: Chunk) -> None:
        if self.mount.is_ogg:
            self.transcode(chunk)
            return
        codec = _CODECS.get(media_type(self.mount.content_type))
        if codec is None or chunk.header:
            return
        self.segment(codec, chunk.data, chunk.duration, chunk.generation)

    def segment(self, codec: str, data: bytes, duration: float, generation: int) -> None:
        config = self.mount.config.hls
        if self.segmenter is None or self.segmenter.muxer.stream_type != Segmenter(codec).muxer.stream_type:
            self.segmenter = Segmenter(codec, config.segment_duration, config.playlist_length)
        elif generation != self._generation:
            self.segmenter.discontinuity()
        self._generation = generation
        self.segmenter.set_title(self.mount.title, self.mount.artist)
        self.segmenter.add(data, duration, self.now())

    def transcode(self, chunk: Chunk) -> None:
        """
        Ogg (Vorbis, Opus, FLAC): through an ffmpeg child process to AAC. A
        new Ogg stream (new source, or a chained stream) restarts ffmpeg,
        which is sent the new codec headers first.
        """
        if self.reactor is None:
            return
        if self.transcoder is None:
            self.transcoder = AACTranscoder(self.reactor, self.transcoded, lambda: self.mount.header_pages,
                                            "%s HLS" % self.mount.path)
        if chunk.generation != self._ogg_generation:
            self._ogg_generation = chunk.generation
            self.transcoder.stop()
            self.transcoder.start()
            if chunk.header:
                return  # ffmpeg was just sent these headers
        self.transcoder.feed(chunk.data)

    def transcoded(self, packet: Packet) -> None:
        """
        ffmpeg writes in bursts of any length: regroup its frames into short
        chunks, so segments end close to their target duration.
        """
        for data, duration in regroup_adts(packet.data, TRANSCODED_CHUNK):
            self.segment("aac", data, duration, self._ogg_generation)

    def source_stopped(self) -> None:
        if self.transcoder is not None:
            self.transcoder.stop()

    def metadata_changed(self) -> None:
        """The next chunk carries the new title into the segment being cut."""

    def moved(self, mount: Mount) -> None:  # pragma: no cover - outputs are never moved
        """Outputs stay with their mount."""

    def detach(self, reason: str) -> None:  # pragma: no cover - outputs are never detached
        """Outputs stay with their mount."""


#: Seconds of transcoded audio per chunk handed to the segmenter.
TRANSCODED_CHUNK = 0.1


def regroup_adts(data: bytes, seconds: float) -> List[Tuple[bytes, float]]:
    """Whole ADTS frames in ``data``, grouped into chunks of about ``seconds``."""
    groups: List[Tuple[bytes, float]] = []
    start = pos = 0
    duration = 0.0
    while pos + 7 <= len(data):
        header = adts_header(data, pos)
        if header is None:
            break
        length, samples, rate, _ = header
        pos += length
        duration += samples / rate
        if duration >= seconds:
            groups.append((data[start:pos], duration))
            start, duration = pos, 0.0
    if pos > start:
        groups.append((data[start:pos], duration))
    return groups


class HlsOutputs:
    """Attaches an :class:`HlsOutput` to every mount whose config enables HLS."""

    _log = Logger()

    def __init__(self, now: Callable[[], float], reactor: Any = None):
        self.now = now
        self.reactor = reactor
        self.outputs: Dict[str, HlsOutput] = {}

    def attach(self, mount: Mount) -> None:
        output = self.outputs.get(mount.path)
        if mount.config.hls.enabled and output is None:
            output = self.outputs[mount.path] = HlsOutput(mount, self.now, self.reactor)
            mount.add_subscriber(output)
            mount.session_listeners = output.session_count
        elif not mount.config.hls.enabled and output is not None:
            mount.remove_subscriber(self.outputs.pop(mount.path))
            mount.session_listeners = lambda: 0

    def output(self, path: str) -> Optional[HlsOutput]:
        return self.outputs.get(path)


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
    """One HLS listener: the ``session`` query parameter, else address and user agent."""
    session = request.args.get(b"session")
    if session:
        return "s:" + session[-1].decode("utf-8", "replace")[:128]
    peer = request.getClientAddress()
    agent = (request.getHeader(b"user-agent") or b"").decode("latin-1", "replace")[:256]
    return "c:%s|%s" % (getattr(peer, "host", str(peer)), agent)


class HlsResource(Resource):
    """``/hls/...``: the last path segment is the file, the rest the mount."""

    isLeaf = True

    def __init__(self, outputs: HlsOutputs, registry: MountRegistry):
        super().__init__()
        self.outputs = outputs
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        parts = [p.decode("utf-8", "replace") for p in request.postpath]
        if len(parts) < 2:
            return self.missing(request)
        return self.serve(request, "/" + "/".join(parts[:-1]), parts[-1])

    def serve(self, request: Request, mount: str, name: str) -> bytes:
        output = self.outputs.output(mount)
        segmenter = output.segmenter if output is not None else None
        live = self.registry.get(mount)
        if segmenter is None or not segmenter.segments or live is None or live.source is None:
            return self.missing(request)
        if name == "playlist.m3u8":
            output.seen(session_key(request))
            request.setHeader(b"content-type", b"application/vnd.apple.mpegurl")
            request.setHeader(b"cache-control", b"no-cache")
            return segmenter.playlist().encode("ascii")
        if name.startswith("segment_") and name.endswith(".ts") and name[8:-3].isdigit():
            segment = segmenter.get(int(name[8:-3]))
            if segment is not None:
                request.setHeader(b"content-type", b"video/mp2t")
                request.setHeader(b"cache-control", b"max-age=%d" % (segmenter.segment_duration * 10))
                return segment.data
        return self.missing(request)

    def for_path(self, path: str) -> Optional[Resource]:
        """
        The resource for ``path`` under a mount's own ``hls.path`` prefix
        (read from the running config, so a reload moves it), if any.
        """
        for mount, config in self.registry.config.mounts.items():
            prefix = config.hls.path.rstrip("/")
            if config.hls.enabled and prefix and path.startswith(prefix + "/"):
                return _PrefixedHls(self, mount, path[len(prefix) + 1:])
        return None

    @staticmethod
    def missing(request: Request) -> bytes:
        request.setResponseCode(404)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return b"no such HLS stream or segment\n"
