"""``broker broadcasts send|list|show`` over a running node's database, on both engines: a
broadcast sent by the command is recorded with its recipients and reached by the running
node within a poll of its change feed; ``show`` prints its statistics; a refused audience
exits 1 naming why."""

from __future__ import annotations

import json
from typing import Any

import pytest

from broker.admin.changes import POLL_SECONDS
from broker.cli import main
from broker.notice_rooms import NOTICE
from tests import admin_harness
from tests.admin_harness import AdminNode

admin = admin_harness.admin  # the fixture: a node on each engine


def broker(node: AdminNode, capsys: pytest.CaptureFixture[str], *args: str
           ) -> tuple[int, Any, str]:
    """The command's exit code, its printed JSON (None if none) and its error output."""
    code = main(["broadcasts", *args, "--config", str(node.local.config_path)])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


@pytest.fixture
def running(admin: AdminNode) -> AdminNode:
    """A started node with mha and a member, amy."""
    admin.local.run(admin.node.start())
    admin.org("mha")
    admin.ok("POST", "/users", {"localpart": "amy", "organisation": "mha"}, status=201)
    token, _ = admin.local.run(admin.node.auth.create_session(
        admin.node.user_id("amy"), None, None, None))
    admin.tokens["amy"] = token
    return admin


def test_a_broadcast_sent_by_the_command_reaches_the_members_through_the_running_node(
        running: AdminNode, capsys: pytest.CaptureFixture[str]) -> None:
    code, answer, _ = broker(running, capsys, "send", "--organisation", "mha",
                             "--body", "Closed on Friday")
    assert code == 0
    running.local.advance(POLL_SECONDS)
    for _ in range(100):  # the job's turns
        running.local.advance(0)
    status, synced = running.client("amy", "GET", "/sync")
    assert status == 200, synced
    assert [e["content"][NOTICE]["id"] for room in synced["rooms"]["join"].values()
            for e in room["timeline"]["events"] if NOTICE in e["content"]] == [
        answer["broadcast_id"]]
    amy = running.node.user_id("amy")
    code, shown, _ = broker(running, capsys, "show", answer["broadcast_id"])
    assert code == 0 and shown["recipients"] == 1 and shown["unread"] == [amy]
    assert shown["progress"]["state"] == "done"
    code, listed, _ = broker(running, capsys, "list", "--organisation", "mha")
    assert [b["broadcast_id"] for b in listed["broadcasts"]] == [answer["broadcast_id"]]


def test_a_refused_audience_exits_1_naming_why(running: AdminNode,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = broker(running, capsys, "send", "--organisation", "mha", "--body", "x",
                          "--audience", '{"users": ["@zed:admin.test"]}')
    assert code == 1 and "@zed:admin.test" in err
