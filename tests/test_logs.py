"""Structured logs, request IDs, the access log, and secrets kept out of logs."""

import base64
import io
import json

from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import Logger, globalLogPublisher
from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from gocast.config import parse_config
from gocast.observe import logs
from gocast.observe.logs import (
    AccessLog, JSONLinesObserver, build_observer, redact_target, reopen_logs, reopenable_file,
    twistd_log_output,
)
from gocast.resources.site import MAX_REQUEST_BODY, GocastSite, request_id_from

from .streaming import AUTH, Harness, close, feed_frames, split_response


def logging_config(text=""):
    return parse_config("logging { %s }" % text).config.logging


class ObserverTests(SynchronousTestCase):
    def test_json_lines(self):
        out = io.StringIO()
        log = Logger(observer=build_observer(logging_config("format json"), out), namespace="test")
        log.info("{mount}: source connected from {client}", mount="/live", client="10.0.0.1",
                 request_id="r1", event="source.connect")
        record = json.loads(out.getvalue())
        self.assertEqual(record["message"], "/live: source connected from 10.0.0.1")
        self.assertEqual((record["level"], record["namespace"], record["mount"], record["client"],
                          record["request_id"], record["event"]),
                         ("info", "test", "/live", "10.0.0.1", "r1", "source.connect"))
        self.assertTrue(record["timestamp"].endswith("Z"))

    def test_level_filter_and_text(self):
        out = io.StringIO()
        log = Logger(observer=build_observer(logging_config("level warn"), out))
        log.info("quiet")
        log.warn("loud {x}", x=1)
        self.assertNotIn("quiet", out.getvalue())
        self.assertIn("loud 1", out.getvalue())

    def test_request_id_left_out_when_disabled(self):
        out = io.StringIO()
        observer = JSONLinesObserver(out, include_request_id=False)
        Logger(observer=observer).info("x", request_id="r")
        self.assertNotIn("request_id", json.loads(out.getvalue()))


class LogFileTests(SynchronousTestCase):
    """Files named by the config or by twistd, reopened after logrotate moved them."""

    def setUp(self):
        self.folder = FilePath(self.mktemp())
        self.folder.makedirs()
        opened = dict(logs._OPEN)
        self.addCleanup(self.forget_files_opened_here, opened)

    def forget_files_opened_here(self, before):
        for key in set(logs._OPEN) - set(before):
            logs._OPEN.pop(key).close()

    def test_reopen_after_rename(self):
        path = self.folder.child("gocast.log")
        log = reopenable_file(path.path)
        self.addCleanup(log.close)
        log.write("before\n")
        log.flush()
        path.moveTo(self.folder.child("gocast.log.1"))
        log.write("still old\n")
        log.reopen()
        log.write("after\n")
        log.flush()
        self.assertEqual(self.folder.child("gocast.log.1").getContent(), b"before\nstill old\n")
        self.assertEqual(path.getContent(), b"after\n")

    def test_reopen_logs_reaches_server_and_access_logs(self):
        server, access = self.folder.child("server.log"), self.folder.child("access.log")
        config = logging_config('output "%s" access_log "%s" access_log_rotation none'
                                % (server.path, access.path))
        log = Logger(observer=build_observer(config))
        access_log = AccessLog(config)
        log.info("one")
        access_log.record("10.0.0.1", "GET", "/live", "HTTP/1.1", 200, 10, "", "mpv", 1.0, "r1", "/live")
        server.moveTo(self.folder.child("server.log.1"))
        access.moveTo(self.folder.child("access.log.1"))
        reopen_logs()
        log.info("two")
        access_log.record("10.0.0.2", "GET", "/live", "HTTP/1.1", 200, 10, "", "vlc", 1.0, "r2", "/live")
        self.assertIn(b"one", self.folder.child("server.log.1").getContent())
        self.assertNotIn(b"one", server.getContent())
        self.assertIn(b"two", server.getContent())
        self.assertIn(b"10.0.0.1", self.folder.child("access.log.1").getContent())
        self.assertIn(b"10.0.0.2", access.getContent())
        self.assertNotIn(b"10.0.0.1", access.getContent())

    def test_empty_output_goes_where_twistd_would(self):
        path = self.folder.child("twistd.log")
        log = Logger(observer=build_observer(logging_config(), default_output=path.path))
        log.info("daemon line")
        self.assertIn(b"daemon line", path.getContent())

    def test_a_named_output_wins_over_twistd(self):
        named, twistd = self.folder.child("named.log"), self.folder.child("twistd.log")
        log = Logger(observer=build_observer(logging_config('output "%s"' % named.path),
                                             default_output=twistd.path))
        log.info("named line")
        self.assertIn(b"named line", named.getContent())
        self.assertFalse(twistd.exists())

    def test_twistd_destinations(self):
        cases = [
            (None, "stdout"),
            ({"nodaemon": True, "logfile": None, "syslog": False}, "stdout"),
            ({"nodaemon": False, "logfile": None, "syslog": False}, "twistd.log"),
            ({"nodaemon": False, "logfile": "/var/log/gocast/gocast.log", "syslog": False},
             "/var/log/gocast/gocast.log"),
            ({"nodaemon": False, "logfile": "-", "syslog": False}, "stdout"),
            ({"nodaemon": False, "logfile": None, "syslog": True, "prefix": "gocast"}, "syslog:gocast"),
            ({"nodaemon": True, "logfile": None, "syslog": True, "prefix": None}, "syslog:twisted"),
        ]
        for options, expected in cases:
            self.assertEqual(twistd_log_output(options), expected, options)


