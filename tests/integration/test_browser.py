"""
HLS in a real browser: hls.js (from the npm registry, served from disk)
plays GoCast's HLS in headless Chromium, driven by Selenium through
Debian's chromedriver.
"""

import time
from urllib.parse import quote

import jwt
import treq
from twisted.internet import reactor, task, threads
from twisted.trial.unittest import TestCase
from twisted.web.server import Site
from twisted.web.static import File

from ._process import ROOT, spawn_tool, start_server, tool, wait_for_source
from .test_hls import AAC, MP3, TONE

PAGE_FOLDER = ROOT / "tests" / "browser"
#: Seconds of playback watched, after the player has started.
WATCH = 10.0
#: Latency samples (one each 250 ms of playback) left out while hls.js
#: moves from its starting point to its live-edge target: LL-HLS promises
#: latency in steady playback, and the first second or two is a catch-up.
SETTLING_SAMPLES = 8


def steady_latency(report):
    """The worst latency hls.js reported once playback had settled."""
    samples = report["latencies"][SETTLING_SAMPLES:]
    if len(samples) < (WATCH - 3) * 4:
        raise AssertionError("too few latency samples: %r" % (report,))
    return max(samples)


def open_chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = tool("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
                     "--autoplay-policy=no-user-gesture-required", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(tool("chromedriver")), options=options)


def watch(driver, page):
    """
    Open ``page``; wait for playback to start, then watch ``WATCH`` seconds.
    Runs in a thread (Selenium blocks). Returns the first and last samples.
    """
    read = "return {time: document.getElementById('player').currentTime, report: window.report}"
    first = start_playing(driver, page, read)
    time.sleep(WATCH)
    return first, driver.execute_script(read)


async def full_window(testcase, url, marker, count=3):
    """Wait for the playlist or MPD at ``url`` to list ``count`` segments (``marker`` each), as a
    listener arriving on a running station finds it."""
    deadline = reactor.seconds() + 60
    while True:
        response = await treq.get(url, reactor=reactor, persistent=False)
        if (await response.text()).count(marker) >= count:
            return
        testcase.assertLess(reactor.seconds(), deadline, "%s never listed %d segments" % (url, count))
        await task.deferLater(reactor, 0.5, lambda: None)


def start_playing(driver, page, read):
    """Open ``page`` and wait (30 s at most) for its player to start; what ``read`` says then."""
    driver.get(page)
    deadline = time.monotonic() + 30
    state = driver.execute_script(read)
    while state["time"] <= 0 and not state["report"]["fatal"] and time.monotonic() < deadline:
        time.sleep(0.25)
        state = driver.execute_script(read)
    return state


