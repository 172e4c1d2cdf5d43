"""The notifier remembers the last change position of a bounded number of users and rooms:
the least recently changed are forgotten first, and for a forgotten key it answers "changed"
for any position before the newest one it forgot."""

from __future__ import annotations

import pytest

from broker.notifier import ChangePositions, Notifier
from tests.test_stream_and_notifier import FakeClock


def test_a_remembered_key_answers_exactly() -> None:
    positions = ChangePositions(2)
    positions.record("a", 5)
    assert positions.changed_since("a", 4) and not positions.changed_since("a", 5)


def test_an_unknown_key_has_not_changed_while_nothing_was_forgotten() -> None:
    positions = ChangePositions(2)
    positions.record("a", 5)
    assert not positions.changed_since("b", 0)


def test_past_the_budget_the_least_recently_changed_key_is_forgotten() -> None:
    positions = ChangePositions(2)
    positions.record("a", 1)
    positions.record("b", 2)
    positions.record("a", 3)
    positions.record("c", 4)
    assert len(positions) == 2 and positions.low_water == 2
    assert not positions.changed_since("a", 3) and not positions.changed_since("c", 4)


def test_a_forgotten_key_reads_as_changed_before_the_low_water_mark() -> None:
    positions = ChangePositions(1)
    positions.record("a", 7)
    positions.record("b", 9)
    assert positions.changed_since("a", 6)
    assert not positions.changed_since("a", 7)


def test_a_key_never_seen_reads_as_changed_before_the_low_water_mark() -> None:
    positions = ChangePositions(1)
    positions.record("a", 7)
    positions.record("b", 9)
    assert positions.changed_since("z", 6) and not positions.changed_since("z", 7)


def test_a_zero_budget_is_refused() -> None:
    with pytest.raises(ValueError):
        ChangePositions(0)


def test_the_notifier_keeps_no_more_users_than_its_budget() -> None:
    notifier = Notifier(FakeClock(), lambda room: [], positions=3)
    for i in range(10):
        notifier.notify(users=[f"@u{i}:x"], rooms=[f"!r{i}"], position=i + 1)
    assert not notifier.user_changed_since("@u9:x", 10)
    assert notifier.user_changed_since("@u0:x", 0)  # forgotten: assumed changed
    assert not notifier.user_changed_since("@u0:x", 7)  # after the low-water mark
    assert notifier.room_changed_since("!r0", 6) and not notifier.room_changed_since("!r0", 7)
