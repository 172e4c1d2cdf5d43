"""Async helpers for driving a real node with matrix-nio, as a user's app would.

Users are registered through ``AsyncClient.register``; rooms are created, joined and synced
through nio's own calls, so what the tests see is what an SDK-based app sees.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
import nio

from tests.node_harness import NodeProcess

PASSWORD = "correct horse 1"
LONG_POLL_MS = 10_000

T = TypeVar("T")


def expect(response: Any, kind: type[T]) -> T:
    """The response, asserted to be of nio's success type (the failure shows the error)."""
    assert isinstance(response, kind), f"expected {kind.__name__}, got {response!r}"
    return response


def new_username() -> str:
    return "j" + uuid.uuid4().hex[:10]


async def register(node: NodeProcess, username: str | None = None,
                   device_name: str = "journey app") -> nio.AsyncClient:
    """A fresh account, registered and logged in through nio."""
    username = username or new_username()
    client = nio.AsyncClient(node.base_url, username)
    expect(await client.register(username, PASSWORD, device_name), nio.RegisterResponse)
    return client


@asynccontextmanager
async def users(node: NodeProcess, count: int) -> AsyncIterator[list[nio.AsyncClient]]:
    """``count`` registered users whose clients are closed afterwards."""
    clients: list[nio.AsyncClient] = []
    try:
        for _ in range(count):
            clients.append(await register(node))
        yield clients
    finally:
        for client in clients:
            await client.close()


async def create_room(owner: nio.AsyncClient, invite: list[str] | None = None,
                      **kwargs: Any) -> str:
    created = expect(await owner.room_create(invite=invite or [], **kwargs),
                     nio.RoomCreateResponse)
    return str(created.room_id)


async def shared_room(owner: nio.AsyncClient, guest: nio.AsyncClient, **kwargs: Any) -> str:
    """A room the owner creates inviting the guest, which the guest then joins."""
    room_id = await create_room(owner, invite=[guest.user_id], **kwargs)
    expect(await guest.join(room_id), nio.JoinResponse)
    return room_id


async def send_text(client: nio.AsyncClient, room_id: str, body: str) -> str:
    sent = expect(await client.room_send(room_id, "m.room.message",
                                         {"msgtype": "m.text", "body": body}),
                  nio.RoomSendResponse)
    return str(sent.event_id)


async def initial_sync(client: nio.AsyncClient, **kwargs: Any) -> nio.SyncResponse:
    """The first sync; later ``client.sync`` calls continue from its ``next_batch``."""
    return expect(await client.sync(timeout=0, **kwargs), nio.SyncResponse)


async def sync_until(client: nio.AsyncClient, found: Callable[[nio.SyncResponse], T | None],
                     deadline_s: float = 15.0) -> T:
    """Long-poll until ``found`` returns something truthy for a sync response; return it."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        response = expect(await client.sync(timeout=LONG_POLL_MS), nio.SyncResponse)
        result = found(response)
        if result:
            return result
    raise AssertionError(f"{client.user_id}: nothing matching arrived by sync in {deadline_s}s")


def timeline(response: nio.SyncResponse, room_id: str) -> list[Any]:
    room = response.rooms.join.get(room_id)
    return list(room.timeline.events) if room else []


def ephemeral(response: nio.SyncResponse, room_id: str) -> list[Any]:
    room = response.rooms.join.get(room_id)
    return list(room.ephemeral) if room else []


def text_with_id(event_id: str) -> Callable[[nio.SyncResponse], nio.RoomMessageText | None]:
    """A ``sync_until`` matcher for one text message, by event id, in any joined room."""
    def find(response: nio.SyncResponse) -> nio.RoomMessageText | None:
        for room in response.rooms.join.values():
            for event in room.timeline.events:
                if event.event_id == event_id:
                    assert isinstance(event, nio.RoomMessageText), event
                    return event
        return None
    return find


async def parked_sync(client: nio.AsyncClient, timeout_ms: int = 30_000) -> asyncio.Task[Any]:
    """Start a long-poll sync, wait until the client has sent it (aiohttp's "headers sent"
    signal, no sleep) and check that it is still pending.

    What is sent next reaches the node after the sync. The node answers the same either way
    (at once if the news was there first), so a test built on this cannot flake; the wake-up
    path itself is pinned down on a fake clock in tests/test_sync_clock.py."""
    sent = asyncio.Event()
    trace = aiohttp.TraceConfig()

    async def on_headers_sent(_session: Any, _context: Any,
                              params: aiohttp.TraceRequestHeadersSentParams) -> None:
        if params.url.path.endswith("/sync"):
            sent.set()

    trace.on_request_headers_sent.append(on_headers_sent)
    trace.freeze()
    assert client.client_session is not None, "the client has not made a request yet"
    traces = client.client_session.trace_configs
    traces.append(trace)
    try:
        task = asyncio.ensure_future(client.sync(timeout=timeout_ms))
        await asyncio.wait_for(sent.wait(), 10)
    finally:
        traces.remove(trace)
    assert not task.done(), f"sync returned before anything happened: {task.result()!r}"
    return task
