"""
Benchmark: HLS and LL-HLS latency, and requests per second against nginx.

Latency, for standard HLS (6 s segments) and LL-HLS (0.5 s parts), each on
its own GoCast with the defaults otherwise:

- source to available: a paced source (ADTS AAC frames sent in real time
  from a file ffmpeg made) notes when it sent each frame; a client waits for
  each new part (blocking playlist reload) or segment (polling the playlist
  every 20 ms) and maps it to frames by its decode timestamp. Reported: the
  time from the last frame of a part/segment leaving the source to that
  part/segment being listed (the server's own delay), and from its first
  frame (what a player at the live edge waits at least).
- source to player: hls.js in headless Chromium plays the stream; every
  250 ms the page notes ``Date.now() - hls.playingDate`` (the age of the
  sample playing, by EXT-X-PROGRAM-DATE-TIME, which GoCast stamps when a
  segment's first sample arrives) and ``hls.latency`` (hls.js's distance
  from the live edge).

Requests per second (wrk, 2 threads, 64 connections, 10 s each): the live
playlist and one 6 s segment from GoCast's memory, and the same two files
served from disk by nginx (one worker, like GoCast's one process, sendfile
on), in the same run, each writing its access log (GoCast's to its log,
nginx's to a file).

Run: .venv/bin/python benchmarks/hls.py   (needs ffmpeg, chromium,
chromium-driver, wrk and nginx-light; ./dev setup installs all but the last
two); ``--throughput-only`` runs the wrk part alone. Record the printed
figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import base64
import http.server
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gocast.media import fmp4  # noqa: E402
from gocast.media._sync import adts_header  # noqa: E402
from gocast.media.mpegts import decode_pts  # noqa: E402
from tests.integration.test_browser import open_chromium  # noqa: E402

RATE = 44100
FRAME = 1024 / RATE
#: Decode time of the first sample, in samples and in 90 kHz ticks.
FIRST_SAMPLE = 10 * RATE
FIRST_PTS = 10 * 90000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 30.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def aac_frames(workdir: Path, seconds: int) -> List[bytes]:
    path = workdir / "tone.aac"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=%d:duration=%d" % (RATE, seconds),
                    "-c:a", "aac", "-b:a", "128k", "-f", "adts", str(path)], check=True)
    data = path.read_bytes()
    frames, pos = [], 0
    while pos + 7 <= len(data):
        header = adts_header(data, pos)
        assert header is not None, "not ADTS at %d" % pos
        frames.append(data[pos : pos + header[0]])
        pos += header[0]
    return frames


class PacedSource(threading.Thread):
    """Sends AAC frames in real time with the legacy SOURCE method; notes each frame's send time."""

    def __init__(self, port: int, mount: str, frames: List[bytes]):
        super().__init__(daemon=True)
        self.port, self.mount, self.frames = port, mount, frames
        self.sent: List[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        auth = base64.b64encode(b"source:hackme").decode()
        with socket.create_connection(("127.0.0.1", self.port)) as s:
            s.sendall(("SOURCE %s HTTP/1.0\r\nAuthorization: Basic %s\r\nContent-Type: audio/aac\r\n\r\n"
                       % (self.mount, auth)).encode())
            assert b" 200 " in s.recv(1024)
            start = time.time()
            for index, frame in enumerate(self.frames):
                if self.stopped.is_set():
                    return
                delay = start + index * FRAME - time.time()
                if delay > 0:
                    time.sleep(delay)
                self.sent.append(time.time())
                s.sendall(frame)


class GoCast:
    """A GoCast process; ``mounts`` replaces the default ``live`` mount with ``hls { enabled true HLS }``."""

    def __init__(self, workdir: Path, hls: str = "", mounts: Optional[str] = None, limits: str = ""):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        config = workdir / ("gocast-%d.vibe" % self.port)
        if mounts is None:
            mounts = "live { hls { enabled true %s } }" % hls
        # Every client of a benchmark comes from 127.0.0.1: no per-address limit.
        config.write_text("server { listen 127.0.0.1 port %d }\nshoutcast { enabled false }\n"
                          "logging { access_log \"\" }\nmounts { %s }\n"
                          "limits { max_connections_per_ip 0 %s }\n" % (self.port, mounts, limits))
        twistd = Path(sys.executable).with_name("twistd")
        self.process = subprocess.Popen(
            [sys.executable, str(twistd), "--nodaemon", "--pidfile=", "gocast", "--config", str(config)],
            stdout=open(workdir / ("gocast-%d.log" % self.port), "wb"), stderr=subprocess.STDOUT, cwd=str(ROOT))
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                get(self.base + "/health/live", 1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("GoCast did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def first_frame_of(data: bytes, low_latency: bool) -> int:
    """The index (from the stream's start) of the first frame in a part or segment."""
    if low_latency:
        tfdt = fmp4.find_box(data[data.index(b"moof") - 4:], [b"moof", b"traf", b"tfdt"])
        return (struct.unpack(">Q", tfdt[4:12])[0] - FIRST_SAMPLE) // 1024
    pes = data.index(b"\x00\x00\x01\xc0")
    return round((decode_pts(data[pes + 9 : pes + 14]) - FIRST_PTS) / 90000 / FRAME)


def availability(server: GoCast, source: PacedSource, low_latency: bool, seconds: float) -> Dict[str, List[float]]:
    """Seconds from the first and last frame of each new part/segment leaving the source to its listing."""
    playlist_url = server.base + "/hls/live/playlist.m3u8"
    first_delays: List[float] = []
    last_delays: List[float] = []
    seen = set()
    text = get(playlist_url).decode()
    seen.update(re.findall(r"(?:part|segment)_[\d_]+\.(?:m4s|ts)", text))
    deadline = time.time() + seconds
    while time.time() < deadline:
        if low_latency:
            hint = re.search(r'PRELOAD-HINT:TYPE=PART,URI="part_(\d+)_(\d+)', text)
            text = get("%s?_HLS_msn=%s&_HLS_part=%s" % (playlist_url, hint.group(1), hint.group(2))).decode()
            listed = time.time()
            entries = re.findall(r'#EXT-X-PART:DURATION=([\d.]+),URI="(part_[\d_]+\.m4s)"', text)
        else:
            time.sleep(0.02)
            text = get(playlist_url).decode()
            listed = time.time()
            entries = re.findall(r"#EXTINF:([\d.]+),\n(segment_\d+\.ts)", text)
        for duration, name in entries:
            if name in seen:
                continue
            seen.add(name)
            first = first_frame_of(get(server.base + "/hls/live/" + name), low_latency)
            last = first + round(float(duration) / FRAME) - 1
            if 0 <= first and last < len(source.sent):
                first_delays.append(listed - source.sent[first])
                last_delays.append(listed - source.sent[last])
    return {"first": first_delays, "last": last_delays}


class Pages(threading.Thread):
    """Serves tests/browser (the hls.js test page) on loopback."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        handler = partial(_QuietHandler, directory=str(ROOT / "tests" / "browser"))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]

    def run(self) -> None:
        self.httpd.serve_forever()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def player_latency(server: GoCast, pages: Pages, seconds: float) -> Tuple[List[float], List[float]]:
    """(age of the sample playing, hls.latency) samples from hls.js in headless Chromium."""
    driver = open_chromium()
    try:
        driver.get("http://127.0.0.1:%d/player.html?src=%s/hls/live/playlist.m3u8" % (pages.port, server.base))
        read = ("return {age: hls.playingDate ? Date.now() - hls.playingDate.getTime() : null, "
                "latency: hls.latency, time: document.getElementById('player').currentTime, "
                "fatal: window.report.fatal}")
        ages: List[float] = []
        latencies: List[float] = []
        deadline = time.time() + 30
        while time.time() < deadline and not driver.execute_script(read)["time"]:
            time.sleep(0.25)
        time.sleep(3)  # let it settle at its target latency
        end = time.time() + seconds
        while time.time() < end:
            sample = driver.execute_script(read)
            if sample["fatal"]:
                raise RuntimeError("hls.js: %s" % sample["fatal"])
            if sample["age"] is not None:
                ages.append(sample["age"] / 1000)
                latencies.append(sample["latency"])
            time.sleep(0.25)
        return ages, latencies
    finally:
        driver.quit()


def wrk(url: str, seconds: int, headers: Tuple[str, ...] = ()) -> float:
    options = [option for header in headers for option in ("-H", header)]
    out = subprocess.run(["wrk", "-t2", "-c64", "-d%ds" % seconds] + options + [url], capture_output=True,
                         text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc)."""
    fields = Path("/proc/%d/stat" % pid).read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_with_cpu(url: str, seconds: int, pid: int) -> Tuple[float, float]:
    """Requests per second, and the share of one core the server used meanwhile."""
    before, started = cpu_seconds(pid), time.monotonic()
    rate = wrk(url, seconds)
    return rate, (cpu_seconds(pid) - before) / (time.monotonic() - started)


class Nginx:
    def __init__(self, workdir: Path, folder: Path):
        self.port = free_port()
        conf = workdir / "nginx.conf"
        conf.write_text("""worker_processes 1;
daemon off;
pid %(dir)s/nginx.pid;
error_log %(dir)s/nginx-error.log;
events { worker_connections 1024; }
http {
    types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
    access_log %(dir)s/nginx-access.log;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path %(dir)s; proxy_temp_path %(dir)s; fastcgi_temp_path %(dir)s;
    uwsgi_temp_path %(dir)s; scgi_temp_path %(dir)s;
    server { listen 127.0.0.1:%(port)d; root %(root)s; }
}
""" % {"dir": workdir, "port": self.port, "root": folder})
        self.process = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(conf)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def worker_pid(self) -> int:
        """The one worker process, which serves every request (the master only supervises)."""
        children = Path("/proc/%d/task/%d/children" % (self.process.pid, self.process.pid)).read_text().split()
        return int(children[0])

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def summary(values: List[float]) -> str:
    if not values:
        return "no samples"
    ordered = sorted(values)
    return "median %.2f s, min %.2f, max %.2f (n=%d)" % (
        statistics.median(ordered), ordered[0], ordered[-1], len(ordered))


def run_mode(workdir: Path, frames: List[bytes], pages: Optional[Pages], low_latency: bool, seconds: float,
             wrk_seconds: int) -> None:
    """Latency figures (unless ``pages`` is None: throughput only), and throughput in standard mode."""
    name = "LL-HLS (part 0.5 s, segment 6 s)" if low_latency else "standard HLS (segment 6 s)"
    server = GoCast(workdir, "low_latency %s" % ("true" if low_latency else "false"))
    source = PacedSource(server.port, "/live", frames)
    source.start()
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                get(server.base + "/hls/live/playlist.m3u8", 20)
                break
            except OSError:
                time.sleep(0.2)
        if pages is not None:
            delays = availability(server, source, low_latency, seconds)
            print("%s: source to listed, from the last frame: %s" % (name, summary(delays["last"])))
            print("%s: source to listed, from the first frame: %s" % (name, summary(delays["first"])))
            ages, latencies = player_latency(server, pages, seconds)
            print("%s: hls.js in Chromium, age of the sample playing: %s" % (name, summary(ages)))
            print("%s: hls.js in Chromium, hls.latency: %s" % (name, summary(latencies)))
        else:
            while not re.search(rb"segment_\d+\.ts", get(server.base + "/hls/live/playlist.m3u8")):
                time.sleep(0.5)
        if not low_latency and wrk_seconds:
            throughput(workdir, server, wrk_seconds)
    finally:
        source.stopped.set()
        server.stop()


def throughput(workdir: Path, server: GoCast, seconds: int) -> None:
    folder = workdir / "www"
    folder.mkdir()
    playlist = get(server.base + "/hls/live/playlist.m3u8")
    segment = re.findall(rb"segment_\d+\.ts", playlist)[-1].decode()
    (folder / "playlist.m3u8").write_bytes(playlist)
    (folder / segment).write_bytes(get(server.base + "/hls/live/" + segment))
    nginx = Nginx(workdir, folder)
    try:
        size = (folder / segment).stat().st_size
        for label, path in (("playlist", "playlist.m3u8"), ("segment (%d KB)" % (size // 1024), segment)):
            ours, our_cpu = wrk_with_cpu("%s/hls/live/%s" % (server.base, path), seconds, server.process.pid)
            theirs, their_cpu = wrk_with_cpu("http://127.0.0.1:%d/%s" % (nginx.port, path), seconds,
                                             nginx.worker_pid())
            print("requests/s, %s: GoCast %.0f (CPU %.0f%%), nginx from disk %.0f (CPU %.0f%%): %.2fx"
                  % (label, ours, 100 * our_cpu, theirs, 100 * their_cpu, ours / theirs))
    finally:
        nginx.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement time per figure")
    parser.add_argument("--wrk-seconds", type=int, default=10, help="wrk duration per URL (0 skips)")
    parser.add_argument("--throughput-only", action="store_true", help="only requests per second against nginx")
    args = parser.parse_args()
    browser = () if args.throughput_only else ("chromium", "chromedriver")
    for tool in ("ffmpeg",) + browser + (("wrk", "nginx") if args.wrk_seconds else ()):
        if not shutil.which(tool) and not Path("/usr/sbin", tool).exists():
            sys.exit("benchmarks/hls.py needs %s (apt-get install %s)" % (
                tool, {"chromedriver": "chromium-driver", "nginx": "nginx-light"}.get(tool, tool)))
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        frames = aac_frames(workdir, int(args.seconds * 2 + 60))
        if args.throughput_only:
            run_mode(workdir, frames, None, False, args.seconds, args.wrk_seconds)
            return
        pages = Pages()
        pages.start()
        try:
            for low_latency in (False, True):
                run_mode(workdir, frames, pages, low_latency, args.seconds, args.wrk_seconds)
        finally:
            pages.httpd.shutdown()


if __name__ == "__main__":
    main()
