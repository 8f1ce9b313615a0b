"""
Relays between real servers on loopback: GoCast pulling from GoCast and
from Debian's Icecast 2.4 (static relays and master mode), Icecast pulling
from GoCast (<relay> and <master-server>), with real ffmpeg sources and
listeners, metadata changes crossing the relay, and a relay's listeners
kept on the fallback while its upstream is away.
"""

import json

import treq
from twisted.internet import reactor, task
from twisted.trial.unittest import TestCase

from ._icecast import PASSWORD, RELAY_PASSWORD, start_icecast, wait_for_icecast_mount
from ._process import eventually, raw_request, spawn_tool, start_server, wait_for_http, wait_for_source

MP3 = ["-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "sine=frequency=%d",
       "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3", "-content_type", "audio/mpeg"]


def mp3_source(testcase, base, mount, frequency=440):
    args = [a % frequency if "%d" in a else a for a in MP3]
    url = "icecast://source:%s@%s%s" % (PASSWORD, base[len("http://"):], mount)
    return spawn_tool(testcase, reactor, ["ffmpeg"] + args + [url])


async def set_title(base, mount, song, user="admin"):
    response = await treq.get(base + "/admin/metadata", params={"mount": mount, "mode": "updinfo", "song": song},
                              auth=(user, PASSWORD), reactor=reactor, persistent=False)
    await response.content()
    assert response.code == 200, response.code


async def listen(testcase, base, mount):
    return await raw_request(testcase, reactor, base,
                             ("GET %s HTTP/1.0\r\nIcy-MetaData: 1\r\nUser-Agent: test\r\n\r\n" % mount).encode())


async def sees_title(testcase, base, mount, listener, song, upstream, upstream_mount):
    """A title set on the upstream reaches the relay's listener, in its ICY metadata."""
    expected = ("StreamTitle='%s';" % song).encode()
    await set_title(upstream, upstream_mount, song)
    await eventually(reactor, lambda: expected in listener.data, timeout=30,
                     what="%r at %s%s" % (song, base, mount))


async def both_relays_hear(testcase, base, static_mount, song, upstream):
    """A title set on the upstream's /live reaches listeners of its static relay and of its master-mode relay."""
    static = await listen(testcase, base, static_mount)
    mastered = await listen(testcase, base, "/live")
    await sees_title(testcase, base, static_mount, static, song, upstream, "/live")
    await eventually(reactor, lambda: ("StreamTitle='%s';" % song).encode() in mastered.data, timeout=30,
                     what="the title on the master-mode relay")


async def keeps_receiving(client, seconds):
    """Bytes arrive in every one-second window for ``seconds`` seconds."""
    for _ in range(int(seconds)):
        before = len(client.data)
        await task.deferLater(reactor, 1.0, lambda: None)
        assert not client.closed.called, "the listener was disconnected"
        assert len(client.data) > before, "no bytes for a second"


async def decodes(testcase, url, seconds=2):
    """Real ffmpeg, as a listener, decodes ``seconds`` of audio from ``url``."""
    player = spawn_tool(testcase, reactor, ["ffmpeg", "-hide_banner", "-loglevel", "error", "-t", str(seconds),
                                            "-i", url, "-f", "null", "-"])
    code, _ = await player.ended
    testcase.assertEqual(code, 0, player.output.decode())


async def gocast_status(base, process):
    _, body = await wait_for_http(reactor, base + "/status-json.xsl", process)
    sources = json.loads(body)["icestats"].get("source", [])
    return {s["listenurl"].rsplit("/", 1)[1]: s for s in ([sources] if isinstance(sources, dict) else sources)}


