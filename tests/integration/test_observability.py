"""
The issue's station: ffmpeg streaming, listeners joining, JSON logs with
request IDs, and signed webhooks delivered to a real local receiver that
fails once before it accepts.
"""

import hashlib
import hmac
import json

import treq
from twisted.internet import reactor, task
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from ._process import raw_request, spawn_tool, start_server, wait_for_source

SECRET = b"whsec-test"


class Receiver(Resource):
    """A webhook endpoint (that answers 500 to the very first delivery with ``fail_first``)."""

    isLeaf = True

    def __init__(self, fail_first=True):
        super().__init__()
        self.fail_first = fail_first
        self.deliveries = []

    def render_POST(self, request):
        body = request.content.read()
        headers = {k.decode().lower(): v[0].decode() for k, v in request.requestHeaders.getAllRawHeaders()}
        self.deliveries.append((headers, body))
        if self.fail_first and len(self.deliveries) == 1:
            request.setResponseCode(500)
        return b"ok"

    def events(self, name):
        """The deliveries of event ``name`` as (delivery id, payload)."""
        found = [(headers["x-gocast-delivery"], json.loads(body)) for headers, body in self.deliveries]
        return [(delivery, data) for delivery, data in found if data["event"] == name]


async def receive_webhooks(testcase, fail_first=True):
    """A :class:`Receiver` on a free loopback port, and its URL."""
    receiver = Receiver(fail_first)
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(receiver))
    testcase.addCleanup(port.stopListening)
    return receiver, "http://127.0.0.1:%d/hook" % port.getHost().port


class ObservabilityTests(TestCase):
    timeout = 120

    async def test_station_with_webhooks_and_json_logs(self):
        receiver, hook_url = await receive_webhooks(self)
        server, base = await start_server(self, reactor, (
            "logging { format json }\n"
            "webhooks { station { url %s secret \"%s\" retry 3 timeout 5s\n"
            "  events [source.connect source.metadata stats.milestone source.disconnect] } }\n"
            % (hook_url, SECRET.decode())))
        source = spawn_tool(self, reactor, [
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "sine",
            "-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3",
            "icecast://source:hackme@%s/live" % base[len("http://"):]])
        await wait_for_source(reactor, base, "/live", server)
        response = await treq.get(base + "/admin/metadata", params={
            "mount": "/live", "mode": "updinfo", "song": "Band - Song"}, auth=("admin", "hackme"),
            headers={"X-Request-ID": "meta-42"}, reactor=reactor, persistent=False)
        self.assertEqual(response.headers.getRawHeaders("x-request-id"), ["meta-42"])
        await response.content()
        for _ in range(10):
            await raw_request(self, reactor, base, b"GET /live HTTP/1.0\r\n\r\n")
        await task.deferLater(reactor, 0.5, lambda: None)
        await source.stop()

        wanted = {"source.connect", "source.metadata", "stats.milestone", "source.disconnect"}
        for _ in range(200):
            accepted = {json.loads(body)["event"] for _, body in receiver.deliveries[1:]}
            if wanted <= accepted:
                break
            await task.deferLater(reactor, 0.1, lambda: None)
        self.assertEqual(accepted, wanted)
        first, retried = receiver.deliveries[0], receiver.deliveries[1]
        self.assertEqual(first[0]["x-gocast-delivery"], retried[0]["x-gocast-delivery"])
        for headers, body in receiver.deliveries:
            expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
            self.assertEqual(headers["x-gocast-signature"], expected)
        milestone = [json.loads(b) for _, b in receiver.deliveries if b"stats.milestone" in b][0]
        self.assertEqual((milestone["mount"], milestone["data"]["milestone"]), ("/live", 10))

        metrics = await treq.get(base + "/metrics", reactor=reactor, persistent=False)
        text = (await metrics.content()).decode()
        self.assertIn('gocast_webhook_deliveries_total{result="success",webhook="station"} 4.0', text)

        lines = [json.loads(line) for line in server.output.decode().splitlines() if line.startswith("{")]
        self.assertTrue(lines)
        access = [line for line in lines if line.get("request_id") == "meta-42"]
        self.assertEqual(access[0]["path"], "/admin/metadata?mount=%2Flive&mode=updinfo&song=Band+-+Song")
        self.assertNotIn("hackme", server.output.decode())
