"""A change of an organisation's profile visibility made by the organisations file (applied at
the node's start) has its members' rooms restated, as a change through the admin API has.

A real node: started with a file in which mha shows names to the public, stopped, started
again with mha hiding them.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

import yaml

from tests.peer_env import node_with_organisations
from tests.room_helpers import create_room
from tests.test_federation_attestation import member_content, verify

PROFILE = "/_matrix/client/v3/profile"


def test_a_setting_changed_by_the_organisations_file_is_restated_at_start(tmp_path: Any
                                                                          ) -> None:
    node, _peer = node_with_organisations(tmp_path, [{"id": "mha", "name": "MHA"}])
    try:
        vera = node.register("vera")
        verify(node, vera)
        vera.put(f"{PROFILE}/{quote(vera.user_id)}/displayname", {"displayname": "Vera Iyer"})
        room_id = create_room(vera, preset="public_chat")
        assert member_content(vera, room_id, vera.user_id)["displayname"] == "Vera Iyer"
        node.stop()
        (tmp_path / "organisations.yaml").write_text(yaml.safe_dump({"organisations": [
            {"id": "mha", "name": "MHA",
             "settings": {"profile_visibility": {"public": []}}}]}))
        node.start()
        deadline = time.monotonic() + 10
        while "displayname" in member_content(vera, room_id, vera.user_id):
            assert time.monotonic() < deadline, "the name was not restated"
            time.sleep(0.1)
    finally:
        node.stop()
