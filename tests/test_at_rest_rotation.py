"""Key rotation while the node runs, on each engine: every sealed record and media file ends
under the new key, the old key leaves the key file only once nothing needs it, a rotation
stopped part-way goes on where it stopped, and records the node wrote under the old key
meanwhile (or clear, before the key was set) are re-sealed too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from broker.admin_tools import open_database
from broker.at_rest_keys import KeyFileWatcher, read_key_file
from broker.at_rest_rotate import AtRestRotation, RotationDone
from broker.config import load_config
from broker.media.files import MediaFiles, stored_key_id, write_atomically
from storage.at_rest import sealed_key_id
from storage.at_rest_rotation import SEALED_COLUMNS
from storage.database import Database
from storage.media import MediaRecord
from tests.at_rest_helpers import MARKER, at_rest_config, engine, raw_values
from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine
from tests.retention_room import V3, Room
from tests.storage_helpers import result_of

__all__ = ["engine"]

MEDIA_ID = "AbCdEfGhIjKl"


class Interrupted(Exception):
    """Stands for the command being killed between two batches."""


class Command:
    """``broker keys at-rest rotate`` against a node's database, on a clock of its own."""

    def __init__(self, local: InProcessNode) -> None:
        self.config = load_config(local.config_path)
        assert self.config.at_rest_key_file is not None
        self.key_file: Path = self.config.at_rest_key_file
        self.lines: list[str] = []
        self.now = 1_767_225_600_000
        self.stop_after: int | None = None
        self.while_waiting: list[object] = []
        self.db: Database | None = None

    def report(self, line: str) -> None:
        self.lines.append(line)
        if self.stop_after is not None and len(self.lines) >= self.stop_after:
            raise Interrupted(line)

    def sleep(self, seconds: float) -> None:
        self.now += int(seconds * 1000)
        for work in self.while_waiting:
            work()  # type: ignore[operator]

    def run(self, *, settle_ms: int = 0) -> RotationDone:
        self.db = open_database(self.config)
        try:
            return AtRestRotation(
                self.db, self.key_file, MediaFiles(self.config.media_store_path, self.db.at_rest),
                now_ms=lambda: self.now, sleep=self.sleep, report=self.report, batch=2,
                settle_ms=settle_ms).run()
        finally:
            self.db.close()


def store_upload(local: InProcessNode) -> Path:
    """An uploaded file holding the marker, written as the node writes one."""
    files = local.node.media.files
    path = files.content_path(MEDIA_ID)
    write_atomically(path, iter([MARKER.encode() * 100]), at_rest=files.at_rest)
    result_of(local.node.stores.media.store_media(MediaRecord(
        MEDIA_ID, "@alice:clock.test", "text/plain", None, 2200, "", 0)))
    return path


def fill(room: Room, messages: int = 5) -> None:
    for i in range(messages):
        room.send(f"{MARKER} {i}")
    set_note(room, "first")


def set_note(room: Room, note: str) -> None:
    user_id = room.local.node.user_id("alice")
    room.ok("PUT", f"{V3}/user/{quote(user_id)}/account_data/org.example.note", {"note": note})


def stored_key_ids(local: InProcessNode) -> set[str | None]:
    return {sealed_key_id(value) for column in SEALED_COLUMNS
            for value in raw_values(local, column.table, column.column)}


@pytest.fixture
def room(engine: Engine) -> Iterator[Room]:
    made = Room(engine.node())
    yield made


def test_rotation_reseals_every_record_and_file_under_a_new_key(engine: Engine,
                                                                 room: Room) -> None:
    old = read_key_file(Command(room.local).key_file)[0]
    fill(room)
    upload = store_upload(room.local)
    done = Command(room.local).run()
    new = done.rotation.target_key_id
    assert new != old.key_id and done.retired_key_ids == [old.key_id]
    assert stored_key_ids(room.local) == {new}
    assert stored_key_id(upload) == new


