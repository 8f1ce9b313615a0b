# -*- test-case-name: tests.test_wsaudio -*-
"""
PCM for the Web Audio API: ``WS /ws/<mount>?format=pcm[&rate=48000][&channels=1]``.

One ffmpeg per mount, rate and channel count decodes the mount's stream to
16-bit little-endian interleaved PCM, shared by every WebSocket client
asking for that form: started by the first (primed with the mount's burst,
so sound comes at once), stopped when the last leaves. Its output is cut
into numbered chunks of whole sample frames (:data:`BLOCK_SECONDS`) kept
in a ring of :data:`RING_SECONDS`, which is what a slow client may fall
behind before it is dropped, and what a reconnecting client resumes from.

A decoder subscribes to its mount as an output (not a listener); its
clients are listeners of the mount themselves, so they are counted, moved
to fallbacks and told of metadata as any listener; a client moved to
another mount goes to that mount's decoder.
"""

from __future__ import annotations

import secrets
from collections import deque
from typing import Any, Deque, Dict, Iterable, Optional, Set, Tuple

from twisted.logger import Logger

from ..core.mount import Chunk, Mount, chunks_after
from .transcode import FFmpegChild, StreamFeed

#: Each PCM chunk holds this much audio: small enough for a prompt start, large enough to batch.
BLOCK_SECONDS = 0.1
#: Decoded audio kept for slow or reconnecting clients.
RING_SECONDS = 10.0
#: What a new client is sent first (the newest decoded audio), so playback starts at once.
BURST_SECONDS = 1.0
#: How long a decoder runs on after its last client left: one reconnecting resumes where it was.
LINGER = 10.0
#: Rates a client may ask for.
RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)


def pcm_argv(input_format: Optional[str], rate: int, channels: int) -> list:
    source = ["-f", input_format] if input_format else []
    return (["ffmpeg", "-hide_banner", "-loglevel", "error"] + source
            + ["-i", "pipe:0", "-vn", "-f", "s16le", "-acodec", "pcm_s16le", "-ar", str(rate),
               "-ac", str(channels), "pipe:1"])


def input_format(mount: Mount) -> Optional[str]:
    """ffmpeg's demuxer for the mount's stream (told, not probed: probing would wait for more input)."""
    kind = mount.content_type
    if mount.is_ogg:
        return "ogg"
    if "mpeg" in kind or "mp3" in kind:
        return "mp3"
    if "aac" in kind or "adts" in kind:
        return "aac"
    return None


class PcmDecoder:
    """One mount decoded at one rate and channel count, for the clients that asked."""

    _log = Logger()
    is_listener = False

    def __init__(self, reactor: Any, mount: Mount, rate: int, channels: int, done: Any):
        self.mount = mount
        self.rate = rate
        self.channels = channels
        self.done = done
        self.frame_bytes = 2 * channels
        self.block_bytes = int(rate * BLOCK_SECONDS) * self.frame_bytes
        self.clients: Set[Any] = set()
        self.ring: Deque[Chunk] = deque()
        self.next_seq = 0
        #: Its chunks count from 0: a client resuming names this decoder's stream with its chunk number.
        self.stream_id = secrets.token_hex(6)
        #: The stop due after the last client left (a client reconnecting within it resumes).
        self.stopping: Any = None
        self._pending = bytearray()
        self._feed = StreamFeed(lambda: self.mount)
        self.child = FFmpegChild(reactor, pcm_argv(input_format(mount), rate, channels), {1: self.decoded},
                                 self._feed.headers, "%s PCM %d Hz" % (mount.path, rate))
        self.child.role = "PCM decoder"

    def start(self) -> None:
        self.mount.add_subscriber(self)
        for chunk in self.mount.burst_chunks():  # sound at once, not after the next chunk
            self.chunk(chunk)

    def stop(self) -> None:
        self.stopping = None
        self.child.stop()
        self.mount.remove_subscriber(self)
        self.done(self)

    # The mount's stream in

    def chunk(self, chunk: Chunk) -> None:
        if self._feed.feed(self.child, chunk, self.mount.is_ogg):
            self._pending.clear()  # a new ffmpeg: what the old one left half-written is not audio

    def metadata_changed(self) -> None:
        """Its clients are told by their own mount."""

    def moved(self, mount: Mount) -> None:
        """Never moved (an output, not a listener)."""

    def detach(self, reason: str) -> None:
        """The mount is gone: its clients were detached too, and this has no one left to serve."""
        if self.stopping is not None:
            self.stopping.cancel()
        self.clients.clear()
        self.stop()

    # PCM out

    def decoded(self, data: bytes) -> None:
        pending = self._pending
        pending += data
        block = self.block_bytes
        while len(pending) >= block:
            self.publish(bytes(pending[:block]))
            del pending[:block]

    def publish(self, data: bytes) -> None:
        chunk = Chunk(self.next_seq, data, BLOCK_SECONDS, 0)
        self.next_seq += 1
        self.ring.append(chunk)
        while len(self.ring) * BLOCK_SECONDS > RING_SECONDS:
            self.ring.popleft()
        for client in list(self.clients):
            client.pcm(chunk)

    def burst(self) -> Tuple[int, bytes]:
        """The newest :data:`BURST_SECONDS` of audio, and the number of its last chunk."""
        count = int(BURST_SECONDS / BLOCK_SECONDS)
        chunks = list(self.ring)[-count:]
        return self.next_seq - 1, b"".join(c.data for c in chunks)

    def chunks_after(self, seq: int) -> Optional[Iterable[Chunk]]:
        """As :meth:`Mount.chunks_after`: None when some left the ring."""
        return chunks_after(self.ring, self.next_seq, seq)

    @property
    def oldest_seq(self) -> int:
        return self.ring[0].seq if self.ring else self.next_seq


class PcmDecoders:
    """The decoders running, by mount, rate and channel count."""

    def __init__(self, reactor: Any):
        self.reactor = reactor
        self.running: Dict[Tuple[int, int, int], PcmDecoder] = {}

    def attach(self, client: Any, mount: Mount, rate: int, channels: int) -> PcmDecoder:
        key = (id(mount), rate, channels)
        decoder = self.running.get(key)
        if decoder is None:
            decoder = self.running[key] = PcmDecoder(self.reactor, mount, rate, channels, self._done)
            decoder.clients.add(client)
            decoder.start()
            return decoder
        if decoder.stopping is not None:
            decoder.stopping.cancel()
            decoder.stopping = None
        decoder.clients.add(client)
        return decoder

    def detach(self, client: Any, decoder: PcmDecoder) -> None:
        """The client left: the decoder stops :data:`LINGER` seconds after its last client, unless one comes."""
        decoder.clients.discard(client)
        if not decoder.clients and decoder.stopping is None and self.running.get(
                (id(decoder.mount), decoder.rate, decoder.channels)) is decoder:
            decoder.stopping = self.reactor.callLater(LINGER, decoder.stop)

    def _done(self, decoder: PcmDecoder) -> None:
        key = (id(decoder.mount), decoder.rate, decoder.channels)
        if self.running.get(key) is decoder:
            del self.running[key]
