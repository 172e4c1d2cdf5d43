"""Members woken by the same event share one whole /sync answer, and nobody can tell: each
gets exactly what an answer built for them alone would hold (in process, fake clock).

The last test is the specification: after any mix of messages, account data, typing, receipts,
to-device messages, key uploads and joins, every member's shared answer equals the answer
built for that member with sharing switched off."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.inprocess_node import InProcessNode

V3 = "/_matrix/client/v3"
MEMBERS = 4


class Room:
    def __init__(self, local: InProcessNode, name: str | None = "Room") -> None:
        self.local = local
        self.room_id, self.owner_token, self.tokens = local.room_with_members(MEMBERS, name)
        self.since = self.mark()

    def mark(self) -> str:
        """The current position, as a since-token for everyone (every member has synced, as
        members woken from a long-poll have)."""
        for token in self.tokens:
            self.sync(token)
        token: str = self.sync(self.owner_token)["next_batch"]
        return token

    def sync(self, token: str, since: str | None = None) -> Any:
        query = f"?since={quote(since)}" if since else ""
        status, answer = self.local.call("GET", f"{V3}/sync{query}", token)
        assert status == 200, answer
        return answer

    def answers(self) -> list[Any]:
        return [self.sync(token, self.since) for token in self.tokens]

    def send(self, text: str, token: str | None = None) -> None:
        path = f"{V3}/rooms/{quote(self.room_id)}/send/m.room.message/{uuid.uuid4().hex}"
        self.ok("PUT", path, token or self.owner_token, {"msgtype": "m.text", "body": text})

    def ok(self, method: str, path: str, token: str, body: Any) -> Any:
        status, answer = self.local.call(method, path, token, body)
        assert status == 200, answer
        return answer

    def user_id(self, token: str) -> str:
        user_id: str = self.ok("GET", f"{V3}/account/whoami", token, None)["user_id"]
        return user_id

    def device_id(self, token: str) -> str:
        device_id: str = self.ok("GET", f"{V3}/account/whoami", token, None)["device_id"]
        return device_id

    @property
    def shared(self) -> int:
        return len(self.local.node.sync.shared_responses)

    @property
    def hits(self) -> int:
        return self.local.node.sync.shared_responses.hits


@pytest.fixture
def room(local: InProcessNode) -> Room:
    return Room(local)


def test_members_woken_by_one_message_share_one_answer(room: Room) -> None:
    room.send("hello")
    answers = room.answers()
    assert all(a == answers[0] for a in answers)
    assert room.shared == 1 and room.hits == MEMBERS - 1


def test_the_senders_answer_is_built_for_the_sender(room: Room) -> None:
    room.send("mine", room.tokens[0])
    room.sync(room.tokens[0], room.since)
    assert room.shared == 0
    room.sync(room.tokens[1], room.since)
    assert room.shared == 1


def test_a_member_with_new_account_data_gets_an_answer_of_their_own(room: Room) -> None:
    user_id = room.user_id(room.tokens[2])
    room.ok("PUT", f"{V3}/user/{quote(user_id)}/account_data/org.example.note", room.tokens[2],
            {"n": 1})
    room.send("hello")
    answers = room.answers()
    assert [e["type"] for e in answers[2]["account_data"]["events"]] == ["org.example.note"]
    assert answers[0]["account_data"]["events"] == []
    assert answers[0] == answers[1] == answers[3]


def test_a_member_with_a_to_device_message_waiting_gets_it(room: Room) -> None:
    target = room.tokens[1]
    user_id, device_id = room.user_id(target), room.device_id(target)
    room.send("hello")
    room.answers()  # the others' answers are shared before the message arrives
    room.ok("PUT", f"{V3}/sendToDevice/org.example.ping/{uuid.uuid4().hex}", room.owner_token,
            {"messages": {user_id: {device_id: {"n": 1}}}})
    answers = room.answers()
    assert [m["type"] for m in answers[1]["to_device"]["events"]] == ["org.example.ping"]
    assert answers[0]["to_device"]["events"] == []


def test_devices_with_other_key_counts_get_their_own_counts(room: Room) -> None:
    room.ok("POST", f"{V3}/keys/upload", room.tokens[3],
            {"one_time_keys": {"signed_curve25519:AAAAAQ": "a2V5"}})
    room.since = room.mark()
    room.send("hello")
    answers = room.answers()
    assert answers[3]["device_one_time_keys_count"]["signed_curve25519"] == 1
    assert answers[0]["device_one_time_keys_count"]["signed_curve25519"] == 0
    assert answers[0] == answers[1] == answers[2]


def test_a_join_in_the_range_is_not_shared(room: Room) -> None:
    newcomer, _token = room.local.register("newcomer")
    room.local.settle(room.local.node.membership.join(room.room_id, newcomer.user_id))
    answers = room.answers()
    assert all(newcomer.user_id in a["device_lists"]["changed"] for a in answers)
    assert room.shared == 0


def test_more_events_than_the_timeline_limit_are_not_shared(room: Room) -> None:
    for i in range(11):
        room.send(f"m{i}")
    answers = room.answers()
    assert answers[0]["rooms"]["join"][room.room_id]["timeline"]["limited"] is True
    assert room.shared == 0


def test_each_member_of_an_unnamed_room_gets_heroes_without_themselves(
        local: InProcessNode) -> None:
    room = Room(local, name=None)
    room.send("hello")
    for token, answer in zip(room.tokens, room.answers(), strict=True):
        heroes = answer["rooms"]["join"][room.room_id]["summary"]["m.heroes"]
        assert room.user_id(token) not in heroes


def test_a_shared_answer_is_not_used_past_its_lifetime(room: Room) -> None:
    room.send("hello")
    room.sync(room.tokens[0], room.since)
    room.local.advance(2)
    room.sync(room.tokens[1], room.since)
    assert room.hits == 0


# -- the specification: shared answers are the answers built alone ----------------------------
ACTIONS = st.lists(st.tuples(
    st.sampled_from(["send", "account_data", "typing", "receipt", "to_device", "keys", "join"]),
    st.integers(min_value=0, max_value=MEMBERS)), min_size=1, max_size=6)


def _act(room: Room, action: str, who: int) -> None:
    token = room.tokens[who] if who < MEMBERS else room.owner_token
    user_id = room.user_id(token)
    rid = quote(room.room_id)
    if action == "send":
        room.send("text", token)
    elif action == "account_data":
        room.ok("PUT", f"{V3}/user/{quote(user_id)}/account_data/org.example.n", token, {})
    elif action == "typing":
        room.ok("PUT", f"{V3}/rooms/{rid}/typing/{quote(user_id)}", token,
                {"typing": True, "timeout": 30000})
    elif action == "receipt":
        last = room.sync(token, room.since)["rooms"]["join"].get(room.room_id)
        events = last["timeline"]["events"] if last else []
        if events:
            room.ok("POST", f"{V3}/rooms/{rid}/receipt/m.read/{quote(events[-1]['event_id'])}",
                    token, {})
    elif action == "to_device":
        room.ok("PUT", f"{V3}/sendToDevice/org.example.p/{uuid.uuid4().hex}", room.owner_token,
                {"messages": {user_id: {"*": {"n": 1}}}})
    elif action == "keys":
        room.ok("POST", f"{V3}/keys/upload", token,
                {"one_time_keys": {f"signed_curve25519:{uuid.uuid4().hex[:8]}": "a2V5"}})
    else:
        newcomer, _ = room.local.register(f"u{uuid.uuid4().hex[:8]}")
        room.local.settle(room.local.node.membership.join(room.room_id, newcomer.user_id))


def _without_age(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_age(v) for k, v in value.items() if k != "age"}
    if isinstance(value, list):
        return [_without_age(v) for v in value]
    return value


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_every_shared_answer_is_the_answer_built_for_that_member_alone(
        room: Room, actions: list[tuple[str, int]]) -> None:
    room.since = room.mark()
    for action, who in actions:
        _act(room, action, who)
    tokens = [*room.tokens, room.owner_token]
    shared = [_without_age(room.sync(token, room.since)) for token in tokens]
    handler = room.local.node.sync
    key = handler.sharing.key
    handler.sharing.key = lambda *args: None  # type: ignore[method-assign]
    handler.shared_timelines = type(handler.shared_timelines)()
    try:
        alone = [_without_age(room.sync(token, room.since)) for token in tokens]
    finally:
        handler.sharing.key = key  # type: ignore[method-assign]
    assert json.dumps(shared, sort_keys=True) == json.dumps(alone, sort_keys=True)
