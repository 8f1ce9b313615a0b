"""
Benchmark: parse, validate and emit a 1 MiB VIBE configuration.

Target (issue 2): parsing a 1 MiB config takes well under a second.

Run: ``.venv/bin/python benchmarks/bench_vibe.py`` and record the figures in
docs/performance.md.
"""

import platform
import sys
import time

from gocast.config import parse_config, vibe


def make_document(target_bytes: int = 1024 * 1024) -> str:
    """A realistic config: many mounts, each with nested blocks and arrays."""
    parts = ['server {\n  hostname radio.example.com\n  port 8000\n}\nmounts {\n']
    size = len(parts[0])
    i = 0
    while size < target_bytes:
        block = (
            "  mount%d {\n"
            '    stream_name "Station number %d"  # a comment\n'
            "    max_listeners %d\n"
            "    bitrate 128k\n"
            "    genre \"Genre %d\"\n"
            "    public true\n"
            "    allowed_ips [10.0.%d.0/24 192.168.1.0/24 \"2001:db8::/32\"]\n"
            "    hls { enabled true segment_duration 6 }\n"
            "  }\n" % (i, i, i * 7, i, i % 256)
        )
        parts.append(block)
        size += len(block)
        i += 1
    parts.append("}\n")
    return "".join(parts)


def best_of(runs: int, fn) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    text = make_document()
    data = text.encode("utf-8")
    tree = vibe.loads(data)
    parse = best_of(5, lambda: vibe.loads(data))
    located = best_of(5, lambda: vibe.parse(data))
    emit = best_of(5, lambda: vibe.dumps(tree))
    validate = best_of(3, lambda: parse_config(data, "bench.vibe"))
    mib = len(data) / (1024 * 1024)
    print("python %s on %s" % (platform.python_version(), platform.machine()))
    print("document: %.2f MiB, %d mounts" % (mib, len(tree["mounts"])))
    print("loads: %.3f s (%.1f MiB/s)" % (parse, mib / parse))
    print("parse with locations: %.3f s" % located)
    print("dumps: %.3f s" % emit)
    print("parse_config (parse + schema validation): %.3f s" % validate)
    sys.exit(0 if parse < 1.0 else 1)


if __name__ == "__main__":
    main()
