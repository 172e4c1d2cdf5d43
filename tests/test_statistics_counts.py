"""The usage statistics as counted and kept (broker/statistics.py over storage/statistics.py),
on both engines: counts go to the UTC day they happened on, federation traffic and purges to
the node's row, active users are distinct and a second count of a day keeps the larger, and
the hooks of the federation paths count each transaction once.  The clock is a fake
reactor's."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock as FakeReactor

from broker import statistics
from broker.admin.statistics import rows_of
from broker.services.federation_transactions import TransactionReceiver
from broker.statistics import Statistics
from storage.database import Database
from storage.statistics import StatisticsStore
from tests.storage_helpers import result_of

MIDNIGHT_S = 1_767_225_600.0  # 2026-01-01 00:00 UTC
ORGS = {"@vera:node.test": "mha", "@dan:node.test": "mha.dm"}


class ReactorClock:
    def __init__(self, reactor: FakeReactor) -> None:
        self.reactor = reactor

    def time_ms(self) -> int:
        return int(self.reactor.seconds() * 1000)


def counting(database: Database, at_s: float = MIDNIGHT_S + 3600
             ) -> tuple[Statistics, FakeReactor]:
    reactor = FakeReactor()
    reactor.advance(at_s)
    return Statistics(StatisticsStore(database), ReactorClock(reactor), "node.test",
                      ORGS.get), reactor


def written(stats: Statistics) -> None:
    result_of(defer.ensureDeferred(stats.flush()))


def rows(database: Database, first: str = "2026-01-01", last: str = "2026-01-02"
         ) -> dict[tuple[str, str | None], dict[str, Any]]:
    found = rows_of(result_of(StatisticsStore(database).between(first, last)))
    return {(row["day"], row["organisation"]): row for row in found}


def test_counts_go_to_the_utc_day_they_happened_on(database: Database) -> None:
    stats, reactor = counting(database, MIDNIGHT_S + 86_400 - 1)
    stats.message_sent("@vera:node.test")
    reactor.advance(1)
    stats.message_sent("@vera:node.test")
    stats.message_sent("@vera:node.test")
    written(stats)
    found = rows(database)
    assert (found[("2026-01-01", "mha")]["messages_sent"],
            found[("2026-01-02", "mha")]["messages_sent"]) == (1, 2)


def test_federation_traffic_counts_per_peer_in_the_nodes_row(database: Database) -> None:
    stats, _ = counting(database)
    stats.federation_sent("a.example", 3, 1)
    stats.federation_sent("a.example", 2, 0)
    stats.federation_received("b.example", 4, 2)
    written(stats)
    assert rows(database)[("2026-01-01", None)]["federation"] == {
        "a.example": {"pdus_sent": 5, "pdus_received": 0, "edus_sent": 1, "edus_received": 0},
        "b.example": {"pdus_sent": 0, "pdus_received": 4, "edus_sent": 0, "edus_received": 2}}


def test_retention_purges_count_events_in_the_nodes_row(database: Database) -> None:
    stats, _ = counting(database)
    stats.purged(40)
    stats.purged(2)
    written(stats)
    assert rows(database)[("2026-01-01", None)]["retention_purged_events"] == 42


def test_users_of_other_servers_count_in_the_nodes_row(database: Database) -> None:
    stats, _ = counting(database)
    stats.uploaded("@vera:elsewhere.test", 10)
    written(stats)
    assert set(rows(database)) == {("2026-01-01", None)}


def test_an_active_user_counts_once_a_day_however_often_they_act(database: Database) -> None:
    stats, _ = counting(database)
    for _ in range(3):
        stats.active("@vera:node.test")
        stats.message_sent("@vera:node.test")
    written(stats)
    stats.active("@vera:node.test")
    written(stats)
    assert rows(database)[("2026-01-01", "mha")]["active_users"] == 1


def test_a_second_count_of_a_day_keeps_the_larger_not_the_sum(database: Database) -> None:
    first, _ = counting(database)
    first.active("@vera:node.test")
    first.active("@dan:node.test")
    first.active("@pat:node.test")
    written(first)
    again, _ = counting(database)  # a restart the same day
    again.active("@pat:node.test")
    written(again)
    assert rows(database)[("2026-01-01", None)]["active_users"] == 1
    again.active("@sam:node.test")
    again.active("@kim:node.test")
    written(again)
    assert rows(database)[("2026-01-01", None)]["active_users"] == 3


def test_a_past_days_active_users_are_forgotten_once_written(database: Database) -> None:
    stats, reactor = counting(database)
    stats.active("@vera:node.test")
    reactor.advance(86_400)
    written(stats)  # the last count of the day before
    stats.active("@vera:node.test")
    written(stats)
    assert stats.remembered == 1
    found = rows(database)
    assert (found[("2026-01-01", "mha")]["active_users"],
            found[("2026-01-02", "mha")]["active_users"]) == (1, 1)


def test_what_was_written_is_not_written_again(database: Database) -> None:
    stats, _ = counting(database)
    stats.message_sent("@vera:node.test")
    written(stats)
    written(stats)
    assert stats.pending() is None
    assert rows(database)[("2026-01-01", "mha")]["messages_sent"] == 1


# -- the hook of inbound transactions -----------------------------------------------------------
class Nothing:
    async def receive(self, origin: str, edu: Any) -> None:
        return None

    def wake_destination(self, destination: str) -> None:
        return None


def test_an_inbound_transaction_counts_once_even_when_sent_again() -> None:
    receiver = TransactionReceiver("node.test", None, None, None, None, None,  # type: ignore[arg-type]
                                   Nothing(), Nothing(), None)  # type: ignore[arg-type]
    told: list[tuple[str, int, int]] = []
    receiver.on_received = lambda origin, pdus, edus: told.append((origin, pdus, edus))
    edus = [{"edu_type": "m.typing", "content": {}}] * 2
    for _ in range(2):
        result_of(defer.ensureDeferred(receiver.receive("b.example", "t1", [], edus)))
    assert told == [("b.example", 0, 2)]


def test_at_most_the_bound_of_active_users_is_remembered(database: Database,
                                                          monkeypatch: Any) -> None:
    monkeypatch.setattr(statistics, "MAX_ACTIVE_PER_DAY", 2)
    stats, _ = counting(database)
    for name in ("a", "b", "c"):
        stats.active(f"@{name}:node.test")
    written(stats)
    assert (stats.remembered, rows(database)[("2026-01-01", None)]["active_users"]) == (2, 2)
