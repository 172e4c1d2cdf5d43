"""Benchmark one message into a big room of long-polling members and print medians.

    python benchmarks/scale_fanout.py [--engine sqlite|postgres] [--sizes 5000,10000]
                                      [--rounds 3] [--dsn DSN] [--client lean|aiohttp]

Accounts (one per member, plus the sender) are written into the node's database with the
library before it starts; the members then join one public room over the client API, first up
to the smallest size, then up to each next one.  For each size, every member parks a long-poll
``/sync`` (one connection each, raw HTTP/1.1 from this process: ``benchmarks/long_polls.py``;
``--client aiohttp`` reads them through an aiohttp session instead, whose Python per answer
costs the 2-core machine more than the node's answering does; the node and this script raise
their open-file limit), and once every long-poll is sent and the node is idle the sender sends one
message; the script measures:

- ``send_<n>_ms``: the sender's ``PUT /send`` latency;
- ``fanout_<n>_p50_ms`` / ``_p99_ms``: from just before the send to each member's ``/sync``
  returning with the message, over all members;
- ``versions_<n>_max_ms``: the worst latency of an unrelated ``GET /_matrix/client/versions``
  that a separate process polls every ~10 ms, over the requests in flight during the fan-out.

Each figure is the median over ``--rounds`` messages, after one message per size that is not
counted (it opens the new members' connections).  The last lines are ``RESULT {json}`` and
the target table.  ``run(engine, sizes)`` is the entry point for a runner of several scale
benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench import V3, User, create_room, pct  # noqa: E402
from benchmarks.common import (  # noqa: E402
    create_accounts,
    postgres_dsn,
    print_targets,
    progress,
    scale_arguments,
)
from benchmarks.long_polls import LongPoll, open_long_polls, sync_query  # noqa: E402
from tests.node_harness import NodeProcess  # noqa: E402

SIZES = (5000, 10000)
VERSIONS = "/_matrix/client/versions"
PROBE_INTERVAL_S = 0.01
JOIN_ATTEMPTS = 200
#: Only the new message matters to a member: a short timeline, no member list.
SYNC_FILTER = json.dumps({"room": {"timeline": {"limit": 5},
                                   "state": {"lazy_load_members": True}}})
TARGETS: dict[str, tuple[str, float]] = {
    "send_5000_ms": ("<", 20), "fanout_5000_p50_ms": ("<", 400),
    "fanout_5000_p99_ms": ("<", 700), "versions_5000_max_ms": ("<", 50),
    "fanout_10000_p50_ms": ("<", 800),
}


def raise_open_file_limit() -> int:
    """Raise this process's open-file limit to its hard limit (the node it starts inherits
    it); the new limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# The unrelated request, polled from its own process so this one's load does not delay it. ------