class GocastToGocastTests(TestCase):
    timeout = 180

    async def test_static_relay_with_fallback(self):
        primary, upstream = await start_server(self, reactor, "")
        source = mp3_source(self, upstream, "/live")
        relay, base = await start_server(self, reactor, """
            relays { main { url "%s/live" mount /relayed timeout 3s } }
            mounts { relayed { fallback /backup } backup { } }
        """ % upstream)
        mp3_source(self, base, "/backup", 220)
        await wait_for_source(reactor, upstream, "/live", primary)
        await wait_for_source(reactor, base, "/relayed", relay, timeout=30)
        await wait_for_source(reactor, base, "/backup", relay)
        await decodes(self, base + "/relayed")
        listener = await listen(self, base, "/relayed")
        await sees_title(self, base, "/relayed", listener, "Band - Relayed", upstream, "/live")
        status = await gocast_status(base, relay)
        self.assertEqual(status["relayed"]["title"], "Band - Relayed")

        # The upstream's source leaves: the relay's listener stays, on the fallback.
        await source.stop()
        await keeps_receiving(listener, 4)
        status = await gocast_status(base, relay)
        self.assertNotIn("relayed", status)
        self.assertEqual(status["backup"]["listeners"], 1)

        # It comes back: the relay reconnects, and the listener goes home.
        mp3_source(self, upstream, "/live", 660)
        await wait_for_source(reactor, base, "/relayed", relay, timeout=60)
        await eventually(reactor, lambda: b"relay.connected" in relay.output, what="the relay's event")

        async def home():
            status = await gocast_status(base, relay)
            return status.get("relayed", {}).get("listeners") == 1

        await eventually_async(home, "the listener back on /relayed")
        await keeps_receiving(listener, 2)

    async def test_master_mode(self):
        primary, upstream = await start_server(self, reactor, 'auth { relay_password "%s" }' % RELAY_PASSWORD)
        mp3_source(self, upstream, "/a")
        b_source = mp3_source(self, upstream, "/b", 330)
        relay, base = await start_server(self, reactor, """
            auth { relay_password "%s" }
            cluster { role relay primary "%s" update_interval 1s }
        """ % (RELAY_PASSWORD, upstream[len("http://"):]))
        await wait_for_source(reactor, base, "/a", relay, timeout=30)
        await wait_for_source(reactor, base, "/b", relay, timeout=30)
        listener = await listen(self, base, "/a")
        await sees_title(self, base, "/a", listener, "Master - Mode", upstream, "/a")
        await b_source.stop()

        async def dropped():
            return "b" not in await gocast_status(base, relay)

        await eventually_async(dropped, "/b gone from the relay")
        await eventually(reactor, lambda: b"primary %s lists 1 mounts: /a" % upstream[len("http://"):].encode()
                         in relay.output, what="the shorter stream list")

    async def test_wrong_relay_password_refused(self):
        primary, upstream = await start_server(self, reactor, 'auth { relay_password "%s" }' % RELAY_PASSWORD)
        response = await treq.get(upstream + "/admin/streamlist.txt", auth=("relay", "wrong"), reactor=reactor,
                                  persistent=False)
        await response.content()
        self.assertEqual(response.code, 401)
        relay, base = await start_server(self, reactor, """
            auth { relay_password wrong }
            cluster { role relay primary "%s" update_interval 1s }
        """ % upstream[len("http://"):])
        await eventually(reactor, lambda: b"the primary answered 401" in relay.output, what="the refusal logged")


async def eventually_async(check, what, timeout=60.0):
    deadline = reactor.seconds() + timeout
    while not await check():
        if reactor.seconds() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        await task.deferLater(reactor, 0.2, lambda: None)


class IcecastInteropTests(TestCase):
    timeout = 180

    async def test_gocast_relays_icecast(self):
        icecast, upstream, _ = await start_icecast(self, reactor)
        mp3_source(self, upstream, "/live")
        await wait_for_icecast_mount(reactor, upstream, icecast, "/live")
        relay, base = await start_server(self, reactor, """
            auth { relay_password "%s" }
            relays { static { url "%s/live" mount /static } }
            cluster { role relay primary "%s" update_interval 1s }
        """ % (RELAY_PASSWORD, upstream, upstream[len("http://"):]))
        await wait_for_source(reactor, base, "/static", relay, timeout=30)
        await wait_for_source(reactor, base, "/live", relay, timeout=30)  # master mode: Icecast's stream list
        await both_relays_hear(self, base, "/static", "Icecast - Upstream", upstream)
        await decodes(self, base + "/live")

    async def test_icecast_relays_gocast(self):
        primary, upstream = await start_server(self, reactor, 'auth { relay_password "%s" }' % RELAY_PASSWORD)
        mp3_source(self, upstream, "/live")
        await wait_for_source(reactor, upstream, "/live", primary)
        host, port = upstream[len("http://"):].split(":")
        icecast, base, logs = await start_icecast(self, reactor, """
          <master-server>%(host)s</master-server><master-server-port>%(port)s</master-server-port>
          <master-update-interval>1</master-update-interval>
          <master-username>relay</master-username><master-password>%(password)s</master-password>
          <relay><server>%(host)s</server><port>%(port)s</port><mount>/live</mount>
            <local-mount>/fromgocast</local-mount><relay-shoutcast-metadata>1</relay-shoutcast-metadata></relay>
        """ % dict(host=host, port=port, password=RELAY_PASSWORD))
        try:
            await wait_for_icecast_mount(reactor, base, icecast, "/fromgocast")
            await wait_for_icecast_mount(reactor, base, icecast, "/live")
        except AssertionError:
            raise AssertionError("%s\n%s" % (logs.child("error.log").getContent().decode(errors="replace")[-3000:],
                                             primary.output.decode()[-3000:]))
        await both_relays_hear(self, base, "/fromgocast", "GoCast - Upstream", upstream)
        await decodes(self, base + "/fromgocast")
