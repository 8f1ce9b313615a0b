"""
Benchmark: one paced 128 kbps MP3 source, N listeners, GoCast against
Icecast 2.4 in the same run.

For each server: start it on loopback, stream a 128 kbps MP3 sine (encoded
once by ffmpeg, sent at the pace of the audio by benchmarks/latency.py,
with a marker frame a second), ramp N listeners up at --ramp connections/s,
let them settle, then measure over --window seconds:

- listeners on time: received at least 95% of the bytes 128 kbps promises;
- server CPU microseconds per listener-second (from /proc/PID/stat);
- RSS per listener (VmRSS with N listeners minus VmRSS before any);
- time to first audio byte of fresh connections opened during the window
  (p50 and p99);
- source-to-listener latency: from each marker frame sent to its arrival
  at 20 probe listeners (10 connected before the crowd, 10 after it, so
  both ends of each fan-out are timed).

The load generator is cheaper than the servers: its listener sockets are
non-blocking and drained by one sweep every 250 ms; fresh-connection probes
run in a thread with blocking sockets.

Run (both servers): .venv/bin/python benchmarks/fanout.py --listeners 1000
It needs ffmpeg, and Debian's icecast2 for the comparison (--servers gocast
to skip it). Record the printed figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import LatencyProbes, MarkedSource, encode_sine  # noqa: E402  (beside this script)

#: Listeners whose every read is timed, for source-to-listener latency (half before the crowd, half after).
LATENCY_PROBES = 20
BITRATE = 128000
PASSWORD = "hackme"
#: A listener whose connection is not accepted within this long counts as not on time.
CONNECT_TIMEOUT = 3.0
QUEUE_SIZE = 524288
BURST_SIZE = 65536


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid: int) -> List[int]:
    """``pid`` and its descendants (GoCast's worker processes)."""
    found = [pid]
    for task in Path("/proc/%d/task" % pid).glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(process_tree(int(child)))
    return found


def cpu_seconds(pid: int) -> float:
    """CPU time of the server: its process and its worker processes."""
    total = 0.0
    for each in process_tree(pid):
        try:
            fields = Path("/proc/%d/stat" % each).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rss_bytes(pid: int) -> int:
    total = 0
    for each in process_tree(pid):
        try:
            status = Path("/proc/%d/status" % each).read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


class Server:
    name = "server"
    process: subprocess.Popen

    def __init__(self, workdir: Path, listeners: int):
        self.port = free_port()
        self.workdir = workdir
        self.listeners = listeners

    def start(self) -> None:
        raise NotImplementedError

    def wait_ready(self) -> None:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("%s did not start" % self.name)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class GoCast(Server):
    name = "GoCast"
    workers = 1

    def start(self) -> None:
        config = self.workdir / "gocast.vibe"
        config.write_text(
            "server { listen 127.0.0.1 port %d workers %d }\nshoutcast { enabled false }\n"
            "limits { max_clients %d queue_size %d burst_size %d max_connections_per_ip 0 }\n"
            % (self.port, self.workers, self.listeners + 500, QUEUE_SIZE, BURST_SIZE))
        twistd = Path(sys.executable).with_name("twistd")
        self.process = subprocess.Popen(
            [sys.executable, str(twistd), "--nodaemon", "--pidfile=", "gocast", "--config", str(config)],
            stdout=open(self.workdir / "gocast.log", "wb"), stderr=subprocess.STDOUT, cwd=str(ROOT),
            preexec_fn=raise_nofile)


class Icecast(Server):
    name = "Icecast"

    def start(self) -> None:
        logs = self.workdir / "icecast-logs"
        logs.mkdir()
        os.chmod(self.workdir, 0o755)
        os.chmod(logs, 0o777)
        config = self.workdir / "icecast.xml"
        config.write_text("""<icecast>
  <limits><clients>%d</clients><sources>4</sources><queue-size>%d</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout><burst-size>%d</burst-size></limits>
  <authentication><source-password>%s</source-password><admin-user>admin</admin-user>
    <admin-password>%s</admin-password></authentication>
  <hostname>localhost</hostname>
  <listen-socket><port>%d</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths><basedir>/usr/share/icecast2</basedir><logdir>%s</logdir>
    <webroot>/usr/share/icecast2/web</webroot><adminroot>/usr/share/icecast2/admin</adminroot></paths>
  <logging><accesslog>access.log</accesslog><errorlog>error.log</errorlog><loglevel>2</loglevel></logging>
  <security><chroot>0</chroot><changeowner><user>nobody</user><group>nogroup</group></changeowner></security>
</icecast>
""" % (self.listeners + 500, QUEUE_SIZE, BURST_SIZE, PASSWORD, PASSWORD, self.port, logs))
        os.chmod(config, 0o644)
        binary = shutil.which("icecast2") or "/usr/bin/icecast2"
        self.process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, preexec_fn=raise_nofile)


