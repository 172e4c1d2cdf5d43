"""A node in this process on a fake reactor: time moves only when the test advances it.

``InProcessNode`` builds a real :class:`broker.node.Node` (real stores over a synchronous SQLite
database, real notifier, typing tracker and sync handler) on ``MemoryReactorClock``. Storage
calls return fired Deferreds, so a coroutine runs until it waits on the clock (a long-poll, a
timer); :meth:`advance` moves the clock and fires what is due. No port is opened.
"""

from __future__ import annotations

import io
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

import yaml
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.web.test.requesthelper import DummyRequest

from broker.auth import Requester
from broker.config import load_config
from broker.init_config import write_initial_config
from broker.node import Node
from broker.rooms.create_room import CreateRoomRequest
from tests.storage_helpers import (
    drop_postgres_database,
    postgres_database_or_skip,
    result_of,
)

T = TypeVar("T")

# Where the fake clock starts (2026-01-01): timestamps look like real ones.
START_S = 1_767_225_600.0


class InProcessNode:
    def __init__(self, workdir: Path, server_name: str = "clock.test", *,
                 engine: str = "sqlite", dsn: str = "",
                 config: dict[str, Any] | None = None) -> None:
        """``engine`` "postgres" without a ``dsn`` uses a fresh database (dropped on close;
        skips the test without a PostgreSQL server); ``config``: top-level sections to set in
        the generated config."""
        self._database = ""
        if engine == "postgres" and not dsn:
            dsn, self._database = postgres_database_or_skip()
        config_path = workdir / "homeserver.yaml"
        write_initial_config(
            config_path=config_path, server_name=server_name, port=0,
            bind_address="127.0.0.1", data_dir="data", database_engine=engine,
            database_dsn=dsn, enable_registration=True, overwrite=True)
        if config:
            written = yaml.safe_load(config_path.read_text())
            written.update(config)
            config_path.write_text(yaml.safe_dump(written))
        self.config_path = config_path
        self.reactor = MemoryReactorClock()
        self.reactor.advance(START_S)
        self.node = Node(load_config(config_path), self.reactor)
        # Storage runs on the calling thread, so nothing waits on the pool.
        self.node.db.synchronous = True
        try:
            self.node.setup()
            self.run(self.node.rooms.start())
        except BaseException:
            self.close()  # its pool thread would otherwise keep the test run from exiting
            raise

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine that needs no time to pass; its result."""
        return result_of(defer.ensureDeferred(coroutine))

    def start(self, coroutine: Coroutine[Any, Any, T]) -> defer.Deferred[T]:
        """Start a coroutine that may wait on the clock; the Deferred of its result."""
        return defer.ensureDeferred(coroutine)

    def advance(self, seconds: float) -> None:
        self.reactor.advance(seconds)

    def turn(self) -> None:
        """One turn of a real reactor: the calls due now run, and those they schedule wait
        for the next turn (``advance(0)`` runs those too)."""
        now = self.reactor.seconds()
        for call in [c for c in self.reactor.getDelayedCalls() if c.getTime() <= now]:
            if call.active():  # an earlier call may have cancelled it
                self.reactor.calls.remove(call)
                call.called = 1
                call.func(*call.args, **call.kw)

    def settle(self, coroutine: Coroutine[Any, Any, T], turns: int = 20) -> T:
        """Run a coroutine that needs reactor turns but no time (a group commit); its
        result."""
        d = defer.ensureDeferred(coroutine)
        for _ in range(turns):
            if d.called:
                break
            self.reactor.advance(0)
        return result_of(d)

    def http(self, method: str, path: str, token: str | None = None, body: Any = None,
             args: dict[str, str] | None = None) -> DummyRequest:
        """Start a request through the node's router; the request, answered (``finished``)
        or still pending."""
        request = DummyRequest([])
        request.method = method.encode()
        request.path = request.uri = path.encode()
        request.args = {k.encode(): [v.encode()] for k, v in (args or {}).items()}
        request.content = io.BytesIO(b"" if body is None else json.dumps(body).encode())
        if token is not None:
            request.requestHeaders.setRawHeaders(b"authorization", [f"Bearer {token}".encode()])
        request._disconnected = False
        self.node.router.render(request)
        return request

    def register(self, localpart: str) -> tuple[Requester, str]:
        """A new account with one device: that device's requester and access token."""
        user_id = self.node.user_id(localpart)
        result_of(self.node.stores.users.create_user(
            user_id, "", self.node.clock.time_ms(), is_admin=False))
        token, device_id = self.run(self.node.auth.create_session(user_id, None, None, None))
        return Requester(user_id, device_id, False, ""), token

    def room_with_members(self, members: int, name: str | None) -> tuple[str, str, list[str]]:
        """A public room created by ``owner`` with ``members`` more users joined (``m0``,
        ``m1``...): its ID, the owner's access token and the members' tokens."""
        owner, owner_token = self.register("owner")
        room_id, _alias = self.settle(self.node.room_creation.create(
            CreateRoomRequest(creator=owner.user_id, preset="public_chat", name=name)))
        tokens = []
        for i in range(members):
            member, token = self.register(f"m{i}")
            self.settle(self.node.membership.join(room_id, member.user_id))
            tokens.append(token)
        return room_id, owner_token, tokens

    def call(self, method: str, path: str, token: str | None, body: Any = None, *,
             raw: bytes | None = None) -> tuple[int, Any]:
        """One request through the node's router (``raw``: the body's bytes as given); the
        status and the JSON answer (the text of a ``text/*`` one)."""
        request = DummyRequest([])
        request.method = method.encode()
        request.uri = path.encode()
        path, _, query = path.partition("?")
        request.path = path.encode()
        request.args = {k.encode(): [v.encode() for v in values]
                        for k, values in parse_qs(query, keep_blank_values=True).items()}
        content = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
        request.content = io.BytesIO(content)
        if token is not None:
            request.requestHeaders.setRawHeaders(b"authorization", [f"Bearer {token}".encode()])
        request._disconnected = False
        self.node.router.render(request)
        for _ in range(50):  # the group commit runs on the (fake) reactor
            if request.finished:
                break
            self.advance(0)
        assert request.finished, f"{method} {path} is still pending"
        written = b"".join(request.written)
        content_type = (request.responseHeaders.getRawHeaders(b"content-type") or [b""])[0]
        if content_type.startswith(b"text/"):  # a CSV export, say: its text
            return request.responseCode or 200, written.decode("utf-8")
        return request.responseCode or 200, json.loads(written)

    def close(self) -> None:
        self.node.db.close()
        if self._database:
            drop_postgres_database(self._database)
