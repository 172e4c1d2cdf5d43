"""Undelivered to-device messages honour ``retention.undelivered_to_device_days``: the purge
deletes and counts those older, and a sync never delivers them late, before the purge ran
(both engines)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from twisted.internet import defer

from broker.e2ee.to_device import DAY_MS, ToDevice
from storage.database import Database
from storage.to_device import ToDeviceStore
from tests.storage_helpers import result_of

BOB = "@bob:example.org"
NOW = 100 * DAY_MS


def _service(database: Database, days: int) -> ToDevice:
    clock: Any = SimpleNamespace(time_ms=lambda: NOW)
    database.run_sync("device", lambda cur: cur.execute(
        "INSERT INTO devices (user_id, device_id, created_ts) VALUES (?, ?, ?)",
        (BOB, "B1", 0)))
    unused: Any = None
    return ToDevice(ToDeviceStore(database), unused, unused, clock, unused, "example.org",
                    None, days)


def _received(service: ToDevice, days_ago: int, stream_id: int) -> None:
    result_of(service.store.deliver("@alice:example.org", "m.dummy", {BOB: {"B1": {
        "age": days_ago}}}, stream_id, NOW - days_ago * DAY_MS))


def test_purge_keeps_messages_younger_than_the_retention(database: Database,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    service = _service(database, days=2)
    _received(service, 3, 1)
    _received(service, 1, 2)
    with caplog.at_level(logging.INFO, logger="broker.e2ee.to_device"):
        result_of(defer.ensureDeferred(service.purge()))
    messages, _ = result_of(service.store.take_pending(BOB, "B1", None, 10, 100))
    assert [m.content["age"] for m in messages] == [1]
    assert "deleted 1 undelivered messages older than 2 days" in caplog.text


def _synced_ages(service: ToDevice) -> list[int]:
    requester: Any = SimpleNamespace(user_id=BOB, device_id="B1")
    fields = result_of(defer.ensureDeferred(service.sync_fields(requester, None, 10)))
    return [e["content"]["age"] for e in fields.get("to_device", {}).get("events", [])]


def test_an_expired_message_is_not_delivered_before_the_purge_deletes_it(
        database: Database) -> None:
    service = _service(database, days=2)
    _received(service, 3, 1)
    _received(service, 1, 2)
    assert _synced_ages(service) == [1]


def test_the_messages_deleted_undelivered_are_counted(database: Database) -> None:
    service = _service(database, days=2)
    _received(service, 3, 1)
    result_of(defer.ensureDeferred(service.purge()))
    assert service.summary() == {"max_age": 2 * DAY_MS, "deleted_expired": 1,
                                 "deleted_orphaned": 0}