class BrowserTests(TestCase):
    timeout = 150

    async def play(self, encode, low_latency, token_secret=None):
        """
        :param token_secret: protect the mount with token auth; the page's
            playlist URL then carries a token signed with it.
        """
        if not (PAGE_FOLDER / "node_modules" / "hls.js" / "dist" / "hls.min.js").exists():
            self.fail("hls.js is missing: run ./dev setup (it installs it from the npm registry)")
        auth = 'auth { type token secret "%s" }' % token_secret if token_secret else ""
        server, base = await start_server(
            self, reactor, "mounts { live { hls { enabled true segment_duration 2 low_latency %s "
            "part_duration 0.5 } %s } }" % ("true" if low_latency else "false", auth))
        spawn_tool(self, reactor, ["ffmpeg"] + TONE + encode +
                   ["icecast://source:hackme@%s/live" % base[len("http://"):]])
        await wait_for_source(reactor, base, "/live", server)
        response = await treq.get(base + "/admin/metadata", params={
            "mount": "/live", "mode": "updinfo", "song": "Band - Tune"}, auth=("admin", "hackme"),
            reactor=reactor, persistent=False)
        await response.content()
        pages = reactor.listenTCP(0, Site(File(str(PAGE_FOLDER))), interface="127.0.0.1")
        self.addCleanup(pages.stopListening)
        driver = await threads.deferToThread(open_chromium)
        self.addCleanup(lambda: threads.deferToThread(driver.quit))
        playlist = base + "/hls/live/playlist.m3u8"
        if token_secret:
            playlist += "?token=" + jwt.encode({"exp": int(time.time()) + 600}, token_secret, algorithm="HS256")
        page = "http://127.0.0.1:%d/player.html?src=%s" % (pages.getHost().port, quote(playlist, safe=""))
        first, last = await threads.deferToThread(watch, driver, page)
        report = last["report"]
        self.assertIsNone(report["fatal"], report)
        self.assertGreater(first["time"], 0, report)
        self.assertGreater(last["time"] - first["time"], WATCH - 1.5, (first, last))
        self.assertGreater(report["titles"], 0, report)  # the now-playing title, as timed ID3
        self.assertEqual(report["lowLatency"], low_latency, report)
        # No gaps between segments or parts, and a playlist always has a segment.
        self.assertEqual([e for e in report["errors"] if e in ("bufferSeekOverHole", "levelEmptyError")], [])
        return report

    async def test_standard_hls_mp3(self):
        await self.play(MP3, low_latency=False)

    async def test_low_latency_aac(self):
        report = await self.play(AAC, low_latency=True)
        self.assertLess(steady_latency(report), 3.0, report)

    async def test_low_latency_aac_with_a_token(self):
        """A protected mount: hls.js knows nothing of tokens; the URIs in the playlist carry it."""
        report = await self.play(AAC, low_latency=True, token_secret="browser-test-secret-of-32-bytes!")
        self.assertLess(steady_latency(report), 3.0, report)

    async def test_low_latency_dash(self):
        """dash.js on a low-latency MPD: chunks of the segment being cut, played close to the live edge."""
        server, base = await start_server(self, reactor, "mounts { live { dash { enabled true segment_duration 2 "
                                                         "low_latency true part_duration 0.5 } } }")
        spawn_tool(self, reactor, ["ffmpeg"] + TONE + AAC + ["icecast://source:hackme@%s/live" % base[7:]])
        await wait_for_source(reactor, base, "/live", server)
        await full_window(self, base + "/dash/live/manifest.mpd", "<S ")
        pages = reactor.listenTCP(0, Site(File(str(PAGE_FOLDER))), interface="127.0.0.1")
        self.addCleanup(pages.stopListening)
        driver = await threads.deferToThread(open_chromium)
        self.addCleanup(lambda: threads.deferToThread(driver.quit))
        page = "http://127.0.0.1:%d/dash.html?src=%s" % (pages.getHost().port,
                                                          quote(base + "/dash/live/manifest.mpd", safe=""))
        first, last = await threads.deferToThread(watch, driver, page)
        report = last["report"]
        self.assertIsNone(report["fatal"], report)
        self.assertGreater(last["time"] - first["time"], WATCH - 1.5, (first, last))
        self.assertLess(steady_latency(report), 4.0, report)

    async def test_low_latency_mp3(self):
        report = await self.play(MP3, low_latency=True)
        self.assertLess(steady_latency(report), 3.0, report)


#: Seconds of a segment of the adaptive-bitrate test: its longest stall allowed.
ABR_SEGMENT = 4
#: A ladder for adaptive bitrate, in 4 s segments. One codec: hls.js switches
#: between the levels of the codec it started on, not from MP3 to AAC.
LADDER = """mounts { live {
    hls { enabled true segment_duration %d }
    dash { enabled true segment_duration %d }
    transcoding { enabled true outputs {
        high { path /live-256 format aac bitrate 256k }
        medium { path /live-128 format aac bitrate 128k }
        low { path /live-48 format aac bitrate 48k }
    } }
} }""" % (ABR_SEGMENT, ABR_SEGMENT)
#: The throttled link: room for the 128k variant, not for the 256k one.
THROTTLED_BYTES_PER_SECOND = 200 * 1000 // 8


