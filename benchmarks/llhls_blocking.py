"""
Benchmark: LL-HLS blocking playlist reloads, thousands waiting at once.

One GoCast with an LL-HLS mount (0.5 s parts) fed by a paced AAC source;
N kept-alive clients (5,000 by default) each ask for the playlist holding
the part after the one hinted (``?_HLS_msn=S&_HLS_part=I+1``), so every
request is waiting before that part is cut, and all are released when it
is. Each client's answer is timed by the kernel as it arrives
(``SO_TIMESTAMPNS`` on the socket), so the figures are the server's
release times, not how fast this one Python client reads 5,000 sockets.

Reported per round and over all rounds: how long after the first client
was answered (about when the part was ready) each of the others was,
p50 / p99 / max. Issue 18's target: all within 50 ms.

Run: .venv/bin/python benchmarks/llhls_blocking.py [--clients 5000] [--rounds 5]
(needs ffmpeg). Record the printed figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import re
import selectors
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hls import GoCast, PacedSource, aac_frames, get  # noqa: E402

#: Linux's SO_TIMESTAMPNS / SCM_TIMESTAMPNS (Python has no name for them).
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_HINT = re.compile(rb'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part_(\d+)_(\d+)\.m4s"')


def percentile(values: List[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def playlist_or_nothing(base: str) -> bytes:
    """The playlist, or nothing while the source's first part is not cut (404)."""
    try:
        return get(base + "/hls/live/playlist.m3u8")
    except OSError:
        return b""


def connect(port: int, count: int) -> List[socket.socket]:
    clients = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        clients.append(s)
    return clients


def arrival(sock: socket.socket) -> Tuple[float, bytes]:
    """The kernel's time for the answer's first bytes, and the whole answer (read to its Content-Length)."""
    data, ancillary, _, _ = sock.recvmsg(1 << 16, socket.CMSG_SPACE(16))
    stamp = None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("qq", payload[:16])
            stamp = seconds + nanoseconds / 1e9
    if stamp is None:
        raise RuntimeError("no receive timestamp: SO_TIMESTAMPNS unsupported here")
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
    while len(body) < length:
        more = sock.recv(length - len(body))
        if not more:
            raise RuntimeError("connection closed mid-answer")
        body += more
    return stamp, head


def one_round(base: str, clients: List[socket.socket]) -> List[float]:
    playlist = get(base + "/hls/live/playlist.m3u8")
    sequence, part = (int(n) for n in _HINT.search(playlist).groups())
    request = ("GET /hls/live/playlist.m3u8?_HLS_msn=%d&_HLS_part=%d HTTP/1.1\r\nHost: bench\r\n\r\n"
               % (sequence, part + 1)).encode()
    for s in clients:
        s.sendall(request)
    sent = time.time()
    selector = selectors.DefaultSelector()
    for s in clients:
        selector.register(s, selectors.EVENT_READ)
    stamps = []
    pending = len(clients)
    deadline = time.time() + 30
    while pending and time.time() < deadline:
        for key, _ in selector.select(timeout=1):
            stamp, head = arrival(key.fileobj)
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                raise RuntimeError("answered %r" % head[:60])
            stamps.append(stamp)
            selector.unregister(key.fileobj)
            pending -= 1
    selector.close()
    if pending:
        raise RuntimeError("%d clients never answered" % pending)
    first = min(stamps)
    if first < sent:
        print("  (the part was cut while requests were still being sent: this round's first answers came early)")
    return [stamp - first for stamp in stamps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        frames = aac_frames(workdir, 120 + args.rounds * 5)
        server = GoCast(workdir, "low_latency true part_duration 0.5",
                        limits="max_clients %d" % (args.clients + 100))
        source = PacedSource(server.port, "/live", frames)
        source.start()
        clients: List[socket.socket] = []
        try:
            deadline = time.time() + 30
            while not _HINT.search(playlist_or_nothing(server.base)):
                if time.time() > deadline:
                    raise RuntimeError("no LL-HLS playlist")
                time.sleep(0.2)
            clients = connect(server.port, args.clients)
            everyone = []
            for number in range(1, args.rounds + 1):
                delays = one_round(server.base, clients)
                everyone += delays
                print("round %d, %d clients: released after the first by p50 %.1f ms, p99 %.1f ms, max %.1f ms"
                      % (number, len(delays), 1000 * percentile(delays, 0.5), 1000 * percentile(delays, 0.99),
                         1000 * max(delays)))
            print("all rounds: p50 %.1f ms, p99 %.1f ms, max %.1f ms (target: all within 50 ms)"
                  % (1000 * percentile(everyone, 0.5), 1000 * percentile(everyone, 0.99), 1000 * max(everyone)))
        finally:
            for s in clients:
                s.close()
            source.stopped.set()
            server.stop()


if __name__ == "__main__":
    main()
