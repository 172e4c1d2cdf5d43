"""The statistics of a real node process, on both engines: a fake peer's transaction and
local sends are counted, written when the node stops, and read back through the admin API
after it starts again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.peer_env import Env, join_public_room, peer_env
from tests.room_helpers import send_text


@pytest.fixture(params=["sqlite", "postgres"])
def env(request: Any, tmp_path: Path) -> Iterator[Env]:
    with peer_env(tmp_path, request.param) as running:
        yield running


def test_a_peers_transaction_and_local_sends_are_kept_across_a_stop(env: Env) -> None:
    joined = join_public_room(env)  # one local message
    send_text(joined.local, joined.room_id, "local again")
    event = env.peer.message(joined.room, joined.remote_user, "hello from afar")
    results = env.peer.send_pdus(env.node, joined.room, event)
    assert results[event.event_id] == {}, results
    env.node.stop()  # the counts are written at shutdown
    env.node.start()
    admin = env.node.admin()
    answer = admin.get("/_broker/admin/v1/statistics")
    assert admin.status == 200, answer
    rows = [row for row in answer["rows"] if row["organisation"] is None]  # no organisation
    assert sum(row["messages_sent"] for row in rows) == 2
    assert sum(row["federation"].get(env.peer.server_name, {}).get("pdus_received", 0)
               for row in rows) == 1
