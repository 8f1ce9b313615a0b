"""ICY listeners: headers, burst, metadata framing, slow clients, limits, moves."""

from twisted.trial.unittest import SynchronousTestCase

from gocast.core.operations import move_listeners

from .media_builders import mp3_frame, opus_stream
from .streaming import Harness, close, feed_frames, split_response

FRAME = mp3_frame()


def deframe(body, metaint):
    """Split an ICY body into audio and the metadata blocks (None for empty ones)."""
    audio, blocks = b"", []
    pos = 0
    while pos < len(body):
        audio += body[pos : pos + metaint]
        pos += metaint
        if pos >= len(body):
            break
        length = body[pos] * 16
        blocks.append(body[pos + 1 : pos + 1 + length].rstrip(b"\x00") or None)
        pos += 1 + length
    return audio, blocks


class ListenerTests(SynchronousTestCase):
    def setUp(self):
        self.h = Harness("limits { burst_size 8k }")
        self.source, _ = self.h.source(extra="ice-name: Radio\r\nice-genre: Jazz\r\nice-bitrate: 128\r\n")
        feed_frames(self.source, 100)

    def test_headers_and_burst(self):
        _, transport = self.h.listener(extra="Range: bytes=0-\r\n")
        status, headers, body = split_response(transport.value())
        self.assertEqual(status, "HTTP/1.0 200 OK")
        self.assertEqual(headers["content-type"], "audio/mpeg")
        self.assertEqual((headers["icy-name"], headers["icy-genre"], headers["icy-br"]),
                         ("Radio", "Jazz", "128"))
        self.assertEqual(headers["cache-control"], "no-cache, no-store")
        self.assertEqual(headers["access-control-allow-origin"], "*")
        self.assertIn("icy-metaint", headers["access-control-expose-headers"])
        self.assertNotIn("content-length", headers)
        self.assertNotIn("icy-metaint", headers)
        self.assertTrue(0 < len(body) <= 8 * 1024)
        self.assertEqual(len(body) % len(FRAME), 0)
        self.assertEqual(body[:2], b"\xff\xfb")
        self.assertEqual(self.h.registry.get("/live").listeners, 1)
        self.assertIn("listener.connect", self.h.event_names())

    def test_live_chunks_follow(self):
        _, transport = self.h.listener()
        transport.clear()
        feed_frames(self.source, 10)
        self.assertEqual(len(transport.value()) % len(FRAME), 0)
        self.assertGreater(len(transport.value()), 0)

    def test_a_chunk_is_never_sent_twice(self):
        """A listener that caught up from the ring skips the same chunk arriving late (a sliced fan-out)."""
        _, transport = self.h.listener()
        mount = self.h.registry.get("/live")
        session = next(iter(mount.subscribers))
        session.pauseProducing()
        feed_frames(self.source, 20)
        late = mount.ring[-1]
        transport.clear()
        session.resumeProducing()
        caught_up = transport.value()
        self.assertTrue(caught_up.endswith(late.data))
        session.chunk(late)
        self.assertEqual(transport.value(), caught_up)

    def test_head_request(self):
        _, transport = self.h.connect(b"HEAD /live HTTP/1.1\r\n\r\n")
        _, headers, body = split_response(transport.value())
        self.assertEqual((headers["content-type"], body), ("audio/mpeg", b""))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.h.registry.get("/live").listeners, 0)

    def test_no_source_is_404(self):
        h = Harness("mounts { quiet { } }")
        _, transport = h.listener("/quiet")
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 404"))
        self.assertIn(b"has no source", transport.value())

    def test_unknown_path_goes_to_the_web_site(self):
        _, transport = self.h.listener("/nothing-here")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 404"))

    def test_disconnect_counts(self):
        proto, transport = self.h.listener()
        mount = self.h.registry.get("/live")
        self.h.clock.advance(30)
        close(proto)
        self.assertEqual(mount.listeners, 0)
        event = self.h.events[-1]
        self.assertEqual(event.name, "listener.disconnect")
        self.assertEqual(event.data["duration"], 30)
        self.assertEqual(mount.bytes_sent, len(split_response(transport.value())[2]))


