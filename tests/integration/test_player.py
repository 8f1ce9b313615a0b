"""
The embeddable player in headless Chromium (Selenium, Debian's
chromedriver), against a real server fed by ffmpeg: it plays through
hls.js, or the ICY stream when the mount has no HLS, and again after the
source drops; a title set through the admin shows within 2 s; theme and
colour apply; the code endpoint's snippets, pasted in a page of another
origin, play. With ``GOCAST_SCREENSHOTS=<folder>`` it also saves the
screenshots docs/player.md shows.
"""

import json
import os
import time

import treq
from twisted.internet import reactor, threads
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from ._process import spawn_tool, start_server, wait_for_source
from .test_browser import open_chromium
from .test_hls import MP3, TONE
from .test_relay import set_title

READ = """
const audio = document.getElementById('audio');
return {time: audio.currentTime, transport: document.documentElement.dataset.transport || '',
        state: document.documentElement.dataset.state, title: document.getElementById('title').textContent,
        background: getComputedStyle(document.body).backgroundColor,
        accent: getComputedStyle(document.getElementById('play')).backgroundColor,
        cover: document.getElementById('artwork').style.backgroundImage};
"""


def wait_until(driver, check, timeout, what):
    """Poll the page (in Selenium's thread) until ``check(state)``; the state then."""
    deadline = time.monotonic() + timeout
    state = driver.execute_script(READ)
    while not check(state):
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %ss: %r" % (what, timeout, state))
        time.sleep(0.2)
        state = driver.execute_script(READ)
    return state


def plays(driver, url, timeout=30):
    """Open ``url`` and wait until its audio is playing and moving."""
    driver.get(url)
    first = wait_until(driver, lambda s: s["time"] > 0.5, timeout, "playback at " + url)
    return first, wait_until(driver, lambda s: s["time"] > first["time"] + 2, 15, "playback going on")


class PlayerTests(TestCase):
    timeout = 180

    async def station(self, hls=True, more=""):
        config = "mounts { live { %s %s } }" % ("hls { enabled true segment_duration 2 }" if hls else "", more)
        process, base = await start_server(self, reactor, config)
        self.source = spawn_tool(self, reactor, ["ffmpeg"] + TONE + MP3 + [
            "-content_type", "audio/mpeg", "icecast://source:hackme@%s/live" % base[7:]])
        await wait_for_source(reactor, base, "/live", process)
        self.driver = await threads.deferToThread(open_chromium)
        self.addCleanup(lambda: threads.deferToThread(self.driver.quit))
        return process, base

    async def test_plays_with_hls_js_and_the_title_follows(self):
        _, base = await self.station(more="metadata { artwork_enabled true }")
        url = base + "/embed/live?autoplay=true&theme=dark&color=ff6600"
        _, state = await threads.deferToThread(plays, self.driver, url)
        self.assertEqual((state["transport"], state["state"]), ("hls.js", "playing"))
        self.assertEqual(state["background"], "rgb(22, 24, 29)")  # the dark theme
        self.assertEqual(state["accent"], "rgb(255, 102, 0)")  # color=ff6600
        await set_title(base, "/live", "Band - A New Tune")
        changed = reactor.seconds()
        state = await threads.deferToThread(wait_until, self.driver, lambda s: s["title"] == "A New Tune", 2.0,
                                            "the new title")
        self.assertIn("/live/artwork.jpg?v=", state["cover"])  # the mount's cover (here its placeholder)
        print("title shown %.2fs after the change" % (reactor.seconds() - changed))
        await self.screenshots(base)

    async def test_plays_the_icy_stream_and_comes_back_after_a_drop(self):
        process, base = await self.station(hls=False)
        _, state = await threads.deferToThread(plays, self.driver, base + "/embed/live/mini?autoplay=true")
        self.assertEqual(state["transport"], "icy")
        self.assertEqual(state["background"], "rgb(255, 255, 255)")  # the light theme by default
        await self.source.stop()
        source = spawn_tool(self, reactor, ["ffmpeg"] + TONE + MP3 + [
            "-content_type", "audio/mpeg", "icecast://source:hackme@%s/live" % base[7:]])
        await wait_for_source(reactor, base, "/live", process)
        before = state["time"]

        def going_again():
            moved = wait_until(self.driver, lambda s: s["time"] > before + 1 and s["state"] == "playing", 40,
                               "playback after the source came back")
            return wait_until(self.driver, lambda s: s["time"] > moved["time"] + 2, 15, "playback going on")

        state = await threads.deferToThread(going_again)
        self.assertEqual(state["transport"], "icy")
        self.assertFalse(source.ended.called)

    async def test_the_code_snippets_play_on_another_origin(self):
        _, base = await self.station()
        response = await treq.get(base + "/embed/live/code", params={"format": "json", "autoplay": "true"},
                                  reactor=reactor, persistent=False)
        snippets = json.loads(await response.content())
        site = Resource()
        for name, snippet in (("iframe.html", snippets["iframe"]), ("script.html", snippets["script"])):
            page = "<!doctype html><title>A station's site</title><h1>Listen</h1>%s" % snippet
            site.putChild(name.encode(), Data(page.encode(), "text/html; charset=utf-8"))
        pages = reactor.listenTCP(0, Site(site), interface="127.0.0.2")  # another origin
        self.addCleanup(pages.stopListening)
        other = "http://127.0.0.2:%d/" % pages.getHost().port

        def in_frame(page):
            self.driver.get(other + page)
            frame = wait_for_frame(self.driver)
            self.driver.switch_to.frame(frame)
            try:
                first = wait_until(self.driver, lambda s: s["time"] > 0.5, 30, "playback in the frame of " + page)
                return wait_until(self.driver, lambda s: s["time"] > first["time"] + 2, 15, "playback going on")
            finally:
                self.driver.switch_to.default_content()

        for page in ("iframe.html", "script.html"):
            state = await threads.deferToThread(in_frame, page)
            self.assertEqual(state["transport"], "hls.js", page)

    async def screenshots(self, base):
        """Full and mini, light and dark, at a phone's width and a desktop frame's; saved when asked."""
        folder = os.environ.get("GOCAST_SCREENSHOTS")

        def shoot():
            taken = []
            for kind, height in (("", 150), ("/mini", 60)):
                for theme in ("light", "dark"):
                    for width, label in ((360, "phone"), (400, "desktop")):
                        self.driver.set_window_size(width, height + 140)  # the window's frame around the page
                        self.driver.get("%s/embed/live%s?theme=%s&listeners=true" % (base, kind, theme))
                        time.sleep(1.0)
                        name = "player%s-%s-%s.png" % (kind.replace("/", "-"), theme, label)
                        png = self.driver.get_screenshot_as_png()
                        taken.append(len(png))
                        if folder:
                            with open(os.path.join(folder, name), "wb") as f:
                                f.write(png)
            return taken

        sizes = await threads.deferToThread(shoot)
        self.assertEqual(len(sizes), 8)
        self.assertTrue(all(size > 1000 for size in sizes))


def wait_for_frame(driver, timeout=15):
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        frames = driver.find_elements(By.TAG_NAME, "iframe")
        if frames:
            return frames[0]
        if time.monotonic() > deadline:
            raise AssertionError("no iframe on the page")
        time.sleep(0.2)