def wait_for_audio(port: int, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if first_byte_time(port) is not None:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("no audio on port %d" % port)


def first_byte_time(port: int) -> Optional[float]:
    """Seconds from connect to the first byte of audio after the headers."""
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /live HTTP/1.0\r\nUser-Agent: fanout-probe\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return None
            data += chunk
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                if not data.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")):
                    return None
                if len(data) > head_end + 4:
                    return time.perf_counter() - start


class Listeners:
    """Many non-blocking listener sockets, drained by one sweep."""

    def __init__(self, port: int):
        self.port = port
        self.socks: List[socket.socket] = []
        self.received: List[int] = []
        self.failed = 0
        self.buf = bytearray(262144)
        self.pending: Dict[int, Any] = {}
        self.poller = select.poll()

    def connect(self, count: int, rate: float) -> None:
        """
        Open ``count`` connections at ``rate`` per second, without blocking:
        a server that stops accepting fails those listeners (not on time)
        instead of stalling the run.
        """
        start = time.time()
        for i in range(count):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.setblocking(False)
            if s.connect_ex(("127.0.0.1", self.port)) not in (0, errno.EINPROGRESS):
                self.failed += 1
                s.close()
                continue
            self.pending[s.fileno()] = (s, time.time())
            self.poller.register(s, select.POLLOUT)
            delay = start + (i + 1) / rate - time.time()
            if delay > 0:
                self.sweep()
                time.sleep(max(0.0, start + (i + 1) / rate - time.time()))
        deadline = time.time() + CONNECT_TIMEOUT
        while self.pending and time.time() < deadline:
            self.sweep()
            time.sleep(0.05)
        for s, _ in self.pending.values():
            self.failed += 1
            self.poller.unregister(s)
            s.close()
        self.pending = {}

    def finish_connects(self) -> None:
        """Send the request on connections the server accepted; give up on those it left waiting."""
        now = time.time()
        for fd, _ in self.poller.poll(0):
            s, _ = self.pending.pop(fd)
            self.poller.unregister(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.failed += 1
                s.close()
                continue
            s.sendall(b"GET /live HTTP/1.0\r\nUser-Agent: fanout\r\n\r\n")
            self.socks.append(s)
            self.received.append(0)
        for fd, (s, opened) in list(self.pending.items()):
            if now - opened > CONNECT_TIMEOUT:
                del self.pending[fd]
                self.poller.unregister(s)
                self.failed += 1
                s.close()

    def sweep(self) -> None:
        if self.pending:
            self.finish_connects()
        view = memoryview(self.buf)
        for index, s in enumerate(self.socks):
            while True:
                try:
                    n = s.recv_into(view)
                except BlockingIOError:
                    break
                except OSError:
                    n = 0
                if not n:
                    break
                self.received[index] += n

    def run_for(self, seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            started = time.time()
            self.sweep()
            time.sleep(max(0.0, 0.25 - (time.time() - started)))

    def close(self) -> None:
        for s in self.socks:
            s.close()


def percentile(values: List[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def measure(server: Server, listeners: int, window: float, ramp: float, settle: float,
            frames: List[bytes]) -> Dict[str, float]:
    server.start()
    source = None
    crowd = Listeners(server.port)
    latency = LatencyProbes(server.port)
    try:
        server.wait_ready()
        for attempt in range(3):  # a server still starting may reset the first source
            source = MarkedSource(server.port, PASSWORD, frames)
            source.start()
            try:
                wait_for_audio(server.port, timeout=10)
                break
            except RuntimeError:
                source.stop.set()
                source.join()
        else:
            raise RuntimeError("%s never played the source: %s" % (server.name, source.error))
        time.sleep(1.0)
        rss_before = rss_bytes(server.process.pid)
        latency.add(LATENCY_PROBES // 2)  # first and last of the crowd: the ends of each fan-out
        latency.start()
        crowd.connect(listeners, ramp)
        latency.add(LATENCY_PROBES - LATENCY_PROBES // 2)
        crowd.run_for(settle)
        before = list(crowd.received)
        cpu_before = cpu_seconds(server.process.pid)
        probes: List[float] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                try:
                    t = first_byte_time(server.port)
                    if t is not None:
                        probes.append(t)
                except OSError:
                    pass
                stop.wait(0.2)

        thread = threading.Thread(target=probe)
        started = time.time()
        marked_from = time.perf_counter()
        thread.start()
        crowd.run_for(window)
        elapsed = time.time() - started
        delays = latency.latencies(source.sent, marked_from)
        cpu = cpu_seconds(server.process.pid) - cpu_before
        rss = rss_bytes(server.process.pid)
        stop.set()
        thread.join()
        promised = BITRATE / 8 * elapsed
        deltas = [after - b for after, b in zip(crowd.received, before)]
        on_time = sum(1 for d in deltas if d >= 0.95 * promised)
        return {
            "listeners": listeners,
            "connected": len(crowd.socks),
            "on_time": on_time,
            "window_s": round(elapsed, 1),
            "cpu_us_per_listener_s": round(cpu * 1e6 / (listeners * elapsed), 1),
            "cpu_percent": round(100 * cpu / elapsed, 1),
            "rss_per_listener_kb": round((rss - rss_before) / listeners / 1024, 2),
            "ttfb_p50_ms": round(percentile(probes, 50) * 1000, 1),
            "ttfb_p99_ms": round(percentile(probes, 99) * 1000, 1),
            "probes": len(probes),
            "latency_p50_ms": round(percentile(delays, 50) * 1000, 1),
            "latency_p99_ms": round(percentile(delays, 99) * 1000, 1),
            "latency_max_ms": round(max(delays, default=float("nan")) * 1000, 1),
            "latency_samples": len(delays),
        }
    finally:
        crowd.close()
        latency.close()
        if source is not None:
            source.stop.set()
            source.join()
        server.stop()


def server_named(name: str, workdir: Path, listeners: int) -> Server:
    """``gocast``, ``gocast-w2`` (GoCast with two worker processes) or ``icecast``."""
    if name == "icecast":
        return Icecast(workdir, listeners)
    if name == "gocast":
        return GoCast(workdir, listeners)
    if name.startswith("gocast-w") and name[8:].isdigit():
        server = GoCast(workdir, listeners)
        server.workers = int(name[8:])
        server.name = "GoCast-w%d" % server.workers
        return server
    raise SystemExit("unknown server %r: gocast, gocast-wN or icecast" % name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listeners", type=int, default=1000)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--ramp", type=float, default=200.0, help="new connections per second")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--servers", default="gocast,icecast",
                        help="gocast, gocast-wN (N worker processes: server.workers N), icecast")
    parser.add_argument("--keep", help="keep the servers' logs in this folder")
    args = parser.parse_args()
    raise_nofile()
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or scratch
        os.chmod(tmp, 0o755)  # Icecast drops root for nobody, who must reach its log folder
        frames = encode_sine(Path(scratch) / "sine.mp3")
        for name in args.servers.split(","):
            server = server_named(name, Path(tmp) / name, args.listeners)
            server.workdir.mkdir()
            results[server.name] = measure(server, args.listeners, args.window, args.ramp, args.settle, frames)
            print(server.name, json.dumps(results[server.name]), flush=True)
    if "GoCast" in results and "Icecast" in results:
        g, i = results["GoCast"], results["Icecast"]
        print("ratios GoCast/Icecast: cpu %.2f, rss %.2f, ttfb p99 %.2f" % (
            g["cpu_us_per_listener_s"] / max(i["cpu_us_per_listener_s"], 1e-9),
            g["rss_per_listener_kb"] / max(i["rss_per_listener_kb"], 1e-9),
            g["ttfb_p99_ms"] / max(i["ttfb_p99_ms"], 1e-9)))


if __name__ == "__main__":
    main()
