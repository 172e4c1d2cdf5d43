"""How long sends into other rooms take while the retention purge prunes a big room on a
running node, and how long the purge takes from the start of its job.

    python benchmarks/retention_purge_load.py [--engine sqlite|postgres] [--events 100000]
                                              [--dsn DSN]

A node with retention on (a purge every 5 s) holds one room whose ``m.room.retention`` keeps
messages 20 s; 16 members send ``--events`` messages into it over the client API.  Meanwhile
and afterwards another user sends one message every 20 ms into a room of their own, and the
script polls the admin policy document for the purge's count of events purged.  Printed:

- ``purge_<n>_s``: from the purge's first count above zero to its count reaching ``n`` (the
  job's start is known to within one poll, 0.25 s);
- ``send_during_purge_p50_ms`` / ``_p99_ms`` / ``_max_ms``: the other room's sends in flight while
  the purge ran; ``send_before_purge_p99_ms``: those from the fill's end to the purge's start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

from benchmarks.bench import V3, User, create_room, pct  # noqa: E402
from benchmarks.common import create_accounts, postgres_dsn, print_targets, progress  # noqa: E402
from tests.node_harness import NodeProcess  # noqa: E402

LIFETIME_MS = 20_000
SENDERS = 16
PROBE_INTERVAL_S = 0.02
POLICY = "/_broker/admin/v1/policy"


def _events_purged(document: Any) -> int | None:
    """The purge's ``events_purged`` wherever the policy document holds it."""
    if isinstance(document, dict):
        if isinstance(document.get("events_purged"), int):
            return int(document["events_purged"])
        for value in document.values():
            found = _events_purged(value)
            if found is not None:
                return found
    return None


async def fill(owner: User, senders: list[User], events: int) -> str:
    """The room to purge, with ``events`` messages in it."""
    room_id = await create_room(owner, preset="public_chat", initial_state=[
        {"type": "m.room.retention", "state_key": "", "content": {"max_lifetime": LIFETIME_MS}}])
    for sender in senders:
        await sender.call("POST", f"{V3}/join/{quote(room_id)}", {})

    async def send_share(sender: User, count: int) -> None:
        for i in range(count):
            await sender.send(room_id, f"to expire {i}")

    share = events // len(senders)
    await asyncio.gather(*(send_share(s, share + (1 if i < events % len(senders) else 0))
                           for i, s in enumerate(senders)))
    return room_id


class Probe:
    """Sends into a room of its own every 20 ms: (started, latency) of each."""

    def __init__(self, user: User, room_id: str) -> None:
        self.user = user
        self.room_id = room_id
        self.sends: list[tuple[float, float]] = []
        self.running = True

    async def run(self) -> None:
        while self.running:
            started = time.monotonic()
            path = f"{V3}/rooms/{quote(self.room_id)}/send/m.room.message/{uuid.uuid4().hex}"
            await self.user.call("PUT", path, {"msgtype": "m.text", "body": "probe"})
            self.sends.append((started, time.monotonic() - started))
            await asyncio.sleep(max(0.0, started + PROBE_INTERVAL_S - time.monotonic()))

    def between(self, start: float, end: float) -> list[float]:
        """Latencies (ms) of the sends in flight at some time in [start, end]."""
        return [latency * 1000 for began, latency in self.sends
                if began <= end and began + latency >= start]


async def watch_purge(admin: User, events: int, within_s: float = 600) -> tuple[float, float]:
    """(monotonic time the purge count first rose above zero, time it reached ``events``)."""
    began = None
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        purged = _events_purged(await admin.call("GET", POLICY)) or 0
        now = time.monotonic()
        if purged > 0 and began is None:
            began = now
        if purged >= events and began is not None:
            return began, now
        await asyncio.sleep(0.25)
    raise RuntimeError(f"the purge did not reach {events} events in {within_s} s")


async def measure(node: NodeProcess, accounts: list[tuple[str, str]], admin_token: str,
                  events: int) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        users = [User(session, node.base_url, token, user_id) for user_id, token in accounts]
        owner, prober, senders = users[0], users[1], users[2:]
        admin = User(session, node.base_url, admin_token, "")
        probe = Probe(prober, await create_room(prober, preset="private_chat"))
        probing = asyncio.ensure_future(probe.run())
        started = time.monotonic()
        await fill(owner, senders, events)
        filled = time.monotonic()
        progress(f"{events} messages sent in {filled - started:.1f} s")
        began, done = await watch_purge(admin, events)
        progress(f"purged in {done - began:.1f} s")
        probe.running = False
        await probing
    during = probe.between(began, done)
    before = probe.between(filled, began)
    return {
        f"fill_{events}_s": round(filled - started, 1),
        f"purge_{events}_s": round(done - began, 1),
        "send_during_purge_p50_ms": statistics.median(during) if during else 0.0,
        "send_during_purge_p99_ms": pct(during, 0.99) if during else 0.0,
        "send_during_purge_max_ms": max(during) if during else 0.0,
        "send_during_purge_count": len(during),
        "send_before_purge_p99_ms": pct(before, 0.99) if before else 0.0,
    }


async def run(engine: str, events: int, dsn: str = "") -> dict[str, Any]:
    with postgres_dsn(engine, dsn) as node_dsn, tempfile.TemporaryDirectory() as tmp:
        node = NodeProcess(Path(tmp), engine=engine, dsn=node_dsn, overrides={
            "logging.level": "WARNING", "retention.enabled": True,
            "retention.allowed_lifetime_min": "1s", "retention.purge_interval": "5s"})
        accounts = create_accounts(node, SENDERS + 2)
        node.start()
        try:
            admin_token = node.admin().token or ""
            return {"engine": engine, **await measure(node, accounts, admin_token, events)}
        finally:
            node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--dsn", default="")
    args = parser.parse_args()
    results = asyncio.run(run(args.engine, args.events, args.dsn))
    print("RESULT " + json.dumps(results))
    print_targets(results, {f"purge_{args.events}_s": ("<", 60),
                            "send_during_purge_p99_ms": ("<", 100)})


if __name__ == "__main__":
    main()
