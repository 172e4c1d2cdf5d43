"""What encryption at rest costs per event: sealing and opening one stored event's JSON (the
cipher alone), and writing and reading events through the event store on SQLite with and
without a key (group commits of ``--batch`` events, then reads of the same events by ID).

    .venv/bin/python benchmarks/at_rest_cost.py [--events 5000] [--batch 50] [--rounds 5]

Figures are medians over ``--rounds`` rounds; the machine may be shared, so compare the two
columns of one run rather than runs taken at different times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.at_rest import EVENTS_JSON, AtRest, DataKey  # noqa: E402
from storage.database import Database, DatabaseConfig  # noqa: E402
from storage.events import EventStore, PersistItem, event_json  # noqa: E402
from storage.migrations import apply_migrations  # noqa: E402
from tests.event_chain import ALICE, EventChain  # noqa: E402
from tests.storage_helpers import result_of  # noqa: E402


def median_us(func: Callable[[], object], repeat: int) -> float:
    """Median microseconds of one call, over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        begun = time.perf_counter()
        func()
        times.append(time.perf_counter() - begun)
    return statistics.median(times) * 1e6


def cipher_cost(text: str) -> tuple[float, float]:
    at_rest = AtRest([DataKey.generate()])
    sealed = at_rest.seal(EVENTS_JSON, text)
    return (median_us(lambda: at_rest.seal(EVENTS_JSON, text), 20_000),
            median_us(lambda: at_rest.open(EVENTS_JSON, sealed), 20_000))


def messages(chain: EventChain, count: int, body: str) -> list[PersistItem]:
    return [chain.item("m.room.message", {"msgtype": "m.text", "body": f"{body} {i}"})
            for i in range(count)]


def store_round(at_rest: AtRest, events: int, batch: int, body: str) -> tuple[float, float]:
    """Seconds to write ``events`` messages in group commits of ``batch``, and to read them
    all back by ID (500 a query, as the store reads)."""
    with tempfile.TemporaryDirectory() as workdir:
        db = Database(DatabaseConfig(engine="sqlite", path=str(Path(workdir) / "bench.db")),
                      synchronous=True, at_rest=at_rest)
        apply_migrations(db)
        store = EventStore(db)
        chain = EventChain()
        result_of(store.persist_batch([
            chain.item("m.room.create", {"room_version": "12"}, ""),
            chain.item("m.room.member", {"membership": "join"}, ALICE)]))
        items = messages(chain, events, body)
        begun = time.perf_counter()
        for start in range(0, events, batch):
            result_of(store.persist_batch(items[start:start + batch]))
        written = time.perf_counter() - begun
        ids = [item.event.event_id for item in items]
        begun = time.perf_counter()
        for start in range(0, events, 500):
            result_of(store.get_events(ids[start:start + 500]))
        read = time.perf_counter() - begun
        db.close()
    return written, read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    body = "a message of an ordinary length, about as long as a sentence or two in a chat"
    chain = EventChain()
    chain.item("m.room.create", {"room_version": "12"}, "")
    sample = event_json(messages(chain, 1, body)[0].event)
    seal_us, open_us = cipher_cost(sample)
    print(f"cipher, one event of {len(sample)} bytes of JSON: seal {seal_us:.1f} us,"
          f" open {open_us:.1f} us (median of 20,000)")
    results: dict[str, list[tuple[float, float]]] = {"clear": [], "sealed": []}
    for _ in range(args.rounds):  # interleaved, so both see the same machine load
        results["clear"].append(store_round(AtRest(), args.events, args.batch, body))
        results["sealed"].append(store_round(AtRest([DataKey.generate()]), args.events,
                                             args.batch, body))
    print(f"event store on SQLite, {args.events} messages, group commits of {args.batch},"
          f" median of {args.rounds} rounds:")
    medians = {}
    for name, rounds in results.items():
        write = statistics.median(r[0] for r in rounds)
        read = statistics.median(r[1] for r in rounds)
        medians[name] = (write, read)
        print(f"  {name:>6}: write {args.events / write:,.0f} events/s"
              f" ({write * 1e6 / args.events:.1f} us each),"
              f" read by ID {args.events / read:,.0f} events/s ({read * 1e6 / args.events:.1f}"
              " us each)")
    (cw, cr), (sw, sr) = medians["clear"], medians["sealed"]
    print(f"  cost of sealing: write +{(sw / cw - 1) * 100:.1f}%, read +{(sr / cr - 1) * 100:.1f}%")


if __name__ == "__main__":
    main()
