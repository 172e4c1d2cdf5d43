"""Members woken by the same event share one encoded timeline, and nobody can tell: the
sender's device still sees its transaction ID, another filter gets its own, a redaction shows,
and ``age`` stays true to within the shared timeline's lifetime (in process, fake clock)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from broker.filtering import Filter
from broker.sync.shared import LIFETIME_MS
from protocol.strict_json import Encoded, encode_json
from tests.inprocess_node import InProcessNode

V3 = "/_matrix/client/v3"
MEMBERS = 4


class Room:
    def __init__(self, local: InProcessNode) -> None:
        self.local = local
        self.room_id, self.owner_token, self.tokens = local.room_with_members(MEMBERS, "Room")
        self.since = self.sync(self.owner_token)["next_batch"]

    def sync(self, token: str, since: str | None = None,
             sync_filter: str | None = None) -> Any:
        query = f"?since={quote(since)}" if since else ""
        if sync_filter is not None:
            query += ("&" if query else "?") + f"filter={quote(sync_filter)}"
        status, answer = self.local.call("GET", f"{V3}/sync{query}", token)
        assert status == 200, answer
        return answer

    def timeline(self, token: str, since: str | None = None,
                 sync_filter: str | None = None) -> list[dict[str, Any]]:
        answer = self.sync(token, since or self.since, sync_filter)
        events: list[dict[str, Any]] = answer["rooms"]["join"][self.room_id]["timeline"][
            "events"]
        return events

    def send(self, text: str, token: str | None = None) -> str:
        path = f"{V3}/rooms/{quote(self.room_id)}/send/m.room.message/{text}"
        status, answer = self.local.call("PUT", path, token or self.owner_token,
                                         {"msgtype": "m.text", "body": text})
        assert status == 200, answer
        event_id: str = answer["event_id"]
        return event_id

    @property
    def shared(self) -> int:
        return len(self.local.node.sync.shared_timelines)


@pytest.fixture
def room(local: InProcessNode) -> Room:
    return Room(local)


def test_members_asking_the_same_question_share_one_timeline(room: Room) -> None:
    room.send("hello")
    timelines = [room.timeline(token) for token in room.tokens]
    assert all(t == timelines[0] for t in timelines)
    assert [e["content"]["body"] for e in timelines[0]] == ["hello"]
    assert room.shared == 1


def test_the_sender_still_sees_its_transaction_id_after_others_shared(room: Room) -> None:
    room.send("txn-7")
    assert "transaction_id" not in room.timeline(room.tokens[0])[0]["unsigned"]
    assert room.timeline(room.owner_token)[0]["unsigned"]["transaction_id"] == "txn-7"


def test_a_timeline_holding_the_requesters_own_event_is_not_shared(room: Room) -> None:
    room.send("mine", room.tokens[0])
    room.timeline(room.tokens[0])
    assert room.shared == 0
    room.timeline(room.tokens[1])
    assert room.shared == 1


def test_another_filter_gets_a_timeline_of_its_own(room: Room) -> None:
    room.send("hello")
    room.timeline(room.tokens[0])
    fields = json.dumps({"event_fields": ["type", "content.body"]})
    events = room.timeline(room.tokens[1], sync_filter=fields)
    assert events == [{"type": "m.room.message", "content": {"body": "hello"}}]
    assert room.shared == 2


def test_an_initial_sync_is_not_shared(room: Room) -> None:
    room.send("hello")
    for token in room.tokens:
        room.sync(token)
    assert room.shared == 0


def test_a_redaction_after_sharing_shows_to_the_next_member(room: Room) -> None:
    event_id = room.send("oops")
    assert room.timeline(room.tokens[0])[0]["content"] == {"body": "oops", "msgtype": "m.text"}
    path = f"{V3}/rooms/{quote(room.room_id)}/redact/{quote(event_id)}/r1"
    status, _ = room.local.call("PUT", path, room.owner_token, {})
    assert status == 200
    events = room.timeline(room.tokens[1])
    redacted = next(e for e in events if e["event_id"] == event_id)
    assert redacted["content"] == {}


def test_age_is_true_to_within_the_lifetime_of_a_shared_timeline(room: Room) -> None:
    room.send("hello")
    first = room.timeline(room.tokens[0])[0]["unsigned"]["age"]
    room.local.advance(LIFETIME_MS / 2000)
    assert room.timeline(room.tokens[1])[0]["unsigned"]["age"] == first
    room.local.advance(LIFETIME_MS / 1000)
    later = room.timeline(room.tokens[2])[0]["unsigned"]["age"]
    assert later >= first + 1.5 * LIFETIME_MS


# -- the pieces ------------------------------------------------------------------------------------
def test_encoded_json_is_written_from_its_kept_bytes() -> None:
    encoded = Encoded({"events": [1, 2]})
    dict.__setitem__(encoded, "events", [3])  # behind its back: the kept bytes win
    assert encode_json({"timeline": encoded}) == b'{"timeline":{"events":[1,2]}}'


def test_encoded_json_refuses_changes() -> None:
    encoded = Encoded({"events": []})
    with pytest.raises(TypeError):
        encoded["limited"] = True
    with pytest.raises(TypeError):
        encoded.update(limited=True)


def test_filters_with_the_same_definition_have_the_same_key() -> None:
    first = Filter.from_json({"room": {"timeline": {"limit": 5}}, "event_fields": ["type"]})
    second = Filter.from_json({"event_fields": ["type"], "room": {"timeline": {"limit": 5}}})
    other = Filter.from_json({"room": {"timeline": {"limit": 6}}})
    assert first.key == second.key != other.key
