"""The node's memory as the number of rooms it has touched grows: RSS after touching each size.

    python benchmarks/scale_memory.py [--engine sqlite|postgres] [--sizes 20000,100000]
                                      [--idle 30] [--data DIR] [--dsn DSN]

The rooms (3 members, 20 messages each: the shape of issue 15) are written into the database
with the library before the node starts (signed events through the room writer, in batches),
since creating 100,000 rooms over the HTTP API would take hours.  The node then starts on a
loopback port and every room is touched with one cheap request
(``GET /rooms/{id}/state/m.room.name`` by its creator), the sizes one after another; after each
size the node process's RSS (``VmRSS`` of ``/proc/<pid>/status``) is read, then again after
idling.  ``live_room_bytes`` is what one loaded room of this shape costs in Python objects
(tracemalloc, in this process).  At the end, 200 rooms touched longest ago (read again from the
database: a cache miss) and the 200 touched last (in memory) are requested one at a time:
``miss_p50_ms`` and ``hit_p50_ms``.  ``--data DIR`` keeps the written rooms in DIR and reuses them
next time (the slow part); prints JSON lines, a final ``RESULT {json}`` and the target table.
``run(engine, sizes)`` is the entry point for a runner of several scale benchmarks.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench import V3  # noqa: E402
from benchmarks.common import postgres_dsn, print_targets, scale_arguments  # noqa: E402
from tests.node_harness import NodeProcess  # noqa: E402

SIZES = (20_000, 100_000)
TARGETS = {"rss_20000_mb": ("<", 400), "rss_100000_mb": ("<", 400)}
SERVER_NAME = "scale.test"
USERS = 300  # each room: three of them (a creator and two who join)
MESSAGES = 20
BATCH_EVENTS = 5_000
CONCURRENCY = 16
SAMPLE_ROOMS = 300  # rooms loaded in this process to weigh one with tracemalloc
LATENCY_SAMPLE = 200  # rooms touched one at a time for the miss and hit latencies


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


# Writing the rooms ------------------------------------------------------------------------
def library_node(config_path: Path) -> Any:
    """The node's services over its database (synchronous, on a fake clock), not serving."""
    from twisted.internet.testing import MemoryReactorClock

    from broker.config import load_config
    from broker.node import Node
    from storage.database import fired_result

    reactor = MemoryReactorClock()
    reactor.advance(time.time())
    node = Node(load_config(config_path), reactor)
    node.db.synchronous = True
    node.setup()
    fired_result(_deferred(node.rooms.start()))
    return node


def _deferred(coroutine: Any) -> Any:
    from twisted.internet import defer

    return defer.ensureDeferred(coroutine)


def write_users(node: Any) -> list[tuple[str, str]]:
    from storage.database import fired_result

    accounts = []
    for i in range(USERS):
        user_id = f"@s{i:04d}:{SERVER_NAME}"
        fired_result(node.stores.users.create_user(user_id, "", node.clock.time_ms()))
        token, _ = fired_result(_deferred(node.auth.create_session(user_id, None, None, None)))
        accounts.append((user_id, token))
    return accounts


def room_items(node: Any, number: int, members: Sequence[str]) -> tuple[str, list[Any]]:
    """One room's events (created, two invited members join, messages), applied in memory."""
    from broker.rooms.create_room import CreateRoomRequest
    from broker.rooms.creator import EventSpec

    node.reactor.advance(0.001)  # a room v12's ID is its create event's hash: vary its time
    creator, *joiners = members
    room, items = node.new_rooms.build(CreateRoomRequest(
        creator=creator, preset="private_chat", name=f"room {number}", invite=joiners))
    for user in joiners:
        items.append(node.rooms.creator.build(room, EventSpec(
            sender=user, type="m.room.member", content={"membership": "join"},
            state_key=user)))
    for i in range(MESSAGES):
        items.append(node.rooms.creator.build(room, EventSpec(
            sender=members[i % 3], type="m.room.message",
            content={"msgtype": "m.text", "body": f"message {i} in room {number}"})))
    return room.room_id, items


def write_rooms(config_path: Path, count: int) -> dict[str, Any]:
    """Write ``count`` rooms and their users; (room_id, creator's token) pairs."""
    from storage.database import fired_result

    node = library_node(config_path)
    try:
        accounts = write_users(node)
        rooms: list[tuple[str, str]] = []
        batch: list[Any] = []
        for number in range(count):
            members = [accounts[(number + k) % USERS] for k in (0, 1, 2)]
            room_id, items = room_items(node, number, [user for user, _ in members])
            rooms.append((room_id, members[0][1]))
            batch.extend(items)
            if len(batch) >= BATCH_EVENTS or number == count - 1:
                fired_result(node.stores.events.persist_batch(batch))
                node.stream.finish([item.stream_ordering for item in batch])
                batch = []
            if (number + 1) % 10_000 == 0:
                progress(f"{number + 1}/{count} rooms written")
        # Fresh statistics for the query planner, as autovacuum would gather in time: without
        # them PostgreSQL reads a room's state groups with a scan of the whole table.
        fired_result(node.db.run_interaction("analyze", lambda cur: cur.execute("ANALYZE")))
    finally:
        node.db.close()
    return {"rooms": rooms}