class MetadataFramingTests(SynchronousTestCase):
    def test_blocks_every_metaint_bytes(self):
        h = Harness("mounts { live { metaint 1000 } }")
        source, _ = h.source()
        h.registry.get("/live").set_metadata(song="Artist - It's a Song")
        feed_frames(source, 40)
        proto, transport = h.listener(extra="Icy-MetaData: 1\r\n")
        feed_frames(source, 40)
        h.registry.get("/live").set_metadata(song="Next")
        feed_frames(source, 40)
        _, headers, body = split_response(transport.value())
        self.assertEqual(headers["icy-metaint"], "1000")
        audio, blocks = deframe(body, 1000)
        self.assertEqual(blocks[0], b"StreamTitle='Artist - It's a Song';")
        self.assertEqual(blocks.count(b"StreamTitle='Next';"), 1)
        self.assertTrue(all(b is None for b in blocks[1:blocks.index(b"StreamTitle='Next';")]))
        self.assertEqual(audio[:2], b"\xff\xfb")
        self.assertEqual(len(audio) % len(FRAME), 0)

    def test_no_metadata_for_ogg(self):
        h = Harness()
        source, _ = h.source(content_type="application/ogg")
        headers_pages, audio = opus_stream(pages=20)
        source.dataReceived(headers_pages + b"".join(audio))
        _, transport = h.listener(extra="Icy-MetaData: 1\r\n")
        _, headers, body = split_response(transport.value())
        self.assertNotIn("icy-metaint", headers)
        self.assertTrue(body.startswith(headers_pages))


class SlowListenerTests(SynchronousTestCase):
    def test_paused_listener_catches_up(self):
        h = Harness()
        source, _ = h.source()
        proto, transport = h.listener()
        listener = proto.delegate
        listener.pauseProducing()
        transport.clear()
        feed_frames(source, 30)
        self.assertEqual(transport.value(), b"")
        listener.resumeProducing()
        self.assertEqual(transport.value(), b"".join(c.data for c in h.registry.get("/live").ring)[-len(transport.value()):])
        self.assertGreater(len(transport.value()), 0)

    def test_too_far_behind_is_dropped_alone(self):
        h = Harness("limits { queue_size 32k burst_size 8k }")
        source, _ = h.source()
        slow_proto, slow = h.listener()
        _, fast = h.listener()
        slow_proto.delegate.pauseProducing()
        feed_frames(source, 200)
        self.assertTrue(slow.disconnected)
        self.assertFalse(fast.disconnecting)
        self.assertEqual(h.registry.get("/live").slow_listeners, 1)
        close(slow_proto)
        self.assertEqual(h.registry.get("/live").listeners, 1)


class StalledListenerTests(SynchronousTestCase):
    def test_client_accepting_nothing_is_dropped(self):
        h = Harness("limits { client_timeout 30s }")
        h.source()
        proto, transport = h.listener()
        proto.delegate.pauseProducing()
        h.clock.advance(29)
        proto.delegate.resumeProducing()
        proto.delegate.pauseProducing()
        h.clock.advance(29)
        self.assertFalse(transport.disconnecting)
        h.clock.advance(1)
        self.assertTrue(transport.disconnected)
        self.assertEqual(h.registry.get("/live").listeners, 0)
        close(proto)
        self.assertFalse(h.clock.getDelayedCalls())


class LimitTests(SynchronousTestCase):
    def test_max_listeners(self):
        h = Harness("mounts { live { max_listeners 1 } }")
        source, _ = h.source()
        feed_frames(source, 10)
        h.listener()
        _, transport = h.listener()
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 503"))

    def test_global_per_mount_limit(self):
        h = Harness("limits { max_listeners_per_mount 1 }")
        h.source()
        h.listener()
        _, transport = h.listener()
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 503"))

    def test_fallback_when_full(self):
        h = Harness("mounts { live { max_listeners 1 fallback /overflow fallback_when_full true } "
                    "overflow { } }")
        h.source()
        h.source("/overflow")
        h.listener()
        h.listener()
        self.assertEqual(h.registry.get("/overflow").listeners, 1)

    def test_max_listener_duration(self):
        h = Harness("mounts { live { max_listener_duration 1h } }")
        h.source()
        _, transport = h.listener()
        h.clock.advance(3599)
        self.assertFalse(transport.disconnecting)
        h.clock.advance(1)
        self.assertTrue(transport.disconnecting)


