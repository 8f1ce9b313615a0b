"""
Source-to-listener latency for benchmarks/fanout.py: a paced MP3 source
that writes a marker into one frame a second, and probe listeners that
note when each marker arrives.

The source streams a sine encoded once by ffmpeg, frame by frame at the
pace of the audio (26 ms per frame), with Icecast's ``SOURCE``; every
:data:`MARK_EVERY` seconds it overwrites the start of a frame's audio data
with ``GCMK`` and a sequence number, and notes the time it sent it. Servers
do not decode audio, so the marker goes through like any frame. Probe
listeners are read by their own thread the moment data arrives; a probe's
latency for a marker is its arrival time minus the time it was sent.
"""

from __future__ import annotations

import base64
import select
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Dict, List

MARK = b"GCMK"
MARK_EVERY = 1.0
#: Bytes of an MPEG-1 Layer III frame before its audio data: the header and a stereo side info.
_DATA_OFFSET = 4 + 32
_BITRATES = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
_RATES = [44100, 48000, 32000]


def encode_sine(path: Path, seconds: int = 30) -> List[bytes]:
    """A 128 kbps MPEG-1 Layer III sine, as its frames (no ID3 or Xing frame)."""
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=44100:duration=%d" % seconds, "-ac", "2", "-c:a", "libmp3lame",
                    "-b:a", "128k", "-write_xing", "0", "-id3v2_version", "0", "-f", "mp3", str(path)], check=True)
    data = path.read_bytes()
    frames, pos = [], 0
    while pos + 4 <= len(data):
        header = struct.unpack(">I", data[pos:pos + 4])[0]
        if header >> 21 != 0x7FF:
            pos += 1
            continue
        bitrate = _BITRATES[(header >> 12) & 0xF] * 1000
        rate = _RATES[(header >> 10) & 0x3]
        length = 144 * bitrate // rate + ((header >> 9) & 1)
        frames.append(data[pos:pos + length])
        pos += length
    return frames


class MarkedSource(threading.Thread):
    """Streams ``frames`` to ``/live`` of the server on ``port`` at real-time pace, marked once a second."""

    FRAME_SECONDS = 1152 / 44100

    def __init__(self, port: int, password: str, frames: List[bytes]):
        super().__init__(daemon=True)
        self.port = port
        self.password = password
        self.frames = frames
        self.sent: Dict[int, float] = {}
        self.stop = threading.Event()
        self.error = ""

    def run(self) -> None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                auth = base64.b64encode(("source:%s" % self.password).encode()).decode()
                sock.sendall(("SOURCE /live HTTP/1.0\r\nAuthorization: Basic %s\r\n"
                              "Content-Type: audio/mpeg\r\nIce-Public: 0\r\n\r\n" % auth).encode())
                answer = sock.recv(4096)
                if b" 200 " not in answer.split(b"\r\n")[0]:
                    self.error = answer[:200].decode("latin-1")
                    return
                self.stream(sock)
        except OSError as e:
            self.error = str(e)

    def stream(self, sock: socket.socket) -> None:
        start = time.perf_counter()
        index, marker, next_mark = 0, 0, start + MARK_EVERY
        while not self.stop.is_set():
            due = start + index * self.FRAME_SECONDS
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            frame = self.frames[index % len(self.frames)]
            now = time.perf_counter()
            if now >= next_mark:
                marker += 1
                stamp = MARK + struct.pack(">I", marker)
                frame = frame[:_DATA_OFFSET] + stamp + frame[_DATA_OFFSET + len(stamp):]
                next_mark += MARK_EVERY
                self.sent[marker] = time.perf_counter()
            sock.sendall(frame)
            index += 1


class LatencyProbes(threading.Thread):
    """Listeners read the moment data arrives, noting when each marker reaches each of them."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.socks: List[socket.socket] = []
        self.arrived: List[Dict[int, float]] = []
        self.tails: List[bytes] = []
        self.stop = threading.Event()

    def add(self, count: int) -> None:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            sock.sendall(b"GET /live HTTP/1.0\r\nUser-Agent: latency-probe\r\n\r\n")
            sock.setblocking(False)
            self.socks.append(sock)
            self.arrived.append({})
            self.tails.append(b"")

    def run(self) -> None:
        poller = select.poll()
        known = 0
        while not self.stop.is_set():
            for index in range(known, len(self.socks)):
                poller.register(self.socks[index], select.POLLIN)
            known = len(self.socks)
            by_fd = {s.fileno(): i for i, s in enumerate(self.socks)}
            for fd, _ in poller.poll(100):
                index = by_fd[fd]
                try:
                    data = self.socks[index].recv(262144)
                except (BlockingIOError, OSError):
                    continue
                now = time.perf_counter()
                seen = self.tails[index] + data
                pos = seen.find(MARK)
                while pos >= 0 and pos + 8 <= len(seen):
                    marker = struct.unpack(">I", seen[pos + 4:pos + 8])[0]
                    self.arrived[index].setdefault(marker, now)
                    pos = seen.find(MARK, pos + 8)
                self.tails[index] = seen[-16:]

    def latencies(self, sent: Dict[int, float], since: float) -> List[float]:
        """Seconds from each marker sent after ``since`` to its arrival at each probe."""
        found = []
        for arrived in self.arrived:
            for marker, at in arrived.items():
                if marker in sent and sent[marker] >= since:
                    found.append(at - sent[marker])
        return found

    def close(self) -> None:
        self.stop.set()
        for sock in self.socks:
            sock.close()
