"""What a peer may read of a room's history over federation (/backfill, /event,
/get_missing_events, /state_ids), on both engines.

A server reads a room only while one of its users is joined to it, and each event only as the
room's history visibility at that event allows the server's users: ``shared`` and
``world_readable`` events fully, ``invited`` events if one of them was invited or joined then,
``joined`` events if one of them was joined then. Events it may not see are served redacted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from protocol.hashing import compute_event_id
from tests.fake_peer import FakePeer, RoomView
from tests.peer_env import ENGINES, Env, Joined, assert_error, join_public_room, peer_env
from tests.room_helpers import create_room, send_text


@pytest.fixture(scope="module", params=ENGINES)
def env(request: Any, tmp_path_factory: Any) -> Iterator[Env]:
    with peer_env(tmp_path_factory.mktemp("history"), request.param) as running:
        yield running


def with_visibility(visibility: str) -> dict[str, Any]:
    return {"initial_state": [{"type": "m.room.history_visibility", "state_key": "",
                               "content": {"history_visibility": visibility}}]}


def served(response: Any, joined: Joined, key: str = "pdus") -> dict[str, dict[str, Any]]:
    """The events of a backfill / get_missing_events answer, by event ID."""
    assert response.status_code == 200, response.text
    return {compute_event_id(pdu, joined.room.room_version): pdu for pdu in response.json()[key]}


def joined_after(env: Env, visibility: str, secret: str) -> tuple[Joined, str]:
    """A room with ``visibility`` where a local message ``secret`` precedes the peer's join."""
    local = env.node.register()
    room_id = create_room(local, preset="public_chat", **with_visibility(visibility))
    secret_id = send_text(local, room_id, secret)
    user = env.peer.user_id()
    room = env.peer.join(env.node, room_id, user)
    return Joined(local, room_id, room, user), secret_id


def join_event_of(room: RoomView, user: str) -> str:
    return room.state[("m.room.member", user)].event_id


# Cross-room -----------------------------------------------------------------------------------
def test_backfill_from_an_event_of_another_room_returns_nothing_of_it(env: Env) -> None:
    joined = join_public_room(env)
    private = create_room(joined.local, preset="private_chat")
    secret = send_text(joined.local, private, "private room secret")
    answer = served(env.peer.backfill(env.node, joined.room_id, [secret]), joined)
    assert secret not in answer
    assert all(pdu["room_id"] == joined.room_id for pdu in answer.values())


def test_get_missing_events_from_an_event_of_another_room_returns_nothing_of_it(
        env: Env) -> None:
    joined = join_public_room(env)
    private = create_room(joined.local, preset="private_chat")
    send_text(joined.local, private, "private room secret")
    secret = send_text(joined.local, private, "private room later")
    answer = served(env.peer.get_missing_events(env.node, joined.room_id, [secret]), joined,
                    "events")
    assert all(pdu["room_id"] == joined.room_id for pdu in answer.values())


# Visibility at each event ---------------------------------------------------------------------
def test_backfill_serves_events_before_the_join_of_a_joined_room_redacted(env: Env) -> None:
    joined, secret = joined_after(env, "joined", "before the peer joined")
    start = join_event_of(joined.room, joined.remote_user)
    answer = served(env.peer.backfill(env.node, joined.room_id, [start]), joined)
    assert answer[secret]["content"] == {}


def test_event_before_the_join_of_a_joined_room_is_served_redacted(env: Env) -> None:
    _, secret = joined_after(env, "joined", "before the peer joined")
    response = env.peer.get_event(env.node, secret)
    assert response.status_code == 200, response.text
    assert [pdu["content"] for pdu in response.json()["pdus"]] == [{}]


def test_get_missing_events_serves_events_before_the_join_of_a_joined_room_redacted(
        env: Env) -> None:
    joined, secret = joined_after(env, "joined", "before the peer joined")
    start = join_event_of(joined.room, joined.remote_user)
    answer = served(env.peer.get_missing_events(env.node, joined.room_id, [start]), joined,
                    "events")
    assert answer[secret]["content"] == {}


def test_events_after_the_join_of_a_joined_room_are_served_whole(env: Env) -> None:
    joined, _ = joined_after(env, "joined", "before the peer joined")
    after = send_text(joined.local, joined.room_id, "after the peer joined")
    response = env.peer.get_event(env.node, after)
    assert response.status_code == 200, response.text
    assert response.json()["pdus"][0]["content"]["body"] == "after the peer joined"


def test_events_before_the_join_of_a_shared_room_are_served_whole(env: Env) -> None:
    joined, secret = joined_after(env, "shared", "shared before the join")
    start = join_event_of(joined.room, joined.remote_user)
    answer = served(env.peer.backfill(env.node, joined.room_id, [start]), joined)
    assert answer[secret]["content"]["body"] == "shared before the join"


def test_the_servers_own_join_is_served_whole_in_a_joined_room(env: Env) -> None:
    joined, _ = joined_after(env, "joined", "before the peer joined")
    start = join_event_of(joined.room, joined.remote_user)
    response = env.peer.get_event(env.node, start)
    assert response.status_code == 200, response.text
    assert response.json()["pdus"][0]["content"] == {"membership": "join"}


def invite_then_leave(peer: FakePeer, env: Env, joined: Joined) -> str:
    """The peer's joined user invites a second user of the peer and leaves: the peer's server
    then has only an invited user in the room. Returns the invited user."""
    invitee = peer.user_id()
    invite = peer.build_event(joined.room, joined.remote_user, "m.room.member",
                              {"membership": "invite"}, state_key=invitee)
    assert peer.send_pdus(env.node, joined.room, invite) == {invite.event_id: {}}
    assert peer.leave(env.node, joined.room, joined.remote_user).status_code == 200
    return invitee


@pytest.mark.parametrize(("visibility", "content"), [
    ("invited", {"msgtype": "m.text", "body": "while only invited"}),
    ("joined", {}),
])
def test_an_event_sent_while_the_server_had_only_an_invited_user_is_whole_only_if_invited(
        env: Env, visibility: str, content: dict[str, Any]) -> None:
    joined, _ = joined_after(env, visibility, "before the invite")
    invite_then_leave(env.peer, env, joined)
    while_invited = send_text(joined.local, joined.room_id, "while only invited")
    env.peer.join(env.node, joined.room_id, joined.remote_user)
    response = env.peer.get_event(env.node, while_invited)
    assert response.status_code == 200, response.text
    assert response.json()["pdus"][0]["content"] == content


# Which servers may read at all ----------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["backfill", "get_missing_events", "event", "state_ids"])
def test_a_server_with_only_an_invited_user_may_not_read_the_room(env: Env,
                                                                  endpoint: str) -> None:
    joined = join_public_room(env)
    start = join_event_of(joined.room, joined.remote_user)
    invite_then_leave(env.peer, env, joined)
    later = send_text(joined.local, joined.room_id, "after the peer left")
    peer, node = env.peer, env.node
    if endpoint == "backfill":
        response = peer.backfill(node, joined.room_id, [start])
    elif endpoint == "get_missing_events":
        response = peer.get_missing_events(node, joined.room_id, [later])
    elif endpoint == "event":
        response = peer.get_event(node, later)
    else:
        response = peer.request(node, "GET", f"/_matrix/federation/v1/state_ids/"
                                f"{quote(joined.room_id, safe='')}", params={"event_id": later})
    assert_error(response, 403, "M_FORBIDDEN")