class RequestIdTests(SynchronousTestCase):
    def test_valid_ids_kept_others_replaced(self):
        self.assertEqual(request_id_from("abc-123.X_y:z"), "abc-123.X_y:z")
        fresh = [request_id_from(bad) for bad in (None, "", "a b", "x" * 65, "é", "a\r\nb")]
        for request_id in fresh:
            self.assertRegex(request_id, "^[0-9a-f]{16}$")
        self.assertEqual(len(set(fresh)), len(fresh))

    def test_web_and_stream_replies_carry_the_id(self):
        h = Harness()
        _, headers, _ = h.get("/health/live", extra="X-Request-ID: trace-1\r\n")
        self.assertEqual(headers["x-request-id"], "trace-1")
        _, transport = h.connect(("SOURCE /live HTTP/1.0\r\n%sContent-Type: audio/mpeg\r\n"
                                  "X-Request-ID: src-9\r\n\r\n" % AUTH).encode())
        self.assertEqual(split_response(transport.value())[1]["x-request-id"], "src-9")
        _, transport = h.listener()
        self.assertRegex(split_response(transport.value())[1]["x-request-id"], "^[0-9a-f]{16}$")


class AccessLogTests(SynchronousTestCase):
    def test_redaction(self):
        self.assertEqual(redact_target("/admin.cgi?mode=updinfo&pass=s3&song=a"),
                         "/admin.cgi?mode=updinfo&pass=<redacted>&song=a")
        self.assertEqual(redact_target("/live?token=eyJ.x.y&x=1"), "/live?token=<redacted>&x=1")

    def test_file_with_size_rotation_and_json(self):
        path = FilePath(self.mktemp())
        path.makedirs()
        log_file = path.child("access.log")
        access = AccessLog(logging_config('format json access_log "%s" access_log_rotation size:1k'
                                          % log_file.path))
        for i in range(40):
            access.record("10.0.0.1", "GET", "/live?token=t%d" % i, "HTTP/1.1", 200, 1000, "", "mpv", 3.5,
                          "rid%d" % i, "/live")
        lines = log_file.getContent().decode().splitlines()
        record = json.loads(lines[-1])
        self.assertEqual((record["path"], record["request_id"], record["mount"]),
                         ("/live?token=<redacted>", "rid39", "/live"))
        self.assertTrue(path.child("access.log.1").exists())

    def test_client_text_cannot_forge_lines_or_reach_the_terminal(self):
        lines = []
        globalLogPublisher.addObserver(lines.append)
        self.addCleanup(globalLogPublisher.removeObserver, lines.append)
        AccessLog(logging_config()).record(
            "10.0.0.1", "GET", '/x"y', "HTTP/1.1", 200, 1, 'http://a/" 200 0 "-" "forged',
            'evil\x1b[2J\n10.0.0.9 - - [x] "GET /admin HTTP/1.1" 200 1 "-" "-" 0', 0.1, "r1")
        [line] = [e["access_line"] for e in lines if "access_line" in e]
        self.assertEqual(line.count("\n"), 0)
        self.assertNotIn("\x1b", line)
        self.assertIn('"GET /x\\"y HTTP/1.1"', line)
        self.assertIn('"http://a/\\" 200 0 \\"-\\" \\"forged"', line)
        self.assertIn("evil\\x1b[2J\\x0a10.0.0.9", line)

    def test_listener_line_in_combined_format(self):
        h = Harness()
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        h.source()
        proto, _ = h.listener(extra="User-Agent: mpv\r\nReferer: http://x/\r\n")
        h.clock.advance(12)
        close(proto)
        [line] = [e["access_line"] for e in events if "access_line" in e]
        self.assertRegex(line, r'^10\.0\.0\.5 - - \[[^]]+\] "GET /live HTTP/1\.1" 200 \d+ "http://x/" "mpv" 12$')


