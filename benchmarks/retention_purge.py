"""How long the retention purge takes to prune a room of many expired messages on SQLite, and
how long each of its transactions holds the database (while one runs, other writers wait).

One room of ``--events`` messages (plus a few state events) is written straight through the
event store, then ``RetentionStore.purge_batch`` is called in batches of ``--batch`` until
nothing is left, as the purge job does (without the reactor turns between batches):

    .venv/bin/python benchmarks/retention_purge.py [--events 100000] [--batch 500]

It does not measure send latency in other rooms while the purge runs (that needs a running
node under load); the longest transaction is the bound a send waits for the database.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.database import Database, DatabaseConfig  # noqa: E402
from storage.events import EventStore  # noqa: E402
from storage.migrations import apply_migrations  # noqa: E402
from storage.retention import RetentionStore  # noqa: E402
from tests.event_chain import ALICE, EventChain  # noqa: E402
from tests.storage_helpers import result_of  # noqa: E402

WRITE_BATCH = 2000


def build_room(db: Database, events: int) -> str:
    store = EventStore(db)
    chain = EventChain()
    result_of(store.persist_batch([
        chain.item("m.room.create", {"room_version": "12"}, ""),
        chain.item("m.room.member", {"membership": "join"}, ALICE)]))
    for start in range(0, events, WRITE_BATCH):
        result_of(store.persist_batch([
            chain.item("m.room.message", {"msgtype": "m.text", "body": f"message {i}"})
            for i in range(start, min(events, start + WRITE_BATCH))]))
        chain.events = chain.events[-1:]  # only the last is cited; keep memory flat
    return chain.room_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        db = Database(DatabaseConfig(engine="sqlite", path=str(Path(workdir) / "bench.db")),
                      synchronous=True)
        apply_migrations(db)
        started = time.perf_counter()
        room_id = build_room(db, args.events)
        print(f"wrote {args.events} messages in {time.perf_counter() - started:.1f} s")
        store = RetentionStore(db)
        durations: list[float] = []
        purged = 0
        started = time.perf_counter()
        while True:
            begun = time.perf_counter()
            ids = result_of(store.purge_batch(room_id, 2**62, args.batch))
            durations.append(time.perf_counter() - begun)
            purged += len(ids)
            if len(ids) < args.batch:
                break
        total = time.perf_counter() - started
        db.close()
    ms = sorted(d * 1000 for d in durations)
    print(f"purged {purged} events in {total:.1f} s ({len(ms)} transactions of"
          f" {args.batch}): median {statistics.median(ms):.1f} ms,"
          f" p99 {ms[min(len(ms) - 1, int(len(ms) * 0.99))]:.1f} ms,"
          f" longest {ms[-1]:.1f} ms")


if __name__ == "__main__":
    main()
