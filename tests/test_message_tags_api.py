"""Message tags through the client API on both engines: an unknown tag is refused on send with
its reason and nothing is stored, an allowed one is stored with the message (in an encrypted
room too, in the cleartext of ``m.room.encrypted``), an organisation's tags are its verified
members', and /messages and /sync timelines filter on tags."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from broker.filtering import NOT_TAGS_FILTER, TAGS_FILTER
from broker.message_tags import REASON_FIELD, TAGS_FIELD, UNKNOWN
from tests.admin_harness import AdminNode

TXN = count()


class Scene:
    """``vera`` verified for mha, whose tag is ``cabinet``; ``pat`` public; both in one
    room."""

    def __init__(self, node: AdminNode) -> None:
        self.node = node
        node.org("mha")
        self.ids = {name: node.user(name)[0] for name in ("vera", "pat")}
        node.ok("POST", f"/users/{self.ids['vera']}/verification",
                {"organisation": "mha", "basis": "document"})
        status, answer = node.client("vera", "POST", "/createRoom", {"preset": "public_chat"})
        assert status == 200, answer
        self.room_id = str(answer["room_id"])
        assert node.client("pat", "POST", f"/join/{quote(self.room_id)}", {})[0] == 200

    def send(self, who: str, *tags: str, event_type: str = "m.room.message",
             body: str = "hello", room_id: str | None = None) -> tuple[int, Any]:
        content: dict[str, Any] = (
            {"msgtype": "m.text", "body": body} if event_type == "m.room.message" else
            {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": body, "sender_key": "k",
             "session_id": "s", "device_id": "D"})
        if tags:
            content[TAGS_FIELD] = list(tags)
        path = f"/rooms/{quote(room_id or self.room_id)}/send/{event_type}/t{next(TXN)}"
        return self.node.client(who, "PUT", path, content)

    def sent(self, who: str, *tags: str, body: str = "hello") -> str:
        status, answer = self.send(who, *tags, body=body)
        assert status == 200, answer
        return str(answer["event_id"])

    def bodies(self, flt: dict[str, Any]) -> list[str]:
        path = (f"/rooms/{quote(self.room_id)}/messages?dir=b&limit=50&filter="
                f"{quote(json.dumps(flt))}")
        status, answer = self.node.client("pat", "GET", path)
        assert status == 200, answer
        return [e["content"]["body"] for e in answer["chunk"]
                if e["type"] == "m.room.message"]


@pytest.fixture(params=["sqlite", "postgres"])
def scene(request: Any, tmp_path: Path) -> Iterator[Scene]:
    node = AdminNode(tmp_path, request.param,
                     config={"tags": {"organisations": {"mha": ["cabinet"]}}})
    try:
        yield Scene(node)
    finally:
        node.close()


def test_an_unknown_tag_is_refused_with_its_reason_and_nothing_is_stored(scene: Scene) -> None:
    status, answer = scene.send("pat", "secret", body="refused")
    assert (status, answer["errcode"], answer[REASON_FIELD]) == (400, "M_INVALID_PARAM",
                                                                UNKNOWN)
    assert "refused" not in scene.bodies({})
    assert scene.node.node.message_tags.refusals[UNKNOWN] == 1


def test_an_allowed_tag_is_stored_with_the_message(scene: Scene) -> None:
    event_id = scene.sent("pat", "confidential", "action_required")
    status, event = scene.node.client("vera", "GET",
                                      f"/rooms/{quote(scene.room_id)}/event/{quote(event_id)}")
    assert status == 200
    assert event["content"][TAGS_FIELD] == ["confidential", "action_required"]


def test_an_organisations_tag_is_taken_from_its_verified_member(scene: Scene) -> None:
    assert scene.send("vera", "cabinet")[0] == 200


def test_an_organisations_tag_is_refused_to_a_public_user(scene: Scene) -> None:
    status, answer = scene.send("pat", "cabinet")
    assert (status, answer[REASON_FIELD]) == (400, UNKNOWN)


def test_an_encrypted_message_with_an_unknown_tag_in_its_cleartext_is_refused(
        scene: Scene) -> None:
    status, answer = scene.send("pat", "secret", event_type="m.room.encrypted")
    assert (status, answer[REASON_FIELD]) == (400, UNKNOWN)


def test_an_encrypted_message_with_an_allowed_tag_is_taken(scene: Scene) -> None:
    assert scene.send("pat", "priority", event_type="m.room.encrypted")[0] == 200


def test_messages_filters_on_tags(scene: Scene) -> None:
    scene.sent("pat", body="plain")
    scene.sent("pat", "priority", body="urgent")
    scene.sent("vera", "confidential", "priority", body="secret and urgent")
    scene.sent("vera", "for_information", body="fyi")
    assert scene.bodies({TAGS_FILTER: ["priority"]}) == ["secret and urgent", "urgent"]
    assert scene.bodies({NOT_TAGS_FILTER: ["confidential"]}) == ["fyi", "urgent", "plain"]
    assert scene.bodies({TAGS_FILTER: ["priority"], NOT_TAGS_FILTER: ["confidential"]}) == [
        "urgent"]


def test_a_sync_timeline_filters_on_tags(scene: Scene) -> None:
    status, first = scene.node.client("pat", "GET", "/sync")
    assert status == 200
    scene.sent("vera", body="plain")
    scene.sent("vera", "action_required", body="act")
    flt = quote(json.dumps({"room": {"timeline": {TAGS_FILTER: ["action_required"]}}}))
    status, answer = scene.node.client(
        "pat", "GET", f"/sync?since={first['next_batch']}&timeout=0&filter={flt}")
    assert status == 200, answer
    timeline = answer["rooms"]["join"][scene.room_id]["timeline"]["events"]
    assert [e["content"]["body"] for e in timeline] == ["act"]


def test_a_tags_filter_that_is_not_a_list_of_strings_is_refused(scene: Scene) -> None:
    path = (f"/rooms/{quote(scene.room_id)}/messages?dir=b&filter="
            f"{quote(json.dumps({TAGS_FILTER: 'priority'}))}")
    status, answer = scene.node.client("pat", "GET", path)
    assert (status, answer["errcode"]) == (400, "M_BAD_JSON")
