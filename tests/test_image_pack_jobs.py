"""The job that brings an organisation's members up to date with its image packs, on both
engines: it goes a batch at a time, stores its place after each batch (admins read how far it
is), and a job stopped half-way goes on from its place when the node starts again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from broker import image_pack_members
from broker.admin.model import Actor
from storage.image_packs import PackJob
from storage.media import MediaRecord
from tests.admin_harness import AdminNode
from tests.storage_helpers import result_of

MEMBERS = 5


@pytest.fixture(params=["sqlite", "postgres"])
def node(request: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminNode]:
    """mha with MEMBERS members (m0...), an image uploaded; jobs go two members a batch."""
    monkeypatch.setattr(image_pack_members, "BATCH", 2)
    made = AdminNode(tmp_path, request.param)
    try:
        made.org("mha")
        for i in range(MEMBERS):
            user_id, _ = made.user(f"m{i}")
            made.ok("PATCH", f"/users/{quote(user_id)}", {"organisation": "mha"})
        result_of(made.stores.media.store_media(MediaRecord(
            "Gimoji0", made.root_id, "image/png", None, 72, "ab" * 32, 0)))
        yield made
    finally:
        made.close()


def _publish(node: AdminNode, pack_id: str = "official") -> None:
    """Publish a pack as the node admin, running the reactor only until it is published (the
    members' job has then just started)."""
    body = {"images": {"namaste": {"url": "mxc://admin.test/Gimoji0"}}}
    d = node.local.start(node.node.image_packs.put(Actor(node.root_id, "local"), "mha",
                                                   pack_id, body))
    while not d.called:
        node.local.turn()
    result_of(d)


def _job(node: AdminNode) -> PackJob:
    job = result_of(node.stores.image_packs.job("mha"))
    assert job is not None
    return job


def _run_until(node: AdminNode, done: int) -> None:
    for _ in range(200):
        if _job(node).done >= done:
            return
        node.local.turn()
    raise AssertionError(f"the job did not reach {done}")


def _joined(node: AdminNode) -> list[str]:
    room_id = node.node.pack_members.pack_rooms["mha"]
    room = node.node.rooms.registry.cached(room_id)
    assert room is not None
    return sorted(u for u in room.members_with("join") if u.startswith("@m"))


def test_the_job_stores_its_place_after_each_batch_and_admins_see_it(node: AdminNode) -> None:
    _publish(node)
    _run_until(node, 2)
    job = _job(node)
    assert (job.after_user, job.done, job.total, job.finished_ts) == (
        "@m1:admin.test", 2, MEMBERS, None)
    listing = node.ok("GET", "/organisations/mha/image_packs")
    assert listing["members"] == {**job.to_json(), "state": "running"}


def test_a_stopped_job_goes_on_from_its_place_after_a_restart(node: AdminNode) -> None:
    _publish(node)
    _run_until(node, 2)
    members = node.node.pack_members
    members.stop()  # the node shuts down
    for _ in range(200):
        if members.job_done("mha") is None:
            break
        node.local.turn()
    assert members.job_done("mha") is None
    stopped = _job(node)
    assert (stopped.after_user, stopped.done, stopped.finished_ts) == ("@m1:admin.test", 2, None)
    assert _joined(node)[:2] == ["@m0:admin.test", "@m1:admin.test"]
    assert "@m4:admin.test" not in _joined(node)
    members.pack_rooms, members._jobs = {}, {}  # what a new process holds before it starts
    node.node.org_accounts._accounts = {}
    node.local.run(node.node.start())
    assert members.pack_rooms and node.node.org_accounts.account_of("mha")
    for _ in range(200):
        if members.job_done("mha") is None:
            break
        node.local.turn()
    job = _job(node)
    assert job.finished_ts is not None and job.done == MEMBERS
    assert _joined(node) == [f"@m{i}:admin.test" for i in range(MEMBERS)]


def test_a_change_while_the_job_runs_starts_it_again(node: AdminNode) -> None:
    _publish(node)
    _run_until(node, 2)
    generation = _job(node).generation
    _publish(node, "stickers")
    _run_until(node, MEMBERS)
    for _ in range(200):
        if node.node.pack_members.job_done("mha") is None:
            break
        node.local.turn()
    job = _job(node)
    assert job.generation == generation + 1 and job.done == MEMBERS
    content = result_of(node.stores.account_data.get_account_data(
        "@m0:admin.test", "", "m.image_pack.rooms"))
    room_id = node.node.pack_members.pack_rooms["mha"]
    assert content == {"rooms": {room_id: {"official": {}, "stickers": {}}}}
