"""Benchmark the first initial sync after a restart of a user in many rooms; print medians.

    python benchmarks/scale_cold_sync.py [--engine sqlite|postgres] [--sizes 500]
                                         [--restarts 5] [--dsn DSN]

For the largest size, one user creates that many named rooms over the client API and sends
``--messages`` messages into each.  Then, for every restart, the node is stopped and started again (nothing of the rooms is in memory) and the script times:

- ``cold_sync_<n>_ms``: the user's first initial ``/sync`` after the restart;
- ``warm_sync_<n>_ms``: the initial ``/sync`` right after it (everything in memory).

Each figure is the median over the restarts.  Smaller sizes are measured the same way with a
filter naming that many of the rooms.  The last lines are ``RESULT {json}`` and the target
table.  ``run(engine, sizes)`` is the entry point for a runner of several scale benchmarks.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench import User, create_room, register  # noqa: E402
from benchmarks.common import postgres_dsn, print_targets, scale_arguments  # noqa: E402
from tests.node_harness import NodeProcess  # noqa: E402

SIZES = (500,)
TARGETS = {"sqlite": {"cold_sync_500_ms": ("<", 300)},
           "postgres": {"cold_sync_500_ms": ("<", 500)}}
SETUP_CONCURRENCY = 8


async def _fill(user: User, rooms: int, messages: int) -> list[str]:
    """``rooms`` new rooms of ``user``, each with ``messages`` messages.  The rooms are created
    one after another: two created by one user in the same millisecond would share a room ID
    (the create event, and so its hash, would be the same)."""
    room_ids = [await create_room(user, name=f"room {index}") for index in range(rooms)]

    async def send(room_id: str) -> None:
        for i in range(messages):
            await user.send(room_id, f"message {i}")

    for start in range(0, rooms, SETUP_CONCURRENCY):
        await asyncio.gather(*(send(r) for r in room_ids[start:start + SETUP_CONCURRENCY]))
    return room_ids


def _filter_for(room_ids: list[str], size: int) -> str | None:
    if size >= len(room_ids):
        return None
    return json.dumps({"room": {"rooms": room_ids[:size]}})


async def _timed_sync(user: User, flt: str | None, expect: int) -> float:
    started = time.perf_counter()
    body = await user.sync(flt=flt)
    elapsed = (time.perf_counter() - started) * 1000
    if len(body["rooms"]["join"]) != expect:
        raise RuntimeError(f"expected {expect} joined rooms, got {len(body['rooms']['join'])}")
    return elapsed


async def measure(node: NodeProcess, sizes: Sequence[int], restarts: int,
                  messages: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
        user = await register(session, node.base_url)
        started = time.perf_counter()
        room_ids = await _fill(user, max(sizes), messages)
        results["setup_rooms_s"] = round(time.perf_counter() - started, 1)
        for size in sorted(sizes):
            flt = _filter_for(room_ids, size)
            cold: list[float] = []
            warm: list[float] = []
            for _ in range(restarts):
                node.stop()
                node.start()
                cold.append(await _timed_sync(user, flt, size))
                warm.append(await _timed_sync(user, flt, size))
            results[f"cold_sync_{size}_ms"] = round(statistics.median(cold), 1)
            results[f"warm_sync_{size}_ms"] = round(statistics.median(warm), 1)
            print(json.dumps(results), flush=True)
    return results


async def run(engine: str, sizes: Sequence[int] = SIZES, restarts: int = 5,
              messages: int = 3, dsn: str = "") -> dict[str, Any]:
    """A node on ``engine`` with a user in ``max(sizes)`` rooms; the cold and warm initial
    sync medians over ``restarts`` restarts for each size."""
    results: dict[str, Any] = {"engine": engine, "restarts": restarts,
                               "messages_per_room": messages}
    with postgres_dsn(engine, dsn) as node_dsn, tempfile.TemporaryDirectory() as tmp:
        node = NodeProcess(Path(tmp), engine=engine, dsn=node_dsn,
                           overrides={"logging.level": "WARNING"})
        node.start()
        try:
            results.update(await measure(node, sizes, restarts, messages))
        finally:
            node.stop()
    return results


def main() -> None:
    parser = scale_arguments(__doc__.splitlines()[0], SIZES, "room counts")
    parser.add_argument("--restarts", type=int, default=5)
    parser.add_argument("--messages", type=int, default=3, help="messages per room")
    args = parser.parse_args()
    results = asyncio.run(run(args.engine, args.sizes, args.restarts, args.messages, args.dsn))
    print("RESULT " + json.dumps(results))
    print_targets(results, TARGETS[args.engine])


if __name__ == "__main__":
    main()
