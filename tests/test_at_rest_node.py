"""A node with encryption at rest, on each engine: what users send is sealed in the tables
(the raw rows, read past the stores, never hold it) and reads back through the APIs, rows
written before the key was configured still read, and a wrong or missing key stops the node
at start with one clear line instead of reading garbage or writing clear text."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from broker.config import ConfigError
from storage.at_rest import TEXT_PREFIX_CHARS, DataKey, Tampered
from storage.database import Cursor
from tests.at_rest_helpers import (
    MARKER,
    at_rest_config,
    engine,
    holding,
    key_file,
    raw_values,
)
from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine
from tests.retention_room import V3, Room
from tests.storage_helpers import result_of

__all__ = ["engine"]

BACKUP = {"algorithm": "m.megolm_backup.v1.curve25519-aes-sha2",
          "auth_data": {"public_key": "pk", "signatures": {}}}


def send_everything(room: Room, marker: str = MARKER) -> None:
    """A message, a state event's text, account data, a to-device message and a key backup
    session, each holding the marker."""
    room.send(f"body {marker}")
    room.ok("PUT", f"{room.path}/state/m.room.topic/", {"topic": f"topic {marker}"})
    user_id = room.local.node.user_id("alice")
    room.ok("PUT", f"{V3}/user/{quote(user_id)}/account_data/org.example.note",
            {"note": marker})
    device = result_of(room.local.node.stores.users.get_devices(user_id))[0].device_id
    room.ok("PUT", f"{V3}/sendToDevice/org.example.ping/t1",
            {"messages": {user_id: {device: {"text": marker}}}})
    version = room.ok("POST", f"{V3}/room_keys/version", BACKUP)["version"]
    room.ok("PUT", f"{V3}/room_keys/keys/{quote(room.room_id)}/s1?version={version}",
            {"first_message_index": 0, "forwarded_count": 0, "is_verified": False,
             "session_data": {"ciphertext": marker}})


def test_message_and_state_texts_are_not_in_the_events_table(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    room.send(f"body {MARKER}")
    room.ok("PUT", f"{room.path}/state/m.room.name/", {"name": f"name {MARKER}"})
    assert holding(raw_values(local, "events", "json")) == []
    assert holding(raw_values(local, "events", "json"), '"m.room.name"') == []
    assert room.bodies() == [f"body {MARKER}"]


def test_indexing_columns_stay_readable(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    room.send("hello")
    assert "m.room.message" in raw_values(local, "events", "type")
    assert room.room_id in raw_values(local, "events", "room_id")


def test_account_data_to_device_and_key_backup_rows_are_sealed(engine: Engine) -> None:
    local = engine.node()
    send_everything(Room(local))
    assert holding(raw_values(local, "account_data", "content")) == []
    assert holding(raw_values(local, "to_device_inbox", "content")) == []
    assert holding(raw_values(local, "room_key_backup_keys", "session_data")) == []


def test_everything_sealed_reads_back_after_a_restart(engine: Engine) -> None:
    room = Room(engine.node())
    send_everything(room)
    room.local = local = engine.restart(room.local)  # nothing left in memory caches
    assert room.bodies() == [f"body {MARKER}"]
    state = room.ok("GET", f"{room.path}/state/m.room.topic/")
    assert state["topic"] == f"topic {MARKER}"
    user_id = local.node.user_id("alice")
    note = room.ok("GET", f"{V3}/user/{quote(user_id)}/account_data/org.example.note")
    assert note == {"note": MARKER}
    synced = room.ok("GET", f"{V3}/sync?timeout=0")
    assert [e["content"] for e in synced["to_device"]["events"]] == [{"text": MARKER}]
    keys = room.ok("GET", f"{V3}/room_keys/keys?version=1")
    assert keys["rooms"][room.room_id]["sessions"]["s1"]["session_data"] == {
        "ciphertext": MARKER}


def test_events_written_before_the_key_was_configured_read_back(
        engine: Engine, tmp_path: Path) -> None:
    engine.config = None
    room = Room(engine.node())
    room.send(f"clear {MARKER}")
    assert holding(raw_values(room.local, "events", "json")) != []
    engine.config = at_rest_config(tmp_path / "at_rest.keys")
    room.local = engine.restart(room.local)
    room.send("sealed")
    assert room.bodies() == ["sealed", f"clear {MARKER}"]


def test_a_wrong_key_stops_the_node_at_start_with_one_clear_line(
        engine: Engine, tmp_path: Path) -> None:
    local = engine.node()
    Room(local).send("hello")
    local.close()
    engine.nodes.remove(local)
    key_file(tmp_path, DataKey.generate())
    with pytest.raises(ConfigError, match="^at_rest: the at-rest keyring lacks key") as e:
        engine.node()
    assert "\n" not in str(e.value)


def test_no_key_for_an_encrypted_database_stops_the_node_at_start(engine: Engine) -> None:
    local = engine.node()
    Room(local).send("hello")
    local.close()
    engine.nodes.remove(local)
    engine.config = None
    with pytest.raises(ConfigError, match="no at-rest key is configured"):
        engine.node()


def test_a_missing_key_file_is_a_config_error(engine: Engine, tmp_path: Path) -> None:
    engine.config = at_rest_config(tmp_path / "absent.keys")
    with pytest.raises(ConfigError, match="^at_rest.key_file: the at-rest key file .* does not"):
        engine.node()


def test_a_tampered_event_row_is_an_error_not_garbage(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    event_id = room.send(f"body {MARKER}")

    def tamper(cur: Cursor) -> None:
        stored = str(cur.select_value("SELECT json FROM events WHERE event_id = ?", (event_id,)))
        blob = bytearray(base64.b64decode(stored[TEXT_PREFIX_CHARS:]))
        blob[len(blob) // 2] ^= 1  # one bit of the ciphertext
        flipped = stored[:TEXT_PREFIX_CHARS] + base64.b64encode(bytes(blob)).decode()
        cur.execute("UPDATE events SET json = ? WHERE event_id = ?", (flipped, event_id))

    result_of(local.node.db.run_interaction("test_tamper", tamper))
    with pytest.raises(Tampered):
        result_of(local.node.stores.events.get_events([event_id]))


def test_the_sqlite_files_and_wal_hold_no_marker(tmp_path: Path) -> None:
    made = Engine("sqlite", tmp_path, at_rest_config(key_file(tmp_path)))
    try:
        send_everything(Room(made.node()))
        files = list((tmp_path / "data").glob("broker.db*"))
        assert any(f.name.endswith("-wal") for f in files)
        assert [f.name for f in files if MARKER.encode() in f.read_bytes()] == []
    finally:
        made.close()


def postgres_files(local: InProcessNode) -> list[Path]:
    """The files of the node's PostgreSQL database and the server's WAL (skips the test when
    the data directory cannot be read from here)."""
    def txn(cur: Cursor) -> tuple[str, int]:
        cur.execute("CHECKPOINT")  # the pages on disk, not only in shared buffers
        return (str(cur.select_value("SHOW data_directory")), int(cur.select_value(
            "SELECT oid FROM pg_database WHERE datname = current_database()")))

    data_dir, oid = result_of(local.node.db.run_interaction("test_pg_files", txn))
    base = Path(data_dir) / "base" / str(oid)
    if not os.access(base, os.R_OK):
        pytest.skip(f"the PostgreSQL data directory {data_dir} is not readable here")
    return [p for folder in (base, Path(data_dir) / "pg_wal") for p in folder.rglob("*")
            if p.is_file()]


def test_the_postgresql_data_files_and_wal_hold_no_marker(tmp_path: Path) -> None:
    marker = f"pg-marker-{uuid.uuid4().hex}"  # the server's WAL is shared with other tests
    made = Engine("postgres", tmp_path, at_rest_config(key_file(tmp_path)))
    try:
        local = made.node()
        send_everything(Room(local), marker)
        files = postgres_files(local)
        assert files
        assert [f.name for f in files if file_holds(f, marker)] == []
    finally:
        made.close()


def file_holds(path: Path, marker: str) -> bool:
    try:
        return marker.encode() in path.read_bytes()
    except FileNotFoundError:  # a WAL segment recycled meanwhile
        return False