class SendBufferTests(SynchronousTestCase):
    """A stalled player cannot hide megabytes in the kernel: its socket's send buffer is capped."""

    def test_capped_under_wrappers(self):
        import socket

        from gocast.protocols.listener import LISTENER_SEND_BUFFER, cap_send_buffer

        sock = socket.socket()
        self.addCleanup(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)

        class TCP:
            def getHandle(self):
                return sock

        class Wrapper:  # TLS or PROXY: its handle is not the socket; its transport leads there
            transport = TCP()

            def getHandle(self):
                return object()

        cap_send_buffer(Wrapper(), LISTENER_SEND_BUFFER)
        # Linux doubles what it is given, for its own bookkeeping.
        self.assertLessEqual(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF), 2 * LISTENER_SEND_BUFFER)
        cap_send_buffer(object(), LISTENER_SEND_BUFFER)  # no socket under it (a test transport): nothing


class FallbackTests(SynchronousTestCase):
    def test_listeners_move_and_return(self):
        h = Harness("mounts { live { fallback /backup } backup { } }")
        live_source, _ = h.source("/live")
        backup_source, _ = h.source("/backup")
        feed_frames(live_source, 10)
        _, transport = h.listener("/live")
        close(live_source)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(h.registry.get("/backup").listeners, 1)
        transport.clear()
        feed_frames(backup_source, 10)
        self.assertGreater(len(transport.value()), 0)
        live_source, _ = h.source("/live")
        self.assertEqual(h.registry.get("/live").listeners, 1)
        transport.clear()
        feed_frames(live_source, 10)
        self.assertGreater(len(transport.value()), 0)

    def test_listener_of_fallback_without_source(self):
        h = Harness("mounts { live { fallback /backup } backup { } }")
        h.source("/backup")
        _, transport = h.listener("/live")
        self.assertTrue(transport.value().startswith(b"HTTP/1.0 200 OK"))
        self.assertEqual(h.registry.get("/backup").listeners, 1)

    def test_fallback_never_skips_auth(self):
        """An open mount whose fallback is token-protected does not serve the protected audio."""
        h = Harness('mounts { public { fallback /vip } vip { auth { type token secret s3cret } } '
                    'backup { } members { fallback /vip auth { type token secret s3cret } } }')
        vip, _ = h.source("/vip")
        feed_frames(vip, 5)
        _, transport = h.listener("/public")
        self.assertIn(b" 404 ", transport.value())  # no live fallback it may hear
        self.assertEqual(h.registry.get("/vip").listeners, 0)
        # The same auth on both sides: the fallback is fine.
        self.assertEqual([m.path for m in h.registry.fallback_chain("/members")], ["/vip"])
        # Less strict is fine too: listeners of /vip may fall back to an open mount.
        self.assertEqual(h.registry.fallback_chain("/public"), [])

    def test_moves_never_skip_auth(self):
        h = Harness('mounts { public { } vip { auth { type token secret s3cret } } }')
        public, _ = h.source("/public")
        vip, _ = h.source("/vip")
        _, listener = h.listener("/public")
        with self.assertRaises(ValueError) as caught:
            move_listeners(h.registry, h.registry.get("/public"), h.registry.get("/vip"))
        self.assertIn("asks listeners for auth", str(caught.exception))
        self.assertEqual(h.registry.move(h.registry.get("/public"), h.registry.get("/vip")), 0)
        self.assertEqual(h.registry.get("/public").listeners, 1)
        status, _, body = h.get("/admin/moveclients?mount=/public&destination=/vip", "YWRtaW46aGFja21l")
        self.assertIn(b"asks listeners for auth", body)
        self.assertEqual(h.registry.get("/vip").listeners, 0)

    def test_fallback_override_never_pulls_in_listeners_of_open_mounts(self):
        h = Harness('mounts { vip { fallback /public fallback_override all auth { type token secret s3cret } } '
                    'public { } }')
        public, _ = h.source("/public")
        feed_frames(public, 5)
        _, listener = h.listener("/public")
        vip, _ = h.source("/vip")
        self.assertEqual(h.registry.get("/vip").listeners, 0)
        self.assertEqual(h.registry.get("/public").listeners, 1)

    def test_no_fallback_closes(self):
        h = Harness()
        source, _ = h.source()
        _, transport = h.listener()
        close(source)
        self.assertTrue(transport.disconnecting)
