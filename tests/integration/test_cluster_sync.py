"""
The cluster as one station, with real processes: GoCast nodes on
127.0.0.1-3 meeting in a real redis-server, ffmpeg as the source and a
real webhook receiver. Now-playing set on one relay reaches listeners of
the primary and of the other relay, and webhooks once; the leader is
frozen with SIGSTOP, another takes over within the lease, the cluster's
events go out once, and the old leader wakes as a follower; keys, logins,
API mounts and failed logins are the cluster's; listeners are routed to
their region (GeoIP test database, X-Forwarded-For from a trusted proxy);
the roadmap's cluster block runs as written.
"""

import json
import os
import signal
import sys
from pathlib import Path

import treq
from twisted.internet import reactor, task
from twisted.trial.unittest import TestCase

from ..test_geo import geolite2
from ..test_georouting import BERLIN, NEW_YORK
from ._process import ServerProcess, eventually, raw_request, start_server, wait_for_source
from ._redis import RedisServer, port_is_free
from .test_cluster import KEY, cluster_status, start_node
from .test_observability import receive_webhooks
from .test_relay import eventually_async, keeps_receiving, listen, mp3_source, set_title

HOOK = """
webhooks { station { url "%s" retry 2 timeout 5s
    events [source.metadata cluster.node_joined cluster.node_left cluster.leader] } }
"""


async def three_nodes(testcase, hook_url):
    redis = RedisServer(testcase, reactor)
    await redis.start()
    nodes = []
    for host, role, region in (("127.0.0.1", "primary", "us"), ("127.0.0.2", "relay", "eu"),
                               ("127.0.0.3", "relay", "eu")):
        nodes.append(await start_node(testcase, redis, host, role, region, more=HOOK % hook_url))
    return redis, nodes


async def leader_of(bases):
    """The leader all of ``bases`` agree on, or None."""
    leaders = {(await cluster_status(base))["leader"] for base in bases}
    return leaders.pop() if len(leaders) == 1 else None


