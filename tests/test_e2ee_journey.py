"""Acceptance test of end-to-end encryption with real Olm and Megolm (vodozemac) between two
federating nodes: what Element does, over the raw Client-Server API.

Alice on node A and Bob on node B share an encrypted room (Bob joins through A).  Their devices
publish signed keys, establish Olm sessions from claimed one-time keys across federation, pass
Megolm room keys as Olm-encrypted to-device messages, and read each other's encrypted messages.
A device that logs in later restores the room keys from server-side key backup and reads the
history.  Neither node's database holds a message in plaintext, and bad key or to-device input
gets the spec's errors.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import vodozemac

from tests.e2ee_client import MEGOLM, OTK_ALGORITHM, V3, CryptoError, E2EEClient
from tests.node_harness import Client, NodeProcess
from tests.room_helpers import create_room
from tests.storage_helpers import (
    POSTGRES_ENV,
    POSTGRES_SKIP,
    create_postgres_database,
    drop_postgres_database,
)

PASSWORD = "correct horse 1"


@dataclass
class Nodes:
    """Two federating nodes on one database engine."""

    a: NodeProcess
    b: NodeProcess
    engine: str
    dsns: dict[str, str] = field(default_factory=dict)  # server name -> PostgreSQL DSN


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def pair(request: Any, tmp_path_factory: Any) -> Iterator[Nodes]:
    engine = request.param
    if engine == "postgres" and not os.environ.get(POSTGRES_ENV):
        pytest.skip(POSTGRES_SKIP)
    databases = [create_postgres_database() for _ in range(2)] if engine == "postgres" else []
    dsns = [dsn for dsn, _name in databases] or ["", ""]
    a, b = (NodeProcess(Path(tmp_path_factory.mktemp(f"e2ee_{engine}_{n}")), federation=True,
                        engine=engine, dsn=dsn) for n, dsn in zip("ab", dsns, strict=True))
    a.allow(b)
    b.allow(a)
    try:
        a.start()
        b.start()
        yield Nodes(a, b, engine, {a.server_name: dsns[0], b.server_name: dsns[1]})
    finally:
        a.stop()
        b.stop()
        for _dsn, name in databases:
            drop_postgres_database(name)


@dataclass
class Conversation:
    nodes: Nodes
    alice: E2EEClient
    bob: E2EEClient
    room_id: str


def e2ee_device(node: NodeProcess) -> E2EEClient:
    """A new user on ``node`` whose first device has uploaded its keys."""
    device = E2EEClient(node.register())
    counts = device.upload_keys(one_time_keys=5)
    assert counts == {OTK_ALGORITHM: 5}, counts
    return device


@pytest.fixture(scope="module")
def conversation(pair: Nodes) -> Conversation:
    """Alice (node A) created a private, encrypted room and invited Bob (node B), who joined
    through A.  Both devices have uploaded their keys and synced once.  (The invite is a
    separate ``/invite``: ``createRoom``'s own ``invite`` list does not reach a remote user yet,
    see :func:`test_invite_in_create_room_reaches_a_user_on_another_node`.)"""
    a, b = pair.a, pair.b
    alice, bob = e2ee_device(a), e2ee_device(b)
    room_id = create_room(alice.http, preset="private_chat",
                          initial_state=[{"type": "m.room.encryption", "state_key": "",
                                          "content": {"algorithm": MEGOLM}}])
    invited = alice.http.post(f"{V3}/rooms/{quote(room_id)}/invite", {"user_id": bob.user_id})
    assert alice.http.status == 200, invited
    bob.sync_until(lambda c: room_id in c.invites)
    joined = bob.http.post(f"{V3}/join/{quote(room_id)}", {},
                           params={"server_name": a.server_name})
    assert bob.http.status == 200, joined
    alice.sync()
    bob.sync()
    return Conversation(pair, alice, bob, room_id)


def wait_to_read(reader: E2EEClient, room_id: str, event_ids: list[str]) -> list[str]:
    """Sync ``reader`` until the events arrived and their room key is held; their plaintext
    bodies, in the order of ``event_ids``."""
    def arrived(c: E2EEClient) -> bool:
        events = {e["event_id"]: e for e in c.room_events_of_type(room_id, "m.room.encrypted")}
        return all(i in events and c.has_room_key(room_id, events[i]["content"]["session_id"])
                   for i in event_ids)

    reader.sync_until(arrived)
    by_id = {e["event_id"]: e for e in reader.timeline[room_id]}
    return reader.decrypted_bodies(room_id, [by_id[i] for i in event_ids])


def olm_payloads(client: E2EEClient, event_type: str) -> list[dict[str, Any]]:
    return [e for e in client.to_device_events
            if e.get("encrypted") and e["type"] == event_type]


# -- the journey ------------------------------------------------------------------------------------
def test_remote_device_keys_are_queried_with_a_valid_self_signature(
        conversation: Conversation) -> None:
    alice, bob = conversation.alice, conversation.bob
    answer = alice.query_keys(bob.user_id)
    assert answer["failures"] == {}
    assert answer["device_keys"][bob.user_id][bob.device_id] == bob.device_keys()
    device = alice.devices[bob.user_id][bob.device_id]
    assert (device.curve25519, device.ed25519) == (bob.curve25519, bob.ed25519)
    assert alice.rejected_devices == []


def test_room_key_shared_over_olm_across_federation_decrypts_messages(
        conversation: Conversation) -> None:
    alice, bob, room_id = conversation.alice, conversation.bob, conversation.room_id
    recipients = alice.share_room_key(room_id, [bob.user_id])
    assert [(d.user_id, d.device_id) for d in recipients] == [(bob.user_id, bob.device_id)]
    sent = [alice.send_encrypted(room_id, "Budget figures for Q3"),
            alice.send_encrypted(room_id, "Meeting moved to 15:00")]
    assert wait_to_read(bob, room_id, sent) == ["Budget figures for Q3", "Meeting moved to 15:00"]
    [room_key] = [p for p in olm_payloads(bob, "m.room_key")
                  if p["sender"] == alice.user_id]
    assert room_key["content"]["session_id"] == alice.outbound[room_id].session.session_id
    # The one-time key Alice claimed across federation is gone from Bob's count.
    assert bob.upload_keys(one_time_keys=0, fallback=False) == {OTK_ALGORITHM: 4}


def test_reply_is_decrypted_the_other_way(conversation: Conversation) -> None:
    alice, bob, room_id = conversation.alice, conversation.bob, conversation.room_id
    bob.share_room_key(room_id, [alice.user_id])
    reply = bob.send_encrypted(room_id, "Acknowledged, will attend")
    assert wait_to_read(alice, room_id, [reply]) == ["Acknowledged, will attend"]
    assert [p["content"]["session_id"] for p in olm_payloads(alice, "m.room_key")] \
        == [bob.outbound[room_id].session.session_id]


def test_fallback_key_starts_an_olm_session_once_one_time_keys_run_out(
        conversation: Conversation) -> None:
    alice = conversation.alice
    carol = E2EEClient(conversation.nodes.b.register())
    assert carol.upload_keys(one_time_keys=0).get(OTK_ALGORITHM, 0) == 0
    answer = alice.http.post(f"{V3}/keys/claim", {
        "one_time_keys": {carol.user_id: {carol.device_id: OTK_ALGORITHM}}})
    [(key_id, key)] = answer["one_time_keys"][carol.user_id][carol.device_id].items()
    assert key_id.startswith(f"{OTK_ALGORITHM}:") and key["fallback"] is True
    alice.send_to_device_encrypted([alice.device(carol.user_id, carol.device_id)],
                                   "m.test.secret", {"note": "sealed"})
    carol.sync_until(lambda c: bool(olm_payloads(c, "m.test.secret")))
    [payload] = olm_payloads(carol, "m.test.secret")
    assert (payload["sender"], payload["content"]) == (alice.user_id, {"note": "sealed"})
    assert carol.sync()["device_unused_fallback_key_types"] == []


def test_later_device_restores_room_keys_from_backup_and_reads_history(
        conversation: Conversation) -> None:
    alice, bob, room_id = conversation.alice, conversation.bob, conversation.room_id
    alice.share_room_key(room_id, [bob.user_id])
    history = [alice.send_encrypted(room_id, "Draft circular attached"),
               alice.send_encrypted(room_id, "Please review by Friday")]
    assert wait_to_read(bob, room_id, history) == ["Draft circular attached",
                                                   "Please review by Friday"]
    recovery_key = vodozemac.Curve25519SecretKey()
    version = bob.create_backup(vodozemac.PkDecryption.from_key(recovery_key))
    uploaded = bob.backup_room_keys(version)
    assert uploaded["count"] == len(bob.inbound) and uploaded["etag"]

    login = conversation.nodes.b.client().post(f"{V3}/login", {
        "type": "m.login.password", "password": PASSWORD,
        "identifier": {"type": "m.id.user", "user": bob.user_id}})
    assert "access_token" in login, login
    http = Client(conversation.nodes.b.base_url, login["access_token"])
    http.user_id, http.device_id = login["user_id"], login["device_id"]
    new_device = E2EEClient(http)
    new_device.upload_keys()
    earlier = [e for e in new_device.history(room_id) if e["event_id"] in history]
    assert [e["event_id"] for e in earlier] == history
    with pytest.raises(CryptoError):
        new_device.decrypt_room_event(earlier[0], room_id)

    assert new_device.restore_backup(recovery_key.to_bytes()) == len(bob.inbound)
    assert new_device.decrypted_bodies(room_id, earlier) == ["Draft circular attached",
                                                             "Please review by Friday"]


def stored_texts(nodes: Nodes, node: NodeProcess) -> list[tuple[str, str]]:
    """(table, text) for every text, JSON or binary value of every table of ``node``'s
    database (SQLite: every database file under its data folder)."""
    if nodes.engine == "postgres":
        return list(_postgres_texts(nodes.dsns[node.server_name]))
    files = [p for p in (node.workdir / "data").rglob("*") if p.is_file()
             and p.read_bytes()[:16] == b"SQLite format 3\x00"]
    assert files, f"no SQLite database under {node.workdir / 'data'}"
    return [found for path in files for found in _sqlite_texts(path)]


def _as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return None


def _sqlite_texts(path: Path) -> Iterator[tuple[str, str]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                yield from ((table, t) for t in map(_as_text, row) if t is not None)
    finally:
        connection.close()


def _postgres_texts(dsn: str) -> Iterator[tuple[str, str]]:
    import psycopg2

    connection = psycopg2.connect(dsn)
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT table_name FROM information_schema.tables"
                       " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
        for (table,) in cursor.fetchall():
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                yield from ((table, t) for t in map(_as_text, row) if t is not None)
    finally:
        connection.close()


def test_databases_hold_no_plaintext_of_messages_or_room_keys(
        conversation: Conversation) -> None:
    alice, bob, room_id = conversation.alice, conversation.bob, conversation.room_id
    canary = f"Confidential canary {uuid.uuid4().hex}"
    alice.share_room_key(room_id, [bob.user_id])
    sent = alice.send_encrypted(room_id, canary)
    assert wait_to_read(bob, room_id, [sent]) == [canary]
    reply_canary = f"Reply canary {uuid.uuid4().hex}"
    bob.share_room_key(room_id, [alice.user_id])
    reply = bob.send_encrypted(room_id, reply_canary)
    assert wait_to_read(alice, room_id, [reply]) == [reply_canary]
    recovery_key = vodozemac.Curve25519SecretKey()
    bob.backup_room_keys(bob.create_backup(vodozemac.PkDecryption.from_key(recovery_key)))

    secrets = [canary, reply_canary, "Budget figures for Q3", "Acknowledged, will attend",
               "Draft circular attached",
               *alice.outbound[room_id].sent_keys, *bob.outbound[room_id].sent_keys]
    nodes = conversation.nodes
    stored = {node.server_name: stored_texts(nodes, node) for node in (nodes.a, nodes.b)}
    found = [(server, table, secret) for server, texts in stored.items()
             for table, text in texts for secret in secrets if secret in text]
    assert found == []
    # The ciphertext itself is there on both nodes: the scan reads the tables of the events.
    ciphertext = next(e for e in bob.timeline[room_id]
                      if e["event_id"] == sent)["content"]["ciphertext"]
    assert all(any(ciphertext in text for _table, text in texts) for texts in stored.values())


def test_invite_in_create_room_reaches_a_user_on_another_node(pair: Nodes) -> None:
    """What Element does for a direct chat: ``createRoom`` with ``invite`` naming a remote
    user; the invitee's node must learn of the invite (federation ``/invite``)."""
    alice, bob = E2EEClient(pair.a.register()), E2EEClient(pair.b.register())
    room_id = create_room(alice.http, preset="trusted_private_chat", is_direct=True,
                          invite=[bob.user_id])
    bob.sync_until(lambda c: room_id in c.invites, timeout=10)