class AccessFastPathTests(SynchronousTestCase):
    """Access lines reach a text server log without a log event, flushed in batches, under the level rule."""

    class Counted(io.StringIO):
        flushes = 0

        def flush(self):
            self.flushes += 1

    def access_log(self, text=""):
        out, clock = self.Counted(), MemoryReactorClock()
        observer = logs.SwitchableObserver(build_observer(logging_config(text), out, clock=clock))
        observer.installed = True  # as under twistd
        return AccessLog(logging_config(text), observer.access_line, clock), out, clock

    def test_same_line_as_the_event_path_flushed_once_per_batch(self):
        access, out, clock = self.access_log()
        for client in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            access.record(client, "GET", "/hls/live/playlist.m3u8?token=secret", "HTTP/1.1", 200, 10, "", "hls.js",
                          0.0, "r1")
        lines = out.getvalue().splitlines()
        self.assertEqual(len(lines), 3)
        self.assertRegex(lines[0], r'^\S+ \[gocast\.access#info\] 10\.0\.0\.1 - - \[[^]]+\] '
                                   r'"GET /hls/live/playlist\.m3u8\?token=<redacted> HTTP/1\.1" 200 10 "-" "hls\.js" 0$')
        self.assertEqual(out.flushes, 0)
        clock.advance(logs.SoonFlushed.DELAY)
        self.assertEqual(out.flushes, 1)  # one flush for the three lines
        access.record("10.0.0.4", "GET", "/", "HTTP/1.1", 200, 1, "", "", 0.0, "r2")
        clock.advance(logs.SoonFlushed.DELAY)
        self.assertEqual(out.flushes, 2)

        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        AccessLog(logging_config()).record("10.0.0.1", "GET", "/hls/live/playlist.m3u8?token=secret", "HTTP/1.1",
                                           200, 10, "", "hls.js", 0.0, "r1")
        [line] = [e["access_line"] for e in events if "access_line" in e]
        self.assertEqual(lines[0].split("] ", 1)[1], line)  # what the event path logs

    def test_an_observer_twistd_does_not_use_gets_events(self):
        out = self.Counted()
        observer = logs.SwitchableObserver(build_observer(logging_config(), out, clock=MemoryReactorClock()))
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        AccessLog(logging_config(), observer.access_line).record("10.0.0.1", "GET", "/", "HTTP/1.1", 200, 1, "",
                                                                 "", 0.0, "r1")
        self.assertEqual(out.getvalue(), "")
        self.assertEqual(len([e for e in events if "access_line" in e]), 1)

    def test_above_info_access_lines_are_not_logged(self):
        access, out, _ = self.access_log("level warn")
        access.record("10.0.0.1", "GET", "/", "HTTP/1.1", 200, 1, "", "", 0.0, "r1")
        self.assertEqual(out.getvalue(), "")

    def test_json_logs_still_get_every_field(self):
        access, out, _ = self.access_log("format json")
        access.record("10.0.0.1", "GET", "/live", "HTTP/1.1", 200, 1, "", "mpv", 0.0, "r1", "/live")
        self.assertEqual(out.getvalue(), "")  # a JSON log takes events: the line went to the publisher

        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        access.record("10.0.0.1", "GET", "/live", "HTTP/1.1", 200, 1, "", "mpv", 0.0, "r1", "/live")
        [event] = [e for e in events if "access_line" in e]
        self.assertEqual((event["client"], event["mount"], event["user_agent"]), ("10.0.0.1", "/live", "mpv"))


class SecretsTests(SynchronousTestCase):
    def test_no_secret_in_any_log_line(self):
        secrets = ["s3cretSource", "adm1nPass", "t0kenValue"]
        h = Harness('auth { source_password s3cretSource admin_password adm1nPass }')
        out = io.StringIO()
        observer = JSONLinesObserver(out)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        basic = base64.b64encode(b"source:s3cretSource").decode()
        source, _ = h.connect(("SOURCE /live HTTP/1.0\r\nAuthorization: Basic %s\r\n"
                               "Content-Type: audio/mpeg\r\n\r\n" % basic).encode())
        feed_frames(source, 5)
        h.connect(b"SOURCE /x HTTP/1.0\r\nAuthorization: Basic d3Jvbmc6d3Jvbmc=\r\n\r\n")
        admin = base64.b64encode(b"admin:adm1nPass").decode()
        h.get("/admin/metadata?mount=/live&mode=updinfo&song=x", admin)
        h.get("/admin.cgi?mode=updinfo&pass=s3cretSource&song=y")
        proto, _ = h.listener("/live?token=t0kenValue")
        close(proto)
        close(source)
        text = out.getvalue()
        self.assertIn("/admin.cgi", text)
        for secret in secrets + [basic, admin]:
            self.assertNotIn(secret, text)


