"""
Listener auth against a real GoCast, with real parts: ffmpeg as source and
as ICY and HLS listener, raw sockets, tokens signed here (HS256, and RS256
with a JWKS served by a local twisted.web server), a local callback server
for ``http`` and Icecast ``url`` auth (and a slow one), and a users file
written by Apache's ``htpasswd -B``.
"""

import base64
import json
import os
import signal
import time
from urllib.parse import parse_qs

import jwt
import treq
from cryptography.hazmat.primitives.asymmetric import rsa
from twisted.internet import defer, reactor, task
from twisted.protocols.policies import WrappingFactory
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from ._process import ServerProcess, eventually, raw_request, spawn_tool, start_server, tool, wait_for_source
from .test_hls import MP3, TONE

SECRET = "integration-secret-of-32-bytes!!"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Backend(Resource):
    """The operator's auth service: /http (JSON), /slow (never answers), /icecast (form), /jwks.json."""

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.calls = []
        self.held = []

    def render_GET(self, request):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key()))
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"keys": [dict(jwk, kid="idp-1", alg="RS256", use="sig")]}).encode()

    def render_POST(self, request):
        path = request.path.decode()
        body = request.content.read()
        if path == "/slow":
            self.held.append(request)
            request.notifyFinish().addErrback(lambda _: self.held.remove(request))
            return NOT_DONE_YET
        if path == "/http":
            sent = json.loads(body)
            self.calls.append(("http", sent))
            if sent["token"] != "letmein":
                request.setResponseCode(403)
                return b"no"
            request.setHeader(b"content-type", b"application/json")
            return json.dumps({"listener_id": "cb-%s" % sent["client"]}).encode()
        form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        self.calls.append(("icecast", form))
        if form["action"] == "listener_add":
            if (form["user"], form["pass"]) == ("alice", "wonderland"):
                request.setHeader(b"icecast-auth-user", b"1")
            else:
                request.setHeader(b"icecast-auth-message", b"Unknown subscriber")
        return b""


def hs256(**claims):
    return jwt.encode(dict({"exp": int(time.time()) + 600}, **claims), SECRET, algorithm="HS256")


def basic(user, password):
    return "Authorization: Basic %s\r\n" % base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