def live_room_bytes(config_path: Path, room_ids: list[str]) -> float:
    """Python memory of one loaded room (tracemalloc), over a sample of rooms."""
    from broker.rooms.live_room import RoomRegistry
    from storage.database import fired_result

    node = library_node(config_path)
    try:
        registry = RoomRegistry(node.stores.state, budget=len(room_ids) + 1)
        fired_result(_deferred(registry.get(room_ids[0])))  # imports, caches, connection
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for room_id in room_ids[1:]:
            fired_result(_deferred(registry.get(room_id)))
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    finally:
        node.db.close()
    return used / (len(room_ids) - 1)


# Touching them ------------------------------------------------------------------------------
async def touch(base: str, rooms: Sequence[tuple[str, str]],
                concurrency: int = CONCURRENCY) -> list[float]:
    """One GET of each room's name by its creator; returns each request's milliseconds."""
    limit = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timings: list[float] = []
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(room_id: str, token: str) -> None:
            async with limit:
                t0 = time.perf_counter()
                async with session.get(
                        f"{base}{V3}/rooms/{quote(room_id)}/state/m.room.name",
                        headers={"Authorization": f"Bearer {token}"}) as response:
                    if response.status != 200:
                        raise RuntimeError(
                            f"{room_id}: {response.status} {await response.text()}")
                    await response.read()
                timings.append((time.perf_counter() - t0) * 1000)

        for start in range(0, len(rooms), 1_000):
            await asyncio.gather(*(one(r, t) for r, t in rooms[start:start + 1_000]))
    return timings


async def miss_and_hit(base: str, rooms: Sequence[tuple[str, str]]) -> dict[str, float]:
    """One request at a time: p50 of a room touched longest ago (beyond the budget, read
    again from the database) and of the rooms touched last (in memory)."""
    sample = min(LATENCY_SAMPLE, len(rooms) // 2)
    cold = await touch(base, rooms[:sample], concurrency=1)
    hot = await touch(base, rooms[-sample:], concurrency=1)
    return {"miss_p50_ms": statistics.median(cold), "hit_p50_ms": statistics.median(hot)}


async def run(engine: str, sizes: Sequence[int], *, dsn: str = "", idle: float = 30.0,
              data: Path | None = None) -> dict[str, Any]:
    """Write max(sizes) rooms (or reuse them from ``data``), start the node and touch them,
    reading its RSS after each size and after idling."""
    results: dict[str, Any] = {"engine": engine, "sizes": list(sizes)}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = data or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        node = NodeProcess(workdir, server_name=SERVER_NAME, engine=engine, dsn=dsn,
                           overrides={"logging.level": "WARNING"})
        written = workdir / "rooms.json"
        if not written.exists():
            started = time.perf_counter()
            written.write_text(json.dumps(write_rooms(node.config_path, max(sizes))))
            results["write_rooms_s"] = time.perf_counter() - started
        rooms: list[tuple[str, str]] = [
            (room_id, token) for room_id, token in json.loads(written.read_text())["rooms"]]
        if len(rooms) < max(sizes):
            raise RuntimeError(f"{written} holds {len(rooms)} rooms, fewer than {max(sizes)}")
        results["live_room_bytes"] = live_room_bytes(
            node.config_path, [r for r, _ in rooms[:SAMPLE_ROOMS]])
        node.start()
        try:
            assert node.process is not None
            pid = node.process.pid
            results["rss_start_mb"] = rss_mb(pid)
            done = 0
            for size in sorted(sizes):
                started = time.perf_counter()
                await touch(node.base_url, rooms[done:size])
                results[f"touch_{size}_s"] = time.perf_counter() - started
                done = size
                results[f"rss_{size}_mb"] = rss_mb(pid)
                await asyncio.sleep(idle)
                results[f"rss_{size}_idle_mb"] = rss_mb(pid)
                print(json.dumps(results), flush=True)
            results.update(await miss_and_hit(node.base_url, rooms[:done]))
        finally:
            node.stop()
    return results


def main() -> None:
    parser = scale_arguments(__doc__.splitlines()[0], SIZES,
                             "numbers of rooms touched, one after another")
    parser.add_argument("--idle", type=float, default=30.0,
                        help="seconds of idling before the second reading of each size")
    parser.add_argument("--data", type=Path, default=None,
                        help="keep the written rooms (and PostgreSQL database) here and reuse "
                             "them next time")
    args = parser.parse_args()
    with database(args.engine, args.dsn, args.data) as dsn:
        results = asyncio.run(run(args.engine, args.sizes, dsn=dsn, idle=args.idle,
                                  data=args.data))
    print("RESULT " + json.dumps(results))
    print_targets(results, TARGETS)


@contextmanager
def database(engine: str, dsn: str, data: Path | None) -> Iterator[str]:
    """The DSN to use: as given, the PostgreSQL database kept with ``data`` (created the
    first time), or a fresh one for this run."""
    if engine != "postgres" or dsn or data is None:
        with postgres_dsn(engine, dsn) as chosen:
            yield chosen
        return
    from tests.storage_helpers import POSTGRES_ENV, create_postgres_database

    kept = data / "postgres.json"
    if not kept.exists():
        os.environ.setdefault(POSTGRES_ENV, "host=127.0.0.1 user=postgres dbname=postgres")
        data.mkdir(parents=True, exist_ok=True)
        kept.write_text(json.dumps({"dsn": create_postgres_database()[0]}))
    yield json.loads(kept.read_text())["dsn"]


if __name__ == "__main__":
    main()