# -- bad input ---------------------------------------------------------------------------------------
def test_malformed_device_keys_are_refused(pair: Nodes) -> None:
    a = pair.a
    device = E2EEClient(a.register())
    keys = device.device_keys()
    keys["keys"] = [keys["keys"]]
    answer = device.http.post(f"{V3}/keys/upload", {"device_keys": keys})
    assert (device.http.status, answer["errcode"]) == (400, "M_BAD_JSON"), answer
    stored = device.http.post(f"{V3}/keys/query", {"device_keys": {device.user_id: []}})
    assert stored["device_keys"].get(device.user_id, {}) == {}


def test_device_keys_whose_signature_does_not_verify_are_refused(
        pair: Nodes) -> None:
    a = pair.a
    device = E2EEClient(a.register())
    keys = device.device_keys()
    keys["keys"][f"curve25519:{device.device_id}"] = vodozemac.Curve25519SecretKey(
    ).public_key().to_base64()
    answer = device.http.post(f"{V3}/keys/upload", {"device_keys": keys})
    assert (device.http.status, answer["errcode"]) == (400, "M_INVALID_PARAM"), answer
    stored = device.http.post(f"{V3}/keys/query", {"device_keys": {device.user_id: []}})
    assert stored["device_keys"].get(device.user_id, {}) == {}