def test_the_old_key_leaves_the_key_file_once_the_rotation_is_done(room: Room) -> None:
    command = Command(room.local)
    fill(room)
    done = command.run()
    assert [k.key_id for k in read_key_file(command.key_file)] == [done.rotation.target_key_id]


def test_after_a_rotation_the_node_reads_everything_with_the_new_key_alone(
        engine: Engine, room: Room) -> None:
    fill(room)
    store_upload(room.local)
    Command(room.local).run()
    room.local = engine.restart(room.local)
    assert room.bodies() == [f"{MARKER} {i}" for i in reversed(range(5))]
    assert room.local.node.media.files.read_all(
        room.local.node.media.files.content_path(MEDIA_ID)) == MARKER.encode() * 100


def test_an_interrupted_rotation_keeps_both_keys_and_everything_reads(
        engine: Engine, room: Room) -> None:
    fill(room)
    command = Command(room.local)
    command.stop_after = 2
    with pytest.raises(Interrupted):
        command.run()
    assert len(read_key_file(command.key_file)) == 2
    assert len(stored_key_ids(room.local)) == 2  # some rows re-sealed, some not yet
    room.local = engine.restart(room.local)
    assert room.bodies() == [f"{MARKER} {i}" for i in reversed(range(5))]


def test_an_interrupted_rotation_resumes_where_it_stopped(engine: Engine, room: Room) -> None:
    fill(room)
    first = Command(room.local)
    first.stop_after = 2
    with pytest.raises(Interrupted):
        first.run()
    target = read_key_file(first.key_file)[0].key_id
    again = Command(room.local)
    done = again.run()
    assert again.lines[0] == f"resuming the rotation to key {target}"
    assert done.rotation.target_key_id == target
    assert stored_key_ids(room.local) == {target}
    room.local = engine.restart(room.local)
    assert room.bodies() == [f"{MARKER} {i}" for i in reversed(range(5))]


def test_the_command_reports_progress_per_part(room: Room) -> None:
    fill(room)
    command = Command(room.local)
    command.run()
    assert any(line.startswith("events.json: ") and "re-sealed" in line
               for line in command.lines)
    assert any(line.startswith("account_data.content: ") for line in command.lines)


def test_a_running_node_takes_up_the_new_key_file(room: Room) -> None:
    command = Command(room.local)
    watcher = KeyFileWatcher(command.key_file, room.local.node.db.at_rest)
    command.stop_after = 1  # the new key file is written
    with pytest.raises(Interrupted):
        command.run()
    assert watcher.check()
    room.send("after")
    newest = raw_values(room.local, "events", "json")
    assert sealed_key_id(newest[-1]) == read_key_file(command.key_file)[0].key_id


def test_a_record_the_node_wrote_under_the_old_key_meanwhile_is_resealed(room: Room) -> None:
    fill(room)
    command = Command(room.local)
    watcher = KeyFileWatcher(command.key_file, room.local.node.db.at_rest)
    # Before the node reads the new key file, it rewrites a row the first pass went past.
    command.while_waiting += [lambda: set_note(room, "rewritten"), watcher.check]
    done = command.run(settle_ms=60_000)
    assert stored_key_ids(room.local) == {done.rotation.target_key_id}
    note = room.ok("GET", f"{V3}/user/{quote(room.local.node.user_id('alice'))}"
                          "/account_data/org.example.note")
    assert note == {"note": "rewritten"}


def test_rotation_seals_the_rows_written_before_the_key_was_set(
        engine: Engine, tmp_path: Path) -> None:
    engine.config = None
    room = Room(engine.node())
    fill(room)
    assert None in stored_key_ids(room.local)
    engine.config = at_rest_config(tmp_path / "at_rest.keys")
    room.local = engine.restart(room.local)
    done = Command(room.local).run()
    assert stored_key_ids(room.local) == {done.rotation.target_key_id}
