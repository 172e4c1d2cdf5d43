"""Benchmark a real node process over HTTP and print throughput and latency figures.

    python benchmarks/bench.py [--engine sqlite|postgres] [--dsn DSN] [--quick] [--at-rest]
                               [--metrics]

Starts its own node on a loopback port (rate limits off), drives it with an asyncio/aiohttp
load generator on the same machine, and prints medians:

- send: messages/s with 16 concurrent senders into one room; p50 latency of a lone sender;
- fan-out: time for one message to reach 20 long-polling clients (p50 over all deliveries);
- initial sync: a user in 50 rooms of 100 events each, warm (median) and cold (the first sync
  after a restart, with nothing in memory).

``--at-rest`` runs the node with encryption at rest (a fresh key file); ``--metrics`` with its
metrics listener on (every request and transaction observed; nothing scrapes it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.node_harness import NodeProcess  # noqa: E402

V3 = "/_matrix/client/v3"


class User:
    def __init__(self, session: aiohttp.ClientSession, base: str, token: str, user_id: str):
        self.session = session
        self.base = base
        self.token = token
        self.user_id = user_id
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None,
                   params: dict[str, str] | None = None) -> Any:
        async with self.session.request(method, self.base + path, json=body, params=params,
                                        headers=self.headers) as response:
            data = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{method} {path}: {response.status} {data}")
            return data

    async def send(self, room_id: str, text: str) -> str:
        path = f"{V3}/rooms/{quote(room_id)}/send/m.room.message/{uuid.uuid4().hex}"
        body = await self.call("PUT", path, {"msgtype": "m.text", "body": text})
        return str(body["event_id"])

    async def sync(self, since: str | None = None, timeout: int = 0,
                   flt: str | None = None) -> Any:
        params = {"timeout": str(timeout)}
        if since:
            params["since"] = since
        if flt:
            params["filter"] = flt
        return await self.call("GET", f"{V3}/sync", params=params)


async def register(session: aiohttp.ClientSession, base: str) -> User:
    name = "b" + uuid.uuid4().hex[:12]
    async with session.post(base + f"{V3}/register", json={
        "username": name, "password": "benchmark-password",
        "auth": {"type": "m.login.dummy"}}) as response:
        body = await response.json()
    return User(session, base, body["access_token"], body["user_id"])


async def create_room(user: User, **body: Any) -> str:
    return str((await user.call("POST", f"{V3}/createRoom", body))["room_id"])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_send(base: str, total: int) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        owner = await register(session, base)
        room_id = await create_room(owner, preset="public_chat")
        senders = [await register(session, base) for _ in range(16)]
        for sender in senders:
            await sender.call("POST", f"{V3}/join/{quote(room_id)}", {})
        # Warm up.
        await asyncio.gather(*(s.send(room_id, "warm") for s in senders))
        per_sender = total // len(senders)

        async def run(sender: User) -> None:
            for i in range(per_sender):
                await sender.send(room_id, f"m{i}")

        started = time.perf_counter()
        await asyncio.gather(*(run(s) for s in senders))
        elapsed = time.perf_counter() - started
        throughput = per_sender * len(senders) / elapsed

        latencies = []
        for i in range(200):
            t0 = time.perf_counter()
            await owner.send(room_id, f"solo{i}")
            latencies.append((time.perf_counter() - t0) * 1000)
    return {"send_msgs_per_s": throughput, "single_sender_p50_ms": statistics.median(latencies),
            "single_sender_p90_ms": pct(latencies, 0.9)}


async def bench_fanout(base: str, clients: int, rounds: int) -> dict[str, float]:
    connector = aiohttp.TCPConnector(limit=clients + 8)
    async with aiohttp.ClientSession(connector=connector) as session:
        sender = await register(session, base)
        room_id = await create_room(sender, preset="public_chat")
        readers = [await register(session, base) for _ in range(clients)]
        for reader in readers:
            await reader.call("POST", f"{V3}/join/{quote(room_id)}", {})
        tokens = [(await r.sync())["next_batch"] for r in readers]
        delays: list[float] = []
        for round_no in range(rounds):
            marker = f"fan{round_no}"
            received: list[float] = []

            async def wait(i: int, reader: User, marker: str = marker,
                           received: list[float] = received) -> None:
                while True:
                    body = await reader.sync(tokens[i], timeout=30000)
                    tokens[i] = body["next_batch"]
                    room = body["rooms"]["join"].get(room_id)
                    events = room["timeline"]["events"] if room else []
                    if any(e["content"].get("body") == marker for e in events):
                        received.append(time.perf_counter())
                        return

            waiters = [asyncio.ensure_future(wait(i, r)) for i, r in enumerate(readers)]
            await asyncio.sleep(0.2)  # let every reader park its long-poll
            sent_at = time.perf_counter()
            await sender.send(room_id, marker)
            await asyncio.gather(*waiters)
            delays.extend((t - sent_at) * 1000 for t in received)
    return {"fanout_p50_ms": statistics.median(delays), "fanout_p90_ms": pct(delays, 0.9),
            "fanout_clients": clients}


async def bench_initial_sync(node: NodeProcess, rooms: int, events: int,
                             runs: int) -> dict[str, float]:
    base = node.base_url
    connector = aiohttp.TCPConnector(limit=32)
    async with aiohttp.ClientSession(connector=connector) as session:
        user = await register(session, base)
        room_ids = [await create_room(user, name=f"room {i}") for i in range(rooms)]

        async def fill(room_id: str) -> None:
            for i in range(events):
                await user.send(room_id, f"event {i}")

        for start in range(0, rooms, 10):
            await asyncio.gather(*(fill(r) for r in room_ids[start:start + 10]))
        # Cold: right after a restart, nothing of these rooms is in memory yet.
        node.stop()
        node.start()
        t0 = time.perf_counter()
        body = await user.sync()
        cold = (time.perf_counter() - t0) * 1000
        assert len(body["rooms"]["join"]) == rooms
        timings = []
        for _ in range(runs):
            t0 = time.perf_counter()
            body = await user.sync()
            timings.append((time.perf_counter() - t0) * 1000)
            assert len(body["rooms"]["join"]) == rooms
    return {"initial_sync_ms_p50": statistics.median(timings), "initial_sync_cold_ms": cold,
            "initial_sync_rooms": rooms,
            "initial_sync_events_per_room": events}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"engine": args.engine}
    with tempfile.TemporaryDirectory() as tmp:
        overrides: dict[str, Any] = {"logging.level": "WARNING"}
        if args.at_rest:
            from broker.at_rest_keys import write_key_file
            from storage.at_rest import DataKey

            write_key_file(Path(tmp) / "at_rest.keys", [DataKey.generate()], replace=False)
            overrides["at_rest.key_file"] = str(Path(tmp) / "at_rest.keys")
        results["at_rest"] = args.at_rest
        if args.metrics:
            from tests.node_harness import free_port

            overrides["metrics.port"] = free_port()
        results["metrics"] = args.metrics
        node = NodeProcess(Path(tmp), engine=args.engine, dsn=args.dsn, overrides=overrides)
        node.start()
        try:
            base = node.base_url
            total = 800 if args.quick else 3200
            results.update(await bench_send(base, total))
            print(json.dumps(results), flush=True)
            results.update(await bench_fanout(base, 20, 5 if args.quick else 20))
            print(json.dumps(results), flush=True)
            results.update(await bench_initial_sync(node, 50, 100, 3 if args.quick else 7))
        finally:
            node.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--dsn", default="", help="PostgreSQL DSN of a database to create")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--at-rest", action="store_true", help="encryption at rest on")
    parser.add_argument("--metrics", action="store_true", help="the metrics listener on")
    args = parser.parse_args()
    dbname = ""
    if args.engine == "postgres":
        from tests.storage_helpers import POSTGRES_ENV, create_postgres_database

        admin = args.dsn or os.environ.get(POSTGRES_ENV, "host=127.0.0.1 user=postgres "
                                                          "dbname=postgres")
        os.environ[POSTGRES_ENV] = admin
        args.dsn, dbname = create_postgres_database()
    try:
        results = asyncio.run(main_async(args))
    finally:
        if dbname:
            from tests.storage_helpers import drop_postgres_database

            drop_postgres_database(dbname)
    print("RESULT " + json.dumps(results))
    targets = {"send_msgs_per_s": (">=", 400), "single_sender_p50_ms": ("<", 10),
               "fanout_p50_ms": ("<", 20), "initial_sync_ms_p50": ("<", 200),
               "initial_sync_cold_ms": ("<", 200)}
    for key, (op, limit) in targets.items():
        value = results[key]
        ok = value >= limit if op == ">=" else value < limit
        print(f"{key:28s} {value:10.1f}   target {op} {limit}   {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
