"""Transactions pushed to application services by a running node, over real HTTP on
loopback: the events of rooms a service is interested in (and only those), its ephemeral
data when it asks for it, retried after failures until the service takes them, and what
admins see of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.appservice_helpers import RecordingService, registration_file, running_service
from tests.node_harness import Client, NodeProcess

AS_LOGIN = "m.login.application_service"
SERVER = "pushnode.test"


@pytest.fixture(scope="module")
def service() -> Iterator[RecordingService]:
    with running_service() as running:
        yield running


@pytest.fixture(scope="module")
def push_node(tmp_path_factory: Any, service: RecordingService) -> Iterator[NodeProcess]:
    folder = tmp_path_factory.mktemp("push")
    bridge = registration_file(folder, "bridge", url=service.url, prefix="bridge",
                               server_name=SERVER, receive_ephemeral=True,
                               receive_to_device=True)
    running = NodeProcess(folder, server_name=SERVER,
                          overrides={"app_services": [str(bridge)]}).start()
    try:
        yield running
    finally:
        running.stop()


def bridged_user(node: NodeProcess) -> tuple[Client, str]:
    """The bridge's client and a new user it registered."""
    client = Client(node.base_url, "bridge-as")
    body = client.post("/_matrix/client/v3/register", {
        "type": AS_LOGIN, "username": f"bridge_{uuid.uuid4().hex[:8]}", "inhibit_login": True})
    assert client.status == 200, body
    return client, body["user_id"]


def bridged_room(node: NodeProcess) -> tuple[Client, str]:
    """A user of the node and a public room of theirs that a bridged user joined."""
    bridge, ghost = bridged_user(node)
    alice = node.register()
    room = alice.post("/_matrix/client/v3/createRoom", {"preset": "public_chat"})["room_id"]
    bridge.post(f"/_matrix/client/v3/join/{room}", {}, params={"user_id": ghost})
    assert bridge.status == 200
    return alice, str(room)


def pushed_events(service: RecordingService) -> list[dict[str, Any]]:
    """The events of the transactions the service accepted."""
    return [e for body in service.accepted_transactions() for e in body["events"]]


def wait_for_event(service: RecordingService, event_id: str) -> dict[str, Any]:
    with service.arrived:
        service.arrived.wait_for(
            lambda: any(e["event_id"] == event_id for e in pushed_events(service)), 20)
    found = [e for e in pushed_events(service) if e["event_id"] == event_id]
    assert found, f"{event_id} was not pushed"
    return found[0]


def send(client: Client, room_id: str, body: str) -> str:
    answer = client.put(f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/"
                        f"{uuid.uuid4().hex}", {"msgtype": "m.text", "body": body})
    assert client.status == 200, answer
    return str(answer["event_id"])


def test_a_message_in_a_room_with_a_bridged_user_is_pushed(
        push_node: NodeProcess, service: RecordingService) -> None:
    alice, room = bridged_room(push_node)
    event_id = send(alice, room, "hello bridge")
    event = wait_for_event(service, event_id)
    assert event["content"]["body"] == "hello bridge"
    assert event["room_id"] == room and event["sender"] == alice.user_id
    _m, path, authorization, _b = next(
        r for r in list(service.requests) if r[1].startswith("/_matrix/app/v1/transactions/"))
    assert authorization == "Bearer bridge-hs"


def test_a_room_without_the_services_users_is_not_pushed(
        push_node: NodeProcess, service: RecordingService) -> None:
    alice = push_node.register()
    private = alice.post("/_matrix/client/v3/createRoom", {})["room_id"]
    unseen = send(alice, private, "not for the bridge")
    # A later event the service is owed: once it arrives, the earlier one was passed over.
    other, room = bridged_room(push_node)
    wait_for_event(service, send(other, room, "for the bridge"))
    assert all(e["event_id"] != unseen for e in pushed_events(service))


def test_receipts_and_typing_are_pushed_when_asked_for(
        push_node: NodeProcess, service: RecordingService) -> None:
    alice, room = bridged_room(push_node)
    event_id = send(alice, room, "read me")
    alice.put(f"/_matrix/client/v3/rooms/{room}/typing/{alice.user_id}",
              {"typing": True, "timeout": 30000})
    alice.post(f"/_matrix/client/v3/rooms/{room}/receipt/m.read/{event_id}", {})

    def ephemeral() -> list[dict[str, Any]]:
        return [e for _m, path, _a, body in list(service.requests)
                if path.startswith("/_matrix/app/v1/transactions/")
                for e in body.get("ephemeral", []) if e.get("room_id") == room]

    with service.arrived:
        service.arrived.wait_for(lambda: {e["type"] for e in ephemeral()} >=
                                 {"m.typing", "m.receipt"}, 20)
    kinds = {e["type"]: e for e in ephemeral()}
    assert kinds["m.typing"]["content"] == {"user_ids": [alice.user_id]}
    assert alice.user_id in kinds["m.receipt"]["content"][event_id]["m.read"]


def test_a_failing_service_gets_the_same_transaction_again(
        push_node: NodeProcess, service: RecordingService) -> None:
    alice, room = bridged_room(push_node)
    wait_for_event(service, send(alice, room, "before the outage"))
    service.status = 500
    before = len(service.requests)
    event_id = send(alice, room, "during the outage")
    refused = service.wait_for(before + 1)[before]
    admin = push_node.admin()
    [status] = admin.get("/_broker/admin/v1/appservices")["appservices"]
    assert status["id"] == "bridge" and status["failures_in_a_row"] >= 1
    assert status["state"] == "backing_off" and "500" in status["last_error"]
    service.status = 200
    again = wait_for_event(service, event_id)
    assert again["content"]["body"] == "during the outage"
    retried = [r for r in list(service.requests)[before:] if r[1] == refused[1]]
    assert len(retried) >= 2 and all(r[3] == refused[3] for r in retried)
    # Transactions go one after another: once a later one arrives, the retried one was taken.
    wait_for_event(service, send(alice, room, "after the outage"))
    [status] = admin.get("/_broker/admin/v1/appservices")["appservices"]
    assert status["state"] == "up" and status["failures_in_a_row"] == 0
    assert status["last_success_ts"] >= status["last_error_ts"]


def test_to_device_messages_for_its_users_are_pushed_when_asked_for(
        push_node: NodeProcess, service: RecordingService) -> None:
    bridge = Client(push_node.base_url, "bridge-as")
    ghost = bridge.post("/_matrix/client/v3/register", {
        "type": AS_LOGIN, "username": f"bridge_{uuid.uuid4().hex[:8]}"})
    alice = push_node.register()
    alice.put(f"/_matrix/client/v3/sendToDevice/m.room_key_request/{uuid.uuid4().hex}",
              {"messages": {ghost["user_id"]: {ghost["device_id"]: {"secret": "s1"}}}})
    assert alice.status == 200

    def to_device() -> list[dict[str, Any]]:
        return [m for body in service.accepted_transactions()
                for m in body.get("de.sorunome.msc2409.to_device", [])
                if m["to_user_id"] == ghost["user_id"]]

    with service.arrived:
        service.arrived.wait_for(lambda: bool(to_device()), 20)
    assert to_device() == [{"type": "m.room_key_request", "sender": alice.user_id,
                            "content": {"secret": "s1"}, "to_user_id": ghost["user_id"],
                            "to_device_id": ghost["device_id"]}]
