"""Benchmark federation between real node processes on loopback and print medians.

    python benchmarks/bench_federation.py [--engine sqlite|postgres] [--dsn DSN] [--quick]
                                          [--parts latency,inbound,join] [--members N]

Starts node A and node B (each its own process, TLS federation listeners on loopback, each
allowing the other) and measures:

- latency: a message sent by a user on A reaches a long-polling /sync of a user on B, from just
  before A's ``PUT /send`` to the moment B's /sync returns with it (p50 and p90);
- inbound: B accepting signed PDUs in full transactions (50 PDUs each).  The benchmark acts as a
  peer server itself: its key is pinned in B's ``federation.pinned_keys`` and its name allowed;
  it joins a room on B with make_join/send_join, then pushes chained ``m.room.message`` PDUs with
  ``PUT /_matrix/federation/v1/send/{txnId}``, one transaction in flight (as a sending server
  does per destination).  PDUs and request signatures are prepared before the clock starts, so
  the figure is B's inbound path alone;
- join: a room on A with 2,000 joined members (accounts written into A's database with the
  library before A starts, then joined over the client API concurrently); then a user on a node
  that has never seen the room joins it through A.  Setup time is reported separately.

Progress goes to stdout as it happens; the last lines are ``RESULT {json}`` and the target table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml
import yarl

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench import V3, User, create_room, pct, register  # noqa: E402
from benchmarks.common import create_accounts, print_targets, progress  # noqa: E402
from protocol.auth_rules import auth_types_for_event  # noqa: E402
from protocol.events import Event, build_pdu, event_from_pdu, finalize_pdu  # noqa: E402
from protocol.request_auth import sign_request  # noqa: E402
from protocol.room_versions import KNOWN_ROOM_VERSIONS, get_room_version  # noqa: E402
from protocol.signing import (  # noqa: E402
    SigningKey,
    encode_verify_key,
    generate_signing_key,
    verify_key_id,
)
from tests.node_harness import NodeProcess, free_port  # noqa: E402

#: ``--py-spy`` binary and ``--profile-dir``; empty: no profiling.
PROFILE = {"py_spy": "", "dir": ""}
FED_V1 = "/_matrix/federation/v1"
FED_V2 = "/_matrix/federation/v2"
PDUS_PER_TXN = 50
TARGETS: dict[str, tuple[str, float]] = {
    "fed_latency_p50_ms": ("<", 50),
    "inbound_pdus_per_s": (">=", 1000),
    "remote_join_big_room_ms": ("<", 5000),
}


@contextmanager
def timed(label: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    progress(f"{label}: {time.perf_counter() - started:.1f} s")


@contextmanager
def profiled(node: NodeProcess, label: str) -> Iterator[None]:
    """Samples ``node`` with py-spy (``--py-spy``) while the block runs; raw stacks are written
    to ``<profile dir>/<label>.txt`` (one line per stack with its sample count)."""
    if not PROFILE["py_spy"] or node.process is None:
        yield
        return
    out = Path(PROFILE["dir"]) / f"{label}.txt"
    spy = subprocess.Popen([PROFILE["py_spy"], "record", "--pid", str(node.process.pid),
                            "--rate", "250", "--threads", "--format", "raw", "-o", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attach
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)
        progress(f"profile of {label} written to {out}")


def room_events(body: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    room = body["rooms"]["join"].get(room_id)
    return list(room["timeline"]["events"]) if room else []


async def join_remote(user: User, room_id: str, via: str) -> None:
    await user.call("POST", f"{V3}/join/{quote(room_id)}", {}, params={"server_name": via})


# 1. Cross-node latency ---------------------------------------------------------------------
async def bench_latency(a: NodeProcess, b: NodeProcess, messages: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as session:
        alice = await register(session, a.base_url)
        bob = await register(session, b.base_url)
        room_id = await create_room(alice, preset="public_chat")
        await join_remote(bob, room_id, a.server_name)
        token: str = (await bob.sync())["next_batch"]
        progress(f"latency: {bob.user_id} on B joined {room_id} on A")

        async def arrival(marker: str) -> float:
            nonlocal token
            while True:
                body = await bob.sync(token, timeout=30000)
                token = body["next_batch"]
                if any(e["content"].get("body") == marker for e in room_events(body, room_id)):
                    return time.perf_counter()

        delays: list[float] = []
        for i in range(messages + 3):  # the first three warm up connections and caches
            marker = f"lat{i}-{uuid.uuid4().hex[:6]}"
            waiter = asyncio.ensure_future(arrival(marker))
            await asyncio.sleep(0.05)  # let B's long-poll park
            sent_at = time.perf_counter()
            await alice.send(room_id, marker)
            received = await asyncio.wait_for(waiter, 30)
            if i >= 3:
                delays.append((received - sent_at) * 1000)
            if i >= 3 and (i - 2) % 25 == 0:
                progress(f"latency: {i - 2}/{messages} messages, p50 so far "
                         f"{statistics.median(delays):.1f} ms")
    return {"fed_latency_p50_ms": statistics.median(delays),
            "fed_latency_p90_ms": pct(delays, 0.9), "fed_latency_messages": len(delays)}


# 2. Inbound PDU throughput -----------------------------------------------------------------
class Peer:
    """This process as a federation peer of one node: signs requests with its own key."""

    def __init__(self) -> None:
        # A loopback port nobody listens on: B's outbound attempts to us fail fast.
        self.server_name = f"127.0.0.1:{free_port()}"
        self.key: SigningKey = generate_signing_key("bench")
        self.user_id = f"@peer:{self.server_name}"

    def pinned_keys(self) -> dict[str, dict[str, str]]:
        return {self.server_name: {verify_key_id(self.key): encode_verify_key(self.key)}}

    def signed(self, node: NodeProcess, method: str, uri: str,
               content: dict[str, Any] | None) -> tuple[yarl.URL, dict[str, str], bytes | None]:
        """URL, headers and body of a signed request (``uri`` already percent-encoded)."""
        headers = {"Authorization": sign_request(self.server_name, node.server_name, method, uri,
                                                 content, self.key)}
        body = None
        if content is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(content).encode("utf-8")
        url = yarl.URL(f"https://127.0.0.1:{node.federation_port}{uri}", encoded=True)
        return url, headers, body

    async def request(self, session: aiohttp.ClientSession, node: NodeProcess, method: str,
                      uri: str, content: dict[str, Any] | None = None) -> Any:
        url, headers, body = self.signed(node, method, uri, content)
        async with session.request(method, url, headers=headers, data=body) as response:
            data = await response.json()
            if response.status != 200:
                raise RuntimeError(f"{method} {uri}: {response.status} {data}")
            return data


class ChainedRoom:
    """The peer's view of one room it joined: state IDs, and the head its next PDU builds on."""

    def __init__(self, room_id: str, room_version_id: str, state: list[Event],
                 join: Event) -> None:
        self.room_id = room_id
        self.room_version = get_room_version(room_version_id)
        self.state = {(e.type, e.state_key or ""): e.event_id for e in state}
        self.state[("m.room.member", join.sender)] = join.event_id
        self.head = join.event_id
        self.depth = join.depth

    def next_event(self, peer: Peer, sender: str, type: str, content: dict[str, Any],
                   state_key: str | None = None) -> Event:
        """The next PDU of the chain (prev_events: the previous one), signed by ``peer``."""
        wanted = auth_types_for_event(self.room_version, type, sender, state_key, content)
        self.depth += 1
        pdu = build_pdu(self.room_version, room_id=self.room_id, sender=sender, type=type,
                        content=content, state_key=state_key, prev_event_ids=[self.head],
                        auth_event_ids=[self.state[k] for k in wanted if k in self.state],
                        depth=self.depth, origin_server_ts=int(time.time() * 1000))
        event = finalize_pdu(pdu, peer.server_name, peer.key, self.room_version)
        self.head = event.event_id
        if state_key is not None:
            self.state[(type, state_key)] = event.event_id
        return event

    def message(self, peer: Peer, text: str) -> Event:
        return self.next_event(peer, peer.user_id, "m.room.message",
                               {"msgtype": "m.text", "body": text})

    def join(self, peer: Peer, number: int) -> Event:
        user_id = f"@p{number:05d}:{peer.server_name}"
        return self.next_event(peer, user_id, "m.room.member", {"membership": "join"}, user_id)


