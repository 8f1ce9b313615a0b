"""
Listener auth backends and the gate, without sockets: JWTs signed here,
callbacks answered by twisted.web resources through StubTreq, time from a
Clock.
"""

import base64
import hashlib
import json
import time
from urllib.parse import parse_qs

import bcrypt
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from treq.testing import StubTreq
from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.task import Clock
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from zope.interface.verify import verifyObject

from gocast.auth.base import AuthRequest, AuthSetupError, IAuthenticator, credentials
from gocast.auth.basic import BasicAuthenticator, read_htpasswd
from gocast.auth.callback import HLS_IDLE, HttpAuthenticator, IcecastUrlAuthenticator
from gocast.auth.gate import ListenerGate
from gocast.auth.ip import IpAuthenticator
from gocast.auth.token import JWKS_MIN_INTERVAL, TokenAuthenticator
from gocast.config import parse_config
from gocast.core.throttle import FAILURE_LIMIT, AuthFailures
from gocast.outbound import OutboundHttp

SECRET = "a-test-secret-of-thirty-two-bytes!"


def auth_config(block, mount="premium"):
    return parse_config("mounts { %s { auth { %s } } }" % (mount, block)).config.mounts["/" + mount].auth


def ask(mount="/premium", ip="198.51.100.7", token=None, user=None, password=None, protocol="icy", headers=None):
    """A listener's request; an ICY listener has a client ID (its connection's), an HLS player none."""
    return AuthRequest(mount, ip, "VLC/3.0", headers or {"user-agent": "VLC/3.0"}, token, user, password,
                       "12" if protocol == "icy" else None, protocol)


def result(d):
    """The result of a Deferred that must have fired."""
    out = []
    maybeDeferred(lambda: d).addBoth(out.append)
    assert out, "the decision is still pending"
    if hasattr(out[0], "raiseException"):
        out[0].raiseException()
    return out[0]


class CredentialsTests(SynchronousTestCase):
    def test_basic_bearer_and_junk(self):
        basic = "Basic " + base64.b64encode("alice:pa:ss wörd".encode()).decode()
        self.assertEqual(credentials(basic), ("alice", "pa:ss wörd", None))
        self.assertEqual(credentials("Bearer abc.def"), (None, None, "abc.def"))
        self.assertEqual(credentials("Basic !!!"), (None, None, None))
        self.assertEqual(credentials("Basic " + base64.b64encode(b"nocolon").decode()), (None, None, None))
        self.assertEqual(credentials(None), (None, None, None))

    def test_query_token_wins_over_bearer(self):
        request = AuthRequest.build("/m", "1.2.3.4", {"authorization": "Bearer header"}, "query")
        self.assertEqual(request.token, "query")
        self.assertEqual(AuthRequest.build("/m", "1.2.3.4", {"authorization": "Bearer header"}, None).token,
                         "header")


class IpTests(SynchronousTestCase):
    def decide(self, block, ip):
        config = auth_config("type ip " + block)
        return IpAuthenticator(config.allowed, config.denied).authorize(ask(ip=ip))

    def test_allow_list_ipv4_and_ipv6(self):
        block = 'allowed [192.168.1.0/24 "2001:db8::/32"]'
        self.assertTrue(self.decide(block, "192.168.1.20").allowed)
        self.assertTrue(self.decide(block, "2001:db8::5").allowed)
        self.assertTrue(self.decide(block, "::ffff:192.168.1.20").allowed)
        refused = self.decide(block, "192.168.2.20")
        self.assertEqual((refused.allowed, refused.status), (False, 403))
        self.assertFalse(self.decide(block, "2001:db9::5").allowed)

    def test_denied_wins_and_empty_allow_list_allows_all(self):
        block = "allowed [192.168.1.0/24] denied [192.168.1.100]"
        self.assertFalse(self.decide(block, "192.168.1.100").allowed)
        self.assertTrue(self.decide(block, "192.168.1.101").allowed)
        self.assertTrue(self.decide('denied ["2001:db8::/32"]', "203.0.113.1").allowed)
        self.assertFalse(self.decide('denied ["2001:db8::/32"]', "2001:db8::1").allowed)

    def test_reason_does_not_say_which_list(self):
        self.assertEqual(self.decide("allowed [10.0.0.0/8]", "1.2.3.4").reason,
                         self.decide("denied [1.2.3.4]", "1.2.3.4").reason)


