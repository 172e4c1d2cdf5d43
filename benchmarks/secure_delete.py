"""What SQLite's ``secure_delete`` costs the hot-room send, and what a purge's reclaim takes.

A send persists one event per transaction into a busy room (the event row, its forward
extremity replacing the last one, the stream position): that is what this times, on a fresh
database for each ``secure_delete`` mode (OFF, FAST, ON), the modes taken in turn for
``--rounds`` rounds so the shared machine's noise falls on each alike.  The events are built
and signed beforehand, so only the database work is timed.  Then, on a database of
``--purge`` expired messages, the purge runs and the reclaim after it (incremental vacuum and
WAL checkpoint) is timed, and the full VACUUM that converts a database made without
auto-vacuum.

    .venv/bin/python benchmarks/secure_delete.py [--sends 2000] [--rounds 3] [--purge 100000]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import storage.database  # noqa: E402
from benchmarks.retention_purge import build_room  # noqa: E402
from storage.database import Database, DatabaseConfig  # noqa: E402
from storage.events import EventStore, PersistItem  # noqa: E402
from storage.migrations import apply_migrations  # noqa: E402
from storage.reclaim import reclaim  # noqa: E402
from storage.retention import RetentionStore  # noqa: E402
from tests.event_chain import ALICE, EventChain  # noqa: E402
from tests.storage_helpers import result_of  # noqa: E402

MODES = ("OFF", "FAST", "ON")


def open_db(workdir: str, name: str, mode: str) -> Database:
    storage.database.SQLITE_SECURE_DELETE = mode
    db = Database(DatabaseConfig(engine="sqlite", path=str(Path(workdir) / name)),
                  synchronous=True)
    apply_migrations(db)
    return db


def sends(count: int) -> tuple[list[PersistItem], list[PersistItem]]:
    """The room's first events, and ``count`` messages to send into it one by one."""
    chain = EventChain()
    start = [chain.item("m.room.create", {"room_version": "12"}, ""),
             chain.item("m.room.member", {"membership": "join"}, ALICE)]
    return start, [chain.item("m.room.message", {"msgtype": "m.text", "body": f"hello {i}"})
                   for i in range(count)]


def time_sends(workdir: str, mode: str, round_: int, count: int) -> float:
    """Milliseconds per send, the median of ``count`` one-event transactions."""
    db = open_db(workdir, f"send-{mode}-{round_}.db", mode)
    store = EventStore(db)
    start, messages = sends(count)
    result_of(store.persist_batch(start))
    took = []
    for item in messages:
        begun = time.perf_counter()
        result_of(store.persist_batch([item]))
        took.append((time.perf_counter() - begun) * 1000)
    db.close()
    return statistics.median(took)


def time_reclaim(workdir: str, events: int) -> None:
    db = open_db(workdir, "purge.db", "ON")
    room_id = build_room(db, events)
    store = RetentionStore(db)
    begun = time.perf_counter()
    while len(result_of(store.purge_batch(room_id, 2**62, 500))) == 500:
        pass
    purged = time.perf_counter() - begun
    path = Path(db.config.path)
    wal = path.with_name(path.name + "-wal")
    size, wal_size = path.stat().st_size, wal.stat().st_size
    begun = time.perf_counter()
    result_of(store.reclaim())
    reclaimed = time.perf_counter() - begun
    print(f"purge of {events} messages: {purged:.1f} s; reclaim {reclaimed * 1000:.0f} ms,"
          f" database {size / 1e6:.1f} -> {path.stat().st_size / 1e6:.1f} MB,"
          f" WAL {wal_size / 1e6:.1f} -> {wal.stat().st_size / 1e6:.1f} MB")
    db.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA auto_vacuum=0")
    conn.execute("VACUUM")  # as a database made before auto-vacuum
    conn.close()
    db = open_db(workdir, "purge.db", "ON")
    begun = time.perf_counter()
    from twisted.internet import defer

    result_of(defer.ensureDeferred(reclaim(db, ["events"])))
    print(f"converting that database ({path.stat().st_size / 1e6:.1f} MB) by a full VACUUM:"
          f" {time.perf_counter() - begun:.1f} s")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--purge", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        medians: dict[str, list[float]] = {mode: [] for mode in MODES}
        for round_ in range(args.rounds):
            for mode in MODES:
                medians[mode].append(time_sends(workdir, mode, round_, args.sends))
        off = statistics.median(medians["OFF"])
        for mode in MODES:
            ms = statistics.median(medians[mode])
            print(f"secure_delete={mode}: {ms:.3f} ms per send (median of"
                  f" {args.rounds} rounds of {args.sends}), {100 * (ms / off - 1):+.1f}%")
        if args.purge:
            time_reclaim(workdir, args.purge)


if __name__ == "__main__":
    main()
