"""
The transcoding ladder with real parts: ffmpeg sources in MP3, AAC and Ogg
Opus, a ladder of three outputs (MP3, AAC, Opus) made by the one ffmpeg
GoCast runs, and one more on demand; every output decodes, ICY metadata reaches listeners of the
outputs, a killed transcoder comes back with the listeners still connected,
and the fallback's audio is what the outputs' listeners hear when the
source leaves.
"""

import os
import re
import signal
from pathlib import Path

import treq
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from ._process import eventually, raw_request, spawn_tool, start_server, wait_for_source
from .test_recording import SOURCES

CONFIG = """
mounts {
    live {
        fallback /backup
        transcoding {
            enabled true
            outputs {
                high { path /live-320 format mp3 bitrate 320k }
                low { path /live-64 format aac bitrate 64k }
                opus { path /live-48 format opus bitrate 48k }
                spare { path /live-32 format aac bitrate 32k on_demand true }
            }
        }
    }
    backup { }
}
"""
OUTPUTS = ("/live-320", "/live-64", "/live-48")


def children_named(pid, name):
    """The PIDs of ``pid``'s child processes called ``name`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, "rb") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index(b"(") + 1:stat.rindex(b")")].decode()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            if ppid == pid and comm == name:
                found.append(int(entry))
    return found


class TranscodingTests(TestCase):
    timeout = 180

    async def start(self):
        self.server, self.base = await start_server(self, reactor, CONFIG)

    def source(self, kind, mount="/live", frequency=440):
        url = "icecast://source:hackme@%s%s" % (self.base[len("http://"):], mount)
        return spawn_tool(self, reactor, ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
                                          "-i", "sine=frequency=%d" % frequency] + SOURCES[kind] + [url])

    async def decodes(self, mount, seconds=3):
        player = spawn_tool(self, reactor, ["ffmpeg", "-hide_banner", "-v", "error", "-t", str(seconds), "-i",
                                            self.base + mount, "-f", "null", "-"])
        code, _ = await player.ended
        self.assertEqual((code, player.output.decode()), (0, ""), mount)

    async def listen(self, mount):
        """A raw ICY listener asking for metadata; returns its client."""
        return await raw_request(self, reactor, self.base, (
            "GET %s HTTP/1.1\r\nHost: x\r\nIcy-MetaData: 1\r\n\r\n" % mount).encode())

    async def still_listening(self, listeners, when):
        """Every listener, still connected, gets more audio."""
        for mount, client in listeners.items():
            before = len(client.data)
            await eventually(reactor, lambda: len(client.data) > before + 16000, timeout=20,
                             what="audio on %s %s" % (mount, when))
            self.assertFalse(client.closed.called)

    async def set_title(self, song):
        response = await treq.get(self.base + "/admin/metadata", params={"mount": "/live", "mode": "updinfo",
                                                                         "song": song},
                                  auth=("admin", "hackme"), reactor=reactor, persistent=False)
        self.assertEqual(response.code, 200, await response.text())

    async def ladder(self, kind):
        await self.start()
        self.live = self.source(kind)
        for mount in OUTPUTS:
            await wait_for_source(reactor, self.base, mount, self.server, timeout=30)
        listeners = {mount: await self.listen(mount) for mount in ("/live-320", "/live-64")}
        await self.set_title("The Artist - First Song")
        for mount in OUTPUTS:
            await self.decodes(mount)
        for mount, client in listeners.items():
            await eventually(reactor, lambda: b"StreamTitle='The Artist - First Song';" in client.data,
                             timeout=20, what="the title on %s's ICY listener" % mount)
            self.assertFalse(client.closed.called)
        response = await treq.get(self.base + "/status-json.xsl", reactor=reactor, persistent=False)
        sources = {s["listenurl"].rsplit("/", 1)[1]: s for s in (await response.json())["icestats"]["source"]}
        self.assertEqual([sources[m.lstrip("/")]["server_type"] for m in OUTPUTS],
                         ["audio/mpeg", "audio/aac", "audio/ogg"])
        self.assertEqual([sources[m.lstrip("/")]["bitrate"] for m in OUTPUTS], [320, 64, 48])
        opus = sources["live-48"]  # (no ICY metadata in Ogg: players read it from the stats)
        self.assertEqual((opus["artist"], opus["title"]), ("The Artist", "First Song"))
        return listeners

    async def test_mp3_source_ladder_restart_and_fallback(self):
        listeners = await self.ladder("mp3")
        # The API shows the outputs.
        response = await treq.get(self.base + "/api/v1/mounts/live", auth=("admin", "hackme"), reactor=reactor,
                                  persistent=False)
        data = (await response.json())["data"]
        self.assertEqual([(o["mount"], o["format"], o["running"], o["live"]) for o in data["transcoding"]],
                         [("/live-320", "mp3", True, True), ("/live-64", "aac", True, True),
                          ("/live-48", "opus", True, True), ("/live-32", "aac", False, False)])

        # ffmpeg is killed: it comes back, and the listeners never notice more than a gap.
        [ffmpeg] = children_named(self.server.transport.pid, "ffmpeg")
        os.kill(ffmpeg, signal.SIGKILL)
        await eventually(reactor, lambda: b"transcoder.restarted" in self.server.output, timeout=20,
                         what="the transcoder restarted")
        await self.still_listening(listeners, "after the restart")
        response = await treq.get(self.base + "/metrics", reactor=reactor, persistent=False)
        metrics = await response.text()
        self.assertIn('gocast_transcoder_restarts_total{mount="/live"} 1.0', metrics)
        cpu = re.search(r'gocast_transcoder_cpu_seconds_total\{mount="/live"\} (\S+)', metrics)
        self.assertGreater(float(cpu.group(1)), 0.0, metrics)

        # The source leaves; the fallback's audio is transcoded for the same listeners.
        self.source("mp3", "/backup", frequency=880)
        await wait_for_source(reactor, self.base, "/backup", self.server)
        await self.live.stop()
        await eventually(reactor, lambda: b"source.fallback /live" in self.server.output, timeout=20,
                         what="the fallback taking over")
        await self.still_listening(listeners, "from the fallback")
        await self.decodes("/live-64")

    async def test_the_roadmaps_snippet_as_written(self):
        snippet = Path(__file__).resolve().parent.parent / "roadmap" / "14-mounts-transcoding.vibe"
        self.server, self.base = await start_server(self, reactor, snippet.read_text())
        self.source("aac")
        for mount in ("/live-320", "/live-128", "/live-64"):
            await wait_for_source(reactor, self.base, mount, self.server, timeout=30)
            await self.decodes(mount)

    async def test_aac_source_ladder_and_an_output_on_demand(self):
        await self.ladder("aac")
        await self.decodes("/live-32")  # its ffmpeg starts for this listener, who waits for its audio

    async def test_opus_source_ladder(self):
        await self.ladder("ogg")


