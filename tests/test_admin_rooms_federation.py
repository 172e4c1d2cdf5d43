"""A room shut down through the admin API, seen over federation: a real node (each engine) and a
signed fake peer whose user joined the room. The local members leave, the peer's user stays,
and the node refuses the peer's joins and invites into the room."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.fake_peer import FED_V2
from tests.node_harness import Client
from tests.peer_env import ENGINES, Env, Joined, join_public_room, peer_env

ADMIN = "/_broker/admin/v1"


@pytest.fixture(scope="module", params=ENGINES)
def env(request: Any, tmp_path_factory: Any) -> Iterator[Env]:
    with peer_env(tmp_path_factory.mktemp("shutdown"), request.param) as running:
        yield running


@pytest.fixture(scope="module")
def admin(env: Env) -> Client:
    """A node admin of the running node (granted with the ``broker`` command)."""
    client = env.node.register()
    subprocess.run([sys.executable, "-m", "broker", "roles", "grant", "--config",
                    str(env.node.config_path), "--user", client.user_id, "--role",
                    "node_admin"], check=True, capture_output=True)
    return client


@pytest.fixture
def shut(env: Env, admin: Client) -> Joined:
    """A public room with a local member and the peer's user, shut down."""
    joined = join_public_room(env)
    answer = admin.post(f"{ADMIN}/rooms/{quote(joined.room_id)}/shutdown", {"reason": "Spam"})
    assert admin.status == 200 and answer["done"], answer
    return joined


def test_the_local_members_leave_and_the_remote_member_stays(shut: Joined, admin: Client
                                                             ) -> None:
    room = admin.get(f"{ADMIN}/rooms/{quote(shut.room_id)}")
    assert (room["local_members"], room["joined_members"]) == ([], 1)


def test_a_join_over_federation_is_refused(env: Env, shut: Joined) -> None:
    response = env.peer.make_join(env.node, shut.room_id, env.peer.user_id())
    assert (response.status_code, response.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert "shut down" in response.json()["error"]


def test_an_invite_over_federation_is_refused(env: Env, shut: Joined) -> None:
    invitee = env.node.register().user_id
    invite = env.peer.build_event(shut.room, shut.remote_user, "m.room.member",
                                  {"membership": "invite"}, state_key=invitee)
    response = env.peer.request(
        env.node, "PUT", f"{FED_V2}/invite/{quote(shut.room_id, safe='')}/"
        f"{quote(invite.event_id, safe='')}",
        {"event": invite.pdu, "room_version": shut.room.room_version.identifier,
         "invite_room_state": []})
    assert (response.status_code, response.json()["errcode"]) == (403, "M_FORBIDDEN")
    assert "shut down" in response.json()["error"]
