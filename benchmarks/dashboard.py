"""
Benchmark: the live stats stream under a burst of listeners.

One GoCast with a paced MP3 source on /live; DASHBOARDS WebSocket clients
(``/admin/ws/stats``, admin credentials, listener events on) read frames;
then LISTENERS raw ICY listeners connect as fast as one thread can open
them, stay 2 s, and leave. Reported: frames each dashboard got per second
during the burst (the stream coalesces: at most four a second), the events
they carried and how many were counted as dropped, how long after the last
listener connected the dashboards showed them all, and the server's CPU
time over the burst.

Run: .venv/bin/python benchmarks/dashboard.py   (needs ffmpeg). Record the
printed figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List

import websocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.hls import GoCast, PacedSource, aac_frames  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Dashboard(threading.Thread):
    def __init__(self, url: str):
        super().__init__(daemon=True)
        auth = "Basic " + base64.b64encode(b"admin:hackme").decode()
        self.ws = websocket.create_connection(url, header=["Authorization: " + auth], timeout=30)
        self.ws.send(json.dumps({"listener_events": True}))
        self.frames: List[float] = []
        self.events = 0
        self.dropped = 0
        self.listeners: List[tuple] = []  # (time, total listeners)

    def run(self) -> None:
        try:
            while True:
                message = json.loads(self.ws.recv())
                now = time.monotonic()
                self.frames.append(now)
                self.events += len(message.get("events", []))
                self.dropped += message.get("dropped_events", 0)
                self.listeners.append((now, message["server"]["listeners"]))
        except (websocket.WebSocketException, OSError):
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dashboards", type=int, default=20)
    parser.add_argument("--listeners", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        frames = aac_frames(workdir, 60)
        server = GoCast(workdir, mounts="live { }", limits="max_clients %d" % (args.listeners + 100))
        source = PacedSource(server.port, "/live", frames)
        source.start()
        time.sleep(2)
        url = "ws://127.0.0.1:%d/admin/ws/stats" % server.port
        dashboards = [Dashboard(url) for _ in range(args.dashboards)]
        for dashboard in dashboards:
            dashboard.start()
        time.sleep(2)
        cpu_before = cpu_seconds(server.process.pid)
        started = time.monotonic()
        sockets = []
        for _ in range(args.listeners):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"GET /live HTTP/1.0\r\n\r\n")
            sockets.append(s)
        connected = time.monotonic()
        time.sleep(2)
        for s in sockets:
            s.close()
        time.sleep(2)
        ended = time.monotonic()
        cpu = cpu_seconds(server.process.pid) - cpu_before
        source.stopped.set()
        server.stop()
        busiest: List[int] = []
        seen_all: List[float] = []
        for dashboard in dashboards:
            during = [t for t in dashboard.frames if started <= t <= ended]
            busiest.append(max(sum(1 for u in during if t <= u < t + 1.0) for t in during) if during else 0)
            first_full = next((t for t, n in dashboard.listeners if t >= started and n >= args.listeners), None)
            if first_full is not None:
                seen_all.append(first_full - connected)
        events = statistics.mean(d.events for d in dashboards)
        dropped = statistics.mean(d.dropped for d in dashboards)
        print("%d dashboards, %d listeners joined in %.2f s and left 2 s later" % (
            args.dashboards, args.listeners, connected - started))
        print("frames per dashboard in its busiest second: median %d, max %d" % (
            statistics.median(busiest), max(busiest)))
        print("events per dashboard: %.0f sent, %.0f counted as dropped" % (events, dropped))
        if seen_all:
            print("all %d listeners shown, after the last connected: median %.2f s, max %.2f s (n=%d)" % (
                args.listeners, statistics.median(seen_all), max(seen_all), len(seen_all)))
        else:
            print("no dashboard ever showed all %d listeners" % args.listeners)
        print("server CPU over the %.1f s run: %.2f s" % (ended - started, cpu))


if __name__ == "__main__":
    main()
