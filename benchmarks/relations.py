"""Benchmark ``/relations`` and ``/threads`` of a real node process and print their figures.

    python benchmarks/relations.py [--engine sqlite|postgres] [--dsn DSN] [--quick]

Starts its own node on a loopback port (rate limits off), makes a room with ``ROOTS`` thread
roots, each with ``REPLIES`` thread replies, a reaction and an edit, then prints medians:

- ``relations_p50_ms``: ``GET /relations/{root}?limit=20`` of a root picked in turn;
- ``threads_p50_ms``: ``GET /threads?limit=10`` of the room (the first page and the next).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench import V3, User, create_room, pct, register  # noqa: E402
from benchmarks.common import print_targets, results_on_a_node  # noqa: E402

if TYPE_CHECKING:
    from tests.node_harness import NodeProcess

V1 = "/_matrix/client/v1"
TARGETS = {"relations_p50_ms": ("<", 10), "threads_p50_ms": ("<", 10)}


async def send(user: User, room_id: str, event_type: str, content: dict[str, Any]) -> str:
    path = f"{V3}/rooms/{quote(room_id)}/send/{event_type}/{uuid.uuid4().hex}"
    return str((await user.call("PUT", path, content))["event_id"])


async def fill(user: User, room_id: str, roots: int, replies: int) -> list[str]:
    made = []
    for i in range(roots):
        root = await user.send(room_id, f"root {i}")
        made.append(root)
        await asyncio.gather(*(send(user, room_id, "m.room.message", {
            "msgtype": "m.text", "body": f"reply {j}",
            "m.relates_to": {"rel_type": "m.thread", "event_id": root}})
            for j in range(replies)))
        await send(user, room_id, "m.reaction", {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👍"}})
        await send(user, room_id, "m.room.message", {
            "msgtype": "m.text", "body": "* edited", "m.new_content": {"body": "edited"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": root}})
    return made


async def timed(user: User, path: str, params: dict[str, str], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        began = time.perf_counter()
        await user.call("GET", path, params=params)
        times.append((time.perf_counter() - began) * 1000)
    return times


async def run(node: NodeProcess, quick: bool) -> dict[str, Any]:
    roots, replies, rounds = (20, 10, 100) if quick else (100, 20, 300)
    async with aiohttp.ClientSession() as session:
        user = await register(session, node.base_url)
        room_id = await create_room(user, preset="private_chat")
        made = await fill(user, room_id, roots, replies)
        relations = []
        for i in range(rounds):
            path = f"{V1}/rooms/{quote(room_id)}/relations/{quote(made[i % len(made)])}"
            relations += await timed(user, path, {"limit": "20"}, 1)
        threads_path = f"{V1}/rooms/{quote(room_id)}/threads"
        first = await user.call("GET", threads_path, params={"limit": "10"})
        threads = await timed(user, threads_path, {"limit": "10"}, rounds // 2)
        threads += await timed(user, threads_path,
                               {"limit": "10", "from": first["next_batch"]}, rounds // 2)
    return {"roots": roots, "replies_per_root": replies,
            "relations_p50_ms": statistics.median(relations),
            "relations_p90_ms": pct(relations, 0.9),
            "threads_p50_ms": statistics.median(threads), "threads_p90_ms": pct(threads, 0.9)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--dsn", default="", help="PostgreSQL DSN of an empty database")
    parser.add_argument("--quick", action="store_true", help="a smaller room, fewer rounds")
    args = parser.parse_args()
    results = results_on_a_node(
        args.engine, args.dsn, {"logging.level": "WARNING", "rate_limits.enabled": False},
        lambda node: run(node, args.quick))
    print("RESULT " + json.dumps(results))
    print_targets(results, TARGETS)


if __name__ == "__main__":
    main()
