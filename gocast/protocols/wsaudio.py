# -*- test-case-name: tests.test_wsaudio -*-
"""
``WS /ws/<mount>``: a mount's audio over a WebSocket, for web players.

A WebSocket listener is an ICY listener in all but its framing, so it is
one (:class:`~gocast.protocols.listener.ListenerSession`): the same gate
(a token in ``?token=`` or offered as the subprotocol
``gocast.token.<TOKEN>``, since browsers cannot set headers on a
WebSocket; basic, ip and callback auth), ``max_listeners`` and fallbacks,
counted in stats, metrics and events, dropped when more than
``limits.queue_size`` behind or silent for ``limits.client_timeout``. Only
the head differs (Autobahn's opening handshake instead of ICY headers) and
what each write looks like:

- text frames, JSON: ``{"type": "hello", ...}`` first (codec, sample rate,
  channels, bitrate, the stream's id and the last chunk number sent), and
  again after a move to another mount (a fallback); then
  ``{"type": "metadata", ...}`` on connect and on every change;
- with ``?format=metadata``, nothing else: a player's title display,
  which is not counted as a listener nor refused when the mount is full;
- binary frames: an 8-byte header (the chunk's number, big-endian uint32;
  a flags byte; three zero bytes) and whole codec frames (MP3, ADTS, Ogg
  pages), one chunk per frame. The first binary frame holds the burst, so
  playback starts at once.

A client that reconnects with ``?since=N&stream=ID`` (its last chunk
number, and the stream id its hello gave) gets the chunks after N from the
ring, without a gap, when they are still there; otherwise it starts anew,
and its hello says ``"resumed": false``.

Cluster redirects are not sent (browsers do not follow a 302 on a
WebSocket handshake); a WebSocket is not handed to a worker process. A
page's ``Origin`` must be one ``cors.allowed_origins`` allows.
"""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING, Any, Dict, Optional

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

from ..config._kinds import normalise_mount
from ..core.mount import Chunk, Mount
from ..core.track import artwork_link
from ..cors import allowed_origin
from ..media.audioinfo import describe
from ..outputs.pcm import RATES, PcmDecoder
from ._http import RequestHead
from .listener import ListenerSession

if TYPE_CHECKING:  # pragma: no cover
    from .frontdoor import FrontDoor

#: Where WebSocket audio lives: ``/ws/<mount>``.
PREFIX = "/ws/"
#: The subprotocol GoCast's players offer, and the prefix of one that carries a listener token.
SUBPROTOCOL = "gocast.audio"
TOKEN_SUBPROTOCOL = "gocast.token."

#: Binary frame header: chunk number, flags, padding (so PCM samples after it stay aligned).
FRAME_HEADER = struct.Struct(">IB3x")
#: The frame holds the codec's header pages (Ogg): a decoder starts from them.
FLAG_HEADERS = 1
#: A new stream starts here (first frame, a move to another mount, a new source): reset the decoder.
FLAG_START = 2
#: The frame is the burst sent on connect, several chunks ending with the numbered one.
FLAG_BURST = 4

#: What a client may send (it has nothing to say but pings and a close): a small bound.
MAX_CLIENT_MESSAGE = 4096
#: Bytes a client may send before its handshake is answered (the gate may take a moment).
MAX_EARLY_BYTES = 16 * 1024


def mount_of(path: str) -> Optional[str]:
    """The mount ``/ws/<mount>`` names, or None when the path is not WebSocket audio."""
    if not path.startswith(PREFIX):
        return None
    return normalise_mount(path[len(PREFIX) - 1:])


def frame(seq: int, flags: int, data: bytes) -> bytes:
    return FRAME_HEADER.pack(seq & 0xFFFFFFFF, flags) + data


class AudioSocket(WebSocketServerProtocol):
    """The WebSocket side of one listener: the handshake, pings, the close; audio goes out through it."""

    def __init__(self, session: "WebSocketListener"):
        super().__init__()
        self.session = session

    def onConnect(self, request: Any) -> Optional[str]:
        """Accept (the gate already has): answer with the subprotocol the client offered, if any."""
        offered = request.protocols or []
        if SUBPROTOCOL in offered:
            return SUBPROTOCOL
        return next((p for p in offered if p.startswith(TOKEN_SUBPROTOCOL)), None)

    def onMessageFrameBegin(self, length: int) -> None:
        """
        Autobahn applies its message limit to what it sends too, and a burst
        is large: what a client sends is bounded here instead.
        """
        super().onMessageFrameBegin(length)
        if self.message_data_total_length > MAX_CLIENT_MESSAGE:
            self.transport.abortConnection()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """Nothing a client says changes its stream; its pings are answered by Autobahn."""


