"""Benchmark the application API of a real node process and print its figures.

    python benchmarks/app_messages.py [--engine sqlite|postgres] [--dsn DSN] [--quick]

Starts its own node on a loopback port (rate limits off, organisation ``mha``), registers an app
of mha through the admin API, registers recipients, and prints medians:

- ``app_msgs_per_s``: messages accepted per second with 16 concurrent API clients, each posting
  alerts to the recipients in turn (their rooms made beforehand);
- ``app_msgs_in_rooms_per_s``: the same messages (and a last one each recipient syncs until
  it sees) counted once all are in the recipients' rooms;
- ``post_to_sync_p50_ms``: from the start of ``POST /messages`` to the answer of the
  recipient's long-polling ``/sync`` that holds the message;
- ``status_p50_ms``: ``GET /messages/{id}`` of a recent message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench import User, pct, register  # noqa: E402
from benchmarks.common import postgres_dsn, print_targets  # noqa: E402
from tests.node_harness import NodeProcess  # noqa: E402

APPS = "/_broker/apps/v1"
CLIENTS = 16
TARGETS = {"app_msgs_per_s": (">=", 500), "post_to_sync_p50_ms": ("<", 30),
           "status_p50_ms": ("<", 10)}


async def post(app: User, to: str, body: str) -> str:
    answer = await app.call("POST", f"{APPS}/messages", {"to": to, "kind": "alert",
                                                         "body": body})
    return str(answer["message_id"])


async def bench_throughput(app: User, recipients: list[User], total: int) -> dict[str, float]:
    await asyncio.gather(*(post(app, r.user_id, "warm") for r in recipients))  # their rooms
    per_client = total // CLIENTS

    async def run(client: int) -> None:
        for i in range(per_client):
            await post(app, recipients[(client + i * CLIENTS) % len(recipients)].user_id,
                       f"m{client}.{i}")

    tokens = [(await r.sync())["next_batch"] for r in recipients]
    started = time.perf_counter()
    await asyncio.gather(*(run(c) for c in range(CLIENTS)))
    accepted = time.perf_counter() - started
    # Then each recipient is sent a last marker: once every one has it, all were put in rooms.
    await asyncio.gather(*(post(app, r.user_id, "last") for r in recipients))
    await asyncio.gather(*(_until(r, t, "last") for r, t in zip(recipients, tokens,
                                                                 strict=True)))
    in_rooms = time.perf_counter() - started
    count = per_client * CLIENTS
    return {"app_msgs_per_s": count / accepted,
            "app_msgs_in_rooms_per_s": (count + len(recipients)) / in_rooms}


async def bench_latency(app: User, reader: User, rounds: int) -> dict[str, float]:
    token = (await reader.sync())["next_batch"]
    delays: list[float] = []
    for round_no in range(rounds):
        marker = f"lat{round_no}"
        waiting = asyncio.ensure_future(_until(reader, token, marker))
        await asyncio.sleep(0.05)  # the long-poll is parked
        sent_at = time.perf_counter()
        await post(app, reader.user_id, marker)
        token, arrived = await waiting
        delays.append((arrived - sent_at) * 1000)
    return {"post_to_sync_p50_ms": statistics.median(delays),
            "post_to_sync_p90_ms": pct(delays, 0.9)}


async def _until(reader: User, token: str, marker: str) -> tuple[str, float]:
    while True:
        body = await reader.sync(token, timeout=30000)
        token = body["next_batch"]
        for room in body["rooms"]["join"].values():
            if any(e["content"].get("body") == marker for e in room["timeline"]["events"]):
                return token, time.perf_counter()


async def bench_status(app: User, reader: User, runs: int) -> dict[str, float]:
    message_id = await post(app, reader.user_id, "status")
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await app.call("GET", f"{APPS}/messages/{message_id}")
        times.append((time.perf_counter() - started) * 1000)
    return {"status_p50_ms": statistics.median(times), "status_p90_ms": pct(times, 0.9)}


async def run(node: NodeProcess, quick: bool) -> dict[str, Any]:
    admin = node.admin()
    answer = admin.post("/_broker/admin/v1/apps", {"name": "Benchmark", "organisation": "mha"})
    assert admin.status == 201, answer
    connector = aiohttp.TCPConnector(limit=CLIENTS + 8)
    async with aiohttp.ClientSession(connector=connector) as session:
        app = User(session, node.base_url, answer["token"], answer["sender"])
        recipients = [await register(session, node.base_url) for _ in range(32)]
        results = await bench_throughput(app, recipients, 1600 if quick else 4800)
        results.update(await bench_latency(app, recipients[0], 20 if quick else 60))
        results.update(await bench_status(app, recipients[0], 100 if quick else 300))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--dsn", default="", help="PostgreSQL DSN of an empty database")
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    args = parser.parse_args()
    results: dict[str, Any] = {"engine": args.engine}
    with tempfile.TemporaryDirectory() as tmp, postgres_dsn(args.engine, args.dsn) as dsn:
        orgs = Path(tmp) / "organisations.yaml"
        orgs.write_text(yaml.safe_dump({"organisations": [{"id": "mha", "name": "MHA"}]}))
        node = NodeProcess(Path(tmp) / "node", engine=args.engine, dsn=dsn, overrides={
            "logging.level": "WARNING", "rate_limits.enabled": False,
            "organisations.path": str(orgs)})
        node.start()
        try:
            results.update(asyncio.run(run(node, args.quick)))
        finally:
            node.stop()
    print("RESULT " + json.dumps(results))
    print_targets(results, TARGETS)


if __name__ == "__main__":
    main()
