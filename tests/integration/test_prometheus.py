"""
/metrics checked by promtool and scraped by a real Prometheus server, which
must then report as many listeners as are connected.
"""

import json

import treq
from twisted.internet import reactor, task
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from ._process import free_port, raw_request, spawn_tool, start_server, wait_for_http, wait_for_source


class PrometheusTests(TestCase):
    timeout = 120

    async def test_promtool_and_real_scrape(self):
        server, base = await start_server(self, reactor, "")
        spawn_tool(self, reactor, [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "sine",
            "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3",
            "icecast://source:hackme@%s/live" % base[len("http://"):]])
        await wait_for_source(reactor, base, "/live", server)
        for _ in range(3):
            await raw_request(self, reactor, base, b"GET /live HTTP/1.0\r\n\r\n")

        folder = FilePath(self.mktemp())
        folder.makedirs()
        scraped = folder.child("metrics.txt")
        response = await treq.get(base + "/metrics", reactor=reactor, persistent=False)
        scraped.setContent(await response.content())
        check = spawn_tool(self, reactor, ["sh", "-c", 'promtool check metrics < "$0"', scraped.path])
        code, _ = await check.ended
        self.assertEqual(code, 0, check.output.decode())

        prom_port = free_port()
        config = folder.child("prometheus.yml")
        config.setContent((
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: gocast\n"
            "    static_configs: [{targets: ['%s']}]\n" % base[len("http://"):]).encode())
        prometheus = spawn_tool(self, reactor, [
            "prometheus", "--config.file=" + config.path, "--storage.tsdb.path=" + folder.child("data").path,
            "--web.listen-address=127.0.0.1:%d" % prom_port])
        prom = "http://127.0.0.1:%d" % prom_port
        await wait_for_http(reactor, prom + "/-/ready", prometheus, timeout=60)
        value = None
        for _ in range(300):
            response = await treq.get(prom + "/api/v1/query",
                                      params={"query": 'gocast_mount_listeners{mount="/live"}'},
                                      reactor=reactor, persistent=False)
            result = json.loads(await response.content())["data"]["result"]
            if result:
                value = float(result[0]["value"][1])
                if value == 3:
                    break
            await task.deferLater(reactor, 0.2, lambda: None)
        self.assertEqual(value, 3)
