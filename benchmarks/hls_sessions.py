"""
Benchmark: the bookkeeping of HLS clients on every playlist request (is
the client known, is the mount full, who has left) with many clients.

HLS clients count as listeners: each playlist request notes the client and
asks the listener count, which forgets the clients that left. Target: the
cost does not grow with the number of clients (it once scanned all of them:
235 us a request with 10,000 clients).

Run: ``.venv/bin/python benchmarks/hls_sessions.py`` and record the figures
in docs/performance.md.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.streaming import Harness, feed_frames  # noqa: E402  (the in-memory server of the unit tests)

REQUESTS = 20000


def per_request(clients: int) -> float:
    h = Harness("mounts { live { max_listeners 1000000 hls { enabled true segment_duration 6 } } }")
    source, _ = h.source()
    feed_frames(source, 400)
    output = h.hls.outputs["/live"]
    for i in range(clients):
        output.seen("c%d" % i)
    started = time.perf_counter()
    for i in range(REQUESTS):
        key = "c%d" % (i % clients)
        output.room_for(key)
        output.seen(key)
    return (time.perf_counter() - started) / REQUESTS


def main() -> None:
    for clients in (100, 10000, 100000):
        print("%7d HLS clients: %.1f us per playlist request" % (clients, per_request(clients) * 1e6))


if __name__ == "__main__":
    main()
