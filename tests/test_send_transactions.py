"""Send transaction IDs over real node processes: the sending device (and only it) reads
``unsigned.transaction_id`` on every read path, before and after a restart; a repeated ID after
a restart answers the first event; concurrent repeats from many connections of one device get
one event while another device's same ID is another send, and neighbours are unharmed."""

from __future__ import annotations

import uuid
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.node_harness import Client, NodeProcess, node_on_engine
from tests.room_helpers import V3, create_room, room_path, sync
from tests.test_send_concurrency import _all_at_once, _bodies, _send

PASSWORD = "correct horse 1"


def _second_device(node: NodeProcess, first: Client) -> Client:
    """Another login (another device) of ``first``'s account."""
    client = node.client()
    body = client.post(f"{V3}/login", {
        "type": "m.login.password", "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": first.user_id}})
    assert client.status == 200, body
    client.token, client.user_id = body["access_token"], body["user_id"]
    client.device_id = body["device_id"]
    return client


def _unsigned_on_every_read(client: Client, room_id: str, event_id: str) -> dict[str, Any]:
    """The event's ``unsigned`` as /sync, /messages, /context and GET /event give it."""
    timeline = sync(client)["rooms"]["join"][room_id]["timeline"]["events"]
    chunk = client.get(room_path(room_id, "messages"), params={"dir": "b", "limit": 50})["chunk"]
    context = client.get(room_path(room_id, f"context/{quote(event_id)}"))["event"]
    event = client.get(room_path(room_id, f"event/{quote(event_id)}"))
    return {
        "sync": next(e for e in timeline if e["event_id"] == event_id)["unsigned"],
        "messages": next(e for e in chunk if e["event_id"] == event_id)["unsigned"],
        "context": context["unsigned"],
        "event": event["unsigned"],
    }


def _transaction_ids(client: Client, room_id: str, event_id: str) -> dict[str, Any]:
    unsigned = _unsigned_on_every_read(client, room_id, event_id)
    return {path: u.get("transaction_id") for path, u in unsigned.items()}


EVERY_READ = ("sync", "messages", "context", "event")


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_only_the_sending_device_reads_its_transaction_id_everywhere_across_a_restart(
        engine: str, tmp_path: Path) -> None:
    with node_on_engine(engine, tmp_path) as node:
        alice = node.register()
        other_device = _second_device(node, alice)
        room_id = create_room(alice)
        status, sent = _send(alice, room_id, "txn-1", "hello")
        assert status == 200
        event_id = sent["event_id"]
        mine = dict.fromkeys(EVERY_READ, "txn-1")
        none = dict.fromkeys(EVERY_READ)
        assert _transaction_ids(alice, room_id, event_id) == mine
        assert _transaction_ids(other_device, room_id, event_id) == none
        node.stop()
        node.start()
        assert _transaction_ids(alice, room_id, event_id) == mine
        assert _transaction_ids(other_device, room_id, event_id) == none


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_transaction_repeated_after_a_restart_answers_the_first_event(
        engine: str, tmp_path: Path) -> None:
    with node_on_engine(engine, tmp_path) as node:
        alice = node.register()
        room_id = create_room(alice)
        first = _send(alice, room_id, "txn-1", "once")
        node.stop()
        node.start()
        assert _send(alice, room_id, "txn-1", "once") == first
        assert _bodies(alice, room_id) == ["once"]
        event_id = first[1]["event_id"]
        assert _transaction_ids(alice, room_id, event_id) == dict.fromkeys(EVERY_READ, "txn-1")


def test_concurrent_repeats_are_one_send_per_device_and_neighbours_are_unharmed(
        any_node: NodeProcess) -> None:
    alice = any_node.register()
    other_device = _second_device(any_node, alice)
    room_id = create_room(alice)
    neighbours = [any_node.register() for _ in range(3)]
    their_rooms = [create_room(user) for user in neighbours]
    calls = [partial(_send, alice, room_id, "same", "from the first device")] * 8
    calls += [partial(_send, other_device, room_id, "same", "from the second device")] * 4
    for user, their_room in zip(neighbours, their_rooms, strict=True):
        calls += [partial(_send, user, their_room, "same", "neighbour")] * 2
        calls += [partial(_send, user, their_room, uuid.uuid4().hex, "other")]
    results = _all_at_once(calls)
    assert {status for status, _ in results} == {200}, results
    first_device = {body["event_id"] for _, body in results[:8]}
    second_device = {body["event_id"] for _, body in results[8:12]}
    assert len(first_device) == len(second_device) == 1 and first_device != second_device
    assert sorted(_bodies(alice, room_id)) == ["from the first device", "from the second device"]
    for user, their_room in zip(neighbours, their_rooms, strict=True):
        assert sorted(_bodies(user, their_room)) == ["neighbour", "other"]
