"""The local send path under concurrency: retried transaction IDs, neighbours in the same group
commit, and a node killed while sends are in flight."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.node_harness import Client, NodeProcess
from tests.room_helpers import V3, create_room, room_path

RETRIES = 8
ROUNDS = 5


def _send_path(room_id: str, txn_id: str) -> str:
    return f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{quote(txn_id)}"


def _send(client: Client, room_id: str, txn_id: str, body: str) -> tuple[int, Any]:
    """One PUT /send on a session of its own (threads must not share one)."""
    own = Client(client.base_url, client.token)
    response = own.put(_send_path(room_id, txn_id), {"msgtype": "m.text", "body": body})
    return own.status, response


def _all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run every call on its own thread, released together."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _bodies(client: Client, room_id: str) -> list[str]:
    """The bodies of every m.room.message in the room, oldest first."""
    chunk = client.get(room_path(room_id, "messages"),
                       params={"dir": "f", "limit": 1000})["chunk"]
    return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]


def test_concurrent_retries_of_one_transaction_get_one_event(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    results = _all_at_once([lambda: _send(alice, room_id, "retried", "once")] * RETRIES)
    assert [status for status, _ in results] == [200] * RETRIES, results
    assert len({body["event_id"] for _, body in results}) == 1
    assert _bodies(alice, room_id) == ["once"]


def test_retries_of_one_transaction_leave_other_rooms_sends_unharmed(
        any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    others = [any_node.register() for _ in range(4)]
    other_rooms = [create_room(user) for user in others]
    for round_ in range(ROUNDS):
        calls: list[Callable[[], Any]] = [
            partial(_send, alice, room_id, f"shared-{round_}", f"alice {round_}")] * RETRIES
        for user, other_room in zip(others, other_rooms, strict=True):
            calls += [partial(_send, user, other_room, uuid.uuid4().hex, f"m{round_}")
                      for _ in range(2)]
        results = _all_at_once(calls)
        assert [status for status, _ in results] == [200] * len(calls), results
    assert _bodies(alice, room_id) == [f"alice {r}" for r in range(ROUNDS)]
    for user, other_room in zip(others, other_rooms, strict=True):
        assert _bodies(user, other_room) == [f"m{r}" for r in range(ROUNDS) for _ in range(2)]


def test_a_retry_after_a_restart_gets_the_first_event_id(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    status, first = _send(alice, room_id, "before-restart", "kept")
    assert status == 200
    any_node.stop()
    any_node.start()
    results = _all_at_once([lambda: _send(alice, room_id, "before-restart", "kept")] * 4)
    assert {(status, body["event_id"]) for status, body in results} == {
        (200, first["event_id"])}
    assert _bodies(alice, room_id) == ["kept"]


@pytest.fixture(params=["sqlite", "postgres"])
def own_node(request: Any, tmp_path: Path) -> Any:
    """A node of the test's own (it gets killed), on each engine."""
    from tests.storage_helpers import (
        POSTGRES_ENV,
        POSTGRES_SKIP,
        create_postgres_database,
        drop_postgres_database,
    )

    dsn = name = ""
    if request.param == "postgres":
        if not os.environ.get(POSTGRES_ENV):
            pytest.skip(POSTGRES_SKIP)
        dsn, name = create_postgres_database()
    node = NodeProcess(tmp_path, engine=request.param, dsn=dsn).start()
    try:
        yield node
    finally:
        node.stop()
        if name:
            drop_postgres_database(name)


class _Sender:
    """Sends numbered messages one after another until the node goes away, remembering which
    transaction IDs were answered 200 and with which event ID."""

    def __init__(self, client: Client, room_id: str, name: str, answered: threading.Semaphore):
        self.client = Client(client.base_url, client.token)
        self.room_id = room_id
        self.name = name
        self.answered = answered
        self.event_ids: dict[str, str] = {}
        self.sent: list[str] = []

    def run(self) -> None:
        for n in range(10_000):
            txn_id = f"{self.name}-{n}"
            self.sent.append(txn_id)
            try:
                body = self.client.put(_send_path(self.room_id, txn_id),
                                       {"msgtype": "m.text", "body": txn_id}, timeout=10)
            except requests.RequestException:
                return
            if self.client.status != 200:
                return
            self.event_ids[txn_id] = body["event_id"]
            self.answered.release()


def test_sends_answered_before_a_kill_are_kept_once_and_retries_get_one_event(
        own_node: NodeProcess) -> None:
    alice = own_node.register()
    room_id = create_room(alice)
    answered = threading.Semaphore(0)
    senders = [_Sender(alice, room_id, f"s{n}", answered) for n in range(8)]
    threads = [threading.Thread(target=sender.run) for sender in senders]
    for thread in threads:
        thread.start()
    for _ in range(200):
        assert answered.acquire(timeout=30)
    assert own_node.process is not None
    own_node.process.kill()  # SIGKILL: no clean shutdown, sends still in flight
    own_node.process.wait()
    for thread in threads:
        thread.join()
    own_node.start()

    txn_ids = [txn_id for sender in senders for txn_id in sender.sent]
    answered_ids = {t: e for sender in senders for t, e in sender.event_ids.items()}
    for txn_id in txn_ids:
        if txn_id in answered_ids:
            assert _send(alice, room_id, txn_id, txn_id) == (
                200, {"event_id": answered_ids[txn_id]})
        else:  # the answer was lost: the client retries, from several places at once
            retries = _all_at_once([partial(_send, alice, room_id, txn_id, txn_id)] * 4)
            assert {status for status, _ in retries} == {200}, retries
            assert len({body["event_id"] for _, body in retries}) == 1
    assert sorted(_bodies(alice, room_id)) == sorted(txn_ids)
