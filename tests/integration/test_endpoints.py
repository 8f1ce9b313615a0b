"""
``server.endpoints`` in a real ``twistd gocast``: a load balancer's PROXY v1
header gives the client address the access log records, and a socket
passed the way systemd passes it (socket activation) is served.
"""

import socket

from twisted.internet import reactor
from twisted.python.filepath import FilePath
from twisted.trial.unittest import TestCase

from ._process import ServerProcess, eventually, free_port, raw_request, twistd_command, wait_for_http


class EndpointTests(TestCase):
    timeout = 90

    def setUp(self):
        self.folder = FilePath(self.mktemp())
        self.folder.makedirs()

    def config(self, text):
        config = self.folder.child("gocast.vibe")
        config.setContent(text.encode())
        return config

    async def test_proxy_v1_header_gives_the_client_address(self):
        port, proxied = free_port(), free_port()
        folder = self.folder
        config = self.config(
            'server { listen 127.0.0.1 port %d shutdown_timeout 2s data_dir "%s" '
            'endpoints ["tcp:%d:interface=127.0.0.1" "haproxy:tcp:%d:interface=127.0.0.1"] }\n'
            'logging { access_log "%s" access_log_rotation none }\n'
            % (port, folder.child("data").path, port, proxied, folder.child("access.log").path))
        process = ServerProcess.spawn(
            reactor, twistd_command("--nodaemon", "--pidfile=", "gocast", "--config", config.path))
        self.addCleanup(process.stop)
        await wait_for_http(reactor, "http://127.0.0.1:%d/health/live" % port, process)
        client = await raw_request(
            self, reactor, "http://127.0.0.1:%d" % proxied,
            b"PROXY TCP4 203.0.113.7 127.0.0.1 51000 %d\r\n"
            b"GET /status-json.xsl?via=balancer HTTP/1.1\r\nHost: radio.test\r\nConnection: close\r\n\r\n"
            % proxied)
        await client.closed
        self.assertIn(b"HTTP/1.1 200 OK", bytes(client.data))
        log = folder.child("access.log")

        def logged():
            return log.exists() and b"via=balancer" in log.getContent()

        await eventually(reactor, logged, what="the access log line")
        [line] = [line for line in log.getContent().decode().splitlines() if "via=balancer" in line]
        self.assertTrue(line.startswith("203.0.113.7 "), line)
        # Without the header, the balancer's port refuses to guess.
        bare = await raw_request(self, reactor, "http://127.0.0.1:%d" % proxied,
                                 b"GET /health/live HTTP/1.0\r\n\r\n")
        await bare.closed
        self.assertEqual(bytes(bare.data), b"")

    async def test_socket_passed_by_systemd(self):
        port = free_port()
        listening = socket.socket()
        self.addCleanup(listening.close)
        listening.bind(("127.0.0.1", port))
        listening.listen(16)
        config = self.config(
            'server { listen 127.0.0.1 port %d shutdown_timeout 2s data_dir "%s" '
            'endpoints ["systemd:domain=INET:index=0"] }\n' % (free_port(), self.folder.child("data").path))
        # systemd passes sockets from descriptor 3 on, with LISTEN_PID set to
        # the service's own pid: the shell sets it, then becomes twistd.
        argv = ["/bin/sh", "-c", 'export LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=web; exec "$@"', "sh"] + twistd_command(
            "--nodaemon", "--pidfile=", "gocast", "--config", config.path)
        process = ServerProcess.spawn(reactor, argv, child_fds={3: listening.fileno()})
        self.addCleanup(process.stop)
        response, body = await wait_for_http(reactor, "http://127.0.0.1:%d/health/live" % port, process)
        self.assertEqual(response.code, 200)
