"""
An S3-compatible server for the upload tests: moto's server mode (from
PyPI, installed with the test extras), on a free loopback port, stopped by
PID at cleanup.
"""

import sys
from pathlib import Path

from twisted.internet import defer, task

from ._process import ServerProcess, free_port

#: moto takes any credentials; these show that GoCast never logs them.
ACCESS_KEY = "moto-access-key-id"
SECRET_KEY = "moto-secret-key-never-logged"


class MotoServer:
    def __init__(self, testcase, reactor):
        self.testcase = testcase
        self.reactor = reactor
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port

    @defer.inlineCallbacks
    def start(self, timeout=30.0):
        import treq

        command = Path(sys.executable).with_name("moto_server")
        self.process = ServerProcess.spawn(self.reactor, [str(command), "-H", "127.0.0.1", "-p", str(self.port)])
        self.testcase.addCleanup(self.process.stop)
        deadline = self.reactor.seconds() + timeout
        while True:
            try:
                response = yield treq.get(self.url + "/moto-api/", reactor=self.reactor, persistent=False)
                yield response.content()
                return
            except Exception:
                if self.process.ended.called or self.reactor.seconds() > deadline:
                    raise AssertionError("moto_server did not start:\n%s" % self.process.output.decode())
                yield task.deferLater(self.reactor, 0.2, lambda: None)

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY)