def watch_switching(driver, page, level="window.hls.currentLevel", before=8.0, after=24.0):
    """
    Play an adaptive stream at full speed for ``before`` seconds, then on a
    throttled link for ``after``; returns what was seen at each step
    (``level``: the player's current level, as the page tells it).
    """
    read = ("return {time: document.getElementById('player').currentTime, level: %s,"
            " stalled: window.stalledNow(), report: window.report}" % level)
    state = start_playing(driver, page, read)
    time.sleep(before)
    fast = driver.execute_script(read)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 20, "downloadThroughput": THROTTLED_BYTES_PER_SECOND,
        "uploadThroughput": THROTTLED_BYTES_PER_SECOND})
    longest_stall, end = 0.0, time.monotonic() + after
    while time.monotonic() < end:
        time.sleep(0.25)
        longest_stall = max(longest_stall, driver.execute_script("return window.stalledNow()"))
    slow = driver.execute_script(read)
    return state, fast, slow, longest_stall


class AdaptiveBitrateTests(TestCase):
    timeout = 180

    async def ladder(self, page_name, manifest, level):
        """A ladder fed noise, a full window of segments, and a player on ``manifest``: what it saw."""
        server, base = await start_server(self, reactor, LADDER)
        # Noise: an encoder spends its whole bitrate on it (a pure tone needs less than 256k).
        spawn_tool(self, reactor, ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                                   "anoisesrc=amplitude=0.3"] + AAC + ["icecast://source:hackme@%s/live" % base[7:]])
        for mount in ("/live-256", "/live-128", "/live-48"):
            await wait_for_source(reactor, base, mount, server, timeout=30)
        await full_window(self, base + "/hls/live-256/playlist.m3u8", "#EXTINF")
        pages = reactor.listenTCP(0, Site(File(str(PAGE_FOLDER))), interface="127.0.0.1")
        self.addCleanup(pages.stopListening)
        driver = await threads.deferToThread(open_chromium)
        self.addCleanup(lambda: threads.deferToThread(driver.quit))
        page = "http://127.0.0.1:%d/%s?src=%s" % (pages.getHost().port, page_name, quote(base + manifest, safe=""))
        started, fast, slow, longest_stall = await threads.deferToThread(watch_switching, driver, page, level)
        report = slow["report"]
        self.assertIsNone(report["fatal"], report)
        self.assertGreater(started["time"], 0, report)
        self.assertGreater(slow["time"] - fast["time"], 12.0, (fast, slow))  # it played on
        self.assertLessEqual(max(report["stalls"] + [longest_stall]), ABR_SEGMENT, report)  # at most a segment
        return fast, slow

    async def test_hls_js_starts_on_the_master_playlist_and_switches_down_when_throttled(self):
        fast, slow = await self.ladder("abr.html", "/hls/live/master.m3u8", "window.hls.currentLevel")
        report = slow["report"]
        bitrates = [level["bitrate"] for level in report["levels"]]
        self.assertEqual(len(bitrates), 3, report)
        self.assertEqual(fast["level"], bitrates.index(max(bitrates)), (fast, report))  # a fast link: the best
        # Switched down to a level the throttled link carries.
        self.assertLess(bitrates[slow["level"]], THROTTLED_BYTES_PER_SECOND * 8, (slow, report))

    async def test_dash_js_plays_the_mpd_and_switches_down_when_throttled(self):
        fast, slow = await self.ladder("dash.html", "/dash/live/manifest.mpd", "window.currentBitrate()")
        report = slow["report"]
        self.assertEqual(len(report["bitrates"]), 3, report)
        self.assertEqual(fast["level"], max(report["bitrates"]), (fast, report))
        self.assertLess(slow["level"], THROTTLED_BYTES_PER_SECOND * 8, (slow, report))