class ClusterSyncTests(TestCase):
    timeout = 240

    async def test_metadata_from_a_relay_reaches_every_node_once(self):
        receiver, hook_url = await receive_webhooks(self, fail_first=False)
        _, [(primary, origin), (relay1, r1), (relay2, r2)] = await three_nodes(self, hook_url)
        mp3_source(self, origin, "/live")
        await wait_for_source(reactor, origin, "/live", primary)
        await wait_for_source(reactor, r1, "/live", relay1, timeout=30)
        await wait_for_source(reactor, r2, "/live", relay2, timeout=30)
        at_primary, at_relay2 = await listen(self, origin, "/live"), await listen(self, r2, "/live")
        await keeps_receiving(at_relay2, 1)

        await set_title(r1, "/live", "Relay - Made")  # the admin of relay 1, not the primary's
        started = reactor.seconds()
        title = b"StreamTitle='Relay - Made';"
        await eventually(reactor, lambda: title in at_primary.data and title in at_relay2.data, timeout=10,
                         what="the title set on relay 1 at listeners of the primary and of relay 2")
        took = reactor.seconds() - started
        statuses = [await cluster_status(b) for b in (origin, r1, r2)]
        self.assertTrue(all(s["redis"]["connected"] for s in statuses))

        async def delivered():
            return [d for d in receiver.events("source.metadata") if d[1]["data"]["song"] == "Relay - Made"]

        await eventually_async(lambda: _truthy(delivered()), "the metadata webhook")
        await keeps_receiving(at_primary, 2)  # time for any duplicate to arrive
        deliveries = await delivered()
        self.assertEqual(len(deliveries), 1, deliveries)
        self.assertNotIn("from_node", deliveries[0][1]["data"])

        # The station's count, asked of relay 1 (which has no listener): one on the primary, one on relay 2.
        async def station_has(count):
            totals = (await cluster_status(r1))["totals"]
            return totals["listeners"] == count and totals["mounts"].get("/live", 0) == count

        await eventually_async(lambda: station_has(2), "two listeners on two other nodes", timeout=15)
        at_relay2.transport.loseConnection()
        await eventually_async(lambda: station_has(1), "relay 2's listener gone from the total", timeout=10)
        print("metadata from relay 1 reached the primary's and relay 2's listeners in %.2fs" % took)

    async def test_leader_frozen_another_takes_over_and_events_go_out_once(self):
        receiver, hook_url = await receive_webhooks(self, fail_first=False)
        _, nodes = await three_nodes(self, hook_url)
        bases = [base for _, base in nodes]
        ids = [base[len("http://"):] for base in bases]

        async def agreed():
            return await leader_of(bases) is not None

        await eventually_async(agreed, "one leader all nodes agree on")
        first = await leader_of(bases)

        def joined():
            return sorted(d["data"]["node"] for _, d in receiver.events("cluster.node_joined"))

        await eventually(reactor, lambda: joined() == sorted(ids), timeout=15, what="three joins, once each")
        frozen, frozen_base = nodes[ids.index(first)]
        others = [b for b in bases if b != frozen_base]
        os.kill(frozen.transport.pid, signal.SIGSTOP)
        self.addCleanup(lambda: frozen.ended.called or os.kill(frozen.transport.pid, signal.SIGCONT))
        stopped = reactor.seconds()

        async def taken_over():
            leader = await leader_of(others)
            return leader not in (None, first)

        await eventually_async(taken_over, "another node leading", timeout=20)
        took = reactor.seconds() - stopped
        second = await leader_of(others)

        def left():
            return [d["data"]["node"] for _, d in receiver.events("cluster.node_left")]

        await eventually(reactor, lambda: left(), timeout=15, what="the frozen node's departure announced")

        os.kill(frozen.transport.pid, signal.SIGCONT)
        resumed = len(receiver.deliveries)

        async def follows():
            status = await cluster_status(frozen_base)
            return not status["is_leader"] and status["leader"] == second and len(status["nodes"]) == 3

        await eventually_async(follows, "the old leader following the new one", timeout=20)
        await eventually(reactor, lambda: joined().count(first) == 2, timeout=15, what="its return announced")
        await task.deferLater(reactor, 2.0, lambda: None)  # time for a duplicate to arrive, if one would

        self.assertEqual(left(), [first])
        deliveries = [headers["x-gocast-delivery"] for headers, _ in receiver.deliveries]
        self.assertEqual(len(deliveries), len(set(deliveries)))
        cluster_events = [(h.get("x-gocast-node"), json.loads(body)) for h, body in receiver.deliveries
                          if json.loads(body)["event"].startswith("cluster.")]
        self.assertFalse([e for node, e in cluster_events[resumed:] if node == first],
                         "the old leader delivered cluster events after it woke")
        leads = [(node, e["data"]["node"]) for node, e in cluster_events if e["event"] == "cluster.leader"]
        self.assertEqual(leads, [(first, first), (second, second)])
        self.assertIn(b"stops leading", frozen.output)
        print("leader frozen with SIGSTOP: %s took over in %.1fs (lease 2s, heartbeat 0.5s)" % (second, took))


    async def test_listeners_routed_to_their_region(self):
        redis = RedisServer(self, reactor)
        await redis.start()
        routed = dict(extra='routing { enabled true  overrides { "10.20.0.0/16" eu } }',
                      more='geoip { enabled true  database "%s" }' % geolite2(), server="trusted_proxies [127.0.0.1]")
        primary, origin = await start_node(self, redis, "127.0.0.1", "primary", "us", **routed)
        relay, eu = await start_node(self, redis, "127.0.0.2", "relay", "eu", **routed)
        mp3_source(self, origin, "/live")
        await wait_for_source(reactor, eu, "/live", relay, timeout=30)

        async def sees_eu():
            return any(n["region"] == "eu" and n["mounts"] for n in (await cluster_status(origin))["nodes"])

        await eventually_async(sees_eu, "the primary seeing the EU node carry /live")

        # A German listener (its address passed by a trusted proxy) is sent to the EU node, path and query kept.
        answer = await ask(self, origin, "/live?token=t1", BERLIN)
        self.assertIn(b"302 Found", answer)
        location = "%s/live?token=t1&gocast_hop=1" % eu
        self.assertIn(("Location: %s\r\n" % location).encode(), answer)
        there = await raw_request(self, reactor, eu, b"GET /live?token=t1&gocast_hop=1 HTTP/1.0\r\n\r\n")
        await keeps_receiving(there, 2)
        self.assertIn(b"200 OK", await ask(self, origin, "/live", NEW_YORK))
        self.assertIn(("Location: %s/live?gocast_hop=1" % eu).encode(), await ask(self, origin, "/live", "10.20.3.4"))
        playlist = await ask(self, origin, "/hls/live/playlist.m3u8?token=t2", BERLIN)
        self.assertIn(("Location: %s/hls/live/playlist.m3u8?token=t2&gocast_hop=1" % eu).encode(), playlist)
        route = await api_get(origin, "/api/v1/cluster/route?ip=%s&mount=/live" % BERLIN)
        self.assertEqual((route["node"], route["country"], route["region"]), (eu[7:], "DE", "eu"))
        cli = ServerProcess.spawn(reactor, [sys.executable, "-m", "gocast", "cluster", "route", BERLIN, "live",
                                            "--json"],
                                  env=dict(os.environ, GOCAST_URL=origin, GOCAST_API_KEY=KEY,
                                           GOCAST_CLIENT_CONFIG="/nonexistent"))
        self.addCleanup(cli.stop)
        code, _ = await cli.ended
        self.assertEqual((code, json.loads(cli.output)["node"]), (0, eu[7:]), cli.output)

        # The EU node stops: once its record is gone, Germans are served where they ask.
        await relay.stop()

        async def served_here():
            return b"200 OK" in await ask(self, origin, "/live", BERLIN)

        await eventually_async(served_here, "the primary serving a German listener itself", timeout=20)


    async def test_keys_logins_mounts_and_failed_logins_are_the_clusters(self):
        _, nodes = await three_nodes(self, "http://127.0.0.1:9/unused")
        (_, a), (_, b), (_, c) = nodes

        async def joined():
            return [len((await cluster_status(base))["nodes"]) for base in (a, b, c)] == [3, 3, 3]

        await eventually_async(joined, "three nodes")
        created = await api_call(a, "POST", "/api/v1/keys", {"name": "ci", "permissions": ["read_stats"]}, 201)
        secret = created["key"]
        self.assertEqual(await key_answers(c, secret), 200)  # made on a, works on c at once
        await api_call(c, "DELETE", "/api/v1/keys/" + created["id"], None, 200)
        revoked = reactor.seconds()

        async def refused_on_a():
            return await key_answers(a, secret) == 401

        await eventually_async(refused_on_a, "the key revoked on c refused on a", timeout=5)
        took = reactor.seconds() - revoked
        self.assertLess(took, 1.0)

        await api_call(a, "POST", "/api/v1/mounts", {"name": "talk", "config": {"max_listeners": 3}}, 201)
        mount = await api_call(b, "GET", "/api/v1/mounts/talk", None, 200)
        self.assertEqual((mount["origin"], mount["max_listeners"]), ("api", 3))

        response = await treq.post(b + "/admin/dashboard/login", json={"user": "admin", "password": "hackme"},
                                   reactor=reactor, persistent=False)
        await response.content()
        cookie = response.headers.getRawHeaders("set-cookie")[0].split(";")[0]
        session = await treq.get(c + "/admin/dashboard/session", headers={"Cookie": cookie}, reactor=reactor,
                                 persistent=False)
        self.assertEqual(session.code, 200, await session.content())

        # Wrong passwords spread over two nodes: the third refuses the address too (last: it blocks this process).
        for index in range(10):
            wrong = await treq.get((a, b)[index % 2] + "/api/v1/stats", auth=("admin", "wrong"), reactor=reactor,
                                   persistent=False)
            await wrong.content()

        async def blocked_on_c():
            right = await treq.get(c + "/api/v1/stats", auth=("admin", "hackme"), reactor=reactor, persistent=False)
            await right.content()
            return right.code == 429

        await eventually_async(blocked_on_c, "the third node refusing the address", timeout=5)
        print("a key revoked on one node was refused on another %.2fs later" % took)

    async def test_the_roadmap_snippet_as_written(self):
        """The roadmap's cluster { sync { ... } } block, unchanged, on two nodes and the Redis it names."""
        snippet = (Path(__file__).parent.parent / "roadmap" / "19-cluster.vibe").read_text()
        self.assertIn('redis_url "redis://localhost:6379"', snippet)
        if port_is_free(6379):
            redis = RedisServer(self, reactor, port=6379)
        else:  # a Redis of this machine's own is there: leave it alone, and change only the port
            redis = RedisServer(self, reactor)
            snippet = snippet.replace("localhost:6379", "localhost:%d" % redis.port)
        await redis.start()
        (_, a), (_, b) = [await start_server(self, reactor, snippet, host=host)
                          for host in ("127.0.0.2", "127.0.0.3")]

        async def one_cluster():
            statuses = [await cluster_status(base) for base in (a, b)]
            return ([len(s["nodes"]) for s in statuses] == [2, 2] and statuses[0]["leader"] is not None
                    and statuses[0]["leader"] == statuses[1]["leader"])

        await eventually_async(one_cluster, "two nodes and one leader, from the roadmap's block")
        status = await cluster_status(a)
        self.assertEqual((status["id"], status["role"], status["redis"]["connected"]), (a[7:], "primary", True))
        created = await api_call(a, "POST", "/api/v1/keys", {"name": "ci", "permissions": ["read_stats"]}, 201)
        self.assertEqual(await key_answers(b, created["key"]), 200)

async def ask(testcase, base, target, address):
    """The head of the answer to a listener at ``address``, behind the trusted proxy (this process)."""
    client = await raw_request(testcase, reactor, base, ("GET %s HTTP/1.0\r\nX-Forwarded-For: %s\r\n\r\n"
                                                        % (target, address)).encode())
    await eventually(reactor, lambda: b"\r\n\r\n" in client.data, what="the answer's head")
    client.transport.loseConnection()
    return bytes(client.data).partition(b"\r\n\r\n")[0] + b"\r\n"


async def api_get(base, path):
    return await api_call(base, "GET", path, None, 200)


async def api_call(base, method, path, body, status):
    response = await treq.request(method, base + path, json=body, auth=("admin", "hackme"), reactor=reactor,
                                  persistent=False, timeout=5)
    answer = await response.content()
    assert response.code == status, (response.code, answer)
    return json.loads(answer)["data"]


async def key_answers(base, secret):
    response = await treq.get(base + "/api/v1/stats", headers={"Authorization": "Bearer " + secret},
                              reactor=reactor, persistent=False, timeout=5)
    await response.content()
    return response.code


async def _truthy(awaitable):
    return bool(await awaitable)
