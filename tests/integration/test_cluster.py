"""
A cluster of real GoCast processes on loopback addresses (127.0.0.1 as
the primary in region us, 127.0.0.2 and 127.0.0.3 as relays in region
eu) meeting in a real redis-server: discovery, cascading, metadata across
two hops, kill -9 of upstreams while a listener keeps receiving audio,
a full relay redirecting, Redis stopped and started mid-stream, and node
pulls with a wrong token refused.
"""

import json
import os
import signal
import sys

import treq
from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from ._process import (ServerProcess, eventually, raw_request, spawn_tool, start_server, wait_for_http,
                       wait_for_source)
from ._redis import RedisServer
from .test_relay import decodes, eventually_async, keeps_receiving, listen, mp3_source, set_title

KEY = "gck_cluster-reader-key-0123456789"
NODE = """
api_keys { reader { key "%(key)s" permissions [read_stats] } }
cluster {
    role %(role)s  secret "s3cret-of-the-cluster"  advertise "{host}:{port}"  region %(region)s
    auto_relay true  heartbeat 500ms  node_timeout 2s  stall_timeout 3s  %(extra)s
    sync { enabled true  redis_url "%(redis)s"  status_totals true }
}
"""


async def start_node(testcase, redis, host, role, region, extra="", more="", server=""):
    return await start_server(testcase, reactor, NODE % dict(role=role, region=region, redis=redis.url,
                                                             extra=extra, key=KEY) + more, host=host,
                              server_extra="shutdown_timeout 2s " + server)


async def cluster_status(base):
    response = await treq.get(base + "/api/v1/cluster", auth=("admin", "hackme"), reactor=reactor,
                              persistent=False, timeout=5)
    body = await response.content()
    assert response.code == 200, body
    return json.loads(body)["data"]


async def upstream_of(base, mount):
    """The URL this node relays ``mount`` from, if it streams it."""
    relays = (await cluster_status(base))["relays"]
    return next((r["upstream"] for r in relays if r["mount"] == mount and r["state"] == "streaming"), None)


def kill_hard(process):
    """kill -9, as a crash would: no goodbye, its Redis record lingers until it expires."""
    os.kill(process.transport.pid, signal.SIGKILL)
    return process.ended


async def fallback_file(testcase):
    path = os.path.abspath(testcase.mktemp() + ".mp3")
    maker = spawn_tool(testcase, reactor, ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                                           "anoisesrc=d=5:a=0.1", "-c:a", "libmp3lame", "-b:a", "128k", path])
    code, _ = await maker.ended
    assert code == 0, maker.output
    return path


