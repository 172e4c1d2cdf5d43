"""Refusal counters survive a restart (broker/refusal_counts.py over storage/refusal_counts.py),
on both engines: counting is a memory increment, what was counted is added to the database
every FLUSH_SECONDS and at shutdown, and a start adds the kept counts to the counters.

The interval is a fake reactor's, advanced instead of waited on.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock as FakeReactor

from broker.refusal_counts import FLUSH_SECONDS, KeptCounts
from storage.database import Database
from storage.refusal_counts import RefusalCountStore
from tests.storage_helpers import result_of

RULE = "official_group_verified_only"
OTHER = "member_limit"


def kept(database: Database) -> tuple[KeptCounts, Counter[str], Counter[str]]:
    """A process's counters (the policy's and the tags') kept in ``database``, loaded."""
    policy: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    counts = KeptCounts(RefusalCountStore(database), {"policy": policy, "message_tags": tags})
    result_of(defer.ensureDeferred(counts.load()))
    return counts, policy, tags


def flush(counts: KeptCounts) -> int:
    return int(result_of(defer.ensureDeferred(counts.flush())))


# -- the store -----------------------------------------------------------------------------------
def test_counts_added_in_two_writes_sum_up_per_counter_and_rule(database: Database) -> None:
    store = RefusalCountStore(database)
    result_of(store.add({"policy": {RULE: 2}, "message_tags": {"unknown_tag": 1}}))
    result_of(store.add({"policy": {RULE: 3, OTHER: 1}}))
    assert result_of(store.totals()) == {"policy": {RULE: 5, OTHER: 1},
                                         "message_tags": {"unknown_tag": 1}}


def test_nothing_added_writes_nothing(database: Database) -> None:
    store = RefusalCountStore(database)
    result_of(store.add({"policy": {RULE: 0}}))
    assert result_of(store.totals()) == {}


# -- kept across restarts ------------------------------------------------------------------------
def test_counting_writes_nothing_until_the_interval_has_passed(database: Database) -> None:
    counts, policy, _ = kept(database)
    reactor = FakeReactor()
    counts.start(reactor)
    policy[RULE] += 1
    reactor.advance(FLUSH_SECONDS - 0.1)
    assert result_of(counts.store.totals()) == {}
    reactor.advance(0.1)
    assert result_of(counts.store.totals()) == {"policy": {RULE: 1}}


def test_a_restart_starts_from_the_counts_kept(database: Database) -> None:
    counts, policy, tags = kept(database)
    policy[RULE] += 2
    tags["unknown_tag"] += 1
    result_of(counts.stop())  # the write at shutdown
    _, policy_again, tags_again = kept(database)
    assert (policy_again, tags_again) == (Counter({RULE: 2}), Counter({"unknown_tag": 1}))


def test_each_write_adds_only_what_was_counted_since_the_last(database: Database) -> None:
    counts, policy, _ = kept(database)
    policy[RULE] += 2
    assert flush(counts) == 2
    policy[RULE] += 1
    policy[OTHER] += 1
    assert (flush(counts), flush(counts)) == (2, 0)
    assert result_of(counts.store.totals()) == {"policy": {RULE: 3, OTHER: 1}}


def test_counts_loaded_at_start_are_not_written_again(database: Database) -> None:
    first, policy, _ = kept(database)
    policy[RULE] += 4
    flush(first)
    second, policy_again, _ = kept(database)
    policy_again[RULE] += 1
    assert flush(second) == 1
    assert result_of(second.store.totals()) == {"policy": {RULE: 5}}


def test_processes_sharing_the_database_each_add_their_own(database: Database) -> None:
    one, policy_one, _ = kept(database)
    two, policy_two, _ = kept(database)
    policy_one[RULE] += 1
    policy_two[RULE] += 2
    flush(one)
    flush(two)
    assert result_of(one.store.totals()) == {"policy": {RULE: 3}}


class FailingOnce(RefusalCountStore):
    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.failed = False

    def add(self, added: Any) -> defer.Deferred[None]:
        if not self.failed:
            self.failed = True
            return defer.fail(ConnectionError("database away"))
        return super().add(added)


def test_a_failed_write_is_kept_for_the_next(database: Database) -> None:
    policy: Counter[str] = Counter()
    counts = KeptCounts(FailingOnce(database), {"policy": policy})
    reactor = FakeReactor()
    counts.start(reactor)
    policy[RULE] += 1
    reactor.advance(FLUSH_SECONDS)  # fails, logged
    policy[RULE] += 1
    reactor.advance(FLUSH_SECONDS)
    assert result_of(counts.store.totals()) == {"policy": {RULE: 2}}