def probe(base_url: str, out_path: str) -> None:
    """Poll ``GET /versions`` every ~10 ms until killed, appending ``start latency`` lines
    (monotonic seconds, the same clock across processes) to ``out_path``."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port))
    with open(out_path, "a", buffering=1) as out:
        while True:
            started = time.monotonic()
            connection.request("GET", VERSIONS)
            connection.getresponse().read()
            out.write(f"{started} {time.monotonic() - started}\n")
            time.sleep(max(0.0, started + PROBE_INTERVAL_S - time.monotonic()))


def start_probe(base_url: str, out_path: Path) -> subprocess.Popen[bytes]:
    # The file exists before the probe's interpreter has started, so a reader finds it
    # empty (not yet quiet) rather than missing.
    out_path.touch()
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--probe",
                             base_url, "--probe-out", str(out_path)])


def probes_between(out_path: Path, start: float, end: float) -> list[float]:
    """Latencies (ms) of the probe requests in flight at some time in [start, end]."""
    latencies = []
    for line in out_path.read_text().splitlines():
        began, latency = (float(x) for x in line.split())
        if began <= end and began + latency >= start:
            latencies.append(latency * 1000)
    return latencies


async def wait_until_quiet(out_path: Path, quiet_ms: float = 5.0, polls: int = 30) -> None:
    """Wait until the node answers the probe fast ``polls`` times in a row: every parked
    long-poll is in."""
    while True:
        await asyncio.sleep(polls * PROBE_INTERVAL_S)
        lines = out_path.read_text().splitlines()[-polls:]
        if len(lines) == polls and all(float(line.split()[1]) * 1000 < quiet_ms
                                       for line in lines):
            return


# Setup -----------------------------------------------------------------------------------------
async def join_members(owner: User, members: list[User], room_id: str) -> float:
    """Join ``members`` to the room, 32 at a time; seconds it took."""
    limit = asyncio.Semaphore(32)

    async def join(user: User) -> None:
        async with limit:
            for attempt in range(JOIN_ATTEMPTS):
                try:
                    await user.call("POST", f"{V3}/join/{quote(room_id)}", {})
                    return
                except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
                    # A kept-alive connection the node closed while idle (there may be
                    # thousands in the pool after a round): joining again is harmless.
                    if attempt == JOIN_ATTEMPTS - 1:
                        raise

    started = time.perf_counter()
    await asyncio.gather(*(join(m) for m in members))
    return time.perf_counter() - started


class Connections:
    """Counts the connections the session hands to requests (new or kept alive): once every
    member's long-poll has one, every request is on its way."""

    def __init__(self) -> None:
        self.handed = 0
        self.trace = aiohttp.TraceConfig()
        self.trace.on_connection_create_end.append(self._handed)
        self.trace.on_connection_reuseconn.append(self._handed)

    async def _handed(self, *_args: Any) -> None:
        self.handed += 1

    async def wait_for(self, count: int, within_s: float = 30.0) -> None:
        """Until ``count`` connections were handed out, or ``within_s`` passed (the trace
        hooks miss some hand-outs on a session under load: the idle check follows anyway)."""
        deadline = time.monotonic() + within_s
        while self.handed < count and time.monotonic() < deadline:
            await asyncio.sleep(0.05)


# One round -------------------------------------------------------------------------------------
async def wait_for(member: User, since: str, room_id: str, marker: bytes) -> tuple[float, str]:
    """Long-poll until the marker arrives: (monotonic arrival time, the next token)."""
    params = {"since": since, "timeout": "120000", "filter": SYNC_FILTER}
    while True:
        async with member.session.get(member.base + f"{V3}/sync", params=params,
                                      headers=member.headers) as response:
            data = await response.read()
            if response.status != 200:
                raise RuntimeError(f"/sync of {member.user_id}: {response.status} {data!r}")
        arrived = time.monotonic()
        since = json.loads(data)["next_batch"]
        if marker in data:
            return arrived, since
        params["since"] = since


async def fanout_round(sender: User, members: list[User], tokens: list[str], room_id: str,
                       probe_out: Path, connections: Connections,
                       polls: list[LongPoll] | None = None) -> dict[str, float]:
    """One message; ``polls``: the members' lean connections (else their aiohttp session)."""
    marker = f"fanout-{uuid.uuid4().hex}"
    connections.handed = 0
    waiters: list[Any]
    if polls is not None:
        waiters = [p.wait(tokens[i], marker.encode()) for i, p in enumerate(polls)]
    else:
        waiters = [asyncio.ensure_future(wait_for(m, tokens[i], room_id, marker.encode()))
                   for i, m in enumerate(members)]
        await connections.wait_for(len(members))
    await wait_until_quiet(probe_out)
    sent_at = time.monotonic()
    await sender.send(room_id, marker)
    send_ms = (time.monotonic() - sent_at) * 1000
    arrivals = await asyncio.gather(*waiters)
    for i, (_arrived, token) in enumerate(arrivals):
        tokens[i] = token
    delays = [(arrived - sent_at) * 1000 for arrived, _token in arrivals]
    last = max(arrived for arrived, _token in arrivals)
    versions = probes_between(probe_out, sent_at, last)
    return {"send_ms": send_ms, "p50": statistics.median(delays), "p99": pct(delays, 0.99),
            "versions_max": max(versions) if versions else 0.0,
            "versions_polls": float(len(versions))}


