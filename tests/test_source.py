"""Source ingestion through the front door, as each Icecast client does it."""

from twisted.trial.unittest import SynchronousTestCase

from gocast.core.throttle import FAILURE_LIMIT, FAILURE_WINDOW
from gocast.protocols._http import BadRequest, ChunkedDecoder

from .media_builders import mp3_frame
from .streaming import AUTH, Harness, close, feed_frames, split_response


class SourceRequestTests(SynchronousTestCase):
    def test_source_http10_answered_at_once(self):
        h = Harness()
        proto, transport = h.source(extra="ice-name: My Radio\r\n")
        status, headers, body = split_response(transport.value())
        self.assertEqual(status, "HTTP/1.0 200 OK")
        self.assertEqual(headers["allow"], "GET, PUT, OPTIONS, SOURCE")
        self.assertEqual(headers["accept-encoding"], "identity")
        mount = h.registry.get("/live")
        self.assertEqual(mount.source.ice["ice-name"], "My Radio")
        self.assertEqual(h.event_names(), ["mount.created", "source.connect"])
        feed_frames(proto, 10)
        self.assertEqual(mount.bytes_received, 10 * len(mp3_frame()))
        self.assertFalse(transport.disconnecting)

    def test_put_with_expect_gets_only_100_continue(self):
        h = Harness()
        proto, transport = h.connect(
            ("PUT /live HTTP/1.1\r\nHost: x\r\n%sContent-Type: audio/mpeg\r\n"
             "Expect: 100-continue\r\n\r\n" % AUTH).encode())
        self.assertEqual(transport.value(), b"HTTP/1.1 100 Continue\r\n\r\n")
        feed_frames(proto, 3)
        self.assertEqual(transport.value(), b"HTTP/1.1 100 Continue\r\n\r\n")
        self.assertIsNotNone(h.registry.get("/live").source)

    def test_put_without_expect_gets_200(self):
        h = Harness()
        _, transport = h.connect(("PUT /live HTTP/1.1\r\n%sContent-Type: audio/mpeg\r\n\r\n" % AUTH).encode())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))

    def test_ice_protocol(self):
        h = Harness()
        _, transport = h.connect(b"SOURCE /live ICE/1.0\r\nice-password: hackme\r\n"
                                 b"content-type: audio/mpeg\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 200 OK\r\n"))

    def test_body_in_same_packet_as_head(self):
        h = Harness()
        frames = mp3_frame() * 4
        h.connect(("SOURCE /live HTTP/1.0\r\n%sContent-Type: audio/mpeg\r\n\r\n" % AUTH).encode() + frames)
        self.assertEqual(h.registry.get("/live").bytes_received, len(frames))

    def test_chunked_put(self):
        h = Harness()
        proto, _ = h.connect(("PUT /live HTTP/1.1\r\n%sContent-Type: audio/mpeg\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n" % AUTH).encode())
        frame = mp3_frame()
        proto.dataReceived(b"%x\r\n" % len(frame) + frame + b"\r\n")
        proto.dataReceived(b"%x\r\n" % len(frame) + frame[:100])
        proto.dataReceived(frame[100:] + b"\r\n")
        self.assertEqual(h.registry.get("/live").bytes_received, 2 * len(frame))


class ChunkedDecoderTests(SynchronousTestCase):
    def test_strict_chunk_sizes(self):
        decoder = ChunkedDecoder()
        self.assertEqual(decoder.feed(b"5;ext=1\r\nhello\r\n3 \r\nabc\r\n0\r\n\r\n"), b"helloabc")
        self.assertTrue(decoder.done)
        for bad in (b"0x5\r\nhello\r\n", b"+5\r\nhello\r\n", b"1_0\r\n", b"-1\r\n", b"\r\n",
                    b"123456789\r\n", b"fffffff\r\n"):
            with self.assertRaises(BadRequest, msg=bad):
                ChunkedDecoder().feed(bad)


