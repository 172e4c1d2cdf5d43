"""To-device messages over federation: from a user on one node to devices of a user on another
(two real nodes), and inbound ``m.direct_to_device`` EDUs from a signing fake peer (sender
checks, deduplication by message_id)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.fake_peer import FakePeer
from tests.node_harness import Client, NodeProcess, federated_nodes
from tests.room_helpers import V3, sync

EVENT_TYPE = "m.room.encrypted"
PEER = "127.0.0.1:1"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    with federated_nodes(tmp_path_factory, 2, "td") as (a, b):
        yield a, b


@dataclass
class PeerEnv:
    node: NodeProcess
    peer: FakePeer


@pytest.fixture(scope="module")
def env(tmp_path_factory: Any) -> Iterator[PeerEnv]:
    peer = FakePeer(PEER)
    node = NodeProcess(Path(tmp_path_factory.mktemp("td_peer")), federation=True,
                       overrides={"federation.pinned_keys": peer.pinned_key_config()})
    node.allow_servers(peer.server_name)
    node.start()
    try:
        yield PeerEnv(node, peer)
    finally:
        node.stop()


def _send(client: Client, messages: dict[str, Any], txn_id: str | None = None) -> None:
    body = client.put(f"{V3}/sendToDevice/{EVENT_TYPE}/{quote(txn_id or uuid.uuid4().hex)}",
                      {"messages": messages})
    assert client.status == 200, body


def _collect(client: Client, want: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """Sync (acknowledging as it goes) until ``want`` to-device events arrived."""
    deadline = time.monotonic() + timeout
    token = None
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline and len(seen) < want:
        body = sync(client, token, timeout=1000)
        token = body["next_batch"]
        seen.extend(body["to_device"]["events"])
    return seen


def _edu(sender: str, recipients: dict[str, Any], message_id: str | None = None
         ) -> dict[str, Any]:
    return {"edu_type": "m.direct_to_device", "content": {
        "sender": sender, "type": EVENT_TYPE, "message_id": message_id or uuid.uuid4().hex,
        "messages": recipients}}


def _push(env: PeerEnv, *edus: dict[str, Any]) -> None:
    response = env.peer.send_transaction(env.node, env.peer.transaction([], list(edus)))
    assert response.status_code == 200, response.text


def test_message_reaches_a_device_on_another_node(pair: tuple[NodeProcess, NodeProcess]
                                                  ) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    _send(alice, {bob.user_id: {bob.device_id: {"ciphertext": "for bob"}}})
    assert _collect(bob, 1) == [
        {"sender": alice.user_id, "type": EVENT_TYPE, "content": {"ciphertext": "for bob"}}]


def test_star_reaches_every_device_on_another_node(pair: tuple[NodeProcess, NodeProcess]
                                                   ) -> None:
    a, b = pair
    alice = a.register()
    bob = b.register("t" + uuid.uuid4().hex[:10])
    phone = b.client()
    login = phone.post(f"{V3}/login", {"type": "m.login.password", "user": bob.user_id,
                                       "password": "correct horse 1", "device_id": "PHONE"})
    phone.token = login["access_token"]
    _send(alice, {bob.user_id: {"*": {"n": 1}}})
    assert len(_collect(bob, 1)) == 1
    assert len(_collect(phone, 1)) == 1


def test_retried_request_reaches_the_other_node_once(pair: tuple[NodeProcess, NodeProcess]
                                                     ) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    _send(alice, {bob.user_id: {bob.device_id: {"n": 1}}}, txn_id="once")
    _send(alice, {bob.user_id: {bob.device_id: {"n": 1}}}, txn_id="once")
    _send(alice, {bob.user_id: {bob.device_id: {"n": 2}}})
    assert [e["content"]["n"] for e in _collect(bob, 3, timeout=5)] == [1, 2]


def test_inbound_edu_reaches_the_local_device(env: PeerEnv) -> None:
    bob = env.node.register()
    sender = env.peer.user_id()
    _push(env, _edu(sender, {bob.user_id: {bob.device_id: {"n": 1}}}))
    assert _collect(bob, 1) == [{"sender": sender, "type": EVENT_TYPE, "content": {"n": 1}}]


def test_inbound_edu_with_a_repeated_message_id_is_delivered_once(env: PeerEnv) -> None:
    bob = env.node.register()
    sender = env.peer.user_id()
    _push(env, _edu(sender, {bob.user_id: {"*": {"n": 1}}}, message_id="same"))
    _push(env, _edu(sender, {bob.user_id: {"*": {"n": 1}}}, message_id="same"),
          _edu(sender, {bob.user_id: {"*": {"n": 2}}}))
    assert [e["content"]["n"] for e in _collect(bob, 3, timeout=4)] == [1, 2]


def test_inbound_edu_for_a_sender_of_another_server_is_dropped(env: PeerEnv) -> None:
    bob = env.node.register()
    _push(env, _edu("@mallory:elsewhere.example", {bob.user_id: {"*": {"n": "forged"}}}),
          _edu(env.peer.user_id(), {bob.user_id: {"*": {"n": "real"}}}))
    assert [e["content"]["n"] for e in _collect(bob, 2, timeout=4)] == ["real"]


def test_malformed_inbound_edu_is_dropped(env: PeerEnv) -> None:
    bob = env.node.register()
    sender = env.peer.user_id()
    bad = _edu(sender, {bob.user_id: {"*": {"n": "bad"}}})
    del bad["content"]["message_id"]
    _push(env, bad, _edu(sender, {bob.user_id: {bob.device_id: "not an object",
                                                "*": {"n": "good"}}}))
    assert [e["content"]["n"] for e in _collect(bob, 2, timeout=4)] == ["good"]


def test_inbound_edu_for_unknown_local_users_is_ignored(env: PeerEnv) -> None:
    bob = env.node.register()
    sender = env.peer.user_id()
    _push(env, _edu(sender, {f"@ghost:{env.node.server_name}": {"*": {"n": 0}},
                             bob.user_id: {"*": {"n": 1}}}))
    assert [e["content"]["n"] for e in _collect(bob, 1)] == [1]
