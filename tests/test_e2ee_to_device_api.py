"""``PUT /sendToDevice`` against a real node: delivery through /sync exactly once,
acknowledgement by since token, idempotent transactions, fan-out and bad input."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any
from urllib.parse import quote

from tests.node_harness import Client, NodeProcess
from tests.room_helpers import V3, sync

PASSWORD = "correct horse 1"
EVENT_TYPE = "m.room_key_request"


def _send(client: Client, messages: Any, *, txn_id: str | None = None,
          event_type: str = EVENT_TYPE) -> Any:
    return client.put(f"{V3}/sendToDevice/{quote(event_type)}/{txn_id or uuid.uuid4().hex}",
                      {"messages": messages})


def _events(body: dict[str, Any]) -> list[dict[str, Any]]:
    return list(body["to_device"]["events"])


def _login(node: NodeProcess, user: Client, device_id: str) -> Client:
    client = node.client()
    body = client.post(f"{V3}/login", {"type": "m.login.password", "user": user.user_id,
                                       "password": PASSWORD, "device_id": device_id})
    client.token, client.user_id, client.device_id = (
        body["access_token"], body["user_id"], body["device_id"])
    return client


def test_message_reaches_the_named_device_in_sync(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    assert _send(alice, {bob.user_id: {bob.device_id: {"hello": 1}}}) == {}
    assert alice.status == 200
    assert _events(sync(bob)) == [
        {"sender": alice.user_id, "type": EVENT_TYPE, "content": {"hello": 1}}]


def test_acknowledged_message_is_not_delivered_again(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    _send(alice, {bob.user_id: {bob.device_id: {"n": 1}}})
    first = sync(bob)
    assert len(_events(first)) == 1
    assert _events(sync(bob, first["next_batch"])) == []


def test_acknowledged_message_is_deleted(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    _send(alice, {bob.user_id: {bob.device_id: {"n": 1}}})
    first = sync(bob)
    sync(bob, first["next_batch"])
    # An initial sync would repeat anything still stored.
    assert _events(sync(bob)) == []


def test_unacknowledged_message_is_delivered_again(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    since = sync(bob)["next_batch"]
    _send(alice, {bob.user_id: {bob.device_id: {"n": 1}}})
    assert len(_events(sync(bob, since))) == 1
    # The response was "lost": the client syncs from its previous token again.
    assert [e["content"] for e in _events(sync(bob, since))] == [{"n": 1}]


def test_long_poll_wakes_for_a_to_device_message(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    since = sync(bob)["next_batch"]
    timer = threading.Timer(0.5, _send, (alice, {bob.user_id: {bob.device_id: {"n": 1}}}))
    timer.start()
    started = time.monotonic()
    body = sync(bob, since, timeout=10_000)
    timer.join()
    assert len(_events(body)) == 1
    assert time.monotonic() - started < 8


def test_star_reaches_every_device(node: NodeProcess) -> None:
    alice = node.register()
    bob = node.register("t" + uuid.uuid4().hex[:10], PASSWORD)
    phone = _login(node, bob, "PHONE")
    _send(alice, {bob.user_id: {"*": {"n": 1}}})
    assert len(_events(sync(bob))) == 1
    assert len(_events(sync(phone))) == 1


def test_named_device_only_reaches_that_device(node: NodeProcess) -> None:
    alice = node.register()
    bob = node.register("t" + uuid.uuid4().hex[:10], PASSWORD)
    phone = _login(node, bob, "PHONE")
    _send(alice, {bob.user_id: {"PHONE": {"n": 1}}})
    assert _events(sync(bob)) == []
    assert len(_events(sync(phone))) == 1


def test_retried_transaction_is_delivered_once(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    for _ in range(2):
        assert _send(alice, {bob.user_id: {bob.device_id: {"n": 1}}}, txn_id="t1") == {}
        assert alice.status == 200
    assert len(_events(sync(bob))) == 1


def test_same_transaction_id_from_another_device_is_a_new_message(node: NodeProcess) -> None:
    alice = node.register("t" + uuid.uuid4().hex[:10], PASSWORD)
    laptop = _login(node, alice, "LAPTOP")
    bob = node.register()
    _send(alice, {bob.user_id: {bob.device_id: {"from": "first"}}}, txn_id="t1")
    _send(laptop, {bob.user_id: {bob.device_id: {"from": "laptop"}}}, txn_id="t1")
    assert [e["content"]["from"] for e in _events(sync(bob))] == ["first", "laptop"]


def test_messages_come_oldest_first_at_most_100_per_sync(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    for n in range(103):
        _send(alice, {bob.user_id: {bob.device_id: {"n": n}}})
    first = sync(bob)
    assert [e["content"]["n"] for e in _events(first)] == list(range(100))
    second = sync(bob, first["next_batch"])
    assert [e["content"]["n"] for e in _events(second)] == [100, 101, 102]


def test_unknown_local_users_are_ignored(node: NodeProcess) -> None:
    alice = node.register()
    assert _send(alice, {f"@nobody{uuid.uuid4().hex[:6]}:{node.server_name}": {"*": {}}}) == {}
    assert alice.status == 200


def test_other_users_do_not_see_the_message(node: NodeProcess) -> None:
    alice, bob, carol = node.register(), node.register(), node.register()
    _send(alice, {bob.user_id: {"*": {"n": 1}}})
    assert _events(sync(carol)) == []


def test_sending_needs_an_access_token(node: NodeProcess) -> None:
    anonymous = node.client()
    body = _send(anonymous, {})
    assert (anonymous.status, body["errcode"]) == (401, "M_MISSING_TOKEN")


def test_missing_messages_is_a_missing_param(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.put(f"{V3}/sendToDevice/{EVENT_TYPE}/t1", {})
    assert (alice.status, body["errcode"]) == (400, "M_MISSING_PARAM")


def test_messages_must_be_an_object(node: NodeProcess) -> None:
    alice = node.register()
    body = _send(alice, ["not", "an", "object"])
    assert (alice.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_per_user_messages_must_be_an_object(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    body = _send(alice, {bob.user_id: "nope"})
    assert (alice.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_message_content_must_be_an_object(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    body = _send(alice, {bob.user_id: {bob.device_id: 5}})
    assert (alice.status, body["errcode"]) == (400, "M_BAD_JSON")


def test_recipient_must_be_a_user_id(node: NodeProcess) -> None:
    alice = node.register()
    body = _send(alice, {"not-a-user": {"*": {}}})
    assert (alice.status, body["errcode"]) == (400, "M_INVALID_PARAM")


def test_malformed_request_delivers_nothing(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    _send(alice, {bob.user_id: {bob.device_id: {"n": 1}}, "bad": {"*": {}}})
    assert alice.status == 400
    assert _events(sync(bob)) == []


def test_body_that_is_not_json_is_refused(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.put(f"{V3}/sendToDevice/{EVENT_TYPE}/t1", raw=b"{nope",
                     headers={"Content-Type": "application/json"})
    assert (alice.status, body["errcode"]) == (400, "M_NOT_JSON")


def test_more_than_1000_recipient_devices_is_too_large(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    body = _send(alice, {bob.user_id: {f"D{n}": {} for n in range(1001)}})
    assert (alice.status, body["errcode"]) == (413, "M_TOO_LARGE")


def test_body_over_the_request_limit_is_too_large(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    body = _send(alice, {bob.user_id: {bob.device_id: {"pad": "x" * 1_100_000}}})
    assert (alice.status, body["errcode"]) == (413, "M_TOO_LARGE")


def test_delivery_works_on_both_engines(any_node: NodeProcess) -> None:
    alice, bob = any_node.register(), any_node.register()
    _send(alice, {bob.user_id: {bob.device_id: {"n": 1}}}, txn_id="t1")
    _send(alice, {bob.user_id: {bob.device_id: {"n": 1}}}, txn_id="t1")
    first = sync(bob)
    assert [e["content"] for e in _events(first)] == [{"n": 1}]
    assert _events(sync(bob, first["next_batch"])) == []
    assert _events(sync(bob)) == []
