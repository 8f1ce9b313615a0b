"""
The dashboard in a real browser (Debian's headless Chromium through
Selenium): it logs in, sees listener counts change within a second, switches
theme, and updates the now-playing title that an ICY listener then receives.
The live stream refuses a handshake without credentials.

With ``GOCAST_SCREENSHOTS=<folder>`` set, the test also saves a screenshot
of each theme there (how docs/dashboard-*.png are made).
"""

import os
import time

from twisted.internet import reactor, task, threads
from twisted.trial.unittest import TestCase

from ._process import raw_request, spawn_tool, start_server, wait_for_source
from ._redis import RedisServer
from .test_browser import open_chromium
from .test_hls import MP3, TONE

#: How soon the page must show a listener joining or leaving.
WITHIN = 1.0


def wait_for_text(driver, selector, expected, timeout):
    """
    Seconds until the element's text is ``expected``; AssertionError after
    ``timeout``. The text is read in the page, in one step: the dashboard
    rebuilds its rows at every update, so an element found in one call may
    be gone by the next.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if text_of(driver, selector) == expected:
            return time.monotonic() - started
        time.sleep(0.02)
    raise AssertionError("%s is %r, not %r, after %.1fs" % (selector, text_of(driver, selector), expected, timeout))


def text_of(driver, selector):
    """The rendered text of the first element ``selector`` finds, or ``None``."""
    return driver.execute_script("var e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                                 selector)


def log_in(driver, base):
    """Log in as the admin (password hackme) and wait for the live stream and /live's row."""
    from selenium.webdriver.common.by import By

    driver.set_window_size(1280, 1000)
    driver.get(base + "/admin/dashboard")
    wait_for_visible(driver, "#login")
    driver.find_element(By.ID, "login-password").send_keys("hackme")
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait_for_text(driver, "#status", "live", 10)
    wait_for_text(driver, 'tr[data-mount="/live"] .listeners', "0", 5)


