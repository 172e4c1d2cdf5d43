"""How long a broadcast takes to reach every recipient's room, on a running node (its own
process, the database on its pool): first to members who have no broadcast room yet (each
room made: its initial events, the recipient invited and joined, and the message, in
batches), then a second broadcast to the same members (the rooms reused: read back into
memory in batches, one message each).

For each round, ``--members`` accounts are placed in an organisation of their own, written
into the stopped node's database beforehand (once it has taken in the organisations file); the node admin sends with
``POST /_broker/admin/v1/broadcasts`` and the time runs until ``GET /broadcasts/{id}`` says
the job is done (asked every 10 ms):

    .venv/bin/python benchmarks/broadcasts.py [--engine sqlite|postgresql] [--members 10000]
        [--rounds 3] [--live-rooms N]

It prints each round and the medians of the first and the second broadcast, against the
target of 10 s, and of the statistics query of a broadcast to them all.  PostgreSQL uses a database made for the run (from ``BROKER_TEST_POSTGRES``).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from benchmarks.common import postgres_dsn, progress  # noqa: E402
from tests.node_harness import Client, NodeProcess  # noqa: E402

TARGET_S = 10.0
POLL_S = 0.01
ADMIN = "/_broker/admin/v1"


def write_members(node: NodeProcess, orgs: list[str], members: int) -> str:
    """``members`` accounts placed in each of ``orgs``, and a node admin: its access token."""
    from broker.admin_tools import open_database
    from broker.auth import hash_token
    from broker.config import load_config
    from storage.accounts import NewAccount, write_accounts
    from storage.database import fired_result
    from storage.organisations import Member
    from storage.users import UserStore

    config = load_config(node.config_path)
    db = open_database(config)
    try:
        now = int(time.time() * 1000)
        for org_id in orgs:
            users = [f"@{org_id}_{n:06d}:{config.server_name}" for n in range(members)]
            db.run_sync("bench_members", write_accounts, [
                NewAccount(user, None, now, member=Member(user, org_id)) for user in users])
        store, admin = UserStore(db), f"@root:{config.server_name}"
        token = "brk_" + secrets.token_urlsafe(24)
        fired_result(store.create_user(admin, None, now, is_admin=True))
        fired_result(store.add_device_and_token(admin, "BENCH", None, hash_token(token), now,
                                                None))
    finally:
        db.close()
    return token


def statistics_ms(root: Client, broadcast_id: str, times: int = 20) -> float:
    """The median milliseconds of ``GET /broadcasts/{id}`` (the statistics of every
    recipient, worked out from receipts and sync progress)."""
    took = []
    for _ in range(times):
        started = time.perf_counter()
        shown = root.get(f"{ADMIN}/broadcasts/{broadcast_id}")
        took.append((time.perf_counter() - started) * 1000)
        assert root.status == 200, shown
    return statistics.median(took)


def broadcast(root: Client, org_id: str, body: str) -> tuple[float, int, str]:
    """Seconds from sending to every room holding the message, the rooms reached and the
    broadcast's ID."""
    started = time.perf_counter()
    answer = root.post(f"{ADMIN}/broadcasts", {"organisation": org_id, "body": body})
    assert root.status == 201, answer
    while True:
        shown = root.get(f"{ADMIN}/broadcasts/{answer['broadcast_id']}")
        if shown["progress"]["state"] == "done":
            return (time.perf_counter() - started, int(shown["progress"]["done"]),
                    str(answer["broadcast_id"]))
        time.sleep(POLL_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--live-rooms", type=int, default=None,
                        help="the node's caches.live_rooms (default: the node's default, 2,500;"
                        " a broadcast's rooms beyond it are read back from the database)")
    args = parser.parse_args()
    engine = "postgres" if args.engine == "postgresql" else "sqlite"
    orgs = [f"org{n}" for n in range(args.rounds)]
    figures: dict[str, list[float]] = {"first": [], "second": [], "statistics": []}
    with tempfile.TemporaryDirectory() as workdir, postgres_dsn(engine) as dsn:
        orgs_file = Path(workdir) / "organisations.yaml"
        orgs_file.write_text(yaml.safe_dump({"organisations": [
            {"id": org_id, "name": org_id.upper()} for org_id in orgs]}))
        overrides: dict[str, Any] = {"organisations.path": str(orgs_file)}
        if args.live_rooms is not None:
            overrides["caches.live_rooms"] = args.live_rooms
        node = NodeProcess(Path(workdir), engine=engine, dsn=dsn, overrides=overrides)
        node.start()  # applies the organisations file
        node.stop()
        progress(f"writing {args.rounds} x {args.members} members")
        token = write_members(node, orgs, args.members)
        node.start()
        try:
            root = Client(node.base_url, token)
            for round_no, org_id in enumerate(orgs):
                for which in ("first", "second"):
                    seconds, done, broadcast_id = broadcast(root, org_id, f"{which} broadcast")
                    assert done == args.members, (done, args.members)
                    figures[which].append(seconds)
                    progress(f"round {round_no + 1} {which:6s}: {done} rooms in {seconds:5.2f} s"
                             f" ({done / seconds:5.0f} recipients/s)")
                figures["statistics"].append(statistics_ms(root, broadcast_id))
        finally:
            node.stop()
    budget = "default" if args.live_rooms is None else f"{args.live_rooms:,}"
    print(f"{args.engine}, {args.members} members, live rooms budget {budget}, median of"
          f" {args.rounds} rounds:")
    for which, rooms in (("first", "rooms made"), ("second", "rooms reused")):
        seconds = statistics.median(figures[which])
        verdict = "under" if seconds < TARGET_S else "OVER"
        print(f"  {which} broadcast ({rooms}): {seconds:.2f} s, {verdict} the {TARGET_S:.0f} s"
              " target")
    print(f"  GET /broadcasts/{{id}} ({args.members} recipients):"
          f" {statistics.median(figures['statistics']):.1f} ms")


if __name__ == "__main__":
    main()