class ListenerAuthTests(TestCase):
    timeout = 180

    def backend(self):
        """The auth service on a free loopback port; its connections closed at cleanup."""
        self.service = Backend()
        factory = WrappingFactory(Site(self.service))
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")

        async def stop():
            for request in self.service.held:
                request.finish()
            await port.stopListening()
            for proto in list(factory.protocols):
                proto.transport.abortConnection()
            await eventually(reactor, lambda: not factory.protocols, 10, "backend connections closed")

        self.addCleanup(lambda: defer.ensureDeferred(stop()))
        return "http://127.0.0.1:%d" % port.getHost().port

    def users_file(self):
        """A users file written by the real htpasswd (bcrypt)."""
        path = FilePath(self.mktemp())
        path.parent().makedirs(ignoreExistingDirectory=True)
        process = ServerProcess.spawn(reactor, [tool("htpasswd"), "-B", "-C", "5", "-b", "-c", path.path,
                                                "bob", "builder"])
        return path.path, process.ended

    async def start(self, mounts, server_extra=""):
        self.server, self.base = await start_server(self, reactor, mounts,
                                                    "shutdown_timeout 2s " + server_extra)
        self.hostport = self.base[len("http://"):]
        for mount in ("live", "token"):
            spawn_tool(self, reactor, ["ffmpeg"] + TONE + MP3 + ["icecast://source:hackme@%s/%s"
                                                                  % (self.hostport, mount)])
            await wait_for_source(reactor, self.base, "/" + mount, self.server)

    async def request(self, target, extra="", wait=1.0):
        """A raw GET; the bytes received within ``wait`` seconds (or until the server closed)."""
        client = await raw_request(self, reactor, self.base,
                                   ("GET %s HTTP/1.0\r\nUser-Agent: raw-test\r\n%s\r\n" % (target, extra)).encode())
        settled = defer.Deferred()

        def settle(result=None):
            if not settled.called:
                settled.callback(None)
            return result

        timer = reactor.callLater(wait, settle)
        client.closed.addBoth(settle)
        await settled
        if timer.active():
            timer.cancel()
        return client

    def status(self, client):
        return bytes(client.data).split(b"\r\n", 1)[0].decode()

    async def ffmpeg_plays(self, url, seconds=3):
        player = spawn_tool(self, reactor, ["ffmpeg", "-v", "error", "-i", url, "-t", str(seconds), "-f", "null",
                                            "-"])
        code, _ = await player.ended
        return code, player.output.decode()

    async def test_every_backend(self):
        backend = self.backend()
        users, written = self.users_file()
        await written
        await self.start("""mounts {
            live { }
            token { hls { enabled true segment_duration 2 } auth { type token secret "%s" } }
            idp { fallback /live auth { type token jwks_url "%s/jwks.json" } }
            callback { fallback /live auth { type http url "%s/http" } }
            slow { fallback /live auth { type http url "%s/slow" timeout 1s } }
            icecast { fallback /live auth { type url url "%s/icecast" } }
            members { fallback /live auth { type basic users_file "%s" } }
            lan { fallback /live auth { type ip allowed [127.0.0.0/8 "::1"] } }
            wan { fallback /live auth { type ip denied [127.0.0.1] } }
        }""" % (SECRET, backend, backend, backend, backend, users))

        # token (HS256): ffmpeg plays with ?token=, a raw client without one gets a 401.
        player_token = hs256(listener_id="ff")
        self.assertEqual(await self.ffmpeg_plays(self.base + "/token?token=" + player_token), (0, ""))
        refused = await self.request("/token")
        self.assertEqual(self.status(refused), "HTTP/1.0 401 Unauthorized")
        self.assertIn(b"WWW-Authenticate: Bearer", refused.data)
        expired = await self.request("/token?token=" + hs256(exp=int(time.time()) - 3600))
        self.assertIn(b"token expired", expired.data)
        # HLS: playlist and segments, the token carried on segment URLs.
        self.assertEqual(await self.ffmpeg_plays(self.base + "/hls/token/playlist.m3u8?token=" + hs256(), 6),
                         (0, ""))
        self.assertEqual(self.status(await self.request("/hls/token/playlist.m3u8")),
                         "HTTP/1.0 401 Unauthorized")

        # token (RS256 through the JWKS the identity provider serves).
        signed = jwt.encode({"exp": int(time.time()) + 600, "listener_id": "rs"}, RSA_KEY, algorithm="RS256",
                            headers={"kid": "idp-1"})
        self.assertIn(b" 200 OK", (await self.request("/idp?token=" + signed)).data)
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode({"listener_id": "x"}, other, algorithm="RS256", headers={"kid": "idp-1"})
        self.assertEqual(self.status(await self.request("/idp?token=" + forged)), "HTTP/1.0 401 Unauthorized")

        # http callback: what it is sent, and its answer.
        self.assertIn(b" 200 OK", (await self.request("/callback?token=letmein")).data)
        self.assertEqual(self.status(await self.request("/callback", "Authorization: Bearer nope\r\n")),
                         "HTTP/1.0 403 Forbidden")
        _, first = self.service.calls[0]
        self.assertEqual((first["ip"], first["mount"], first["user_agent"], first["token"]),
                         ("127.0.0.1", "/callback", "raw-test", "letmein"))
        self.assertEqual(self.service.calls[1][1]["token"], "nope")
        # A callback that never answers: denied after its 1 s timeout.
        started = reactor.seconds()
        slow = await self.request("/slow", wait=10)
        self.assertEqual(self.status(slow), "HTTP/1.0 403 Forbidden")
        self.assertLess(reactor.seconds() - started, 4)
        await eventually(reactor, lambda: not self.service.held, 5, "GoCast to hang up on the slow callback")

        # Icecast url auth: listener_add with the credentials; listener_remove once the listener leaves.
        self.service.calls.clear()
        admitted = await self.request("/icecast", basic("alice", "wonderland"))
        self.assertIn(b" 200 OK", admitted.data)
        admitted.transport.loseConnection()
        await eventually(reactor, lambda: len(self.service.calls) == 2, what="listener_remove")
        add, remove = [form for _, form in self.service.calls]
        self.assertEqual((add["action"], add["user"], add["pass"], add["mount"]),
                         ("listener_add", "alice", "wonderland", "/icecast"))
        self.assertEqual((remove["action"], remove["client"]), ("listener_remove", add["client"]))
        self.assertIn("duration", remove)
        refused = await self.request("/icecast", basic("alice", "wrong"))
        self.assertEqual(self.status(refused), "HTTP/1.0 401 Unauthorized")
        self.assertIn(b"Unknown subscriber", refused.data)

        # basic, from an htpasswd -B file: ffmpeg answers the challenge with the URL's credentials.
        host = self.hostport
        self.assertEqual(await self.ffmpeg_plays("http://bob:builder@%s/members" % host), (0, ""))
        self.assertEqual(self.status(await self.request("/members", basic("bob", "nope"))),
                         "HTTP/1.0 401 Unauthorized")

        # ip.
        self.assertIn(b" 200 OK", (await self.request("/lan")).data)
        self.assertEqual(self.status(await self.request("/wan")), "HTTP/1.0 403 Forbidden")

        # Listener lists name who authenticated (these listeners play /live, their fallback).
        response = await self.request("/admin/listclients?mount=/live", basic("admin", "hackme"))
        self.assertIn(b"<username>rs</username>", response.data)
        self.assertIn(b"<username>cb-", response.data)
        # Refusals are events; tokens and passwords never reach the log.
        self.assertIn(b"listener.denied", self.server.output)
        for secret in (player_token, signed, "letmein", "wonderland", "builder"):
            self.assertNotIn(secret.encode(), self.server.output)

    async def test_reload_and_trusted_proxies(self):
        mounts = 'mounts { live { } token { auth { type token secret "%s" } } ' \
                 'office { fallback /live auth { type ip allowed [203.0.113.0/24] } } }\n'
        await self.start(mounts % SECRET)
        spoofed = "X-Forwarded-For: 203.0.113.9\r\n"
        # Not from a trusted proxy: the header is ignored, the client is 127.0.0.1.
        self.assertEqual(self.status(await self.request("/office", spoofed)), "HTTP/1.0 403 Forbidden")
        connected = await self.request("/token?token=" + hs256(listener_id="stays"))
        self.assertIn(b" 200 OK", connected.data)

        new_secret = "another-secret-of-32-bytes-long!"
        head = self.server.config_head.replace("server {", "server { trusted_proxies [127.0.0.1]")
        FilePath(self.server.config_path).setContent((head + mounts % new_secret).encode())
        code, output = await self.gocast_reload()
        self.assertEqual(code, 0, output)
        # New listeners see the new settings...
        self.assertIn(b" 200 OK", (await self.request("/office", spoofed)).data)
        self.assertEqual(self.status(await self.request("/token?token=" + hs256())), "HTTP/1.0 401 Unauthorized")
        new_token = jwt.encode({"exp": int(time.time()) + 60}, new_secret, algorithm="HS256")
        self.assertIn(b" 200 OK", (await self.request("/token?token=" + new_token)).data)
        # ...and the one admitted before is still streaming.
        before = len(connected.data)
        await task.deferLater(reactor, 1.0, lambda: None)
        self.assertFalse(connected.closed.called)
        self.assertGreater(len(connected.data), before)
        # Refusals are in the access log too, with the address the trusted proxy vouched for.
        await self.request("/token", spoofed)
        self.assertIn(b'203.0.113.9 - - [', self.server.output)
        self.assertRegex(self.server.output.decode(), r'203\.0\.113\.9 - - \[[^]]+\] "GET /token HTTP/1.0" 401 ')

    async def gocast_reload(self):
        import sys

        process = ServerProcess.spawn(reactor, [sys.executable, "-m", "gocast.cli", "config", "reload",
                                                self.server.config_path],
                                      env={"GOCAST_CLIENT_CONFIG": "/nonexistent", "GOCAST_API_KEY": ""})
        self.addCleanup(process.stop)
        code, _ = await process.ended
        return code, process.output.decode()

    async def test_hls_player_is_one_icecast_url_listener(self):
        """Icecast url auth: an HLS player is added once, however many requests it makes, and removed once."""
        backend = self.backend()
        mounts = ('mounts { live { hls { enabled true segment_duration 2 } auth { type url url "%s" } } '
                  'token { } }\n')
        await self.start(mounts % (backend + "/icecast"))
        player = spawn_tool(self, reactor, [
            "ffmpeg", "-v", "error", "-headers", basic("alice", "wonderland"), "-live_start_index", "-1",
            "-i", self.base + "/hls/live/playlist.m3u8", "-t", "6", "-f", "null", "-"])
        code, _ = await player.ended
        self.assertEqual(code, 0, player.output)
        self.assertEqual([(form["action"], form["user"], form["mount"]) for _, form in self.service.calls],
                         [("listener_add", "alice", "/live")])
        # The backend's settings change: the player's visit ends, and the old backend is told.
        FilePath(self.server.config_path).setContent(
            (self.server.config_head + mounts % (backend + "/icecast?v=2")).encode())
        code, output = await self.gocast_reload()
        self.assertEqual(code, 0, output)
        await eventually(reactor, lambda: len(self.service.calls) == 2, what="listener_remove")
        add, remove = self.service.calls[0][1], self.service.calls[1][1]
        self.assertEqual((remove["action"], remove["user"]), ("listener_remove", "alice"))
        self.assertTrue(add["client"].isdigit(), add)  # the visit's ID, paired as for a connection
        self.assertEqual(remove["client"], add["client"])
        # Starting at the live edge, 6 s of audio take 4 s or more to arrive.
        self.assertGreaterEqual(int(remove["duration"]), 4, remove)

    async def test_shutdown_tells_icecast_url_auth_who_left(self):
        """On SIGTERM, the listeners still there at the end and the HLS players get their listener_remove."""
        backend = self.backend()
        await self.start('mounts { live { hls { enabled true segment_duration 2 } '
                         'auth { type url url "%s/icecast" } } token { } }\n' % backend)
        listener = await self.request("/live", basic("alice", "wonderland"))
        self.assertIn(b" 200 OK", listener.data)
        playlist = await treq.get(self.base + "/hls/live/playlist.m3u8", auth=("alice", "wonderland"),
                                  reactor=reactor, persistent=False)
        self.assertEqual(playlist.code, 200)
        await playlist.content()
        self.assertEqual([form["action"] for _, form in self.service.calls], ["listener_add"] * 2)
        os.kill(self.server.transport.pid, signal.SIGTERM)  # the listener stays: drained for 2 s, then closed
        code, _ = await self.server.ended
        self.assertEqual(code, 0, self.server.output.decode()[-2000:])
        added = sorted(form["client"] for _, form in self.service.calls if form["action"] == "listener_add")
        removed = sorted(form["client"] for _, form in self.service.calls if form["action"] == "listener_remove")
        self.assertEqual(removed, added)
