"""
Benchmark: what listener auth costs an HLS segment request.

One GoCast with four HLS mounts fed by the same paced AAC source: ``open``
(no auth), ``token`` (HS256 JWT in ``?token=``), ``basic`` (a bcrypt
password, cost 12) and ``callback`` (``type http`` to a local server that
allows everyone, ``cache_ttl 0``). wrk (2 threads, 64 connections) asks
for one 6 s segment of each, the same client every time, as a player does.
A token is verified once and then remembered until it expires; a bcrypt
password is checked once (in a thread) and remembered; an HLS client's
callback is asked once for its visit: so the steady-state cost should be a
dictionary lookup, and throughput close to the open mount's.

Run: .venv/bin/python benchmarks/auth.py   (needs ffmpeg and wrk). Record
the printed figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import base64
import http.server
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import bcrypt
import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.hls import GoCast, PacedSource, aac_frames, wrk  # noqa: E402

SECRET = "benchmark-secret-of-32-bytes-ok!"
MOUNTS = ("open", "token", "basic", "callback")


class AllowEveryone(http.server.BaseHTTPRequestHandler):
    """The operator's auth callback: counts calls, allows all."""

    calls = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        AllowEveryone.calls += 1
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wrk-seconds", type=int, default=10)
    args = parser.parse_args()
    callback = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AllowEveryone)
    threading.Thread(target=callback.serve_forever, daemon=True).start()
    hashed = bcrypt.hashpw(b"listener-password", bcrypt.gensalt(12)).decode()
    mounts = " ".join((
        "open { hls { enabled true } }",
        'token { hls { enabled true } auth { type token secret "%s" } }' % SECRET,
        'basic { hls { enabled true } auth { type basic users { alice "%s" } } }' % hashed,
        'callback { hls { enabled true } auth { type http url "http://127.0.0.1:%d/" } }'
        % callback.server_address[1]))
    token = jwt.encode({"exp": int(time.time()) + 3600}, SECRET, algorithm="HS256")
    credentials = ("Authorization: Basic " + base64.b64encode(b"alice:listener-password").decode(),)
    ways = {"open": ("", ()), "token": ("?token=" + token, ()), "basic": ("", credentials),
            "callback": ("", ())}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        frames = aac_frames(workdir, 120)
        server = GoCast(workdir, mounts=mounts)
        sources = [PacedSource(server.port, "/" + mount, frames) for mount in MOUNTS]
        for source in sources:
            source.start()
        try:
            time.sleep(8)  # a first 6 s segment on each mount
            for mount in MOUNTS:
                query, headers = ways[mount]
                request_headers = dict(h.split(": ", 1) for h in headers)
                playlist = get_with(server.base + "/hls/%s/playlist.m3u8%s" % (mount, query), request_headers)
                segment = re.findall(r"segment_\d+\.ts(?:\?token=[^\s]+)?", playlist)[-1]
                rate = wrk("%s/hls/%s/%s" % (server.base, mount, segment), args.wrk_seconds, headers)
                print("requests/s, 6 s segment, %s: %.0f" % (mount, rate))
            print("auth callback calls during the callback run: %d" % AllowEveryone.calls)
        finally:
            for source in sources:
                source.stopped.set()
            server.stop()
            callback.shutdown()


def get_with(url: str, headers: dict) -> str:
    import urllib.request

    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read().decode()


if __name__ == "__main__":
    main()