class DashboardTests(TestCase):
    timeout = 150

    async def test_live_dashboard(self):
        server, base = await start_server(self, reactor, "mounts { live { } }\n")
        spawn_tool(self, reactor, ["ffmpeg"] + TONE + MP3 + ["icecast://source:hackme@%s/live" % base[7:]])
        await wait_for_source(reactor, base, "/live", server)

        # The live stream: no handshake without credentials.
        refused = await raw_request(self, reactor, base, (
            "GET /admin/ws/stats HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" % base[7:]).encode())
        # Nor from another site's page, even with the admin's credentials.
        cross_site = await raw_request(self, reactor, base, (
            "GET /admin/ws/stats HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Origin: https://evil.example\r\nAuthorization: Basic YWRtaW46aGFja21l\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" % base[7:]).encode())
        await task.deferLater(reactor, 1.0, lambda: None)
        self.assertTrue(bytes(refused.data).startswith(b"HTTP/1.1 401"), bytes(refused.data)[:200])
        self.assertTrue(bytes(cross_site.data).startswith(b"HTTP/1.1 403"), bytes(cross_site.data)[:200])

        driver = await threads.deferToThread(open_chromium)
        self.addCleanup(lambda: threads.deferToThread(driver.quit))
        await threads.deferToThread(log_in, driver, base)

        # A listener joins, then leaves: the page follows within a second each time.
        listener = await raw_request(self, reactor, base, b"GET /live HTTP/1.0\r\nIcy-MetaData: 1\r\n\r\n")
        joined = await threads.deferToThread(wait_for_text, driver, "#total-listeners", "1", 5)
        self.assertLess(joined, WITHIN)
        row = await threads.deferToThread(wait_for_text, driver, 'tr[data-mount="/live"] .listeners', "1", 1)
        self.assertLess(row, WITHIN)

        # Theme switch (and screenshots of both, when asked for).
        themes = await threads.deferToThread(self.switch_theme, driver)
        self.assertEqual(sorted(themes[:2]), ["dark", "light"])  # it starts from the system's preference
        self.assertEqual(themes[2], themes[0])
        wide, window = await threads.deferToThread(self.fits_a_phone, driver)
        self.assertLessEqual(wide, window)

        # Now playing from the dashboard reaches the ICY listener.
        await threads.deferToThread(self.update_metadata, driver, "Dashboard Band - Live Song")
        for _ in range(100):
            if b"StreamTitle='Dashboard Band - Live Song';" in listener.data:
                break
            await task.deferLater(reactor, 0.1, lambda: None)
        self.assertIn(b"StreamTitle='Dashboard Band - Live Song';", bytes(listener.data))
        await threads.deferToThread(wait_for_text, driver, 'tr[data-mount="/live"] .now-playing',
                                    "Dashboard Band - Live Song", 5)

        listener.transport.loseConnection()
        left = await threads.deferToThread(wait_for_text, driver, "#total-listeners", "0", 5)
        self.assertLess(left, WITHIN)
        events = await threads.deferToThread(driver.execute_script,
                                             "return document.getElementById('events').textContent")
        self.assertIn("Dashboard Band - Live Song", events)

    async def test_recordings_panel(self):
        folder = os.path.abspath(self.mktemp())
        server, base = await start_server(self, reactor, 'mounts { live { recording { enabled true path "%s" '
                                                         'rotation size:16KB } } }\n' % folder)
        spawn_tool(self, reactor, ["ffmpeg"] + TONE + MP3 + ["icecast://source:hackme@%s/live" % base[7:]])
        await wait_for_source(reactor, base, "/live", server)
        driver = await threads.deferToThread(open_chromium)
        self.addCleanup(lambda: threads.deferToThread(driver.quit))
        await threads.deferToThread(log_in, driver, base)
        found = await threads.deferToThread(self.recordings_listed, driver, 15)
        self.assertTrue(any(r.startswith("● recording live-") for r in found), found)  # the file being written
        closed = [r for r in found if not r.startswith("●")]
        self.assertTrue(closed, found)
        status, length = await threads.deferToThread(driver.execute_async_script, """
            var done = arguments[arguments.length - 1];
            var link = document.querySelector('#recording-rows a');
            fetch(link.href).then(function (r) { return r.arrayBuffer().then(function (b) {
                done([r.status, b.byteLength]); }); });""")
        self.assertEqual((status, length), (200, os.path.getsize(os.path.join(folder, closed[0]))))

    @staticmethod
    def recordings_listed(driver, timeout):
        """The recordings panel's file cells, once it shows a closed file and the one being written."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            cells = driver.execute_script(  # read in one step: the panel is rebuilt at every refresh
                "return Array.from(document.querySelectorAll('#recording-rows td:nth-child(2)'), e => e.innerText);")
            if any(c.startswith("●") for c in cells) and any(not c.startswith("●") for c in cells):
                return cells
            time.sleep(0.2)
        raise AssertionError("the recordings panel shows %r" % cells)

    async def test_cluster_panel(self):
        """In a cluster, the panel shows the station's listeners and a row per node, the leader starred."""
        redis = RedisServer(self, reactor)
        await redis.start()
        config = 'cluster { sync { enabled true  redis_url "%s" } }\nmounts { live { } }\n' % redis.url
        nodes = [await start_server(self, reactor, config, host=host) for host in ("127.0.0.2", "127.0.0.3")]
        for process, base in nodes:
            spawn_tool(self, reactor, ["ffmpeg"] + TONE + MP3 + ["icecast://source:hackme@%s/live" % base[7:]])
            await wait_for_source(reactor, base, "/live", process)
        (_, a), (_, b) = nodes
        driver = await threads.deferToThread(open_chromium)
        self.addCleanup(lambda: threads.deferToThread(driver.quit))
        await threads.deferToThread(log_in, driver, a)
        await threads.deferToThread(wait_for_visible, driver, "#cluster-widget")
        await raw_request(self, reactor, b, b"GET /live HTTP/1.0\r\n\r\n")  # a listener on the other node
        await threads.deferToThread(wait_for_text, driver, "#cluster-listeners", "1", 10)
        await threads.deferToThread(wait_for_text, driver, 'tr[data-node="%s"] .num' % b[7:], "1", 5)
        rows = await threads.deferToThread(driver.execute_script, "return Array.from(document.querySelectorAll("
                                           "'#node-rows tr')).map(function (r) { return r.cells[0].textContent; })")
        self.assertEqual(len(rows), 2, rows)
        self.assertEqual(len([r for r in rows if "★" in r]), 1, rows)
        self.assertEqual([r for r in rows if r.endswith("(this node)")][0].split()[0], a[7:])

    def switch_theme(self, driver):
        from selenium.webdriver.common.by import By

        folder = os.environ.get("GOCAST_SCREENSHOTS")
        if folder:
            driver.set_window_size(1280, 1500)
            time.sleep(21)  # two history samples and a stretch of the rate graph
            driver.find_element(By.CSS_SELECTOR, '.range[data-range="1h"]').click()
            time.sleep(1)
        seen = []
        for click in range(3):
            theme = driver.execute_script("return document.documentElement.getAttribute('data-theme')")
            seen.append(theme)
            if folder and click < 2:
                time.sleep(0.5)
                driver.save_screenshot(os.path.join(folder, "dashboard-%s.png" % theme))
            if click < 2:
                driver.find_element(By.ID, "theme").click()
        return seen

    def fits_a_phone(self, driver):
        """At a phone's width nothing sticks out sideways."""
        driver.set_window_size(390, 844)
        time.sleep(0.3)
        return driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")

    def update_metadata(self, driver, song):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        Select(driver.find_element(By.ID, "metadata-mount")).select_by_value("/live")
        field = driver.find_element(By.ID, "metadata-song")
        field.clear()
        field.send_keys(song)
        driver.find_element(By.CSS_SELECTOR, "#metadata-form button").click()
        wait_for_text(driver, "#action-result", 'Done: {"song":"%s"}' % song, 5)


def wait_for_visible(driver, selector, timeout=10):
    from selenium.webdriver.common.by import By

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        found = driver.find_elements(By.CSS_SELECTOR, selector)
        if found and found[0].is_displayed():
            return
        time.sleep(0.05)
    raise AssertionError("%s never shown" % selector)
