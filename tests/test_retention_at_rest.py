"""The retention purge on a node that seals what it stores (encryption at rest), both engines:
the expired message and its copy still queued for another server are pruned, and read back
redacted through the at-rest layer; a sealed file only an expired message used is removed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer, threads

from broker.media.files import stored_key_id, write_atomically
from storage.federation_queue import NewPdu
from storage.media import MediaRecord
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


def test_a_sealed_file_only_an_expired_message_used_leaves_the_media_folder(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "deferToThread",  # the fake reactor runs no pool threads
                        lambda f, *args, **kw: defer.maybeDeferred(f, *args, **kw))
    local = engine.node()
    room = Room(local)
    files = local.node.media.files
    path = files.content_path("Sealed0001")
    write_atomically(path, iter([MARKER.encode() * 10]), at_rest=files.at_rest)
    result_of(local.node.stores.media.store_media(MediaRecord(
        "Sealed0001", "@alice:clock.test", "image/png", None, 10 * len(MARKER), "",
        local.node.clock.time_ms())))
    assert stored_key_id(path) is not None  # sealed on disk
    room.ok("PUT", f"{room.path}/send/m.room.message/sealed-image",
            {"msgtype": "m.image", "body": "x.png", "url": "mxc://clock.test/Sealed0001"})
    run_for(local, LIFETIME_S + 1)
    local.settle(local.node.retention_purge.purge(), turns=200)
    assert not path.exists()
    assert local.node.retention_purge.counts.media == 1
