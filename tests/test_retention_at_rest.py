"""The retention purge on a node that seals what it stores (encryption at rest), both engines:
the expired message and its copy still queued for another server are pruned, and read back
redacted through the at-rest layer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.federation_queue import NewPdu
from tests.at_rest_helpers import MARKER, at_rest_config, key_file
from tests.node_engines import Engine, run_for
from tests.retention_room import Room
from tests.storage_helpers import result_of

LIFETIME_S = 3600
RETENTION = {"enabled": True, "default_policy": {"max_lifetime": f"{LIFETIME_S}s"},
             "purge_interval": "10m"}


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: Any, tmp_path: Path) -> Iterator[Engine]:
    made = Engine(request.param, tmp_path,
                  {**at_rest_config(key_file(tmp_path)), "retention": RETENTION})
    try:
        yield made
    finally:
        made.close()


def test_a_sealed_message_and_its_sealed_queued_copy_are_purged(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    event_id = room.send(MARKER)
    event = local.run(local.node.stores.events.get_events([event_id]))[event_id]
    queue = local.node.stores.federation_queue
    result_of(queue.enqueue([NewPdu("peer.test", event_id, dict(event.pdu))]))
    run_for(local, LIFETIME_S + 1)
    assert local.settle(local.node.retention_purge.purge(), turns=200) == 1
    stored = local.run(local.node.stores.events.get_events([event_id]))[event_id]
    queued = result_of(queue.get_batch("peer.test")).pdus[0].pdu
    assert (stored.content, queued["content"]) == ({}, {})