def test_claiming_keys_of_unknown_devices_returns_no_keys(
        pair: Nodes) -> None:
    a, b = pair.a, pair.b
    claimer = E2EEClient(a.register())
    local, remote = e2ee_device(a), e2ee_device(b)
    answer = claimer.http.post(f"{V3}/keys/claim", {"one_time_keys": {
        local.user_id: {"NOSUCHDEVICE": OTK_ALGORITHM},
        remote.user_id: {"NOSUCHDEVICE": OTK_ALGORITHM},
        f"@nobody:{b.server_name}": {"NOSUCHDEVICE": OTK_ALGORITHM}}})
    assert claimer.http.status == 200, answer
    assert answer["failures"] == {}
    assert all(not devices for devices in answer["one_time_keys"].values()), answer


def test_oversized_to_device_batch_is_refused_and_nothing_is_delivered(
        pair: Nodes) -> None:
    a = pair.a
    sender, recipient = E2EEClient(a.register()), E2EEClient(a.register())
    recipient.sync()
    by_device: dict[str, Any] = {f"DEVICE{i}": {"n": i} for i in range(1000)}
    by_device[recipient.device_id] = {"n": "real"}
    answer = sender.http.put(f"{V3}/sendToDevice/m.test/{uuid.uuid4().hex}",
                             {"messages": {recipient.user_id: by_device}})
    assert (sender.http.status, answer["errcode"]) == (413, "M_TOO_LARGE"), answer
    assert recipient.sync(timeout_ms=0).get("to_device", {}).get("events", []) == []
