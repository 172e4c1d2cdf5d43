"""Requests from the node to an application service (``/_matrix/app/v1``), each with the
service's hs_token (``Authorization: Bearer``) and a deadline.

Failures are domain errors the callers tell apart: :class:`TimedOut` (``M_CONNECTION_TIMEOUT``:
nothing answered in time), :class:`Unavailable` with ``M_CONNECTION_FAILED`` (no connection)
or :class:`BadStatus` (an answer other than 200, its status and the start of its body
kept).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import orjson
from treq.client import HTTPClient
from twisted.web.client import Agent, HTTPConnectionPool

from broker.appservice.registration import Registration
from broker.errors import InvalidInput, TimedOut, Unavailable

APP_PREFIX = "/_matrix/app/v1"
# A transaction, a ping or a query that takes longer has failed (and is retried, for a push).
DEFAULT_TIMEOUT_S = 30.0
# A query asks for an answer before the node answers a user: it waits less.
QUERY_TIMEOUT_S = 10.0
# How much of a refusing service's answer is kept for its error.
BODY_KEPT = 1000
# Connections kept open to each service.
PERSISTENT_PER_SERVICE = 2


class BadStatus(Unavailable):
    """The service answered, with a status other than 200 (``code``) and ``body``."""

    errcode = "M_BAD_STATUS"

    def __init__(self, service_id: str, code: int, body: str) -> None:
        super().__init__(f"{service_id} answered status {code}")
        self.code = code
        self.body = body


class AppServiceClient:
    def __init__(self, reactor: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.reactor = reactor
        self.timeout_s = timeout_s
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = PERSISTENT_PER_SERVICE
        pool.retryAutomatically = False  # a transaction is retried by its queue, not blindly
        agent: Any = Agent(reactor, pool=pool)
        self._http = HTTPClient(agent)

    async def request(self, service: Registration, method: str, path: str,
                      body: Any = None, timeout_s: float | None = None) -> tuple[int, bytes]:
        """One request to the service: the status and body of a 200 answer; TimedOut or
        Unavailable otherwise."""
        if service.url is None:
            raise InvalidInput(f"Application service {service.id} has no URL",
                               errcode="M_URL_NOT_SET")
        headers: Any = {b"Authorization": [f"Bearer {service.hs_token}".encode()],
                   b"Content-Type": [b"application/json"]}
        data = orjson.dumps(body) if body is not None else None
        started = self.reactor.seconds()
        deadline = timeout_s or self.timeout_s
        try:
            response = await self._http.request(method, service.url + path, headers=headers,
                                                data=data, timeout=deadline,
                                                reactor=self.reactor)
            content: bytes = await response.content()
        except Exception as e:  # noqa: BLE001 - any transport failure is "no connection"
            if self.reactor.seconds() - started >= deadline:  # the deadline cancelled it
                raise TimedOut(f"{service.id} did not answer within {deadline:g}s",
                               errcode="M_CONNECTION_TIMEOUT") from None
            raise Unavailable(f"Could not reach {service.id}: {e.__class__.__name__}",
                              errcode="M_CONNECTION_FAILED") from None
        if response.code != 200:
            raise BadStatus(service.id, response.code,
                            content[:BODY_KEPT].decode("utf-8", "replace"))
        return response.code, content

    async def ping(self, service: Registration, transaction_id: str | None) -> int:
        """``POST /ping``; the milliseconds the answer took."""
        started = time.monotonic()
        body = {"transaction_id": transaction_id} if transaction_id is not None else {}
        await self.request(service, "POST", f"{APP_PREFIX}/ping", body)
        return round((time.monotonic() - started) * 1000)

    async def push(self, service: Registration, txn_id: str, body: dict[str, Any]) -> None:
        """``PUT /transactions/{txnId}``."""
        await self.request(service, "PUT", f"{APP_PREFIX}/transactions/{quote(txn_id, safe='')}",
                           body)

    async def query_user(self, service: Registration, user_id: str) -> bool:
        """``GET /users/{userId}``: whether the service says the user exists (it created it
        if it answers 200)."""
        return await self._query(service, f"{APP_PREFIX}/users/{quote(user_id, safe='')}")

    async def query_alias(self, service: Registration, alias: str) -> bool:
        """``GET /rooms/{roomAlias}``: whether the service created the alias's room."""
        return await self._query(service, f"{APP_PREFIX}/rooms/{quote(alias, safe='')}")

    async def _query(self, service: Registration, path: str) -> bool:
        try:
            await self.request(service, "GET", path, timeout_s=QUERY_TIMEOUT_S)
        except Unavailable:
            return False  # 404, an error, no answer: the thing does not exist
        except InvalidInput:
            return False
        return True
