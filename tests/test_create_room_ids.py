"""Rooms v12 take their ID from the hash of the create event: two rooms created alike by the
same user at the same moment still get two IDs (in process, on a clock that does not move)."""

from __future__ import annotations

from tests.inprocess_node import InProcessNode


def _create(local: InProcessNode, token: str) -> str:
    status, body = local.call("POST", "/_matrix/client/v3/createRoom", token,
                              {"preset": "private_chat", "name": "same"})
    assert status == 200, body
    return str(body["room_id"])


def test_two_rooms_created_alike_in_the_same_millisecond_get_two_ids(
        local: InProcessNode) -> None:
    _alice, token = local.register("alice")
    first = _create(local, token)
    second = _create(local, token)
    assert first != second


def test_each_of_two_rooms_created_alike_at_once_keeps_its_own_state(
        local: InProcessNode) -> None:
    alice, token = local.register("alice")
    rooms = [_create(local, token), _create(local, token)]
    joined = local.run(local.node.rooms.user_rooms.joined_rooms(alice.user_id))
    assert sorted(joined) == sorted(rooms)
    for room_id in rooms:
        room = local.run(local.node.rooms.get_room(room_id))
        assert room.membership_of(alice.user_id) == "join"
