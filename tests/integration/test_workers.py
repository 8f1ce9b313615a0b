"""
``server { workers 2 }`` with real processes: listeners spread over both
workers hear the source and its titles, the main process counts them
(status, metrics, access log), kicks and reloads reach them, and a worker
killed with SIGKILL is started again while its listeners reconnect to the
other.
"""

import json
import os
import re
import signal

import treq
from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from ._process import eventually, raw_request, start_server, wait_for_http, wait_for_source
from .test_relay import decodes, keeps_receiving, listen, mp3_source, set_title


def worker_pids(server):
    """The workers the main process started, by index, from its log (the last start of each)."""
    found = {}
    for index, pid in re.findall(rb"worker (\d+) started \(pid (\d+)\)", server.output):
        found[int(index)] = int(pid)
    return found


async def status(base, server):
    _, body = await wait_for_http(reactor, base + "/status-json.xsl", server)
    source = json.loads(body)["icestats"]["source"]
    return source if isinstance(source, dict) else source[0]


class WorkerTests(TestCase):
    timeout = 180

    async def test_two_workers(self):
        server, base = await start_server(self, reactor, "mounts { live { metaint 16000 } }",
                                          server_extra="shutdown_timeout 2s workers 2")
        await eventually(reactor, lambda: server.output.count(b" ready") >= 2, what="both workers ready")
        mp3_source(self, base, "/live")
        await wait_for_source(reactor, base, "/live", server)
        listeners = [await listen(self, base, "/live") for _ in range(6)]
        for client in listeners:
            await eventually(reactor, lambda: len(client.data) > 20000, what="audio from a worker")

        async def counted(n):
            deadline = reactor.seconds() + 10
            while (await status(base, server))["listeners"] != n:
                if reactor.seconds() > deadline:
                    raise AssertionError("the main process never counted %d listeners" % n)
                await task.deferLater(reactor, 0.2, lambda: None)

        await counted(6)
        # They are on the workers, spread over both: the main process holds none of their connections.
        self.assertEqual(server.output.count(b'"GET /live HTTP/1.0" 200'), 0)
        response = await treq.get(base + "/api/v1/cluster", auth=("admin", "hackme"), reactor=reactor,
                                  persistent=False)
        workers = json.loads(await response.text())["data"]["workers"]
        self.assertEqual(sorted(w["listeners"] for w in workers), [3, 3], workers)
        await set_title(base, "/live", "Worker - Title")
        for client in listeners:
            await eventually(reactor, lambda: b"StreamTitle='Worker - Title';" in client.data, timeout=20,
                             what="the title on every worker's listener")
        await decodes(self, base + "/live")
        await counted(6)
        metrics = await (await treq.get(base + "/metrics", reactor=reactor, persistent=False)).text()
        self.assertIn('gocast_mount_listeners{mount="/live"} 6.0', metrics)
        self.assertIn("gocast_listeners_total 7.0", metrics)  # ffmpeg's visit too

        # A burst: many listeners at once are handed over in order, none lost.
        # (80: within limits.max_connections_per_ip, with the six above)
        crowd = await defer.gatherResults([defer.ensureDeferred(listen(self, base, "/live")) for _ in range(80)])
        for client in crowd:
            await eventually(reactor, lambda: len(client.data) > 20000, what="audio for the whole burst")
        self.assertNotIn(b"unclaimed", server.output)
        for client in crowd:
            client.transport.loseConnection()
        await counted(6)

        # A kick through the Icecast admin reaches the worker that serves the listener.
        xml = await (await treq.get(base + "/admin/listclients?mount=/live", auth=("admin", "hackme"),
                                    reactor=reactor, persistent=False)).text()
        events = await (await treq.get(base + "/admin/killclient?mount=/live&id=1", auth=("admin", "hackme"),
                                       reactor=reactor, persistent=False)).text()
        self.assertIn("<return>1</return>", events, xml)
        await eventually(reactor, lambda: any(c.closed.called for c in listeners), what="the kicked listener gone")
        await counted(5)
        await eventually(reactor, lambda: b'"GET /live HTTP/1.0" 200' in server.output,
                         what="the main process's access log line for it")

        # A worker crashes: it is started again, and its listeners come back through the other.
        pids = worker_pids(server)
        os.kill(pids[0], signal.SIGKILL)
        await eventually(reactor, lambda: worker_pids(server)[0] != pids[0], what="worker 0 started again")
        await eventually(reactor, lambda: server.output.count(b"worker 0 ready") >= 2, what="worker 0 ready again")
        survivors = [c for c in listeners if not c.closed.called]
        self.assertTrue(survivors)
        for client in survivors:
            await keeps_receiving(client, 2)
        again = [await listen(self, base, "/live") for _ in range(4)]
        for client in again:
            await eventually(reactor, lambda: len(client.data) > 20000, what="audio after the crash")
        await counted(len(survivors) + 4)

        # A reload reaches the workers: new listeners get the new metaint.
        with open(server.config_path) as f:
            text = f.read()
        with open(server.config_path, "w") as f:
            f.write(text.replace("metaint 16000", "metaint 8192"))
        reloaded = await treq.post(base + "/admin/reload", auth=("admin", "hackme"), reactor=reactor,
                                   persistent=False)
        self.assertEqual(reloaded.code, 200, await reloaded.text())
        await task.deferLater(reactor, 1.0, lambda: None)
        late = [await raw_request(self, reactor, base, b"GET /live HTTP/1.0\r\nIcy-MetaData: 1\r\n\r\n")
                for _ in range(2)]
        for client in late:
            await eventually(reactor, lambda: b"\r\n\r\n" in client.data, what="the answer")
            self.assertIn(b"icy-metaint: 8192", bytes(client.data))