class BasicTests(SynchronousTestCase):
    def authenticator(self, users=None, users_file=""):
        return BasicAuthenticator(users or {}, users_file, "Members", maybeDeferred)

    def test_plain_users(self):
        basic = self.authenticator({"alice": "password123"})
        self.assertTrue(verifyObject(IAuthenticator, basic))
        allowed = result(basic.authorize(ask(user="alice", password="password123")))
        self.assertEqual((allowed.allowed, allowed.listener_id), (True, "alice"))
        wrong = result(basic.authorize(ask(user="alice", password="nope")))
        self.assertEqual((wrong.status, wrong.challenge), (401, 'Basic realm="Members", charset="UTF-8"'))
        unknown = result(basic.authorize(ask(user="mallory", password="password123")))
        self.assertEqual(unknown.reason, wrong.reason)
        self.assertEqual(result(basic.authorize(ask())).status, 401)

    def test_bcrypt_user_checked_in_a_thread_and_remembered(self):
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
        threads = []

        def in_thread(f, *args):
            threads.append(f)
            return maybeDeferred(f, *args)

        basic = BasicAuthenticator({"bob": hashed}, "", "GoCast", in_thread)
        self.assertTrue(result(basic.authorize(ask(user="bob", password="s3cret"))).allowed)
        self.assertTrue(result(basic.authorize(ask(user="bob", password="s3cret"))).allowed)
        self.assertEqual(len(threads), 1)  # the second time it was remembered
        self.assertFalse(result(basic.authorize(ask(user="bob", password="wrong"))).allowed)
        self.assertFalse(result(basic.authorize(ask(user="bob", password="x" * 100))).allowed)

    def test_guessing_is_limited_per_client(self):
        basic = BasicAuthenticator({"alice": "password123"}, "", "GoCast", maybeDeferred, AuthFailures(lambda: 0.0))
        for _ in range(FAILURE_LIMIT):
            self.assertEqual(result(basic.authorize(ask(user="alice", password="guess"))).status, 401)
        blocked = result(basic.authorize(ask(user="alice", password="password123")))
        self.assertEqual((blocked.allowed, blocked.status), (False, 429))
        self.assertTrue(result(basic.authorize(ask(ip="198.51.100.8", user="alice", password="password123"))).allowed)

    def test_ipv6_guessing_counts_per_64(self):
        failures = AuthFailures(lambda: 0.0)
        for host in range(FAILURE_LIMIT):
            failures.failed("2001:db8:7:7::%x" % (host + 1))
        self.assertIsNotNone(failures.blocked("2001:db8:7:7:ffff::1"))
        self.assertIsNone(failures.blocked("2001:db8:7:8::1"))

    def test_unknown_users_cost_a_bcrypt_check_too(self):
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
        checked = []

        def in_thread(f, *args):
            checked.append(args[1])
            return maybeDeferred(f, *args)

        basic = BasicAuthenticator({"bob": hashed}, "", "GoCast", in_thread)
        self.assertFalse(result(basic.authorize(ask(user="nobody", password="s3cret"))).allowed)
        self.assertEqual(len(checked), 1)  # a decoy hash of the same cost was checked
        self.assertNotEqual(checked[0], hashed)
        self.assertEqual(checked[0].split("$")[2], hashed.split("$")[2])

    def test_queued_check_of_a_listener_that_left_is_skipped(self):
        hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()
        running = []

        def in_thread(f, *args):
            running.append(Deferred())
            return running[-1]

        basic = BasicAuthenticator({"bob": hashed}, "", "GoCast", in_thread)
        pending = [basic.authorize(ask(user="bob", password="p%d" % i)) for i in range(4)]  # every slot taken
        left = AuthRequest.build("/premium", "198.51.100.9", {"authorization": "Basic Ym9iOnMzY3JldA=="}, None,
                                 connected=lambda: False)
        gone = basic.authorize(left)
        self.assertEqual(len(running), 4)
        for d in running[:4]:
            d.callback(False)
        self.assertEqual(len(running), 4)  # its turn came, and no check was run for it
        self.assertFalse(result(gone).allowed)
        self.assertEqual([result(d).allowed for d in pending], [False] * 4)

    def test_htpasswd_bcrypt_and_sha_lines(self):
        path = FilePath(self.mktemp())
        sha = base64.b64encode(hashlib.sha1(b"shapass").digest()).decode()
        bcrypt_line = bcrypt.hashpw(b"bcpass", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$")
        path.setContent(("# listeners\ncarol:{SHA}%s\n\ndave:%s\n" % (sha, bcrypt_line)).encode())
        basic = self.authenticator(users_file=path.path)
        self.assertTrue(result(basic.authorize(ask(user="carol", password="shapass"))).allowed)
        self.assertFalse(result(basic.authorize(ask(user="carol", password="bcpass"))).allowed)
        self.assertTrue(result(basic.authorize(ask(user="dave", password="bcpass"))).allowed)

    def test_unsupported_htpasswd_line_named(self):
        path = FilePath(self.mktemp())
        path.setContent(b"ok:{SHA}x\neve:$apr1$abc$def\n")
        with self.assertRaises(AuthSetupError) as caught:
            read_htpasswd(path.path)
        self.assertIn("%s:2: only bcrypt" % path.path, str(caught.exception))
        self.assertNotIn("eve", str(caught.exception))  # the line is named, never shown (it may be /etc/shadow)

    def test_missing_users_file(self):
        with self.assertRaises(AuthSetupError) as caught:
            self.authenticator(users_file="/nonexistent/listeners.htpasswd")
        self.assertIn("cannot read /nonexistent/listeners.htpasswd", str(caught.exception))


def fresh(claims):
    """``claims`` with an exp ten minutes ahead unless they say otherwise (GoCast requires exp)."""
    return dict({"exp": int(time.time()) + 600}, **claims)


def hs256(claims, secret=SECRET, headers=None):
    return jwt.encode(fresh(claims), secret, algorithm="HS256", headers=headers)


class TokenTests(SynchronousTestCase):
    def setUp(self):
        self.now = time.time()

    def authenticator(self, block='secret "%s"' % SECRET, fetch=None):
        return TokenAuthenticator(auth_config("type token " + block), fetch or (lambda url, timeout: fail(
            AssertionError("no JWKS here"))), lambda: self.now)

    def test_hs256_claims(self):
        token = self.authenticator()
        self.assertTrue(verifyObject(IAuthenticator, token))
        decision = token.authorize(ask(token=hs256({"exp": int(self.now) + 600, "listener_id": "sub-42"})))
        self.assertEqual((decision.allowed, decision.listener_id), (True, "sub-42"))
        self.assertAlmostEqual(decision.expires, int(self.now) + 600 + 30)  # exp plus the leeway
        self.assertEqual(token.authorize(ask(token=hs256({"sub": "u1"}))).listener_id, "u1")

    def test_exp_required_unless_allowed(self):
        forever = jwt.encode({"listener_id": "x"}, SECRET, algorithm="HS256")
        refused = self.authenticator().authorize(ask(token=forever))
        self.assertEqual((refused.allowed, refused.status), (False, 401))
        self.assertIn("no exp", refused.log_reason)
        allowed = self.authenticator('secret "%s" allow_no_exp true' % SECRET).authorize(ask(token=forever))
        self.assertTrue(allowed.allowed)

    def test_audience_and_issuer(self):
        token = self.authenticator('secret "%s" audience radio.example issuer https://shop.example' % SECRET)
        good = {"aud": "radio.example", "iss": "https://shop.example"}
        self.assertTrue(token.authorize(ask(token=hs256(good))).allowed)
        for claims in ({"iss": "https://shop.example"}, dict(good, aud="other.example"),
                       {"aud": "radio.example"}, dict(good, iss="https://evil.example")):
            self.assertFalse(token.authorize(ask(token=hs256(claims))).allowed, claims)
        # Without an audience setting, aud is not checked (PyJWT would refuse any token that has one).
        self.assertTrue(self.authenticator().authorize(ask(token=hs256({"aud": "anything"}))).allowed)

    def test_max_lifetime(self):
        token = self.authenticator('secret "%s" max_lifetime 1h' % SECRET)
        now = int(time.time())
        self.assertTrue(token.authorize(ask(token=hs256({"iat": now, "exp": now + 3000}))).allowed)
        decision = token.authorize(ask(token=hs256({"iat": now, "exp": now + 86400 * 365})))
        self.assertFalse(decision.allowed)
        self.assertIn("longer than max_lifetime", decision.log_reason)
        self.assertFalse(token.authorize(ask(token=hs256({"exp": now + 86400}))).allowed)  # no iat: from now

    def test_missing_wrong_and_malformed(self):
        token = self.authenticator()
        missing = token.authorize(ask())
        self.assertEqual((missing.status, missing.challenge), (401, 'Bearer realm="GoCast"'))
        self.assertEqual(token.authorize(ask(token=hs256({}, secret="another-secret-of-32-bytes-long!!"))).reason,
                         "invalid token")
        self.assertEqual(token.authorize(ask(token="not.a.jwt")).status, 401)
        self.assertEqual(token.authorize(ask(token="x" * 9000)).status, 401)
        unsigned = jwt.encode({"listener_id": "x"}, None, algorithm="none")
        self.assertFalse(token.authorize(ask(token=unsigned)).allowed)

    def test_expiry_and_not_before_with_leeway(self):
        token = self.authenticator("secret \"%s\" leeway 10s" % SECRET)
        expired = token.authorize(ask(token=hs256({"exp": int(self.now) - 60})))
        self.assertEqual((expired.status, expired.reason), (401, "token expired"))
        self.assertTrue(token.authorize(ask(token=hs256({"exp": int(self.now) - 5}))).allowed)
        early = token.authorize(ask(token=hs256({"nbf": int(self.now) + 60})))
        self.assertEqual(early.reason, "token not valid yet")
        self.assertTrue(token.authorize(ask(token=hs256({"nbf": int(self.now) + 5}))).allowed)

    def test_allowed_mounts_globs(self):
        token = self.authenticator()
        claims = {"allowed_mounts": ["premium*", "/vip/*"]}
        self.assertTrue(token.authorize(ask("/premium-hq", token=hs256(claims))).allowed)
        self.assertTrue(token.authorize(ask("/vip/jazz", token=hs256(claims))).allowed)
        refused = token.authorize(ask("/other", token=hs256(claims)))
        self.assertEqual((refused.allowed, refused.status), (False, 403))
        self.assertFalse(token.authorize(ask(token=hs256({"allowed_mounts": 5}))).allowed)

    def test_allow_past_expiry(self):
        token = self.authenticator('secret "%s" allow_past_expiry true' % SECRET)
        self.assertIsNone(token.authorize(ask(token=hs256({"exp": int(self.now) + 60}))).expires)

    def test_verified_tokens_remembered_until_expiry(self):
        token = self.authenticator('secret "%s" leeway 0s' % SECRET)
        signed = hs256({"exp": int(self.now) + 60})
        self.assertTrue(token.authorize(ask(token=signed)).allowed)
        token.secret = "changed"  # a remembered token is not verified again
        self.assertTrue(token.authorize(ask(token=signed)).allowed)
        self.now += 61
        self.assertEqual(token.authorize(ask(token=signed)).reason, "token expired")

    def rsa_key(self):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path = FilePath(self.mktemp())
        path.setContent(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
        return key, path.path

    def test_rs256_public_key_file(self):
        key, path = self.rsa_key()
        token = self.authenticator('public_key "%s"' % path)
        self.assertTrue(token.authorize(ask(token=jwt.encode(fresh({"sub": "r"}), key, algorithm="RS256"))).allowed)
        other, _ = self.rsa_key()
        self.assertFalse(token.authorize(ask(token=jwt.encode(fresh({"sub": "r"}), other, algorithm="RS256"))).allowed)
        # An HS256 token "signed" with the public key must not pass (algorithm confusion).
        self.assertFalse(token.authorize(ask(token=hs256({"sub": "r"}, secret="x" * 32))).allowed)

    def test_es256_public_key_file(self):
        key = ec.generate_private_key(ec.SECP256R1())
        path = FilePath(self.mktemp())
        path.setContent(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
        token = self.authenticator('public_key "%s"' % path.path)
        self.assertTrue(token.authorize(ask(token=jwt.encode(fresh({"sub": "e"}), key, algorithm="ES256"))).allowed)

    def test_bad_public_key_file(self):
        path = FilePath(self.mktemp())
        path.setContent(b"not a key")
        self.assertRaises(AuthSetupError, self.authenticator, 'public_key "%s"' % path.path)
        self.assertRaises(AuthSetupError, self.authenticator, 'public_key "/nonexistent.pem"')

    def jwks(self, *keys):
        return {"keys": [dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())), kid=kid, alg="RS256")
                         for kid, k in keys]}

    def test_jwks_fetched_once_and_refreshed_on_unknown_kid(self):
        first = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        second = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        published = [("k1", first)]
        fetches = []

        def fetch(url, timeout):
            fetches.append(url)
            return succeed(self.jwks(*published))

        token = self.authenticator('jwks_url "https://idp.test/jwks.json"', fetch)
        signed = jwt.encode(fresh({"sub": "a"}), first, algorithm="RS256", headers={"kid": "k1"})
        self.assertTrue(result(token.authorize(ask(token=signed))).allowed)
        self.assertTrue(result(token.authorize(ask(token=jwt.encode(fresh({"sub": "b"}), first, algorithm="RS256",
                                                                    headers={"kid": "k1"})))).allowed)
        self.assertEqual(fetches, ["https://idp.test/jwks.json"])
        # The identity provider rotates its key: an unknown kid fetches the set again...
        published.append(("k2", second))
        rotated = jwt.encode(fresh({"sub": "c"}), second, algorithm="RS256", headers={"kid": "k2"})
        self.now += JWKS_MIN_INTERVAL
        self.assertTrue(result(token.authorize(ask(token=rotated))).allowed)
        self.assertEqual(len(fetches), 2)
        # ...but bogus kids cannot make it fetch on every request.
        bogus = jwt.encode(fresh({"sub": "d"}), second, algorithm="RS256", headers={"kid": "nope"})
        self.assertEqual(result(token.authorize(ask(token=bogus))).status, 401)
        self.assertEqual(len(fetches), 2)

    def test_concurrent_requests_share_one_fetch_and_failure_refuses(self):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pending = Deferred()
        fetches = []

        def fetch(url, timeout):
            fetches.append(url)
            return pending

        token = self.authenticator('jwks_url "https://idp.test/jwks.json"', fetch)
        signed = jwt.encode(fresh({"sub": "a"}), key, algorithm="RS256", headers={"kid": "k1"})
        waiting = [token.authorize(ask(token=signed)) for _ in range(3)]
        self.assertEqual(len(fetches), 1)
        pending.errback(ValueError("connection refused"))
        decisions = [result(d) for d in waiting]
        self.assertEqual({(d.allowed, d.status) for d in decisions}, {(False, 403)})


