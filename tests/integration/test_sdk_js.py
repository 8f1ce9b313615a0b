"""
The JavaScript SDK (sdk/js) against a real server fed by ffmpeg: its own
tests under node's test runner (REST calls and their error codes, keys,
the live stats stream, WebSocket audio with a resumed drop, PCM); its
TypeScript types regenerated from the server's OpenAPI document must
match the ones shipped, and compile; and its Web Audio player plays PCM
in headless Chromium with the title following.
"""

import json
import os
import shutil
import time

import treq
from twisted.internet import reactor, threads
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data, File

from ._process import ROOT, ServerProcess, spawn_tool, start_server, wait_for_source
from .test_browser import open_chromium
from .test_hls import MP3, TONE
from .test_relay import set_title

SDK = ROOT / "sdk" / "js"


def node_tool(name):
    """A program of the SDK's npm project (npm ci installs them: ./dev setup runs it)."""
    path = SDK / "node_modules" / ".bin" / name
    if not path.exists():
        raise AssertionError("%s is missing: run ./dev setup (it installs sdk/js's npm packages)" % path)
    return str(path)


async def run(testcase, argv, env=None):
    process = ServerProcess.spawn(reactor, argv, env=env, cwd=SDK)
    testcase.addCleanup(process.stop)
    code, _ = await process.ended
    return code, process.output.decode("utf-8", "replace")


class JavaScriptSdkTests(TestCase):
    timeout = 180

    async def station(self):
        process, base = await start_server(self, reactor, "mounts { live { } }")
        spawn_tool(self, reactor, ["ffmpeg"] + TONE + MP3 + ["-content_type", "audio/mpeg",
                                                             "icecast://source:hackme@%s/live" % base[7:]])
        await wait_for_source(reactor, base, "/live", process)
        return process, base

    async def test_node_test_runner_against_the_server(self):
        _, base = await self.station()
        code, output = await run(self, [shutil.which("node"), "--test", "test/client.test.mjs"],
                                 env={"GOCAST_URL": base})
        print(output[-1500:])
        self.assertEqual(code, 0, output)
        self.assertIn("# fail 0", output)

    async def test_types_match_the_openapi_document_and_compile(self):
        _, base = await self.station()
        response = await treq.get(base + "/api/v1/openapi.json", reactor=reactor, persistent=False)
        document = os.path.abspath(self.mktemp() + ".json")
        with open(document, "wb") as f:
            f.write(await response.content())
        generated = os.path.abspath(self.mktemp() + ".d.ts")
        code, output = await run(self, [node_tool("openapi-typescript"), document, "-o", generated])
        self.assertEqual(code, 0, output)
        with open(generated) as fresh, open(SDK / "types" / "api.d.ts") as shipped:
            self.assertEqual(fresh.read(), shipped.read(),
                             "sdk/js/types/api.d.ts is stale: regenerate it with npm run types (docs/sdk-js.md)")
        code, output = await run(self, [node_tool("tsc"), "-p", "tsconfig.json"])
        self.assertEqual((code, output), (0, ""))

    async def test_the_pcm_player_plays_in_chromium(self):
        _, base = await self.station()
        site = Resource()
        site.putChild(b"sdk", File(str(SDK / "src")))
        page = PLAYER_PAGE % json.dumps(base)
        site.putChild(b"player.html", Data(page.encode(), "text/html; charset=utf-8"))
        pages = reactor.listenTCP(0, Site(site), interface="127.0.0.2")  # another origin than the server
        self.addCleanup(pages.stopListening)
        driver = await threads.deferToThread(open_chromium)
        self.addCleanup(lambda: threads.deferToThread(driver.quit))
        url = "http://127.0.0.2:%d/player.html" % pages.getHost().port

        def playing(check, timeout):
            deadline = time.monotonic() + timeout
            while True:
                state = driver.execute_script("return window.report")
                if state and state.get("error"):
                    raise AssertionError(state["error"])
                if state and check(state):
                    return state
                if time.monotonic() > deadline:
                    raise AssertionError("not within %ss: %r" % (timeout, state))
                time.sleep(0.2)

        def start():
            driver.get(url)
            return playing(lambda s: s["blocks"] >= 20 and s["time"] > 1.0, 30)

        first = await threads.deferToThread(start)
        self.assertEqual((first["rate"], first["state"]), (48000, "running"))
        await set_title(base, "/live", "Band - Played By Web Audio")
        later = await threads.deferToThread(playing, lambda s: s["song"] == "Band - Played By Web Audio", 2.0)
        self.assertGreater(later["time"], first["time"])
        self.assertGreaterEqual(later["ahead"], 0.0)  # scheduled ahead of the clock: no underrun


PLAYER_PAGE = """<!doctype html>
<title>PCM player</title>
<script type="module">
import { GoCastClient, PcmPlayer } from "/sdk/index.js";
window.report = null;
const player = new PcmPlayer(new GoCastClient(%s), "/live", { rate: 48000 });
player.start().then(() => {
  setInterval(() => {
    window.report = { blocks: player.blocks, time: player.context.currentTime, state: player.context.state,
                      rate: player.context.sampleRate, song: player.nowPlaying && player.nowPlaying.song,
                      ahead: player.scheduled - player.context.currentTime };
  }, 100);
}).catch((error) => { window.report = { error: String(error) }; });
</script>
"""
