"""Notice rooms across two real nodes of ours on loopback (A sends, B's users receive), on
SQLite then PostgreSQL: B joins its user to a notice room of A's organisation account by
itself (the account is verified by A's attestation), the user cannot post there nor leave a
broadcast room; an invite with the marker from a public user of A stays an invite."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.notice_rooms import LEAVE_FORBIDDEN, NOTICE_ROOM
from tests.node_harness import Client
from tests.notice_room_node import NoticeNodeProcess
from tests.peer_env import ENGINES, two_nodes
from tests.room_helpers import V3, room_path

MHA = {"organisation": "mha"}


@pytest.fixture(scope="module", params=ENGINES)
def nodes(request: Any, tmp_path_factory: Any) -> Iterator[tuple[NoticeNodeProcess,
                                                                  NoticeNodeProcess]]:
    orgs = Path(tmp_path_factory.mktemp("notice_orgs")) / "organisations.yaml"
    orgs.write_text(yaml.safe_dump({"organisations": [{"id": "mha", "name": "MHA"}]}))
    with two_nodes(request.param, tmp_path_factory, "notice", {"organisations.path": str(orgs)},
                   node_class=NoticeNodeProcess) as (a, b):
        assert isinstance(a, NoticeNodeProcess) and isinstance(b, NoticeNodeProcess)
        yield a, b


def rooms_of(client: Client) -> dict[str, Any]:
    body = client.get(f"{V3}/sync", params={"timeout": "0"})
    assert client.status == 200, body
    return dict(body["rooms"])


def until_in(client: Client, section: str, room_id: str, timeout: float = 20.0) -> None:
    """Sync until the room is in the user's ``section`` (join, invite)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if room_id in rooms_of(client)[section]:
            return
        time.sleep(0.1)
    raise AssertionError(f"{room_id} never reached {client.user_id}'s {section} rooms")


def test_the_other_node_joins_its_user_to_an_organisations_notice_room(nodes: Any) -> None:
    a, b = nodes
    bob = b.register()
    room_id = a.room_for(MHA, bob.user_id)
    until_in(bob, "join", room_id)
    state = bob.get(room_path(room_id, f"state/{NOTICE_ROOM}/"))
    assert state["kind"] == "broadcast" and state["leave_allowed"] is False
    assert a.room_for(MHA, bob.user_id) == room_id  # reused


def test_the_remote_recipient_cannot_post_nor_leave_a_broadcast_room(nodes: Any) -> None:
    a, b = nodes
    bob = b.register()
    room_id = a.room_for(MHA, bob.user_id)
    until_in(bob, "join", room_id)
    answer = bob.put(room_path(room_id, "send/m.room.message/t1"),
                     {"msgtype": "m.text", "body": "hello"})
    assert (bob.status, answer["errcode"]) == (403, "M_FORBIDDEN")
    answer = bob.post(room_path(room_id, "leave"), {})
    assert (bob.status, answer["in.gov.broker.reason"]) == (403, LEAVE_FORBIDDEN)


def test_an_invite_with_the_marker_from_a_public_user_stays_an_invite(nodes: Any) -> None:
    a, b = nodes
    pat = a.register()  # public: A attests nothing of them
    bob = b.register()
    room_id = a.room_for(pat.user_id, bob.user_id, kind="app")
    until_in(bob, "invite", room_id)
    invite = rooms_of(bob)["invite"][room_id]["invite_state"]["events"]
    mine = [e for e in invite if e["type"] == "m.room.member" and e["state_key"] == bob.user_id]
    assert mine and mine[0]["content"][NOTICE_ROOM] == {"kind": "app"}
    # A verified sender's room, asked for later, is joined; the first is still an invite.
    until_in(bob, "join", a.room_for(MHA, bob.user_id, kind="app"))
    seen = rooms_of(bob)
    assert room_id in seen["invite"] and room_id not in seen["join"]
