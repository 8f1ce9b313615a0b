"""
The REST API against a real GoCast: the roadmap's SDK example as written,
every `gocast` CLI command as a process, and schemathesis fuzzing the API
from its OpenAPI document.
"""

import json
import os
import re
import socket
import sys
from pathlib import Path

from twisted.internet import reactor, task, threads
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from ..shared import require, shared_path
from ._process import ROOT, ServerProcess, spawn_tool, start_server, wait_for_source
from .test_hls import MP3, TONE

KEY = "gck_integration-admin-key-0123456789"
CONFIG = """api_keys {
    admin { key "%s" permissions [*] }
    reader { key "gck_integration-reader-key-0123" permissions [read_stats, read_mounts] }
}
mounts { live { } }
""" % KEY


def roadmap_example() -> str:
    """The Python SDK example from the roadmap, exactly as written there."""
    text = require(shared_path("GOCAST_ROADMAP", "roadmap.md")).read_text()
    block = re.search(r"\*\*Example \(Python\)\*\*:\n```python\n(.*?)```", text, re.S)
    assert block, "the roadmap's SDK example is missing"
    return block.group(1)


def listen(base, count):
    """Raw listener sockets on /live (closed by the caller)."""
    host, port = base[len("http://"):].split(":")
    sockets = []
    for _ in range(count):
        s = socket.create_connection((host, int(port)))
        s.sendall(b"GET /live HTTP/1.0\r\nUser-Agent: integration\r\n\r\n")
        sockets.append(s)
    return sockets


