# -*- test-case-name: tests.test_auth -*-
"""
Outbound HTTP for features that ask another server (listener auth
callbacks, JWKS): treq, with a deadline on the whole exchange and a bound
on the reply body, so a slow or chatty server can neither hold a listener
forever nor fill memory.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import attr
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.python.failure import Failure

#: Largest reply body read by default.
MAX_BODY = 64 * 1024


class ReplyTooLarge(ValueError):
    pass


@attr.frozen
class HttpReply:
    code: int
    #: Lower-case header names; the last value of each.
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class OutboundHttp:
    """
    :param reactor: for the deadlines.
    :param http: the treq API (``treq``, or ``treq.testing.StubTreq`` in tests).
    """

    def __init__(self, reactor: Any, http: Any = None):
        if http is None:
            import treq as http
        self.reactor = reactor
        self.http = http
        #: Requests sent and not yet settled (a shutdown waits a little for them).
        self.in_flight = 0

    def request(self, method: str, url: str, timeout: float, data: Optional[bytes] = None,
                headers: Optional[Dict[str, str]] = None, max_body: int = MAX_BODY) -> Deferred:
        """A Deferred HttpReply; fails with TimeoutError after ``timeout`` seconds, the request cancelled."""
        async def exchange() -> HttpReply:
            response = await self.http.request(method, url, data=data, headers=headers)
            chunks = []
            size = 0

            def collect(chunk: bytes) -> None:
                nonlocal size
                size += len(chunk)
                if size > max_body:
                    raise ReplyTooLarge("the reply is larger than %d bytes" % max_body)
                chunks.append(chunk)

            await self.http.collect(response, collect)
            names = {name.decode("latin-1").lower(): values[-1].decode("latin-1", "replace")
                     for name, values in response.headers.getAllRawHeaders()}
            return HttpReply(response.code, names, b"".join(chunks))

        answered = ensureDeferred(exchange())
        self.in_flight += 1
        late: List[bool] = []

        def give_up() -> None:
            late.append(True)
            answered.cancel()

        deadline = self.reactor.callLater(timeout, give_up)

        def settled(result: Any) -> Any:
            self.in_flight -= 1
            if deadline.active():
                deadline.cancel()
            if late and isinstance(result, Failure):
                raise TimeoutError("no answer from %s within %gs" % (url, timeout))
            return result

        return answered.addBoth(settled)

    def post(self, url: str, data: bytes, headers: Dict[str, str], timeout: float) -> Deferred:
        return self.request("POST", url, timeout, data, headers)

    def get_json(self, url: str, timeout: float, max_body: int = 1024 * 1024) -> Deferred:
        """The JSON document at ``url``; fails unless the reply is a 200 with JSON."""
        def parsed(reply: HttpReply) -> Any:
            if reply.code != 200:
                raise ValueError("%s answered %d" % (url, reply.code))
            return reply.json()

        return self.request("GET", url, timeout, max_body=max_body).addCallback(parsed)
