"""Joining a room on a server this node does not federate with: 403 M_FORBIDDEN, no attempt."""

from __future__ import annotations

from urllib.parse import quote

from tests.node_harness import NodeProcess
from tests.room_helpers import V3


def test_join_by_alias_on_a_server_not_federated_with_is_forbidden(any_node: NodeProcess
                                                                   ) -> None:
    alice = any_node.register()
    body = alice.post(f"{V3}/join/{quote('#monkeys:matrix.org')}", {})
    assert alice.status == 403 and body["errcode"] == "M_FORBIDDEN"
    assert "matrix.org" in body["error"]


def test_join_by_room_id_through_a_server_not_federated_with_is_forbidden(
        any_node: NodeProcess) -> None:
    alice = any_node.register()
    body = alice.post(f"{V3}/join/{quote('!abc:matrix.org')}", {},
                      params={"server_name": "matrix.org"})
    assert alice.status == 403 and body["errcode"] == "M_FORBIDDEN"
    assert alice.get(f"{V3}/joined_rooms") == {"joined_rooms": []}