class SourceAuthTests(SynchronousTestCase):
    def test_libshout_probe_then_retry_on_same_connection(self):
        h = Harness()
        proto, transport = h.connect(b"SOURCE /live HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                                     b"Content-Type: audio/mpeg\r\n\r\n")
        status, headers, body = split_response(transport.value())
        self.assertEqual(status, "HTTP/1.1 401 Unauthorized")
        self.assertEqual(headers["www-authenticate"], 'Basic realm="Icecast2 Server"')
        self.assertEqual(int(headers["content-length"]), len(body))
        self.assertFalse(transport.disconnecting)
        transport.clear()
        proto.dataReceived(("SOURCE /live HTTP/1.1\r\nHost: x\r\n%sContent-Type: audio/mpeg\r\n\r\n"
                            % AUTH).encode())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertIsNotNone(h.registry.get("/live").source)

    def test_probe_connection_still_has_a_header_timeout(self):
        h = Harness("limits { header_timeout 5s }")
        _, transport = h.connect(b"SOURCE /live HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        transport.clear()
        h.clock.advance(5)
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 408"))

    def test_http10_refusal_closes(self):
        h = Harness()
        _, transport = h.connect(b"SOURCE /live HTTP/1.0\r\nContent-Type: audio/mpeg\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 401 Unauthorized"))
        self.assertTrue(transport.disconnecting)

    def test_wrong_password_and_user(self):
        h = Harness()
        for auth in ("c291cmNlOndyb25n", "YWRtaW46aGFja21l", "bm9jb2xvbg==", "!!!"):  # source:wrong, admin:hackme
            _, transport = h.connect(("SOURCE /live HTTP/1.0\r\nAuthorization: Basic %s\r\n"
                                      "Content-Type: audio/mpeg\r\n\r\n" % auth).encode())
            self.assertTrue(transport.value().startswith(b"HTTP/1.0 401"), auth)
        self.assertIsNone(h.registry.get("/live"))

    def test_password_guessing_gets_429_for_a_minute(self):
        h = Harness()
        wrong = b"SOURCE /live HTTP/1.0\r\nAuthorization: Basic c291cmNlOndyb25n\r\nContent-Type: audio/mpeg\r\n\r\n"
        right = wrong.replace(b"c291cmNlOndyb25n", b"c291cmNlOmhhY2ttZQ==")  # source:hackme
        probe = b"PUT /live HTTP/1.1\r\nContent-Type: audio/mpeg\r\n\r\n"  # libshout's, without credentials
        for _ in range(FAILURE_LIMIT + 5):
            self.assertIn(b" 401 ", h.connect(probe)[1].value())  # not a failed login
        for _ in range(FAILURE_LIMIT):
            self.assertIn(b" 401 ", h.connect(wrong)[1].value())
        refused = h.connect(right)[1].value()
        self.assertTrue(refused.startswith(b"HTTP/1.0 429 Too Many Requests"), refused)
        self.assertIn(b"Retry-After: 60", refused)
        self.assertIn(" 429 ", h.get("/admin/stats", "YWRtaW46aGFja21l")[0])  # one count with the admin
        self.assertIn(b" 200 ", h.connect(right.replace(b"/live", b"/other"), peer="10.0.0.9")[1].value())
        h.clock.advance(FAILURE_WINDOW)
        self.assertIn(b" 200 ", h.connect(right)[1].value())

    def test_mount_password_and_username(self):
        h = Harness("mounts { live { password s3cret username dj } }")
        _, transport = h.source()  # global password no longer works here
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 401"))
        _, transport = h.connect(b"SOURCE /live HTTP/1.0\r\nAuthorization: Basic ZGo6czNjcmV0\r\n"
                                 b"Content-Type: audio/mpeg\r\n\r\n")  # dj:s3cret
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 200 OK"))


class SourceRefusalTests(SynchronousTestCase):
    def assertRefused(self, transport, status, reason):
        line, headers, body = split_response(transport.value())
        self.assertEqual(line.split(" ", 2)[1], str(status))
        self.assertIn(reason, body.decode())
        self.assertTrue(transport.disconnecting)

    def test_missing_content_type(self):
        h = Harness()
        _, transport = h.connect(("SOURCE /live HTTP/1.0\r\n%s\r\n" % AUTH).encode())
        self.assertRefused(transport, 400, "no Content-Type")

    def test_unsupported_content_type(self):
        for declared in ("text/html", "audio/mpeg, text/html", "audio/mpeg text/html", "image/svg+xml",
                         "audio/mpeg;x", "audio/", "audio/mpeg\x0bx"):
            _, transport = Harness().source(content_type=declared)
            self.assertRefused(transport, 415, "unsupported Content-Type: send one audio or Ogg type")

    def test_listeners_get_the_normalised_type_and_no_sniffing(self):
        h = Harness()
        _, transport = h.source(content_type='Audio/MPEG; charset="x"')
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 200 OK"))
        _, listener = h.listener()
        _, headers, _ = split_response(listener.value())
        self.assertEqual(headers["content-type"], "audio/mpeg")
        self.assertEqual(headers["x-content-type-options"], "nosniff")
        self.assertEqual(headers["content-security-policy"], "sandbox")


class HeaderInjectionTests(SynchronousTestCase):
    """Nothing a client sends can add a header, a playlist entry or a line."""

    def test_bare_cr_in_a_header_is_refused(self):
        h = Harness()
        _, transport = h.source(extra="ice-name: Radio\rSet-Cookie: admin=1\r\n")
        self.assertRefused(transport, 400, "header ice-name contains CR or NUL")
        _, transport = h.connect(b"GET /live HTTP/1.0\r\nX-A: b\x00c\r\n\r\n")
        self.assertIn(b" 400 ", transport.value())

    def test_control_characters_in_the_request_line_or_a_name(self):
        h = Harness()
        cases = {b"GET /li\x1bve HTTP/1.0\r\n\r\n": "control characters in the request line",
                 b"GET\t/live HTTP/1.0\r\n\r\n": "control characters in the request line",
                 b"GET /live HTTP/1.0\r\nX A: b\r\n\r\n": "malformed header line",
                 b"GET /live HTTP/1.0\r\nX\x01: b\r\n\r\n": "malformed header line"}
        for request, reason in cases.items():
            _, transport = h.connect(request)
            self.assertRefused(transport, 400, reason)

    def test_one_reading_of_methods_and_lines_for_streams_and_web(self):
        h = Harness()
        h.source()
        for request in (b"get /live HTTP/1.0\r\n\r\n", b"get /status-json.xsl HTTP/1.0\r\n\r\n",
                        b"GET /live HTTP/2.0\r\n\r\n"):
            _, transport = h.connect(request)
            self.assertIn(b" 400 ", transport.value().split(b"\r\n")[0], request)
        for request in (b"GET /live HTTP/1.0\n\n", b"GET /status-json.xsl HTTP/1.0\nHost: x\n\n"):
            _, transport = h.connect(request)
            h.clock.advance(0)
            self.assertIn(b" 200 OK", transport.value().split(b"\r\n")[0], request)

    def test_other_controls_become_spaces_everywhere_they_are_repeated(self):
        h = Harness()
        source, transport = h.source(extra="ice-name: Evil\x1b[2J\x0bName\r\nice-genre: Rock\x7f\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 200 OK"))
        feed_frames(source, 3)
        _, listener = h.listener()
        _, headers, _ = split_response(listener.value())
        self.assertEqual((headers["icy-name"], headers["icy-genre"]), ("Evil [2J Name", "Rock"))
        pls = h.get("/live.pls")[2]
        self.assertIn(b"Title1=Evil [2J Name\n", pls)
        self.assertIn(b'"server_name": "Evil [2J Name"', h.get("/status-json.xsl")[2])

    def test_shoutcast_header_lines_are_scrubbed(self):
        from gocast.protocols.shoutcast import ShoutcastDoor

        h = Harness()
        door = ShoutcastDoor(h.factory)
        head = door.head(b"icy-name:Evil\x1bName\r\ncontent-type:audio/mpeg\r\n", "hackme")
        self.assertEqual(head.get("icy-name"), "Evil Name")

    def assertRefused(self, transport, status, reason):
        SourceRefusalTests.assertRefused(self, transport, status, reason)

    def test_mount_in_use(self):
        h = Harness()
        h.source()
        _, transport = h.source()
        self.assertRefused(transport, 409, "mount /live is in use")

    def test_restricted_mounts(self):
        h = Harness("server { restrict_mounts true } mounts { live { } }")
        _, transport = h.source("/other")
        self.assertRefused(transport, 404, "mount /other is not in the configuration")

    def test_reserved_paths(self):
        for path in ("/admin", "/admin/stats", "/health", "/status-json.xsl"):
            _, transport = Harness().source(path)
            self.assertRefused(transport, 403, "one of GoCast's own URLs")

    def test_too_many_sources(self):
        h = Harness("limits { max_sources 1 }")
        h.source("/a")
        _, transport = h.source("/b")
        self.assertRefused(transport, 503, "too many sources")

    def test_bad_request_head(self):
        _, transport = Harness().connect(b"SOURCE\r\n\r\n")
        self.assertRefused(transport, 400, "malformed request line")

    def test_head_too_large(self):
        _, transport = Harness().connect(b"GET / HTTP/1.1\r\nX: " + b"a" * 20000)
        self.assertRefused(transport, 431, "larger than")


