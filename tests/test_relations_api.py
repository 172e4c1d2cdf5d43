"""``GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]`` on
an in-process node, both engines: pages newest first with next_batch, filters by relation and
event type, follows relations of relations with recurse, drops redacted relations and hides a
room's relations from a user who may not read it."""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import quote

from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine, engines

engine = engines()
_TXNS = itertools.count()


def _send(node: InProcessNode, token: str, room_id: str, content: dict[str, Any],
          event_type: str = "m.room.message") -> str:
    status, body = node.call(
        "PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/send/{event_type}/t{next(_TXNS)}",
        token, content)
    assert status == 200, body
    return str(body["event_id"])


def _relates(rel_type: str, target: str, **extra: Any) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": rel_type,
            "m.relates_to": {"rel_type": rel_type, "event_id": target, **extra}}


def _relations(node: InProcessNode, token: str, room_id: str, event_id: str,
               suffix: str = "", query: str = "") -> tuple[int, Any]:
    return node.call("GET", f"/_matrix/client/v1/rooms/{quote(room_id)}/relations/"
                            f"{quote(event_id)}{suffix}{query}", token)


def _room(engine: Engine) -> tuple[InProcessNode, str, str, str]:
    node = engine.node()
    room_id, token, _ = node.room_with_members(0, "relations")
    root = _send(node, token, room_id, {"msgtype": "m.text", "body": "root"})
    return node, room_id, token, root


def test_relations_come_newest_first_in_pages_with_a_next_batch(engine: Engine) -> None:
    node, room_id, token, root = _room(engine)
    replies = [_send(node, token, room_id, _relates("m.thread", root)) for _ in range(3)]
    _send(node, token, room_id, {"msgtype": "m.text", "body": "unrelated"})
    status, first = _relations(node, token, room_id, root, query="?limit=2")
    assert status == 200
    assert [e["event_id"] for e in first["chunk"]] == replies[:0:-1]
    status, rest = _relations(node, token, room_id, root,
                              query=f"?limit=2&from={first['next_batch']}")
    assert [e["event_id"] for e in rest["chunk"]] == replies[:1]
    assert "next_batch" not in rest and rest["prev_batch"] == first["next_batch"]


def test_relations_filter_by_relation_and_event_type_oldest_first_forwards(
        engine: Engine) -> None:
    node, room_id, token, root = _room(engine)
    reply = _send(node, token, room_id, _relates("m.thread", root))
    reaction = _send(node, token, room_id, {"m.relates_to": {
        "rel_type": "m.annotation", "event_id": root, "key": "👍"}}, "m.reaction")
    reference = _send(node, token, room_id, _relates("m.reference", root))
    _, by_rel = _relations(node, token, room_id, root, "/m.annotation")
    assert [e["event_id"] for e in by_rel["chunk"]] == [reaction]
    _, by_type = _relations(node, token, room_id, root, "/m.thread/m.room.message")
    assert [e["event_id"] for e in by_type["chunk"]] == [reply]
    _, forwards = _relations(node, token, room_id, root, query="?dir=f")
    assert [e["event_id"] for e in forwards["chunk"]] == [reply, reaction, reference]


def test_recurse_follows_relations_of_relations_and_says_how_deep(engine: Engine) -> None:
    node, room_id, token, root = _room(engine)
    reply = _send(node, token, room_id, _relates("m.thread", root))
    edit = _send(node, token, room_id, _relates("m.replace", reply))
    _, flat = _relations(node, token, room_id, root)
    assert [e["event_id"] for e in flat["chunk"]] == [reply] and "recursion_depth" not in flat
    _, deep = _relations(node, token, room_id, root, query="?recurse=true")
    assert [e["event_id"] for e in deep["chunk"]] == [edit, reply]
    assert deep["recursion_depth"] == 2


def test_a_redacted_relation_drops_out(engine: Engine) -> None:
    node, room_id, token, root = _room(engine)
    edit = _send(node, token, room_id, _relates("m.replace", root))
    status, _ = node.call("PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/redact/"
                                 f"{quote(edit)}/r1", token, {})
    assert status == 200
    _, body = _relations(node, token, room_id, root)
    assert body["chunk"] == []


def test_a_user_outside_the_room_cannot_read_its_relations(engine: Engine) -> None:
    node, room_id, _token, root = _room(engine)
    _, stranger = node.register("stranger")
    status, body = _relations(node, stranger, room_id, root)
    assert status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_an_unknown_parent_event_is_not_found(engine: Engine) -> None:
    node, room_id, token, _root = _room(engine)
    status, body = _relations(node, token, room_id, "$unknown")
    assert status == 404 and body["errcode"] == "M_NOT_FOUND"


def _threads(node: InProcessNode, token: str, room_id: str, query: str = "") -> Any:
    status, body = node.call("GET", f"/_matrix/client/v1/rooms/{quote(room_id)}/threads{query}",
                             token)
    assert status == 200, body
    return body


def test_threads_come_by_latest_reply_with_their_summary(engine: Engine) -> None:
    node, room_id, token, first = _room(engine)
    second = _send(node, token, room_id, {"msgtype": "m.text", "body": "second root"})
    _send(node, token, room_id, _relates("m.thread", first))
    _send(node, token, room_id, _relates("m.thread", second))
    latest = _send(node, token, room_id, _relates("m.thread", first))
    body = _threads(node, token, room_id, "?limit=1")
    assert [e["event_id"] for e in body["chunk"]] == [first]
    summary = body["chunk"][0]["unsigned"]["m.relations"]["m.thread"]
    assert summary["latest_event"]["event_id"] == latest
    assert summary["count"] == 2 and summary["current_user_participated"] is True
    rest = _threads(node, token, room_id, f"?limit=1&from={body['next_batch']}")
    assert [e["event_id"] for e in rest["chunk"]] == [second] and "next_batch" not in rest


