"""Benchmark what application services cost the send path, and how fast events reach one.

    python benchmarks/appservice_push.py [--engine sqlite|postgres] [--dsn DSN] [--messages N]

Starts a node without application services and one with a service (an aiohttp server on
loopback answering every transaction at once) whose bridged user is in the room, and prints:

- ``send_msgs_per_s_without`` / ``send_msgs_per_s_with``: messages accepted per second with 16
  concurrent senders into one room (the service's user a member, in the second run);
- ``send_to_service_p50_ms`` / ``_p95_ms``: from the answer of a send to the arrival of its
  event at the service (single sender, one message at a time);
- ``transactions``, ``events_per_transaction``: how the concurrent run was batched.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench import V3, User, create_room, pct, register  # noqa: E402
from benchmarks.common import postgres_dsn  # noqa: E402
from tests.appservice_helpers import registration_file  # noqa: E402
from tests.node_harness import NodeProcess, free_port  # noqa: E402

SENDERS = 16
SERVER = "asbench.test"


class Service:
    """The application service: notes when each event arrives."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.transactions = 0
        self.waiting: dict[str, asyncio.Future[float]] = {}

    async def transaction(self, request: web.Request) -> web.Response:
        body = await request.json()
        now = time.perf_counter()
        self.transactions += 1
        for event in body.get("events", []):
            self.arrived[event["event_id"]] = now
            future = self.waiting.pop(event["event_id"], None)
            if future is not None and not future.done():
                future.set_result(now)
        return web.json_response({})

    async def arrival(self, event_id: str) -> float:
        if event_id in self.arrived:
            return self.arrived[event_id]
        future = self.waiting.setdefault(event_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(future, 30)


async def concurrent_sends(base: str, messages: int, ghost_joins: Any = None
                           ) -> tuple[float, User, str]:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
    owner = await register(session, base)
    room_id = await create_room(owner, preset="public_chat")
    if ghost_joins is not None:
        await ghost_joins(session, room_id)
    senders = [await register(session, base) for _ in range(SENDERS)]
    for sender in senders:
        await sender.call("POST", f"{V3}/join/{quote(room_id)}", {})
    await asyncio.gather(*(s.send(room_id, "warm") for s in senders))
    per_sender = messages // SENDERS

    async def run(sender: User) -> None:
        for i in range(per_sender):
            await sender.send(room_id, f"m{i}")

    started = time.perf_counter()
    await asyncio.gather(*(run(s) for s in senders))
    return per_sender * SENDERS / (time.perf_counter() - started), owner, room_id


def start_node(folder: Path, engine: str, dsn: str, files: list[str]) -> NodeProcess:
    return NodeProcess(folder, server_name=SERVER, engine=engine, dsn=dsn,
                       overrides={"app_services": files}).start()


async def run(engine: str, dsn: str, messages: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with postgres_dsn(engine, dsn) as fresh, tempfile.TemporaryDirectory() as tmp:
        plain = start_node(Path(tmp), engine, fresh, [])
        try:
            results["send_msgs_per_s_without"], owner, _ = await concurrent_sends(
                plain.base_url, messages)
            await owner.session.close()
        finally:
            plain.stop()
    with postgres_dsn(engine, dsn) as fresh, tempfile.TemporaryDirectory() as tmp:
        service, port = Service(), free_port()
        app = web.Application()
        app.router.add_put("/_matrix/app/v1/transactions/{txn}", service.transaction)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        folder = Path(tmp)
        registration = registration_file(folder, "bench", url=f"http://127.0.0.1:{port}",
                                         prefix="bench", server_name=SERVER)
        node = start_node(folder, engine, fresh, [str(registration)])
        try:
            async def ghost_joins(session: aiohttp.ClientSession, room_id: str) -> None:
                bridge = User(session, node.base_url, "bench-as", f"@benchbot:{SERVER}")
                ghost = (await bridge.call("POST", f"{V3}/register", {
                    "type": "m.login.application_service",
                    "username": f"bench_{uuid.uuid4().hex[:8]}", "inhibit_login": True}))
                await bridge.call("POST", f"{V3}/join/{quote(room_id)}", {},
                                  params={"user_id": ghost["user_id"]})

            before = service.transactions
            rate, owner, room_id = await concurrent_sends(node.base_url, messages, ghost_joins)
            results["send_msgs_per_s_with"] = rate
            transactions = service.transactions - before
            latencies = []
            for i in range(200):
                event_id = await owner.send(room_id, f"solo{i}")
                answered = time.perf_counter()
                latencies.append((await service.arrival(event_id) - answered) * 1000)
            results["send_to_service_p50_ms"] = statistics.median(latencies)
            results["send_to_service_p95_ms"] = pct(latencies, 0.95)
            results["transactions"] = transactions
            results["events_per_transaction"] = round(messages / max(transactions, 1), 1)
            await owner.session.close()
        finally:
            node.stop()
            await runner.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--dsn", default="")
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    for name, value in asyncio.run(run(args.engine, args.dsn, args.messages)).items():
        print(f"{name}: {value:.1f}" if isinstance(value, float) else f"{name}: {value}")


if __name__ == "__main__":
    main()
