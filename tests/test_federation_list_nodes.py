"""Sovereign control end to end: a node federates with the members of a signed federation
list, and refuses servers that are not on it (inbound and outbound)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import yaml

from broker.clock import real_clock
from federation.federation_list import create_list, generate_authority_key
from protocol.signing import encode_verify_key
from tests.node_harness import NodeProcess
from tests.room_helpers import V3, create_room


@pytest.fixture(scope="module")
def listed(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess, NodeProcess]]:
    """``hub`` trusts a federation list naming ``member``; ``outsider`` is not on it."""
    hub = NodeProcess(Path(tmp_path_factory.mktemp("hub")), federation=True)
    member = NodeProcess(Path(tmp_path_factory.mktemp("member")), federation=True)
    outsider = NodeProcess(Path(tmp_path_factory.mktemp("outsider")), federation=True)
    authority = generate_authority_key()
    # The nodes run on the wall clock: the list is signed as of now.
    document = create_list([member.server_name], 1, "national-authority", authority,
                           issued_ts=real_clock().time_ms())
    list_path = hub.workdir / "federation-list.json"
    list_path.write_text(json.dumps(document))
    config = yaml.safe_load(hub.config_path.read_text())
    config["federation"]["federation_list"] = {
        "path": str(list_path), "authority_key": encode_verify_key(authority)}
    hub.config_path.write_text(yaml.safe_dump(config))
    member.allow(hub)
    outsider.allow(hub)
    nodes = (hub, member, outsider)
    for node in nodes:
        node.start()
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def test_member_of_the_federation_list_can_join(
        listed: tuple[NodeProcess, NodeProcess, NodeProcess]) -> None:
    hub, member, _ = listed
    host, guest = hub.register(), member.register()
    room_id = create_room(host, preset="public_chat")
    body = guest.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": hub.server_name})
    assert guest.status == 200, body


def test_server_not_on_the_list_is_refused(
        listed: tuple[NodeProcess, NodeProcess, NodeProcess]) -> None:
    hub, _, outsider = listed
    host, stranger = hub.register(), outsider.register()
    room_id = create_room(host, preset="public_chat")
    body = stranger.post(f"{V3}/join/{quote(room_id)}", {},
                         params={"server_name": hub.server_name})
    assert stranger.status == 403, body
    assert "not allowed" in body["error"]


def test_hub_does_not_contact_servers_off_the_list(
        listed: tuple[NodeProcess, NodeProcess, NodeProcess]) -> None:
    hub, _, outsider = listed
    host = hub.register()
    room_id = create_room(host, preset="private_chat")
    body = host.post(f"/_matrix/client/v3/rooms/{quote(room_id)}/invite",
                     {"user_id": f"@someone:{outsider.server_name}"})
    assert host.status in (403, 502), body
    assert "not allowed" in body["error"]