class ApiTests(TestCase):
    timeout = 240

    async def start(self):
        self.server, self.base = await start_server(self, reactor, CONFIG)
        spawn_tool(self, reactor, ["ffmpeg"] + TONE + MP3 +
                   ["icecast://source:hackme@%s/live" % self.base[len("http://"):]])
        await wait_for_source(reactor, self.base, "/live", self.server)

    async def listeners_counted(self, count):
        from gocast import GoCastClient

        client = GoCastClient(self.base, api_key=KEY)
        for _ in range(100):
            stats = await threads.deferToThread(client.get_stats)
            if stats.total_listeners == count:
                return
            await task.deferLater(reactor, 0.1, lambda: None)
        self.fail("never %d listeners: %s" % (count, stats))

    async def gocast(self, *argv, key=KEY, url=None):
        env = dict(os.environ, GOCAST_URL=url or self.base, GOCAST_API_KEY=key,
                   GOCAST_CLIENT_CONFIG="/nonexistent", COLUMNS="200")
        process = ServerProcess.spawn(reactor, [sys.executable, "-m", "gocast.cli"] + list(argv), env=env,
                                      cwd=str(ROOT))
        self.addCleanup(process.stop)
        code, _ = await process.ended
        return code, process.output.decode("utf-8")

    async def test_roadmap_sdk_example_as_written(self):
        await self.start()
        sockets = listen(self.base, 2)
        self.addCleanup(lambda: [s.close() for s in sockets])
        code = roadmap_example().replace('"http://localhost:8000"', repr(self.base)).replace('"gck_..."', repr(KEY))
        printed = []
        namespace = {"print": printed.append}

        def run():
            exec(compile(code, "roadmap-example", "exec"), namespace)

        await self.listeners_counted(2)
        await threads.deferToThread(run)
        self.assertEqual(printed[0], "Total listeners: 2")
        self.assertEqual(len(printed), 3)
        self.assertTrue(all(line.startswith("127.0.0.1 - connected ") for line in printed[1:]), printed)
        from gocast import GoCastClient

        client = GoCastClient(self.base, api_key=KEY)
        mount = await threads.deferToThread(client.mounts.get, "/live")
        self.assertEqual(mount.title, "Now Playing: Great Song")

    async def test_cli_commands(self):
        await self.start()
        sockets = listen(self.base, 3)
        self.addCleanup(lambda: [s.close() for s in sockets])
        await self.listeners_counted(3)
        code, out = await self.gocast("mount", "list")
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"PATH\s+ORIGIN\s+LIVE\s+LISTENERS")
        self.assertRegex(out, r"/live\s+config\s+yes\s+3")
        code, out = await self.gocast("mount", "create", "/news", "--set", "max_listeners=50",
                                      "--set", "hls.enabled=true")
        self.assertEqual(code, 0, out)
        code, out = await self.gocast("mount", "create", "/bad", "--set", "hls.enabled=maybe")
        self.assertEqual(code, 1)
        self.assertIn("→ config.hls.enabled: expected true or false", out)
        code, out = await self.gocast("mount", "create", "/bad", "--set", "max_listeners")
        self.assertEqual(code, 2)
        self.assertIn("--set needs KEY=VALUE", out)
        code, out = await self.gocast("mount", "list", "--json")
        self.assertEqual({m["path"]: m["origin"] for m in json.loads(out)}, {"/live": "config", "/news": "api"})
        code, out = await self.gocast("mount", "stats", "/live")
        self.assertRegex(out, r"source_content_type\s+audio/mpeg")
        code, out = await self.gocast("listeners", "/live", "--json")
        listeners = json.loads(out)
        self.assertEqual(len(listeners), 3)
        code, out = await self.gocast("kick", "/live", listeners[0]["id"])
        self.assertEqual(code, 0, out)
        code, out = await self.gocast("stats", "--watch", "--interval", "0.2", "--count", "2")
        self.assertEqual((code, out.count("listeners, 1 sources")), (0, 2), out)
        code, out = await self.gocast("stats", "export", "--format", "csv")
        self.assertEqual(out.splitlines()[0], "timestamp,path,listeners,peak_listeners,bytes_sent,bytes_received,live")
        self.assertIn(",/live,2,", out)
        code, out = await self.gocast("mount", "delete", "/live")
        self.assertEqual(code, 1)
        self.assertIn("Error: /live comes from the config file", out)
        self.assertIn("→ Edit the config file, then: gocast config reload", out)
        code, out = await self.gocast("record", "list")
        self.assertEqual(code, 0, out)  # no mount records here: nothing to list
        code, out = await self.gocast("record", "start", "/live")
        self.assertEqual(code, 0, out)
        code, out = await self.gocast("record", "start", "/live")
        self.assertEqual(code, 1)  # already
        self.assertIn("/live is being recorded already", out)
        code, out = await self.gocast("record", "stop", "/live")
        self.assertEqual(code, 0, out)
        self.assertIn("/live", out)
        code, out = await self.gocast("source", "kill", "/live", key="gck_integration-reader-key-0123")
        self.assertEqual(code, 4)
        self.assertIn("→ The key needs the permission manage_sources", out)
        code, out = await self.gocast("mount", "list", key="gck_wrong")
        self.assertEqual(code, 4)
        code, out = await self.gocast("source", "kill", "/live")
        self.assertEqual(code, 0, out)
        code, out = await self.gocast("mount", "delete", "/news")
        self.assertEqual(code, 0, out)
        # config reload through the API, with a key (no config file at hand).
        code, out = await self.gocast("config", "reload", "/nonexistent.vibe")
        self.assertEqual((code, out), (0, "reloaded: no change\n"))
        code, out = await self.gocast("config", "reload", "/nonexistent.vibe",
                                      key="gck_integration-reader-key-0123")
        self.assertEqual(code, 4)
        self.assertIn("→ The key needs the permission reload", out)
        code, out = await self.gocast("stats", url="http://127.0.0.1:9")
        self.assertEqual(code, 3)
        self.assertIn("→ Is GoCast running?", out)

    def folder(self):
        path = FilePath(self.mktemp())
        path.makedirs()
        return path.path

    async def test_schemathesis_finds_no_server_error_and_no_schema_violation(self):
        await self.start()
        before = self.server.output.count(b"gocast.access")
        st = Path(sys.executable).with_name("st")
        fuzz = ServerProcess.spawn(reactor, [
            str(st), "run", self.base + "/api/v1/openapi.json", "-H", "Authorization: Bearer " + KEY,
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                        "response_headers_conformance,response_schema_conformance",
            "--max-examples", "25", "--seed", "7", "--no-color"],
            cwd=self.folder())
        self.addCleanup(fuzz.stop)
        code, _ = await fuzz.ended
        report = fuzz.output.decode("utf-8", "replace")
        self.assertEqual(code, 0, report[-4000:])
        self.assertRegex(report, r"\d+ generated, \d+ passed")
        # It reloaded the server along the way; the log must still be written after that.
        self.assertIn(b"config.reloaded", self.server.output)
        self.assertGreater(self.server.output.count(b"gocast.access"), before + 500)
