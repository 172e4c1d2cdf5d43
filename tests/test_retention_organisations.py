"""Organisation defaults for retention, through the admin and client APIs on both engines: an
organisation sets ``settings.retention.max_lifetime``; a room its verified member creates
without a policy of its own keeps events that long (a sub-organisation takes the default of
the one above it), clamped into the node's bounds; admins see where a room's policy comes from
and each organisation's default; the purge applies it; a malformed setting is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.admin_harness import AdminNode
from tests.node_engines import run_for

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
RETENTION = {"enabled": True, "default_policy": {"max_lifetime": "30d"},
             "allowed_lifetime_min": "1h", "allowed_lifetime_max": "90d"}


@pytest.fixture(params=["sqlite", "postgres"])
def node(request: Any, tmp_path: Path) -> Iterator[AdminNode]:
    """mha (with mha.dm) and mea; ``bob`` verified in mha.dm, ``pat`` in no organisation."""
    made = AdminNode(tmp_path, request.param, config={"retention": RETENTION})
    try:
        made.org("mha")
        made.org("mha.dm", "mha")
        made.org("mea")
        for name in ("bob", "pat"):
            made.user(name)
        made.ok("POST", f"/users/{made.node.user_id('bob')}/verification",
                {"organisation": "mha.dm", "basis": "document"})
        yield made
    finally:
        made.close()


def set_default(node: AdminNode, org: str, max_lifetime: Any) -> tuple[int, Any]:
    return node.api("PATCH", f"/organisations/{org}", node.root,
                    {"settings": {"retention": {"max_lifetime": max_lifetime}}})


def create_room(node: AdminNode, creator: str, **body: Any) -> str:
    status, answer = node.client(creator, "POST", "/createRoom", body)
    assert status == 200, answer
    return str(answer["room_id"])


def policy(node: AdminNode, room_id: str) -> dict[str, Any]:
    return dict(node.ok("GET", f"/rooms/{quote(room_id)}")["retention"])


def test_a_room_a_member_creates_takes_the_organisations_default(node: AdminNode) -> None:
    assert set_default(node, "mha.dm", 2 * DAY_MS)[0] == 200
    room_id = create_room(node, "bob")
    assert policy(node, room_id) == {
        "stated_max_lifetime": None, "effective_max_lifetime": 2 * DAY_MS,
        "source": "organisation", "organisation": "mha.dm", "clamped": False}


def test_a_sub_organisation_takes_the_default_of_the_one_above_it(node: AdminNode) -> None:
    set_default(node, "mha", 3 * DAY_MS)
    room_id = create_room(node, "bob")
    assert (policy(node, room_id)["organisation"],
            policy(node, room_id)["effective_max_lifetime"]) == ("mha", 3 * DAY_MS)


def test_a_rooms_own_policy_wins_over_the_organisations_default(node: AdminNode) -> None:
    set_default(node, "mha.dm", 2 * DAY_MS)
    room_id = create_room(node, "bob", initial_state=[
        {"type": "m.room.retention", "state_key": "", "content": {"max_lifetime": 5 * DAY_MS}}])
    assert (policy(node, room_id)["source"], policy(node, room_id)["effective_max_lifetime"]
            ) == ("room", 5 * DAY_MS)


def test_a_room_created_outside_any_organisation_takes_the_nodes_default(
        node: AdminNode) -> None:
    set_default(node, "mha.dm", 2 * DAY_MS)
    room_id = create_room(node, "pat")
    assert (policy(node, room_id)["source"], policy(node, room_id)["effective_max_lifetime"]
            ) == ("default", 30 * DAY_MS)


def test_an_organisation_default_above_the_nodes_maximum_is_clamped_visibly(
        node: AdminNode) -> None:
    set_default(node, "mha.dm", 365 * DAY_MS)
    room_id = create_room(node, "bob")
    assert (policy(node, room_id)["effective_max_lifetime"], policy(node, room_id)["clamped"]
            ) == (90 * DAY_MS, True)
    section = node.ok("GET", "/policy")["retention"]
    assert section["organisations"] == {
        "mha.dm": {"max_lifetime": 365 * DAY_MS, "effective_max_lifetime": 90 * DAY_MS}}


def test_messages_leave_reads_and_are_purged_after_the_organisations_default(
        node: AdminNode) -> None:
    set_default(node, "mha.dm", 2 * HOUR_MS)
    room_id = create_room(node, "bob")
    path = f"/rooms/{quote(room_id)}"
    assert node.client("bob", "PUT", f"{path}/send/m.room.message/t1",
                       {"msgtype": "m.text", "body": "brief"})[0] == 200
    run_for(node.local, 2 * 3600 + 1)
    chunk = node.client("bob", "GET", f"{path}/messages?dir=b&limit=10")[1]["chunk"]
    assert [e for e in chunk if e["type"] == "m.room.message"] == []
    assert node.local.settle(node.node.retention_purge.purge(), turns=200) == 1


@pytest.mark.parametrize("setting", [{"max_lifetime": 0}, {"max_lifetime": "2d"},
                                     {"max_lifetime": True}, {}, {"lifetime": 5}, 7])
def test_a_malformed_organisation_default_is_refused(node: AdminNode, setting: Any) -> None:
    status, answer = node.api("PATCH", "/organisations/mha", node.root,
                              {"settings": {"retention": setting}})
    assert (status, answer["errcode"]) == (400, "M_INVALID_PARAM")
    assert "settings.retention" in answer["error"]