async def peer_join(session: aiohttp.ClientSession, peer: Peer, node: NodeProcess,
                    room_id: str) -> ChainedRoom:
    versions = "&".join(f"ver={v}" for v in KNOWN_ROOM_VERSIONS)
    room_q, user_q = quote(room_id, safe=""), quote(peer.user_id, safe="")
    template = await peer.request(session, node, "GET",
                                  f"{FED_V1}/make_join/{room_q}/{user_q}?{versions}")
    version = get_room_version(template["room_version"])
    pdu = dict(template["event"], origin_server_ts=int(time.time() * 1000))
    join = finalize_pdu(pdu, peer.server_name, peer.key, version)
    answer = await peer.request(session, node, "PUT",
                                f"{FED_V2}/send_join/{room_q}/{quote(join.event_id, safe='')}",
                                join.pdu)
    state = [event_from_pdu(p, version) for p in answer["state"]]
    return ChainedRoom(room_id, template["room_version"], state, join)


Prepared = list[tuple[yarl.URL, dict[str, str], bytes | None, list[str]]]


async def bench_inbound(b: NodeProcess, peer: Peer, transactions: int, members: int,
                        big: int) -> dict[str, float]:
    """Messages into a two-member room; then ``members`` of the peer's users joining (state
    PDUs); then messages again, now that every PDU is checked against a big room's state."""
    connector = aiohttp.TCPConnector(ssl=False, limit=4)
    async with aiohttp.ClientSession() as client_session, \
            aiohttp.ClientSession(connector=connector) as session:
        bob = await register(client_session, b.base_url)
        room_id = await create_room(bob, preset="public_chat")
        room = await peer_join(session, peer, b, room_id)
        progress(f"inbound: peer {peer.server_name} joined {room_id} on B "
                 f"(room version {room.room_version.identifier})")

        def prepare(events: list[Event], tag: str) -> Prepared:
            prepared = []
            for t in range(0, len(events), PDUS_PER_TXN):
                chunk = events[t:t + PDUS_PER_TXN]
                txn = {"origin": peer.server_name, "origin_server_ts": int(time.time() * 1000),
                       "pdus": [e.pdu for e in chunk], "edus": []}
                uri = f"{FED_V1}/send/{tag}{t}-{uuid.uuid4().hex[:8]}"
                prepared.append((*peer.signed(b, "PUT", uri, txn), [e.event_id for e in chunk]))
            return prepared

        async def push(batch: Prepared, label: str) -> tuple[float, list[float]]:
            """Sends the transactions one after the other; (elapsed s, per-transaction ms)."""
            durations = []
            with profiled(b, label):
                started = time.perf_counter()
                for n, (url, headers, body, event_ids) in enumerate(batch):
                    t0 = time.perf_counter()
                    async with session.put(url, headers=headers, data=body) as response:
                        answer = await response.json()
                    durations.append((time.perf_counter() - t0) * 1000)
                    results = answer.get("pdus", {}) if response.status == 200 else None
                    if results is None or sorted(results) != sorted(event_ids) or any(
                            results.values()):
                        raise RuntimeError(f"transaction refused: {response.status} {answer}")
                    if len(batch) >= 20 and (n + 1) % (len(batch) // 4) == 0:
                        progress(f"{label}: {n + 1}/{len(batch)} transactions accepted")
                elapsed = time.perf_counter() - started
            return elapsed, durations

        async def check_head() -> None:
            last = await bob.call("GET", f"{V3}/rooms/{quote(room_id)}/messages",
                                  params={"dir": "b", "limit": "1"})
            if last["chunk"][0]["event_id"] != room.head:
                raise RuntimeError("B's timeline does not end with the last PDU pushed")

        count = transactions * PDUS_PER_TXN
        await push(prepare([room.message(peer, f"warm {i}") for i in range(100)], "warm"),
                   "inbound-warm-up")
        with timed(f"inbound: signed {count} message PDUs"):
            batch = prepare([room.message(peer, f"m {i}") for i in range(count)], "txn")
        elapsed, durations = await push(batch, "inbound")
        await check_head()
        progress(f"inbound: {count} PDUs accepted in {elapsed:.2f} s "
                 f"({count / elapsed:.0f}/s)")
        results = {"inbound_pdus_per_s": count / elapsed, "inbound_pdus": count,
                   "inbound_txn_p50_ms": statistics.median(durations),
                   "inbound_txn_p90_ms": pct(durations, 0.9)}
        if members:
            joins = prepare([room.join(peer, i) for i in range(members)], "join")
            elapsed, _ = await push(joins, "inbound-joins")
            await check_head()
            results["inbound_joins_per_s"] = members / elapsed
            progress(f"inbound: {members} member joins accepted in {elapsed:.2f} s "
                     f"({members / elapsed:.0f}/s)")
            batch = prepare([room.message(peer, f"big {i}") for i in range(big)], "big")
            elapsed, durations = await push(batch, "inbound-big-room")
            await check_head()
            progress(f"inbound: {big} PDUs accepted in the {members + 2}-member room in "
                     f"{elapsed:.2f} s ({big / elapsed:.0f}/s)")
            results.update({"inbound_big_room_members": members + 2,
                            "inbound_big_room_pdus_per_s": big / elapsed,
                            "inbound_big_room_txn_p50_ms": statistics.median(durations)})
    return results


# 3. Remote join of a big room --------------------------------------------------------------
async def fill_room(a: NodeProcess, accounts: list[tuple[str, str]]) -> tuple[str, float]:
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        owner = User(session, a.base_url, accounts[0][1], accounts[0][0])
        room_id = await create_room(owner, preset="public_chat", name="Big room")
        members = [User(session, a.base_url, token, user_id) for user_id, token in accounts[1:]]
        limit = asyncio.Semaphore(32)
        done = 0

        async def join(user: User) -> None:
            nonlocal done
            async with limit:
                await user.call("POST", f"{V3}/join/{quote(room_id)}", {})
            done += 1
            if done % 250 == 0:
                progress(f"join: {done}/{len(members)} members joined on A")

        started = time.perf_counter()
        await asyncio.gather(*(join(m) for m in members))
        elapsed = time.perf_counter() - started
        joined = await owner.call("GET", f"{V3}/rooms/{quote(room_id)}/joined_members")
        if len(joined["joined"]) != len(accounts):
            raise RuntimeError(f"{len(joined['joined'])} members joined, not {len(accounts)}")
    return room_id, elapsed


async def bench_join(a: NodeProcess, joiners: list[NodeProcess], room_id: str,
                     members: int) -> dict[str, float]:
    timings: list[float] = []
    async with aiohttp.ClientSession() as session:
        for node in joiners:
            carol = await register(session, node.base_url)
            with profiled(node, f"join-{len(timings)}"):
                t0 = time.perf_counter()
                await join_remote(carol, room_id, a.server_name)
                timings.append((time.perf_counter() - t0) * 1000)
            joined = await carol.call("GET", f"{V3}/rooms/{quote(room_id)}/joined_members")
            if len(joined["joined"]) != members + 1:
                raise RuntimeError(f"B sees {len(joined['joined'])} members, not {members + 1}")
            progress(f"join: {carol.user_id} joined the {members}-member room through A in "
                     f"{timings[-1]:.0f} ms")
    return {"remote_join_big_room_ms": statistics.median(timings),
            "remote_join_runs": len(timings)}


# Driver --------------------------------------------------------------------------------------
class Databases:
    """One database per node: a file under the node's workdir, or a fresh PostgreSQL one."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.created: list[str] = []

    def node(self, workdir: Path, **kwargs: Any) -> NodeProcess:
        dsn = ""
        if self.engine == "postgres":
            from tests.storage_helpers import create_postgres_database

            dsn, name = create_postgres_database()
            self.created.append(name)
        workdir.mkdir()
        return NodeProcess(workdir, engine=self.engine, dsn=dsn, federation=True,
                           overrides={"logging.level": "WARNING"}, **kwargs)

    def drop(self) -> None:
        from tests.storage_helpers import drop_postgres_database

        for name in self.created:
            drop_postgres_database(name)


async def run(args: argparse.Namespace, tmp: Path, dbs: Databases) -> dict[str, Any]:
    results: dict[str, Any] = {"engine": args.engine, "quick": args.quick}
    parts = set(args.parts.split(","))
    peer = Peer()
    a = dbs.node(tmp / "a")
    b = dbs.node(tmp / "b")
    joiners = [b] + [dbs.node(tmp / f"j{i}") for i in range(1 if args.quick else 2)]
    a.allow(*joiners)
    b.allow(a).allow_servers(peer.server_name)
    config = yaml.safe_load(b.config_path.read_text())
    config["federation"]["pinned_keys"] = peer.pinned_keys()
    b.config_path.write_text(yaml.safe_dump(config))
    for node in joiners[1:]:
        node.allow(a)
    accounts: list[tuple[str, str]] = []
    if "join" in parts:
        with timed(f"join: wrote {args.members} accounts into A's database"):
            started = time.perf_counter()
            accounts = create_accounts(a, args.members)
            results["join_setup_accounts_s"] = time.perf_counter() - started
    nodes = [a] + joiners
    try:
        for node in nodes:
            node.start()
        progress(f"nodes up: A={a.server_name} B={b.server_name} "
                 f"(+{len(joiners) - 1} fresh joiners), engine {args.engine}")
        if "latency" in parts:
            results.update(await bench_latency(a, b, 50 if args.quick else 200))
            progress(json.dumps(results))
        if "inbound" in parts:
            members = args.inbound_members
            if members is None:
                members = 500 if args.quick else 1000
            results.update(await bench_inbound(b, peer, 40 if args.quick else 200, members,
                                               250 if args.quick else 500))
            progress(json.dumps(results))
        if "join" in parts:
            room_id, fill_s = await fill_room(a, accounts)
            results["join_setup_fill_s"] = fill_s
            progress(f"join: {len(accounts)} members in {room_id} after {fill_s:.1f} s")
            results.update(await bench_join(a, joiners, room_id, len(accounts)))
    finally:
        for node in nodes:
            node.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--dsn", default="", help="PostgreSQL DSN of a server to create "
                        "databases on (default: BROKER_TEST_POSTGRES or local trust auth)")
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--parts", default="latency,inbound,join",
                        help="comma-separated subset of latency,inbound,join")
    parser.add_argument("--members", type=int, default=2000, help="members of the big room")
    parser.add_argument("--inbound-members", type=int, default=None,
                        help="peer users joining B's room before the big-room inbound figure "
                        "(default 500 quick, 1000 full; 0: skip it)")
    parser.add_argument("--py-spy", default="", help="py-spy binary: profile node B while "
                        "it accepts PDUs and each joining node while it joins")
    parser.add_argument("--profile-dir", default=".", help="where profiles are written")
    args = parser.parse_args()
    PROFILE.update(py_spy=args.py_spy, dir=args.profile_dir)
    if args.engine == "postgres":
        from tests.storage_helpers import POSTGRES_ENV

        os.environ[POSTGRES_ENV] = args.dsn or os.environ.get(
            POSTGRES_ENV, "host=127.0.0.1 user=postgres dbname=postgres")
    dbs = Databases(args.engine)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            results = asyncio.run(run(args, Path(tmp), dbs))
    finally:
        dbs.drop()
    print("RESULT " + json.dumps(results))
    print_targets(results, TARGETS)


if __name__ == "__main__":
    main()
