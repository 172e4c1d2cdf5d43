"""How long the image pack job takes to give an organisation's members a newly published pack
(each joined to the pack room: an invite and a join, and two account data writes), and how
long it holds the reactor at a time, on an in-process node (SQLite, the database on the
reactor's thread, so every database call counts in the reactor's turns: a running node does
them on its pool while the reactor serves requests).

``--members`` accounts are placed in one organisation straight through the stores; the pack is
published through the admin service; then the reactor is turned, one turn at a time, until the
job is done:

    .venv/bin/python benchmarks/image_pack_job.py [--members 2000]

It prints the job's time, its cost per member and the longest turn (what a request arriving
meanwhile would wait for at most, besides its own work).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broker.admin.model import Actor  # noqa: E402
from storage.media import MediaRecord  # noqa: E402
from storage.organisations import Member  # noqa: E402
from tests.admin_harness import AdminNode  # noqa: E402
from tests.storage_helpers import result_of  # noqa: E402


def place_members(made: AdminNode, members: int) -> None:
    now = made.node.clock.time_ms()
    for n in range(members):
        user_id = made.node.user_id(f"staff{n:06d}")
        result_of(made.stores.users.create_user(user_id, None, now))
        result_of(made.stores.organisations.set_member(Member(user_id, "mha"), now,
                                                       made.last_entry_draft()))


def run_job(made: AdminNode) -> list[float]:
    """Publish a pack and turn the reactor until the job is done; each turn's seconds."""
    result_of(made.stores.media.store_media(MediaRecord(
        "Gimoji0", made.root_id, "image/png", None, 72, "ab" * 32, 0)))
    turns: list[float] = []
    d = made.local.start(made.node.image_packs.put(
        Actor(made.root_id, "local"), "mha", "official",
        {"images": {"namaste": {"url": "mxc://admin.test/Gimoji0"}}}))
    members = made.node.pack_members
    while not d.called or members.job_done("mha") is not None:
        started = time.perf_counter()
        made.local.turn()
        turns.append(time.perf_counter() - started)
    result_of(d)
    return turns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        made = AdminNode(Path(workdir), "sqlite")
        try:
            made.org("mha")
            place_members(made, args.members)
            started = time.perf_counter()
            turns = run_job(made)
            elapsed = time.perf_counter() - started
            job = result_of(made.stores.image_packs.job("mha"))
            assert job is not None and job.done == args.members, job
        finally:
            made.close()
    print(f"{args.members} members given the pack in {elapsed:.1f} s"
          f" ({elapsed / args.members * 1000:.2f} ms a member, {len(turns)} reactor turns,"
          f" the longest {max(turns) * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