class TextObserverTests(SynchronousTestCase):
    """GoCast's text observer writes exactly what Twisted's textFileLogObserver does."""

    def test_same_lines_as_twisted(self):
        import io

        from twisted.logger import LogLevel, textFileLogObserver
        from twisted.python.failure import Failure

        from gocast.observe.logs import ACCESS_FORMAT, TextLogObserver

        try:
            1 / 0
        except ZeroDivisionError:
            failure = Failure()
        events = [
            {"log_format": ACCESS_FORMAT, "access_line": '1.2.3.4 - - [x] "GET / HTTP/1.1" 200 5 "-" "-" 0',
             "log_level": LogLevel.info, "log_namespace": "gocast.access", "log_time": 1795000000.25, "client": "1"},
            {"log_format": "{mount}: source connected from {peer}", "mount": "/live", "peer": "10.0.0.1",
             "log_level": LogLevel.warn, "log_namespace": "gocast.protocols.source", "log_time": 1795000000.75},
            {"log_format": "legacy", "log_system": "-", "log_level": LogLevel.info, "log_namespace": "log_legacy",
             "log_time": 1795000001.5},
            {"log_format": "broke", "log_failure": failure, "log_level": LogLevel.critical,
             "log_namespace": "gocast.x", "log_time": 1795000002.0},
            {"log_format": "no time", "log_level": LogLevel.info, "log_namespace": "gocast.y"},
        ]
        ours, theirs = io.StringIO(), io.StringIO()
        mine, twisted = TextLogObserver(ours), textFileLogObserver(theirs)
        for event in events:
            mine(dict(event))
            twisted(dict(event))
        self.assertEqual(ours.getvalue(), theirs.getvalue())
        self.assertIn("[gocast.access#info] 1.2.3.4 - - [x]", ours.getvalue())


class RangeTests(SynchronousTestCase):
    """Several ranges at once would make a multipart body many times a file's size: the file instead."""

    def ranges_seen(self, header):
        seen = []

        class Echo(Resource):
            isLeaf = True

            def render_GET(self, request):
                seen.append(request.getHeader(b"range"))
                return b"x"

        site = GocastSite(Echo(), MemoryReactorClock(), AccessLog(logging_config()), lambda code: None,
                          lambda: parse_config("").config.cors)
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        channel.makeConnection(StringTransport())
        channel.dataReceived(b"GET /f HTTP/1.1\r\nHost: x\r\nRange: %s\r\n\r\n" % header)
        return seen

    def test_one_range_kept_several_dropped(self):
        self.assertEqual(self.ranges_seen(b"bytes=0-9"), [b"bytes=0-9"])
        self.assertEqual(self.ranges_seen(b"bytes=" + b",".join([b"0-1000"] * 200)), [None])


class RequestBodyLimitTests(SynchronousTestCase):
    """twisted.web would spool any body to disk: the site reads at most MAX_REQUEST_BODY."""

    def post(self, headers, body):
        h = Harness()
        proto, transport = h.connect(("POST /admin/reload HTTP/1.1\r\nHost: x\r\n%s\r\n" % headers).encode())
        proto.dataReceived(body)
        return h, transport

    def test_declared_length_too_large(self):
        h, transport = self.post("Content-Length: %d\r\n" % (MAX_REQUEST_BODY + 1), b"x" * 1000)
        status, _, reason = split_response(transport.value())
        self.assertIn(" 413 ", status)
        self.assertEqual(reason, b"the request body is larger than 1024 KiB\n")
        self.assertTrue(transport.disconnecting)
        self.assertIn(b'gocast_http_requests_total{class="4xx"} 1.0', h.metrics.render())

    def test_chunked_body_cut_off_when_it_goes_past(self):
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
        _, transport = self.post("Transfer-Encoding: chunked\r\n", chunk * 16)
        self.assertEqual(transport.value(), b"")  # 1 MiB: still read
        _, transport = self.post("Transfer-Encoding: chunked\r\n", chunk * 17)
        self.assertIn(b" 413 ", transport.value().split(b"\r\n")[0])
        self.assertTrue(transport.disconnecting)

    def test_a_body_within_the_limit_reaches_the_resource(self):
        form = b"mount=/live&mode=updinfo&song=Band+-+Tune"
        h = Harness()
        h.source()
        proto, transport = h.connect(
            b"POST /admin/metadata HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46aGFja21l\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
            % (len(form), form))
        self.assertIn(b" 200 ", transport.value().split(b"\r\n")[0])
        live = h.registry.get("/live")
        self.assertEqual((live.artist, live.title), ("Band", "Tune"))
