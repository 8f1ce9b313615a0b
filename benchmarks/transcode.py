"""
Benchmark: the transcoding ladder's CPU, one ffmpeg for every output
(GoCast's "low CPU mode") against one ffmpeg per output.

A source file (a sine and noise, MP3 128k, 44.1 kHz stereo) is made with
ffmpeg; then the same ladder (by default the roadmap's: MP3 320k, MP3 128k,
AAC 64k) is encoded from it, as fast as ffmpeg goes, by

- one ffmpeg with GoCast's own command line (``ladder_argv``: decode once,
  one encoder per output), writing each output to /dev/null;
- one ffmpeg per output, each decoding the source itself.

Reported: CPU seconds (user + system, from the kernel's accounting of the
children) per hour of audio, for each way, and the ratio. The command
lines are GoCast's, so the figures are what the server pays (paced by the
source it spends the same CPU, spread over the stream's duration).

Run: .venv/bin/python benchmarks/transcode.py [--seconds 120] [--rounds 3] [--source mp3|aac|opus]
(needs ffmpeg). Record the printed figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gocast.config import parse_config  # noqa: E402
from gocast.outputs.ladder import FIRST_FD, ladder_argv  # noqa: E402

LADDER = """mounts { live { transcoding { enabled true outputs {
    high { path /live-320 format mp3 bitrate 320k }
    medium { path /live-128 format mp3 bitrate 128k }
    low { path /live-64 format aac bitrate 64k }
} } } }"""


#: How the source is encoded, by ``--source``: its file name, ffmpeg's encoder options and its demuxer.
SOURCES = {"mp3": ("source.mp3", ["-c:a", "libmp3lame", "-b:a", "128k"], "mp3"),
           "aac": ("source.aac", ["-c:a", "aac", "-b:a", "128k", "-f", "adts"], "aac"),
           "opus": ("source.ogg", ["-c:a", "libopus", "-b:a", "128k"], "ogg")}


def make_source(folder: str, seconds: int, kind: str) -> str:
    name, encoder, _ = SOURCES[kind]
    path = os.path.join(folder, name)
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=%d" % seconds, "-f", "lavfi", "-i",
                    "anoisesrc=amplitude=0.1:duration=%d" % seconds, "-filter_complex", "amix=inputs=2",
                    "-ac", "2", "-ar", "48000" if kind == "opus" else "44100"] + encoder + [path], check=True)
    return path


def to_files(argv: List[str], source: str) -> List[str]:
    """GoCast's command line reading ``source`` and writing every pipe to /dev/null."""
    argv = ["ffmpeg", "-y"] + [source if a == "pipe:0" else a for a in argv[1:]]
    return [os.devnull if a.startswith("pipe:") and int(a[5:]) >= FIRST_FD else a for a in argv]


def cpu_of(commands: Sequence[List[str]]) -> float:
    """CPU seconds (user + system) the commands used, run one after the other."""
    total = 0.0
    for argv in commands:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode:
            raise SystemExit("ffmpeg failed: %s" % " ".join(argv))
        total += usage.ru_utime + usage.ru_stime
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=120, help="audio encoded per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--source", choices=sorted(SOURCES), default="mp3", help="the source's codec")
    args = parser.parse_args()
    outputs = [o for _, o in sorted(parse_config(LADDER).config.mounts["/live"].transcoding.outputs.items())]
    with tempfile.TemporaryDirectory() as folder:
        source = make_source(folder, args.seconds, args.source)
        demuxer = SOURCES[args.source][2]
        one = to_files(ladder_argv(demuxer, outputs), source)
        each = [to_files(ladder_argv(demuxer, [output]), source) for output in outputs]
        per_hour = 3600.0 / args.seconds
        print("source: %s 128k; ladder: %s" % (args.source, ", ".join("%s %s %dk" % (o.path, o.format, o.bitrate // 1000) for o in outputs)), flush=True)
        ratios = []
        for round_number in range(1, args.rounds + 1):
            shared = cpu_of([one]) * per_hour
            separate = cpu_of(each) * per_hour
            ratios.append(shared / separate)
            print("round %d: one ffmpeg %.0f CPU s per audio hour, one per output %.0f; ratio %.2f"
                  % (round_number, shared, separate, shared / separate), flush=True)
        print("ratio over %d rounds: %.2f-%.2f" % (args.rounds, min(ratios), max(ratios)))


if __name__ == "__main__":
    main()