class CallbackServer(Resource):
    """A listener auth backend: answers with ``self.answer(request)``; keeps what it was sent."""

    isLeaf = True

    def __init__(self, answer):
        super().__init__()
        self.answer = answer
        self.received = []

    def render_POST(self, request):
        self.received.append((dict((k.decode().lower(), v[-1].decode())
                                   for k, v in request.requestHeaders.getAllRawHeaders()),
                              request.content.read()))
        return self.answer(request)


def answer_with(code, body=b"", headers=()):
    def answer(request):
        request.setResponseCode(code)
        for name, value in headers:
            request.setHeader(name, value)
        return body
    return answer


class HttpCallbackTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)

    def authenticator(self, server, block=""):
        config = auth_config('type http url "http://auth.test/check" ' + block)
        self.stub = StubTreq(server)
        return HttpAuthenticator(config, OutboundHttp(self.clock, self.stub), self.clock.seconds, self.clock.callLater)

    def test_allowed_with_what_it_was_sent(self):
        server = CallbackServer(answer_with(200, b'{"listener_id": "cust-9", "expires": 5000}',
                                            [(b"content-type", b"application/json")]))
        http = self.authenticator(server)
        self.assertTrue(verifyObject(IAuthenticator, http))
        decision = result(http.authorize(ask(token="tok", headers={"user-agent": "VLC/3.0", "x-app": "1"})))
        self.assertEqual((decision.allowed, decision.listener_id, decision.expires), (True, "cust-9", 5000.0))
        headers, body = server.received[0]
        self.assertEqual(headers["content-type"], "application/json")
        sent = json.loads(body)
        self.assertEqual({k: sent[k] for k in ("ip", "mount", "user_agent", "token", "client")},
                         {"ip": "198.51.100.7", "mount": "/premium", "user_agent": "VLC/3.0", "token": "tok",
                          "client": "12"})
        self.assertEqual(sent["headers"]["x-app"], "1")

    def test_denied_and_error_statuses(self):
        for code, status in ((401, 401), (403, 403)):
            decision = result(self.authenticator(CallbackServer(answer_with(code))).authorize(ask()))
            self.assertEqual((decision.allowed, decision.status), (False, status))
        broken = result(self.authenticator(CallbackServer(answer_with(500))).authorize(ask()))
        self.assertEqual((broken.allowed, broken.status), (False, 403))
        self.assertIn("answered 500", broken.log_reason)
        lenient = result(self.authenticator(CallbackServer(answer_with(500)), "on_error allow").authorize(ask()))
        self.assertTrue(lenient.allowed)

    def test_slow_callback_times_out_and_denies(self):
        held = []
        slow = CallbackServer(lambda request: held.append(request) or NOT_DONE_YET)
        http = self.authenticator(slow, "timeout 2s")
        waiting = http.authorize(ask())
        self.assertFalse(waiting.called)
        self.assertEqual(http.http.in_flight, 1)  # what a shutdown would wait for
        self.clock.advance(1.9)
        self.assertFalse(waiting.called)
        self.clock.advance(0.2)
        decision = result(waiting)
        self.assertEqual((decision.allowed, decision.status), (False, 403))
        self.assertEqual(decision.log_reason, "auth callback failed: no answer from http://auth.test/check within 2s")
        self.assertEqual(decision.reason, "the stream's access check is unavailable; try again later")
        self.assertEqual(http.http.in_flight, 0)

    def test_cache_ttl(self):
        server = CallbackServer(answer_with(200))
        http = self.authenticator(server, "cache_ttl 60s")
        for _ in range(3):
            self.assertTrue(result(http.authorize(ask())).allowed)
        self.assertEqual(len(server.received), 1)
        self.assertTrue(result(http.authorize(ask(ip="198.51.100.8"))).allowed)  # another client: asked
        self.assertEqual(len(server.received), 2)
        self.clock.advance(61)
        result(http.authorize(ask()))
        self.assertEqual(len(server.received), 3)

    def test_concurrent_hls_requests_ask_once(self):
        held = []
        server = CallbackServer(lambda request: held.append(request) or NOT_DONE_YET)
        http = self.authenticator(server)
        waiting = [http.authorize(ask(protocol="hls")) for _ in range(20)]
        self.assertEqual(len(server.received), 1)
        held[0].setResponseCode(200)
        held[0].finish()
        self.stub.flush()
        self.assertEqual({result(d).allowed for d in waiting}, {True})

    def test_hls_visit_asks_once_while_the_player_keeps_asking(self):
        server = CallbackServer(answer_with(200))
        http = self.authenticator(server)
        for _ in range(10):
            self.assertTrue(result(http.authorize(ask(protocol="hls"))).allowed)
            self.clock.advance(HLS_IDLE / 3)
        self.assertEqual(len(server.received), 1)
        result(http.authorize(ask()))  # an ICY listener with no cache_ttl: asked every time
        result(http.authorize(ask()))
        self.assertEqual(len(server.received), 3)
        self.clock.advance(HLS_IDLE + 1)  # the player went away: its next request is a new visit
        result(http.authorize(ask(protocol="hls")))
        self.assertEqual(len(server.received), 4)

    def test_hls_refusal_not_remembered_without_cache_ttl(self):
        server = CallbackServer(answer_with(403))
        http = self.authenticator(server)
        for _ in range(2):
            self.assertFalse(result(http.authorize(ask(protocol="hls"))).allowed)
        self.assertEqual(len(server.received), 2)


class IcecastUrlTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)

    def authenticator(self, server, http=None):
        config = auth_config('type url url "http://auth.test/icecast"')
        ids = iter(range(500, 600))
        return IcecastUrlAuthenticator(config, http or OutboundHttp(self.clock, StubTreq(server)),
                                       self.clock.seconds, self.clock.callLater, ("radio.test", 8000), "GoCast",
                                       lambda: str(next(ids)))

    def test_listener_add_form_and_time_limit(self):
        server = CallbackServer(answer_with(200, headers=[(b"icecast-auth-user", b"1"),
                                                          (b"icecast-auth-timelimit", b"3600")]))
        url = self.authenticator(server)
        decision = result(url.authorize(ask(user="alice", password="pw")))
        self.assertEqual((decision.allowed, decision.expires), (True, 1000 + 3600))
        headers, body = server.received[0]
        self.assertEqual(headers["content-type"], "application/x-www-form-urlencoded")
        self.assertEqual({k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()},
                         {"action": "listener_add", "server": "radio.test", "port": "8000", "client": "12",
                          "mount": "/premium", "user": "alice", "pass": "pw", "ip": "198.51.100.7",
                          "agent": "VLC/3.0"})

    def test_icecast_25_result_header(self):
        server = CallbackServer(answer_with(200, headers=[(b"x-icecast-auth-result", b"ok")]))
        self.assertTrue(result(self.authenticator(server).authorize(ask())).allowed)

    def test_refused_with_the_backends_message(self):
        server = CallbackServer(answer_with(200, headers=[(b"icecast-auth-message", b"subscription ended")]))
        decision = result(self.authenticator(server).authorize(ask()))
        self.assertEqual((decision.allowed, decision.status, decision.reason), (False, 401, "subscription ended"))
        self.assertEqual(decision.challenge, 'Basic realm="GoCast"')

    def test_listener_remove_once_with_duration(self):
        server = CallbackServer(answer_with(200, headers=[(b"icecast-auth-user", b"1")]))
        url = self.authenticator(server)
        request = ask(user="alice", password="pw")
        url.listener_left(request, result(url.authorize(request)), 93.4)
        sent = [parse_qs(body.decode()) for _, body in server.received]
        self.assertEqual([s["action"][0] for s in sent], ["listener_add", "listener_remove"])
        self.assertEqual((sent[1]["duration"][0], sent[1]["client"][0]), ("93", "12"))

    def test_listener_remove_retried_when_unreachable(self):
        attempts = []

        class Flaky:
            def post(self, url, data, headers, timeout):
                attempts.append(parse_qs(data.decode())["action"][0])
                if len(attempts) < 3:
                    return fail(ConnectionRefusedError("refused"))
                return succeed(None)

        url = self.authenticator(None, Flaky())
        url.listener_left(ask(), None, 10)
        self.assertEqual(attempts, ["listener_remove"])
        self.clock.advance(2)
        self.clock.advance(4)
        self.assertEqual(attempts, ["listener_remove"] * 3)
        self.clock.advance(100)
        self.assertEqual(len(attempts), 3)

    def test_hls_player_added_once_and_removed_when_it_stops_asking(self):
        """A backend counting listeners counts an HLS player once, for as long as it plays."""
        server = CallbackServer(answer_with(200, headers=[(b"icecast-auth-user", b"1")]))
        url = self.authenticator(server)
        for _ in range(6):  # a player asking every 8 s for 40 s
            self.assertTrue(result(url.authorize(ask(protocol="hls"))).allowed)
            self.clock.advance(8)
        self.assertEqual(len(server.received), 1)
        self.clock.advance(HLS_IDLE)
        sent = [parse_qs(body.decode()) for _, body in server.received]
        self.assertEqual([s["action"][0] for s in sent], ["listener_add", "listener_remove"])
        self.assertEqual(sent[1]["duration"][0], "40")
        # An HLS player has no connection, but its visit has a client ID, as Icecast's backends expect.
        self.assertEqual((sent[0]["client"], sent[1]["client"]), (["500"], ["500"]))
        self.clock.advance(HLS_IDLE * 4)
        self.assertEqual(len(server.received), 2)  # removed once; nothing left to look at
        self.assertEqual(self.clock.getDelayedCalls(), [])
        result(url.authorize(ask(protocol="hls")))  # back: a new visit, a new ID
        self.assertEqual(parse_qs(server.received[2][1].decode())["client"], ["501"])

    def test_hls_visit_ends_at_the_time_limit(self):
        server = CallbackServer(answer_with(200, headers=[(b"icecast-auth-user", b"1"),
                                                          (b"icecast-auth-timelimit", b"20")]))
        url = self.authenticator(server)
        for _ in range(4):
            result(url.authorize(ask(protocol="hls")))
            self.clock.advance(8)
        actions = [parse_qs(body.decode())["action"][0] for _, body in server.received]
        self.assertEqual(actions, ["listener_add", "listener_remove", "listener_add"])
        self.assertEqual(parse_qs(server.received[1][1].decode())["duration"][0], "16")

    def test_close_removes_the_players_it_follows(self):
        server = CallbackServer(answer_with(200, headers=[(b"icecast-auth-user", b"1")]))
        url = self.authenticator(server)
        result(url.authorize(ask(protocol="hls")))
        result(url.authorize(ask(protocol="hls", ip="198.51.100.9")))
        url.close()
        actions = [parse_qs(body.decode())["action"][0] for _, body in server.received]
        self.assertEqual(actions, ["listener_add"] * 2 + ["listener_remove"] * 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class GateTests(SynchronousTestCase):
    def setUp(self):
        self.events = []
        bus = type("Bus", (), {"publish": lambda _, name, mount, **data: self.events.append((name, mount, data))})()
        self.clock = Clock()
        self.gate = ListenerGate(bus, OutboundHttp(self.clock, StubTreq(Resource())), self.clock.seconds,
                                 self.clock.callLater, maybeDeferred)

    def configure(self, text):
        self.gate.configure(parse_config(text).config)

    def test_unprotected_mounts_pass(self):
        self.configure("mounts { open { } }")
        self.assertFalse(self.gate.protected("/open"))
        self.assertTrue(result(self.gate.authorize(ask("/open"))).allowed)
        self.assertTrue(result(self.gate.authorize(ask("/dynamic"))).allowed)

    def test_mount_ip_rules_before_the_backend_and_denied_event(self):
        self.configure('mounts { premium { denied_ips [198.51.100.0/24] auth { type basic users { alice "pw" } } } }')
        admission = result(self.gate.authorize(ask(user="alice", password="pw")))
        self.assertEqual((admission.allowed, admission.decision.status), (False, 403))
        admission = result(self.gate.authorize(ask(ip="203.0.113.5", user="alice", password="hunter2-guess")))
        self.assertEqual(admission.decision.status, 401)
        self.assertEqual([(name, mount, data["status"], data["ip"]) for name, mount, data in self.events],
                         [("listener.denied", "/premium", 403, "198.51.100.7"),
                          ("listener.denied", "/premium", 401, "203.0.113.5")])
        self.assertNotIn("hunter2", repr(self.events))  # never the password

    def test_setup_error_keeps_the_running_checks(self):
        self.configure('mounts { premium { auth { type basic users { alice "pw" } } } }')
        with self.assertRaises(AuthSetupError) as caught:
            self.configure('mounts { premium { auth { type basic users_file "/nonexistent" } } }')
        self.assertIn("mounts.premium.auth.users_file", str(caught.exception))
        self.assertTrue(result(self.gate.authorize(ask(user="alice", password="pw"))).allowed)

    def test_unchanged_backends_kept_across_reloads_and_replaced_ones_closed(self):
        text = ('mounts { a { auth { type token secret "%s" } } b { auth { type url url "http://auth.test/x" } }'
                ' c { auth { type basic users { alice "pw" } } } }' % SECRET)
        self.configure(text)
        before = {path: backend for path, (_, backend) in self.gate._mounts.items()}
        closed = []
        before["/b"].close = lambda: closed.append("/b")
        self.configure(text)
        after = {path: backend for path, (_, backend) in self.gate._mounts.items()}
        self.assertIs(after["/a"], before["/a"])  # verified tokens and JWKS kept
        self.assertIs(after["/b"], before["/b"])  # HLS visits kept
        self.assertIs(after["/c"], before["/c"])
        self.assertEqual(closed, [])
        self.configure(text.replace("auth.test/x", "auth.test/y"))
        self.assertIsNot(self.gate._mounts["/b"][1], before["/b"])
        self.assertIs(self.gate._mounts["/a"][1], before["/a"])
        self.assertEqual(closed, ["/b"])

    def test_at_shutdown_every_backend_closes_and_url_auth_is_waited_for(self):
        self.configure('mounts { a { auth { type token secret "%s" } } }' % SECRET)
        self.assertFalse(self.gate.tells_departures())
        self.configure('mounts { a { auth { type token secret "%s" } } b { auth { type url url "http://x/y" } } }'
                       % SECRET)
        self.assertTrue(self.gate.tells_departures())
        closed = []
        for path, (_, backend) in self.gate._mounts.items():
            backend.close = lambda path=path: closed.append(path)
        self.gate.close_all()
        self.assertEqual(sorted(closed), ["/a", "/b"])

    def test_backends_reading_files_rebuilt_on_every_reload(self):
        users = FilePath(self.mktemp())
        users.setContent(b"alice:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4)) + b"\n")
        text = 'mounts { premium { auth { type basic users_file "%s" } } }' % users.path
        self.configure(text)
        self.assertTrue(result(self.gate.authorize(ask(user="alice", password="pw"))).allowed)
        users.setContent(b"bob:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4)) + b"\n")
        self.configure(text)
        self.assertTrue(result(self.gate.authorize(ask(user="bob", password="pw"))).allowed)
        self.assertFalse(result(self.gate.authorize(ask(user="alice", password="pw"))).allowed)

    def test_a_backend_bug_refuses_rather_than_admits(self):
        self.configure('mounts { premium { auth { type ip allowed [10.0.0.0/8] } } }')
        _, backend = self.gate._mounts["/premium"]
        backend.authorize = lambda request: 1 / 0
        admission = result(self.gate.authorize(ask()))
        self.assertEqual((admission.allowed, admission.decision.status), (False, 403))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)


class StreamingThroughTheGateTests(SynchronousTestCase):
    """ICY and HLS listeners on protected mounts, through the front door."""

    def harness(self, mount_block, server=""):
        from .streaming import Harness

        h = Harness("server { %s } mounts { premium { hls { enabled true segment_duration 2 } %s } }"
                    % (server, mount_block))
        h.clock.advance(time.time())  # tokens carry Unix times
        return h

    def live(self, h):
        from .streaming import feed_frames

        source, _ = h.source("/premium")
        feed_frames(source, 300)
        return source

    def test_icy_listener_needs_a_token_and_leaves_when_it_expires(self):
        from .streaming import feed_frames, split_response

        h = self.harness('auth { type token secret "%s" leeway 0s }' % SECRET)
        source = self.live(h)
        _, refused = h.listener("/premium")
        status, headers, body = split_response(refused.value())
        self.assertIn(" 401 ", status)
        self.assertEqual(headers["www-authenticate"], 'Bearer realm="GoCast"')
        self.assertEqual(body, b"a token is required: add ?token=... or send Authorization: Bearer\n")
        self.assertTrue(refused.disconnecting)
        self.assertEqual(h.registry.get("/premium").listeners, 0)
        self.assertIn("listener.denied", h.event_names())

        token = hs256({"exp": int(h.clock.seconds()) + 60, "listener_id": "cust-7"})
        _, admitted = h.listener("/premium?token=" + token)
        self.assertIn(b" 200 OK", admitted.value())
        self.assertEqual(h.registry.get("/premium").listeners, 1)
        from gocast.core.operations import listener_sessions

        [session] = listener_sessions(h.registry.get("/premium"))
        self.assertEqual(session.listener_id, "cust-7")
        feed_frames(source, 5)
        self.assertIn("<username>cust-7</username>",
                      h.get("/admin/listclients?mount=/premium", base64.b64encode(b"admin:hackme").decode())[2]
                      .decode())
        h.clock.advance(59)
        self.assertFalse(admitted.disconnecting)
        h.clock.advance(2)
        self.assertTrue(admitted.disconnecting)

    def test_basic_listener_challenge(self):
        from .streaming import split_response

        h = self.harness('auth { type basic realm "Members" users { alice "pw-alice" } }')
        self.live(h)
        status, headers, _ = split_response(h.listener("/premium")[1].value())
        self.assertIn(" 401 ", status)
        self.assertEqual(headers["www-authenticate"], 'Basic realm="Members", charset="UTF-8"')
        good = "Authorization: Basic %s\r\n" % base64.b64encode(b"alice:pw-alice").decode()
        self.assertIn(b" 200 OK", h.listener("/premium", good)[1].value())

    def test_hls_playlist_and_segments_carry_the_token(self):
        h = self.harness('auth { type token secret "%s" }' % SECRET)
        self.live(h)
        status, headers, _ = h.get("/hls/premium/playlist.m3u8")
        self.assertIn(" 401 ", status)
        token = hs256({"exp": int(h.clock.seconds()) + 600})
        status, headers, body = h.get("/hls/premium/playlist.m3u8?token=" + token)
        self.assertIn(" 200 ", status)
        self.assertTrue(headers["cache-control"].startswith("private"))
        segments = [line for line in body.decode().splitlines() if line and not line.startswith("#")]
        self.assertTrue(segments)
        self.assertTrue(all(line.endswith(".ts?token=" + token) for line in segments), segments)
        name = segments[-1].split("?")[0]
        self.assertIn(" 401 ", h.get("/hls/premium/" + name)[0])
        status, headers, data = h.get("/hls/premium/" + segments[-1])
        self.assertIn(" 200 ", status)
        self.assertEqual((headers["cache-control"], data[0]), ("private, max-age=31536000, immutable", 0x47))

    def test_spoofed_forwarded_for_ignored_unless_from_a_trusted_proxy(self):
        h = self.harness("auth { type ip allowed [203.0.113.0/24] }", "trusted_proxies [10.0.0.0/8]")
        self.live(h)
        spoof = "X-Forwarded-For: 203.0.113.9\r\n"
        # ICY: through the trusted proxy the forwarded address is the client's; from elsewhere it is ignored.
        self.assertIn(b" 200 OK", h.listener("/premium", spoof, peer="10.0.0.5")[1].value())
        self.assertIn(b" 403 ", h.listener("/premium", spoof, peer="198.51.100.1")[1].value())
        connected = [e for e in h.events if e.name == "listener.connect"]
        self.assertEqual(connected[-1].data["ip"], "203.0.113.9")
        # HLS (twisted.web) the same.
        self.assertIn(" 200 ", h.get("/hls/premium/playlist.m3u8", extra=spoof, peer="10.0.0.5")[0])
        self.assertIn(" 403 ", h.get("/hls/premium/playlist.m3u8", extra=spoof, peer="198.51.100.1")[0])
        denied = [e for e in h.events if e.name == "listener.denied"]
        self.assertEqual([(e.data["ip"], e.data["protocol"]) for e in denied],
                         [("198.51.100.1", "icy"), ("198.51.100.1", "hls")])
        h.clock.advance(0)  # the bus delivers in a later turn
        metrics = h.get("/metrics")[2].decode()
        self.assertIn('gocast_listeners_denied_total{mount="/premium",status="403"} 2.0', metrics)

    def test_mount_allowed_ips_enforced(self):
        h = self.harness("allowed_ips [192.168.0.0/16]")
        self.live(h)
        self.assertIn(b" 403 ", h.listener("/premium")[1].value())
        self.assertIn(b" 200 OK", h.listener("/premium", peer="192.168.3.4")[1].value())


class DocsTests(SynchronousTestCase):
    """docs/auth.md's snippets are valid, and its token recipe makes tokens GoCast accepts."""

    def text(self):
        return FilePath(__file__).parent().parent().child("docs").child("auth.md").getContent().decode()

    def test_vibe_snippets_parse(self):
        import re

        snippets = re.findall(r"```vibe\n(.*?)```", self.text(), re.S)
        self.assertGreater(len(snippets), 8)
        for snippet in snippets:
            if not snippet.startswith(("mounts", "server")):
                snippet = "mounts { m { %s } }" % snippet  # an auth block of some mount
            self.assertEqual([str(w) for w in parse_config(snippet).warnings], [], snippet)

    def test_python_recipe_token_is_accepted(self):
        import re

        code = re.search(r"```python\n(.*?)```", self.text(), re.S).group(1)
        printed = []
        exec(compile(code, "docs/auth.md", "exec"), {"print": printed.append})
        url = printed[0]
        self.assertTrue(url.startswith("http://radio.example.com:8000/premium?token="))
        config = auth_config('type token secret "a-long-random-string-of-32-bytes-or-more"')
        decision = TokenAuthenticator(config, None, time.time).authorize(ask(token=url.split("token=")[1]))
        self.assertEqual((decision.allowed, decision.listener_id), (True, "customer-42"))
