"""Member limits per kind of room (config ``groups``) and direct chats of two, through the
client API on both engines: the count (joined or invited) is checked where the room writer
serialises the room's changes, so concurrent joins stop at the limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from twisted.internet import defer

from broker.errors import Forbidden
from broker.group_rules import DIRECT_TWO, MEMBER_LIMIT
from tests.inprocess_node import InProcessNode

V3 = "/_matrix/client/v3"
LIMIT = 3


class Scene:
    def __init__(self, local: InProcessNode) -> None:
        self.local = local
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        for name in ("owner", "a", "b", "c", "d", "e"):
            requester, self.tokens[name] = local.register(name)
            self.ids[name] = requester.user_id

    def call(self, who: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return self.local.call(method, f"{V3}{path}", self.tokens[who], body)

    def room(self, **body: Any) -> str:
        status, answer = self.call("owner", "POST", "/createRoom", body)
        assert status == 200, answer
        return str(answer["room_id"])

    def join(self, who: str, room_id: str) -> tuple[int, Any]:
        return self.call(who, "POST", f"/join/{quote(room_id)}", {})

    def invite(self, room_id: str, who: str) -> tuple[int, Any]:
        return self.call("owner", "POST", f"/rooms/{quote(room_id)}/invite",
                         {"user_id": self.ids[who]})

    def joined(self, room_id: str) -> list[str]:
        room = self.local.node.rooms.registry.cached(room_id)
        assert room is not None
        return sorted(room.members_with("join"))


@pytest.fixture(params=["sqlite", "postgres"])
def scene(request: Any, tmp_path: Path) -> Iterator[Scene]:
    local = InProcessNode(tmp_path, engine=request.param, config={"groups": {
        "informal_max_members": LIMIT, "official_max_members": LIMIT}})
    try:
        yield Scene(local)
    finally:
        local.close()


def refused_for(answer: tuple[int, Any], rule: str) -> bool:
    status, body = answer
    return (status, body.get("errcode"), body.get("in.gov.broker.reason")) == (
        403, "M_FORBIDDEN", rule)


def test_a_room_admits_members_up_to_its_limit(scene: Scene) -> None:
    room_id = scene.room(preset="public_chat")
    assert [scene.join(who, room_id)[0] for who in ("a", "b")] == [200, 200]
    assert refused_for(scene.join("c", room_id), MEMBER_LIMIT)
    assert scene.ids["c"] not in scene.joined(room_id)


def test_an_invite_counts_against_the_limit(scene: Scene) -> None:
    room_id = scene.room(preset="public_chat")
    assert [scene.invite(room_id, who)[0] for who in ("a", "b")] == [200, 200]
    assert refused_for(scene.join("c", room_id), MEMBER_LIMIT)


def test_an_invited_user_joining_takes_no_second_place(scene: Scene) -> None:
    room_id = scene.room(preset="public_chat")
    scene.invite(room_id, "a")
    scene.join("b", room_id)
    assert scene.join("a", room_id)[0] == 200


def test_a_member_leaving_frees_a_place(scene: Scene) -> None:
    room_id = scene.room(preset="public_chat")
    scene.join("a", room_id)
    scene.join("b", room_id)
    scene.call("b", "POST", f"/rooms/{quote(room_id)}/leave", {})
    assert scene.join("c", room_id)[0] == 200


def test_concurrent_joins_stop_at_the_limit(scene: Scene) -> None:
    room_id = scene.room(preset="public_chat")
    membership = scene.local.node.membership
    joins = [defer.ensureDeferred(membership.join(room_id, scene.ids[who]))
             for who in ("a", "b", "c", "d", "e")]
    outcomes: list[str] = []
    for d in joins:
        d.addCallbacks(lambda _: outcomes.append("joined"),
                       lambda f: outcomes.append(f.trap(Forbidden).__name__))
    for _ in range(50):
        scene.local.advance(0)
    assert sorted(outcomes) == ["Forbidden"] * 3 + ["joined"] * 2
    assert len(scene.joined(room_id)) == LIMIT


def test_creating_a_room_that_invites_past_the_limit_creates_nothing(scene: Scene) -> None:
    answer = scene.call("owner", "POST", "/createRoom",
                        {"invite": [scene.ids[w] for w in ("a", "b", "c")]})
    assert refused_for(answer, MEMBER_LIMIT)
    assert scene.call("owner", "GET", "/joined_rooms") == (200, {"joined_rooms": []})


def test_a_direct_chat_has_two_members(scene: Scene) -> None:
    room_id = scene.room(is_direct=True, invite=[scene.ids["a"]])
    assert refused_for(scene.invite(room_id, "b"), DIRECT_TWO)


def test_a_direct_chat_with_two_invitees_is_refused_and_creates_nothing(scene: Scene) -> None:
    answer = scene.call("owner", "POST", "/createRoom",
                        {"is_direct": True, "invite": [scene.ids["a"], scene.ids["b"]]})
    assert refused_for(answer, DIRECT_TWO)
    assert scene.call("owner", "GET", "/joined_rooms") == (200, {"joined_rooms": []})


def test_a_direct_chat_stays_direct_whatever_its_join_rule(scene: Scene) -> None:
    room_id = scene.room(is_direct=True, preset="public_chat")
    scene.join("a", room_id)
    assert refused_for(scene.join("b", room_id), DIRECT_TWO)
