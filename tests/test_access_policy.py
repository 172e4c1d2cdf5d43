"""Every request that creates, invites, joins, reads a profile, searches the directory or sends
passes through the one policy decision point: a rule installed there refuses it on the API.

The node runs in this process (``tests/inprocess_node.py``); requests go through its real
router, so the path from the endpoint to the decision is the one clients take.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.access_policy import AccessPolicy, Decision, Refusal
from tests.inprocess_node import InProcessNode

V3 = "/_matrix/client/v3"


class Harness:
    def __init__(self, workdir: Path) -> None:
        self.local = InProcessNode(workdir)
        self.node = self.local.node
        self.refusing: set[str] = set()
        self.asked: list[Decision] = []
        self.node.policy.add_rule(self._rule)
        alice, self.alice = self.local.register("alice")
        bob, self.bob = self.local.register("bob")
        self.alice_id, self.bob_id = alice.user_id, bob.user_id

    def _rule(self, decision: Decision) -> str | None:
        self.asked.append(decision)
        return "refused by test policy" if decision.action in self.refusing else None

    def call(self, method: str, path: str, token: str | None, body: Any = None
             ) -> tuple[int, dict[str, Any]]:
        status, answer = self.local.call(method, path, token, body)
        return status, answer

    def room(self) -> str:
        status, body = self.call("POST", f"{V3}/createRoom", self.alice, {"preset": "public_chat"})
        assert status == 200, body
        return str(body["room_id"])


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    made = Harness(tmp_path)
    try:
        yield made
    finally:
        made.local.close()


def _refused(answer: tuple[int, dict[str, Any]]) -> bool:
    status, body = answer
    return status == 403 and body.get("errcode") == "M_FORBIDDEN" and \
        body.get("error") == "refused by test policy"


def test_policy_refuses_room_creation(harness: Harness) -> None:
    harness.refusing.add("create_room")
    assert _refused(harness.call("POST", f"{V3}/createRoom", harness.alice, {}))


def test_policy_refuses_an_invite(harness: Harness) -> None:
    room_id = harness.room()
    harness.refusing.add("invite")
    assert _refused(harness.call("POST", f"{V3}/rooms/{room_id}/invite", harness.alice,
                                 {"user_id": harness.bob_id}))


def test_policy_refuses_the_invites_of_a_new_room(harness: Harness) -> None:
    harness.refusing.add("invite")
    assert _refused(harness.call("POST", f"{V3}/createRoom", harness.alice,
                                 {"invite": [harness.bob_id]}))


def test_policy_refuses_a_join(harness: Harness) -> None:
    room_id = harness.room()
    harness.refusing.add("join")
    assert _refused(harness.call("POST", f"{V3}/join/{room_id}", harness.bob, {}))
    assert harness.node.rooms.registry.cached(room_id).membership_of(harness.bob_id) is None


def test_policy_refuses_a_message(harness: Harness) -> None:
    room_id = harness.room()
    harness.refusing.add("send")
    assert _refused(harness.call("PUT", f"{V3}/rooms/{room_id}/send/m.room.message/t1",
                                 harness.alice, {"msgtype": "m.text", "body": "hi"}))


def test_policy_refuses_a_state_change(harness: Harness) -> None:
    room_id = harness.room()
    harness.refusing.add("send")
    assert _refused(harness.call("PUT", f"{V3}/rooms/{room_id}/state/m.room.topic",
                                 harness.alice, {"topic": "t"}))


def test_policy_refuses_a_profile_read(harness: Harness) -> None:
    harness.refusing.add("read_profile")
    assert _refused(harness.call("GET", f"{V3}/profile/{harness.bob_id}", harness.alice))


def test_policy_refuses_a_directory_search(harness: Harness) -> None:
    harness.refusing.add("search_directory")
    assert _refused(harness.call("POST", f"{V3}/user_directory/search", harness.alice,
                                 {"search_term": "bob"}))


def test_policy_is_asked_with_the_actor_and_the_target(harness: Harness) -> None:
    room_id = harness.room()
    harness.asked.clear()
    harness.call("POST", f"{V3}/rooms/{room_id}/invite", harness.alice,
                 {"user_id": harness.bob_id})
    assert ("invite", harness.alice_id, harness.bob_id, room_id) in [
        (d.action, d.actor, d.target, d.room_id) for d in harness.asked]


def test_an_allowing_policy_lets_everything_through(harness: Harness) -> None:
    room_id = harness.room()
    status, _ = harness.call("PUT", f"{V3}/rooms/{room_id}/send/m.room.message/t1",
                             harness.alice, {"msgtype": "m.text", "body": "hi"})
    assert status == 200 and harness.node.policy.refused == 0


def test_a_refusal_is_counted() -> None:
    policy = AccessPolicy([lambda decision: "no"])
    with pytest.raises(Exception, match="no"):
        policy.may_create_room("@a:hs")
    assert policy.refused == 1


def test_a_rule_that_names_itself_gives_its_name_in_the_error_and_is_counted(
        harness: Harness) -> None:
    def named(decision: Decision) -> Refusal | None:
        return Refusal("no_topics", "no topics here") if decision.action == "send" else None

    harness.node.policy.add_rule(named)
    room_id = harness.room()
    status, body = harness.call("PUT", f"{V3}/rooms/{room_id}/state/m.room.topic",
                                harness.alice, {"topic": "t"})
    assert (status, body["errcode"], body["in.gov.broker.reason"]) == (
        403, "M_FORBIDDEN", "no_topics")
    assert harness.node.policy.refusals["no_topics"] == 1