async def measure(node: NodeProcess, accounts: list[tuple[str, str]], sizes: Sequence[int],
                  rounds: int, probe_out: Path, lean: bool = True) -> dict[str, Any]:
    results: dict[str, Any] = {}
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=600)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    connections = Connections()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     trace_configs=[connections.trace]) as session:
        users = [User(session, node.base_url, token, user_id) for user_id, token in accounts]
        sender, members = users[0], users[1:]
        room_id = await create_room(sender, preset="public_chat", name="Scale room")
        joined = 0
        polls: list[LongPoll] = []
        host, port = node.base_url.removeprefix("http://").split(":")
        for size in sorted(sizes):
            elapsed = await join_members(sender, members[joined:size], room_id)
            results[f"setup_join_{size}_s"] = round(elapsed, 1)
            progress(f"{size} members joined (+{size - joined} in {elapsed:.1f} s)")
            if lean:
                polls += await open_long_polls(host, int(port),
                                               [m.token for m in members[joined:size]],
                                               sync_query(120_000, SYNC_FILTER))
            joined = size
            since = (await sender.sync(flt=SYNC_FILTER))["next_batch"]
            tokens = [since] * size
            per_round = []
            # Round 0 warms up: the new members' connections are opened (accepts past the
            # listen backlog can hold a request back for a minute or more), it is not counted.
            for round_no in range(rounds + 1):
                figures = await fanout_round(sender, members[:size], tokens, room_id,
                                             probe_out, connections,
                                             polls[:size] if lean else None)
                progress(f"size {size} round {round_no}: " + json.dumps(
                    {k: round(v, 1) for k, v in figures.items()}))
                if round_no:
                    per_round.append(figures)
            results.update({
                f"send_{size}_ms": statistics.median(r["send_ms"] for r in per_round),
                f"fanout_{size}_p50_ms": statistics.median(r["p50"] for r in per_round),
                f"fanout_{size}_p99_ms": statistics.median(r["p99"] for r in per_round),
                f"versions_{size}_max_ms": statistics.median(
                    r["versions_max"] for r in per_round),
            })
            print(json.dumps(results), flush=True)
    return results


async def run(engine: str, sizes: Sequence[int] = SIZES, rounds: int = 3,
              dsn: str = "", lean: bool = True) -> dict[str, Any]:
    """Set up a node on ``engine`` with a room of ``max(sizes)`` members and measure the
    fan-out at each size; the figures (medians over ``rounds``)."""
    raise_open_file_limit()
    results: dict[str, Any] = {"engine": engine, "rounds": rounds}
    with postgres_dsn(engine, dsn) as node_dsn, tempfile.TemporaryDirectory() as tmp:
        node = NodeProcess(Path(tmp), engine=engine, dsn=node_dsn,
                           overrides={"logging.level": "WARNING",
                                      # A room of every member (the default caps groups).
                                      "groups.informal_max_members": max(sizes) + 1})
        started = time.perf_counter()
        accounts = create_accounts(node, max(sizes) + 1)
        results["setup_accounts_s"] = round(time.perf_counter() - started, 1)
        node.start()
        probe_out = Path(tmp) / "probe.txt"
        prober = start_probe(node.base_url, probe_out)
        try:
            results.update(await measure(node, accounts, sizes, rounds, probe_out, lean))
        finally:
            prober.kill()
            prober.wait()
            node.stop()
    return results


def main() -> None:
    parser = scale_arguments(__doc__.splitlines()[0], SIZES, "member counts")
    parser.add_argument("--rounds", type=int, default=3, help="messages per size")
    parser.add_argument("--client", choices=("lean", "aiohttp"), default="lean",
                        help="members' long-polls: raw connections (default) or an aiohttp "
                             "session, whose reading costs more than the node's answering")
    parser.add_argument("--probe", default="", help=argparse.SUPPRESS)
    parser.add_argument("--probe-out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(args.probe, args.probe_out)
        return
    results = asyncio.run(run(args.engine, args.sizes, args.rounds, args.dsn,
                              args.client == "lean"))
    print("RESULT " + json.dumps(results))
    print_targets(results, TARGETS)


if __name__ == "__main__":
    main()
