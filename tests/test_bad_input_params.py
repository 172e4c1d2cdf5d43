"""Integers in query strings and tokens beyond what the database holds: 400 M_INVALID_PARAM."""

from __future__ import annotations

import pytest

from tests.node_harness import NodeProcess
from tests.room_helpers import V3, create_room, room_path

HUGE = f"s{10**30}_0"
HUGE_NEGATIVE = f"s-{10**30}_0"


@pytest.mark.parametrize("token", [HUGE, HUGE_NEGATIVE])
def test_messages_to_token_out_of_range_is_invalid_param(any_node: NodeProcess,
                                                        token: str) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = alice.get(room_path(room_id, "messages"), params={"dir": "b", "to": token})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_messages_from_token_out_of_range_is_invalid_param(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = alice.get(room_path(room_id, "messages"), params={"dir": "f", "from": HUGE_NEGATIVE})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


@pytest.mark.parametrize("name", ["from", "to"])
def test_key_changes_token_out_of_range_is_invalid_param(any_node: NodeProcess,
                                                        name: str) -> None:
    alice = any_node.register()
    params = {"from": "s0_0", "to": "s1_0", name: HUGE_NEGATIVE if name == "from" else HUGE}
    body = alice.get(f"{V3}/keys/changes", params=params)
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"