class AudioSocketFactory(WebSocketServerFactory):
    """Shared settings of every audio WebSocket: pings find dead players, client messages stay small."""

    def __init__(self, server: str):
        super().__init__(server=server)
        self.setProtocolOptions(autoPingInterval=20, autoPingTimeout=20, maxFramePayloadSize=MAX_CLIENT_MESSAGE,
                                openHandshakeTimeout=10, closeHandshakeTimeout=5)


class WebSocketListener(ListenerSession):
    """A listener whose stream goes out as WebSocket frames."""

    __slots__ = ("raw", "early", "socket", "_generation", "_resume_from", "pcm_rate", "pcm_channels", "decoder",
                 "metadata_only")
    movable = False
    follows_redirects = False
    streaming_status = 101

    def __init__(self, door: "FrontDoor", head: RequestHead, raw: bytes):
        super().__init__(door, head)
        self.home = mount_of(head.path) or head.path
        #: The request's head as it came: Autobahn reads the handshake from it.
        self.raw = raw
        self.early = b""
        self.socket: Optional[AudioSocket] = None
        self._generation = -1
        self._resume_from: Optional[int] = None
        #: With ``?format=pcm``: the rate and channels asked for (0: the stream's), and the decoder serving it.
        self.pcm_rate: Optional[int] = None
        self.pcm_channels = 0
        self.decoder: Optional[PcmDecoder] = None
        #: ``?format=metadata``: now-playing only, no audio (a player's title display): not a listener.
        self.metadata_only = False

    # Before the stream: the gate decides on a plain HTTP answer; Autobahn does the handshake

    def start(self, rest: bytes) -> None:
        head = self.head
        if (head.get("upgrade") or "").lower() != "websocket":
            self.refuse(426, "this is a WebSocket audio stream: connect with a WebSocket client, "
                        "or listen at %s" % self.home[:100], [("Upgrade", "websocket")])
            return
        origin = head.get("origin")
        if origin is not None and allowed_origin(self.door.factory.config.cors, origin) is None:
            self.refuse(403, "this page's origin may not open the stream (cors.allowed_origins)")
            return
        problem = self.read_format()
        if problem:
            self.refuse(400, problem)
            return
        self.early = rest
        super().start(rest)

    def read_format(self) -> Optional[str]:
        """Take ``format``, ``rate`` and ``channels`` from the query; what is wrong with them, if anything."""
        head = self.head
        form, rate, channels = head.arg("format"), head.arg("rate"), head.arg("channels")
        if form not in (None, "", "source", "pcm", "metadata"):
            return ("format must be source (the stream as it is), pcm (16-bit PCM for the Web Audio API) "
                    "or metadata (now-playing only)")
        self.metadata_only = form == "metadata"
        if form != "pcm":
            return "rate and channels are for format=pcm" if rate or channels else None
        self.pcm_rate = 0
        if rate:
            if not rate.isdigit() or int(rate) not in RATES:
                return "rate must be one of %s" % " ".join(str(r) for r in RATES)
            self.pcm_rate = int(rate)
        if channels:
            if channels not in ("1", "2"):
                return "channels must be 1 or 2"
            self.pcm_channels = int(channels)
        return None

    def token(self) -> Optional[str]:
        offered = self.head.get("sec-websocket-protocol") or ""
        for protocol in offered.split(","):
            protocol = protocol.strip()
            if protocol.startswith(TOKEN_SUBPROTOCOL):
                return protocol[len(TOKEN_SUBPROTOCOL):]
        return super().token()

    def dataReceived(self, data: bytes) -> None:
        if self.socket is not None:
            self.socket.dataReceived(data)
            return
        self.early += data
        if len(self.early) > MAX_EARLY_BYTES:
            self.transport.abortConnection()

    def open_stream(self, mount: Mount) -> bool:
        factory = self.door.factory
        socket = AudioSocket(self)
        socket.factory = factory.audio_sockets()
        self.socket = socket
        socket.makeConnection(self.transport)
        handshake, self.raw, self.early = self.raw + self.early, b"", b""
        socket.dataReceived(handshake)
        if socket.state != socket.STATE_OPEN:
            self.log_access(400, 0.0, self.home, user="")  # Autobahn answered why, and closes
            return False
        return True

    # Who it is: a metadata-only client is no listener (not counted, never refused for capacity)

    @property
    def counted(self) -> bool:
        return not self.metadata_only and self.relay_node is None

    def full(self, mount: Mount) -> bool:  # type: ignore[override]
        return not self.metadata_only and ListenerSession.full(mount)

    # The stream

    def start_stream(self, mount: Mount) -> None:
        if self.metadata_only:
            self.hello(mount, resumed=False)
            self.send_metadata(mount)
            return
        if self.pcm_rate is not None:
            self.start_pcm(mount)
            return
        missed = self.missed_since(mount)
        resumed = missed is not None
        self.last_seq = self._resume_from if resumed else mount.next_seq - 1
        self._generation = self.generation_of(mount, self.last_seq) if resumed else -1
        self.hello(mount, resumed)
        self.send_metadata(mount)
        if resumed:
            for chunk in missed:
                self.send_chunk(chunk)
            return
        burst = mount.burst()
        if burst:
            flags = FLAG_START | FLAG_BURST | (FLAG_HEADERS if mount.header_pages else 0)
            self._generation = mount.generation
            self.send_frame(self.last_seq, flags, b"".join(burst))

    def start_pcm(self, mount: Mount, resume: bool = True) -> None:
        """Decoded audio: from the decoder of this mount at the rate asked (or the stream's)."""
        info = describe(mount.content_type, mount.header_pages, mount.ring[-1].data if mount.ring else b"")
        rate = self.pcm_rate or info["sample_rate"] or 48000
        channels = self.pcm_channels or min(int(info["channels"] or 2), 2)
        decoder = self.decoder = self.door.factory.pcm.attach(self, mount, int(rate), channels)
        missed = self.missed_since(decoder) if resume else None
        resumed = missed is not None
        self.last_seq = self._resume_from if resumed else decoder.next_seq - 1
        self._generation = 0 if resumed else -1
        self.send_json({"type": "hello", "mount": mount.path, "codec": "pcm_s16le", "format": "pcm",
                        "content_type": "audio/L16", "sample_rate": rate, "channels": channels,
                        "bitrate": rate * channels * 16 // 1000, "stream": decoder.stream_id,
                        "seq": self.last_seq, "resumed": resumed, "listener": self.id,
                        "header_bytes": FRAME_HEADER.size})
        self.send_metadata(mount)
        if resumed:
            for chunk in missed:
                self.send_chunk(chunk)
            return
        seq, burst = decoder.burst()
        if burst:
            self._generation = 0
            self.send_frame(seq, FLAG_START | FLAG_BURST, burst)

    def missed_since(self, ring: Any) -> Optional[Any]:
        """
        The chunks after ``?since=N`` when ``ring`` (a mount, a PCM decoder)
        is the stream it named and they are all still there.
        """
        since, stream = self.head.arg("since"), self.head.arg("stream")
        if not since or not since.isdigit() or (stream and stream != ring.stream_id):
            return None
        seq = int(since)
        if seq >= ring.next_seq:
            return None
        missed = ring.chunks_after(seq)
        if missed is not None:
            self._resume_from = seq
        return missed

    @staticmethod
    def generation_of(mount: Mount, seq: int) -> int:
        """The generation of chunk ``seq`` (the client's last), or of the one after it when it left the ring."""
        ring = mount.ring
        index = max(0, min(seq - ring[0].seq, len(ring) - 1)) if ring else 0
        return ring[index].generation if ring else mount.generation

    def hello(self, mount: Mount, resumed: bool, audio: Optional[bytes] = None) -> None:
        """What the stream is (read from ``audio``, else the newest chunk), and where this client is in it."""
        if audio is None:
            audio = mount.ring[-1].data if mount.ring else b""
        info = describe(mount.content_type, mount.header_pages, audio)
        announced = dict(mount.listener_headers()).get("icy-br")
        if announced and announced.isdigit():
            info["bitrate"] = int(announced)
        self.send_json(dict({"bitrate": None}, **info, type="hello", mount=mount.path,
                            content_type=mount.content_type, stream=mount.stream_id, seq=self.last_seq,
                            resumed=resumed, listener=self.id, header_bytes=FRAME_HEADER.size))

    def send_metadata(self, mount: Mount) -> None:
        self.send_json({"type": "metadata", "mount": mount.path, "title": mount.title or None,
                        "artist": mount.artist or None, "song": mount.song or None,
                        "album": mount.track.album or None, "url": mount.stream_url or None,
                        "artwork": artwork_link(mount)})

    def send_json(self, message: Dict[str, Any]) -> None:
        socket = self.socket
        if socket is not None and socket.state == socket.STATE_OPEN:
            socket.sendMessage(json.dumps(message, separators=(",", ":")).encode("utf-8"))

    def send_frame(self, seq: int, flags: int, data: bytes) -> None:
        socket = self.socket
        if socket is not None and socket.state == socket.STATE_OPEN:
            self.sent += len(data)
            socket.sendMessage(frame(seq, flags, data), isBinary=True)

    def send_chunk(self, chunk: Chunk) -> None:
        flags = FLAG_HEADERS if chunk.header else 0
        if chunk.generation != self._generation:
            self._generation = chunk.generation
            flags |= FLAG_START
            if self.decoder is None and self.mount is not None:
                # A new stream (the first audio, a new source): what it is may have changed.
                self.last_seq = chunk.seq - 1
                self.hello(self.mount, resumed=False, audio=chunk.data)
        self.last_seq = chunk.seq
        self.send_frame(chunk.seq, flags, chunk.data)

    def chunk(self, chunk: Chunk) -> None:
        if self.decoder is not None or self.metadata_only:
            return  # PCM comes from the decoder; a metadata-only client gets no audio
        if chunk.seq > self.last_seq and not self.paused:
            self.send_chunk(chunk)
        else:
            super().chunk(chunk)  # already sent, or the client is behind: the ICY listener's rules

    def pcm(self, chunk: Chunk) -> None:
        """A chunk of decoded audio (``format=pcm``), with the same rules as the stream's chunks."""
        decoder = self.decoder
        if decoder is None or chunk.seq <= self.last_seq:
            return
        if self.paused:
            if self.last_seq + 1 < decoder.oldest_seq:
                self.drop_slow()
            return
        self.send_chunk(chunk)

    def chunk_source(self) -> Any:
        return self.decoder if self.decoder is not None else self.mount

    def metadata_changed(self) -> None:
        if self.mount is not None:
            self.send_metadata(self.mount)

    def moved(self, mount: Mount) -> None:
        """Another mount serves it now (a fallback, moveclients): a new hello, then its stream."""
        if self.mount is not None:
            self.settle(self.mount)
        self.mount = mount
        if self.decoder is not None:
            self.leave_decoder()
            self.start_pcm(mount, resume=False)
            return
        if self.metadata_only:
            self.start_stream(mount)
            return
        self.last_seq = mount.next_seq - 1
        self._generation = -1  # the next chunk starts a stream
        self.hello(mount, resumed=False)
        self.send_metadata(mount)
        if mount.header_pages:
            self._generation = mount.generation
            self.send_frame(self.last_seq, FLAG_START | FLAG_HEADERS, mount.header_pages)

    # The end

    def close(self, code: int, reason: str) -> None:
        socket = self.socket
        if socket is not None and socket.state == socket.STATE_OPEN:
            socket.sendClose(code, reason[:120])
        else:
            self.transport.loseConnection()

    def end(self, why: str) -> None:
        self._log.info("{mount}: listener {id} disconnected: {why}", mount=self.home, id=self.id, why=why)
        self.close(4001, why)

    def detach(self, reason: str) -> None:
        self._log.info("{mount}: listener {id} closed: {reason}", mount=self.home, id=self.id, reason=reason)
        self.leave_mount()
        self.close(4002, reason)

    def leave_mount(self) -> Optional[Mount]:
        self.leave_decoder()
        return super().leave_mount()

    def leave_decoder(self) -> None:
        decoder, self.decoder = self.decoder, None
        if decoder is not None:
            self.door.factory.pcm.detach(self, decoder)

    def connectionLost(self, reason: Any = None) -> None:
        socket, self.socket = self.socket, None
        if socket is not None:
            socket.connectionLost(reason)
        super().connectionLost(reason)