class ClusterTests(TestCase):
    timeout = 240

    async def test_discovery_cascade_failover_and_redirect(self):
        redis = RedisServer(self, reactor)
        await redis.start()
        primary, origin = await start_node(self, redis, "127.0.0.1", "primary", "us")
        mp3_source(self, origin, "/live")
        await wait_for_source(reactor, origin, "/live", primary)
        relay1, r1 = await start_node(self, redis, "127.0.0.2", "relay", "eu")
        await wait_for_source(reactor, r1, "/live", relay1, timeout=30)
        self.assertEqual(await upstream_of(r1, "/live"), origin + "/live")
        backup = await fallback_file(self)
        relay2, r2 = await start_node(self, redis, "127.0.0.3", "relay", "eu", extra="max_listeners 1",
                                      more='mounts { live { fallback { file "%s" } } }' % backup)
        await wait_for_source(reactor, r2, "/live", relay2, timeout=30)

        async def cascades():
            return await upstream_of(r2, "/live") == r1 + "/live"

        await eventually_async(cascades, "the second relay relaying the first (its own region)")

        async def chained():
            status = await cluster_status(r2)
            mounts = {n["id"]: n["mounts"] for n in status["nodes"]}.get(r2[len("http://"):])
            return status["redis"]["connected"] and mounts and mounts[0]["via"] == [origin[7:], r1[7:]]

        await eventually_async(chained, "the chain primary -> relay 1 -> relay 2 in Redis")

        listener = await listen(self, r2, "/live")
        await set_title(origin, "/live", "Two - Hops")
        await eventually(reactor, lambda: b"StreamTitle='Two - Hops';" in listener.data, timeout=30,
                         what="the primary's title two hops away")
        await decodes(self, r2 + "/live")

        # Full: the next listener is sent to the sibling of its region.
        refused = await raw_request(self, reactor, r2, b"GET /live HTTP/1.0\r\n\r\n")
        await eventually(reactor, lambda: b"\r\n\r\n" in refused.data, what="the redirect")
        self.assertIn(b"302 Found", bytes(refused.data))
        self.assertIn(("Location: %s/live" % r1).encode(), bytes(refused.data))

        # The upstream relay crashes: the listener stays, fed by the primary within the second.
        await kill_hard(relay1)
        await keeps_receiving(listener, 4)

        async def from_origin():
            return await upstream_of(r2, "/live") == origin + "/live"

        await eventually_async(from_origin, "failover to the primary", timeout=15)
        self.assertIn(b"relay.failover", relay2.output)

        # The primary crashes too: nothing carries /live any more; the fallback file plays.
        await kill_hard(primary)
        await keeps_receiving(listener, 4)
        self.assertFalse(listener.closed.called)

    async def test_redis_goes_away_mid_stream(self):
        redis = RedisServer(self, reactor)
        await redis.start()
        primary, origin = await start_node(self, redis, "127.0.0.1", "primary", "us")
        mp3_source(self, origin, "/live")
        relay, base = await start_node(self, redis, "127.0.0.2", "relay", "eu")
        await wait_for_source(reactor, base, "/live", relay, timeout=30)
        listener = await listen(self, base, "/live")
        await keeps_receiving(listener, 1)

        async def one_leader():
            leaders = {(await cluster_status(b))["leader"] for b in (origin, base)}
            return len(leaders) == 1 and leaders <= {origin[7:], base[7:]}

        await eventually_async(one_leader, "one leader, the same for both nodes")

        async def station_total():
            _, body = await wait_for_http(reactor, origin + "/status-json.xsl", primary)
            return json.loads(body)["icestats"]["source"]["listeners"] == 1  # the relay's listener

        await eventually_async(station_total, "the primary counting the relay's listener (status_totals)")

        await redis.stop()
        await keeps_receiving(listener, 4)

        async def noticed():
            return (await cluster_status(base))["redis"]["error"] is not None

        await eventually_async(noticed, "the relay noticing Redis is gone")
        self.assertEqual(await upstream_of(base, "/live"), origin + "/live")  # kept what it had

        await redis.start()

        async def back():
            status = await cluster_status(base)
            return status["redis"]["connected"] and len(status["nodes"]) == 2

        async def subscribed():
            return all([(await cluster_status(b))["redis"]["subscribed"] for b in (origin, base)])

        await eventually_async(back, "both nodes back in Redis", timeout=30)
        await eventually_async(subscribed, "both nodes subscribed again (now-playing reaches them)", timeout=15)
        await eventually_async(one_leader, "one leader again after Redis came back (its lease was lost with it)")
        await keeps_receiving(listener, 1)

        async def primary_title():
            _, body = await wait_for_http(reactor, origin + "/status-json.xsl", primary)
            return json.loads(body)["icestats"]["source"].get("title") == "After - Restart"

        await set_title(base, "/live", "After - Restart")  # on the relay: pub/sub subscribed again
        await eventually_async(primary_title, "the relay's title on the primary after Redis restarted", timeout=15)
        self.assertIn(b"is back", relay.output)
        metrics = await (await treq.get(base + "/metrics", reactor=reactor, persistent=False)).text()
        node = base[len("http://"):]
        self.assertIn('gocast_cluster_nodes{node="%s"} 2.0' % node, metrics)  # each node's figures labelled
        self.assertIn('gocast_relay_connected{mount="/live",node="%s",upstream="%s/live"} 1.0' % (node, origin),
                      metrics)

        cli = ServerProcess.spawn(reactor, [sys.executable, "-m", "gocast", "cluster", "status"], env=dict(
            os.environ, GOCAST_URL=base, GOCAST_API_KEY=KEY, GOCAST_CLIENT_CONFIG="/nonexistent"))
        self.addCleanup(cli.stop)
        code, _ = await cli.ended
        printed = cli.output.decode()
        self.assertEqual(code, 0, printed)
        self.assertIn("cluster: node %s (relay, region eu); Redis %s: connected" % (base[7:], redis.url), printed)
        self.assertIn("/live\t%s/live\tcluster\tstreaming" % origin, printed)

        # A pull that claims to be a node with a wrong token is refused like a wrong password.
        forged = await raw_request(self, reactor, origin,
                                   b"GET /live HTTP/1.0\r\nX-GoCast-Cluster: bm9kZQ.9999999999.forged\r\n\r\n")
        await forged.closed
        self.assertTrue(bytes(forged.data).startswith(b"HTTP/1.0 401"), bytes(forged.data)[:200])

    async def test_starts_standalone_without_redis(self):
        redis = RedisServer(self, reactor)  # never started: nothing listens on its port
        node, base = await start_node(self, redis, "127.0.0.2", "primary", "eu")
        mp3_source(self, base, "/live")
        await wait_for_source(reactor, base, "/live", node)
        await eventually(reactor, lambda: b"is unreachable" in node.output, what="the reason logged")
        status = await cluster_status(base)
        self.assertFalse(status["redis"]["connected"])
