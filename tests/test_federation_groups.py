"""Official groups hold over federation: a node of ours refuses a user of another server (public
here until nodes attest their users) a way into an official group, with the rule's name in the
error, while an informal public room lets the same user in.

A real node (its organisations from the file its config names) and a signed fake peer; the
local user is verified by a ``broker users verify`` command, which the running node takes in
through its change feed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from broker.cli import main
from broker.group_rules import VERIFIED_ONLY
from broker.rooms.room_kind import GROUP_EVENT
from tests.fake_peer import FakePeer
from tests.node_harness import Client, NodeProcess
from tests.peer_env import ALLOWED, assert_error
from tests.room_helpers import create_room

PROFILE = "/_matrix/client/v3/profile"


@pytest.fixture(scope="module")
def env(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, FakePeer, Client]]:
    workdir: Path = tmp_path_factory.mktemp("federation_groups")
    orgs = workdir / "organisations.yaml"
    orgs.write_text(yaml.safe_dump({"organisations": [{"id": "mha", "name": "MHA"}]}))
    peer = FakePeer(ALLOWED)
    node = NodeProcess(workdir, federation=True, overrides={
        "federation.pinned_keys": peer.pinned_key_config(),
        "organisations.path": str(orgs)})
    node.allow_servers(peer.server_name)
    node.start()
    try:
        vera = node.register("vera")
        assert main(["users", "verify", "vera", "--organisation", "mha", "--basis",
                     "document", "--config", str(node.config_path)]) == 0
        _until_verified(vera)
        yield node, peer, vera
    finally:
        node.stop()


def _until_verified(client: Client, timeout: float = 10.0) -> None:
    """Wait for the running node to take in the command's verification (it polls every
    second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = client.get(f"{PROFILE}/{client.user_id}/in.gov.broker.class")
        if answer.get("in.gov.broker.class") == "verified":
            return
        time.sleep(0.1)
    raise AssertionError("the node did not take in the verification")


def _official_group(vera: Client) -> str:
    return create_room(vera, preset="public_chat", initial_state=[
        {"type": GROUP_EVENT, "content": {"kind": "official", "organisation": "mha"}}])


def test_make_join_of_a_remote_user_to_an_official_group_is_refused_naming_the_rule(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    response = peer.make_join(node, _official_group(vera), peer.user_id())
    assert_error(response, 403, "M_FORBIDDEN")
    assert response.json()["in.gov.broker.reason"] == VERIFIED_ONLY


def test_the_same_remote_user_may_join_an_informal_public_room(
        env: tuple[NodeProcess, FakePeer, Client]) -> None:
    node, peer, vera = env
    room_id = create_room(vera, preset="public_chat")
    assert peer.make_join(node, room_id, peer.user_id()).status_code == 200