class SourceLifetimeTests(SynchronousTestCase):
    def test_silent_source_cut(self):
        h = Harness("limits { source_timeout 10s }")
        proto, transport = h.source()
        h.clock.advance(9)
        feed_frames(proto, 1)
        h.clock.advance(9)
        self.assertFalse(transport.disconnecting)
        h.clock.advance(2)
        self.assertTrue(transport.disconnected)
        close(proto)
        self.assertIsNone(h.registry.get("/live"))

    def test_dump_file_gets_the_raw_stream(self):
        path = self.mktemp()
        h = Harness('mounts { live { dump_file "%s" } }' % path)
        proto, _ = h.source()
        proto.dataReceived(b"raw bytes, framed or not")
        feed_frames(proto, 2)
        close(proto)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), b"raw bytes, framed or not" + mp3_frame() * 2)

    def test_disconnect_frees_the_mount(self):
        h = Harness("mounts { live { } }")
        proto, _ = h.source()
        close(proto)
        self.assertIsNone(h.registry.get("/live").source)
        self.assertEqual(h.event_names()[-1], "source.disconnect")
        _, transport = h.source()
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 200 OK"))

    def test_header_timeout(self):
        h = Harness("limits { header_timeout 5s }")
        _, transport = h.connect(b"SOURCE /live HTTP/1.0\r\n")
        h.clock.advance(5)
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 408"))
        self.assertTrue(transport.disconnecting)

    def test_options(self):
        proto, transport = Harness().connect(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertIn(b"Allow: GET, PUT, OPTIONS, SOURCE", transport.value())
        self.assertFalse(transport.disconnecting)

    def test_max_clients(self):
        h = Harness("limits { max_clients 1 reserved_connections 0 }")
        h.connect()
        _, transport = h.connect()
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 503"))