def test_participated_threads_are_those_the_user_started_or_replied_to(
        engine: Engine) -> None:
    node, room_id, token, root = _room(engine)
    other = node.register("other")
    status, _ = node.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/join",
                          other[1], {})
    assert status == 200
    theirs = _send(node, other[1], room_id, {"msgtype": "m.text", "body": "their root"})
    _send(node, token, room_id, _relates("m.thread", theirs))
    _send(node, token, room_id, _relates("m.thread", root))
    untouched = _send(node, token, room_id, {"msgtype": "m.text", "body": "untouched"})
    _send(node, token, room_id, _relates("m.thread", untouched))
    replied = _send(node, token, room_id, {"msgtype": "m.text", "body": "replied"})
    _send(node, token, room_id, _relates("m.thread", replied))
    _send(node, other[1], room_id, _relates("m.thread", replied))
    body = _threads(node, other[1], room_id, "?include=participated")
    assert [e["event_id"] for e in body["chunk"]] == [replied, theirs]
    everything = _threads(node, other[1], room_id)
    assert [e["event_id"] for e in everything["chunk"]] == [replied, untouched, root, theirs]


def _react(node: InProcessNode, token: str, room_id: str, target: str, key: str,
           txn: str) -> tuple[int, Any]:
    return node.call(
        "PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.reaction/{txn}", token,
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": target, "key": key}})


def test_a_duplicate_annotation_is_refused(engine: Engine) -> None:
    node, room_id, token, root = _room(engine)
    assert _react(node, token, room_id, root, "👍", "r1")[0] == 200
    status, body = _react(node, token, room_id, root, "👍", "r2")
    assert status == 400 and body["errcode"] == "M_DUPLICATE_ANNOTATION"
    assert _react(node, token, room_id, root, "👎", "r3")[0] == 200


def test_a_retried_annotation_send_answers_its_event(engine: Engine) -> None:
    node, room_id, token, root = _room(engine)
    status, first = _react(node, token, room_id, root, "👍", "r1")
    assert status == 200
    assert _react(node, token, room_id, root, "👍", "r1") == (200, first)


def test_an_annotation_may_be_sent_again_once_the_first_is_redacted(engine: Engine) -> None:
    node, room_id, token, root = _room(engine)
    _, first = _react(node, token, room_id, root, "👍", "r1")
    status, _ = node.call("PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/redact/"
                                 f"{quote(first['event_id'])}/x1", token, {})
    assert status == 200
    assert _react(node, token, room_id, root, "👍", "r2")[0] == 200


def _aggregations(node: InProcessNode, token: str, room_id: str, event_id: str) -> Any:
    status, event = node.call(
        "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/event/{quote(event_id)}", token)
    assert status == 200, event
    _, page = node.call("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/messages?dir=b"
                               "&limit=50", token)
    in_page = [e for e in page["chunk"] if e["event_id"] == event_id]
    assert in_page and in_page[0]["unsigned"].get("m.relations") == \
        event["unsigned"].get("m.relations")
    return event["unsigned"].get("m.relations")


def test_events_served_carry_their_thread_edit_and_reference_aggregations(
        engine: Engine) -> None:
    node, room_id, token, root = _room(engine)
    _send(node, token, room_id, _relates("m.thread", root))
    reply = _send(node, token, room_id, _relates("m.thread", root))
    _send(node, token, room_id, _relates("m.replace", root))
    edit = _send(node, token, room_id, _relates("m.replace", root))
    reference = _send(node, token, room_id, _relates("m.reference", root))
    found = _aggregations(node, token, room_id, root)
    assert found["m.thread"]["latest_event"]["event_id"] == reply
    assert found["m.thread"]["count"] == 2
    assert found["m.thread"]["current_user_participated"] is True
    assert found["m.replace"]["event_id"] == edit
    assert set(found["m.replace"]) == {"event_id", "sender", "origin_server_ts"}
    assert found["m.reference"] == {"chunk": [{"event_id": reference}]}


def test_a_redacted_edit_no_longer_applies(engine: Engine) -> None:
    node, room_id, token, root = _room(engine)
    first = _send(node, token, room_id, _relates("m.replace", root))
    second = _send(node, token, room_id, _relates("m.replace", root))
    status, _ = node.call("PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/redact/"
                                 f"{quote(second)}/x1", token, {})
    assert status == 200
    assert _aggregations(node, token, room_id, root)["m.replace"]["event_id"] == first


def test_an_event_without_relations_has_no_aggregations(engine: Engine) -> None:
    node, room_id, token, root = _room(engine)
    assert _aggregations(node, token, room_id, root) is None


def test_a_member_who_left_sees_no_aggregated_reply_sent_after_they_left(
        engine: Engine) -> None:
    node = engine.node()
    room_id, token, [member] = node.room_with_members(1, "relations")
    root = _send(node, token, room_id, {"msgtype": "m.text", "body": "root"})
    before = _send(node, token, room_id, _relates("m.thread", root))
    status, _ = node.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/leave",
                          member, {})
    assert status == 200
    _send(node, token, room_id, _relates("m.thread", root))  # after they left
    thread = _aggregations(node, member, room_id, root)["m.thread"]
    assert (thread["latest_event"]["event_id"], thread["count"]) == (before, 1)
