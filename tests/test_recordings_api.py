"""
The recordings API: closed files and the ones being written, newest first,
by mount and in pages; deleting a closed file by its id, never anything an
id could name outside the recordings folder; manage_recordings needed.
"""

import os

from .media_builders import mp3_frame
from .test_api import CONFIG_KEY, ApiTestCase


class RecordingsApiTests(ApiTestCase):
    extra = "news { recording { enabled true path recordings rotation size:8KB } }"

    def setUp(self):
        super().setUp()
        self.folder = os.path.join(self.data, "recordings")
        source, _ = self.h.source("/news")
        for _ in range(8):
            source.dataReceived(mp3_frame() * 10)  # 4.2 KB a chunk: files of two chunks

    def listing(self, query=""):
        status, _, body = self.h.api("GET", "/api/v1/recordings" + query, admin=True)
        self.assertEqual(status, 200, body)
        return body

    def test_list_filter_and_pages(self):
        body = self.listing()
        entries = body["data"]
        closed = sorted(n for n in os.listdir(self.folder) if n.endswith(".mp3"))
        self.assertEqual(sorted(e["id"] for e in entries if not e["recording"]), closed)
        self.assertEqual(len(closed), 3)
        [current] = [e for e in entries if e["recording"]]
        self.assertEqual(entries[0], current)  # newest first
        self.assertEqual({e["mount"] for e in entries}, {"/news"})
        self.assertTrue(all(e["size"] > 8 * 1024 for e in entries if not e["recording"]))
        self.assertEqual(self.listing("?mount=live")["data"], [])
        first = self.listing("?limit=2")
        self.assertEqual(len(first["data"]), 2)
        second = self.listing("?limit=2&cursor=" + first["meta"]["pagination"]["next_cursor"])
        self.assertEqual([e["id"] for e in first["data"] + second["data"]], [e["id"] for e in entries])

    def test_download_refusals(self):
        """(The download itself, with Range, is in tests/integration/test_recording.py: it needs a reactor.)"""
        current = [e["id"] for e in self.listing()["data"] if e["recording"]][0]
        status, _, body = self.h.api("GET", "/api/v1/recordings/" + current, admin=True)
        self.assertEqual((status, body["error"]["code"]), (409, "recording"))
        self.assertEqual(self.h.api("GET", "/api/v1/recordings/..%2Fgocast.db", admin=True)[0], 404)
        self.assertEqual(self.h.api("GET", "/api/v1/recordings/nothing.mp3", key=CONFIG_KEY)[0], 403)

    def test_delete_closed_files_only(self):
        entries = self.listing()["data"]
        closed = [e["id"] for e in entries if not e["recording"]]
        current = [e["id"] for e in entries if e["recording"]][0]
        status, _, body = self.h.api("DELETE", "/api/v1/recordings/" + closed[0], admin=True)
        self.assertEqual((status, body["data"]), (200, {"deleted": closed[0]}))
        self.assertNotIn(closed[0], os.listdir(self.folder))
        self.assertNotIn(closed[0] + ".tracks.json", os.listdir(self.folder))  # its track list with it
        self.assertEqual(self.h.api("DELETE", "/api/v1/recordings/" + closed[0], admin=True)[0], 404)
        status, _, body = self.h.api("DELETE", "/api/v1/recordings/" + current, admin=True)
        self.assertEqual((status, body["error"]["code"]), (409, "recording"))
        with open(os.path.join(self.data, "precious"), "w"):
            pass
        for hostile in ("..%2Fprecious", "%2E%2E%2F%2E%2E%2Fprecious", "precious"):
            self.assertEqual(self.h.api("DELETE", "/api/v1/recordings/" + hostile, admin=True)[0], 404, hostile)
        self.assertTrue(os.path.exists(os.path.join(self.data, "precious")))

    def test_needs_manage_recordings(self):
        self.assertEqual(self.h.api("GET", "/api/v1/recordings", key=CONFIG_KEY)[0], 403)
        key = self.new_key(["manage_recordings"])["key"]
        self.assertEqual(self.h.api("GET", "/api/v1/recordings", key=key)[0], 200)

    def test_metrics(self):
        status, _, body = self.h.request("GET", "/metrics")
        self.assertIn(" 200 ", status)
        text = body.decode()
        self.assertIn('gocast_recordings_active{mount="/news"} 1.0', text)
        self.assertIn('gocast_recording_failures_total{mount="/news"} 0.0', text)
        received = self.h.service.registry.get("/news").bytes_received
        self.assertIn('gocast_recording_bytes_total{mount="/news"} %.1f' % received, text)  # every byte of it

    def test_manual_start_and_stop(self):
        status, _, body = self.h.api("POST", "/api/v1/recordings/start", {"mount": "live"}, admin=True)
        self.assertEqual((status, body["data"]["mount"], body["data"]["manual"]), (200, "/live", True))
        status, _, body = self.h.api("POST", "/api/v1/recordings/start", {"mount": "/live"}, admin=True)
        self.assertEqual((status, body["error"]["code"]), (409, "recording"))
        source, _ = self.h.source("/live")
        source.dataReceived(mp3_frame() * 20)
        live = [e for e in self.listing("?mount=live")["data"]]
        self.assertEqual([e["recording"] for e in live], [True])
        self.h.rewrite(self.h.file.getContent().decode().replace("shoutcast", "# reloaded\nshoutcast"))
        self.assertEqual(self.h.api("POST", "/api/v1/server/reload", admin=True)[0], 200)
        self.assertEqual([e["recording"] for e in self.listing("?mount=live")["data"]], [True])  # kept
        status, _, body = self.h.api("POST", "/api/v1/recordings/stop", {"mount": "/live"}, admin=True)
        self.assertEqual((status, body["data"]["file"]), (200, live[0]["id"]))
        self.assertEqual([e["recording"] for e in self.listing("?mount=live")["data"]], [False])
        status, _, body = self.h.api("POST", "/api/v1/recordings/stop", {"mount": "/live"}, admin=True)
        self.assertEqual((status, body["error"]["code"]), (409, "not_recording"))
        status, _, body = self.h.api("POST", "/api/v1/recordings/stop", {"mount": "/news"}, admin=True)
        self.assertEqual((status, body["error"]["code"]), (409, "recording"))  # the config's
        self.assertEqual(self.h.api("POST", "/api/v1/recordings/start", {"mount": "/nowhere"}, admin=True)[0], 404)
        self.assertEqual(self.h.api("POST", "/api/v1/recordings/start", {}, admin=True)[0], 422)

    def test_the_admin_paths_of_the_roadmap(self):
        status, _, body = self.h.api("GET", "/admin/recordings", admin=True)
        self.assertEqual((status, [e["id"] for e in body["data"]]), (200, [e["id"] for e in self.listing()["data"]]))
        closed = [e["id"] for e in body["data"] if not e["recording"]][0]
        self.assertEqual(self.h.api("DELETE", "/admin/recordings/" + closed, admin=True)[0], 200)
        self.assertEqual(self.h.api("POST", "/admin/recordings/start", {"mount": "/live"}, admin=True)[0], 200)
        self.assertEqual(self.h.api("POST", "/admin/recordings/stop", {"mount": "/live"}, admin=True)[0], 200)
        self.assertEqual(self.h.api("GET", "/admin/recordings")[0], 401)
        self.assertEqual(self.h.api("GET", "/admin/recordings/x/y", admin=True)[0], 404)
        self.assertEqual(self.h.api("GET", "/admin/keys", admin=True)[0], 404)  # only recordings here
