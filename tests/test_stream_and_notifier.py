"""The shared stream position, the notifier, typing and rate limits (in-memory pieces)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import task

from broker.config import RateLimit
from broker.errors import LimitExceeded
from broker.notifier import Notifier
from broker.ratelimit import RateLimiter
from broker.sync.tokens import InvalidToken, SyncToken
from broker.typing_tracker import TypingTracker
from storage.stream import StreamIdGenerator


class FakeClock:
    def __init__(self) -> None:
        self.reactor = task.Clock()

    def time(self) -> float:
        return self.reactor.seconds()

    def time_ms(self) -> int:
        return int(self.reactor.seconds() * 1000)

    def call_later(self, seconds: float, func: Any, *args: Any) -> Any:
        return self.reactor.callLater(seconds, func, *args)


def test_stream_advances_only_when_every_smaller_id_is_finished() -> None:
    stream = StreamIdGenerator(10)
    first, second = stream.allocate(1)[0], stream.allocate(1)[0]
    stream.finish([second])
    assert stream.current_token() == 10
    stream.finish([first])
    assert stream.current_token() == 12


def test_abandoned_ids_do_not_block_the_stream() -> None:
    stream = StreamIdGenerator(0)
    ids = stream.allocate(3)
    stream.finish(ids)
    assert stream.current_token() == 3


def test_notifier_wakes_only_the_concerned_user() -> None:
    clock = FakeClock()
    notifier = Notifier(clock, lambda room: ["@a:x"] if room == "!r" else [])
    woke: list[str] = []
    notifier.wait_for_user("@a:x", 30).addCallback(lambda _: woke.append("a"))
    notifier.wait_for_user("@b:x", 30).addCallback(lambda _: woke.append("b"))
    notifier.notify(rooms=["!r"], position=5)
    clock.reactor.advance(0)
    assert woke == ["a"]
    assert notifier.room_changed_since("!r", 4) and not notifier.room_changed_since("!r", 5)


def test_notifier_wait_times_out() -> None:
    clock = FakeClock()
    notifier = Notifier(clock, lambda room: [])
    fired: list[bool] = []
    notifier.wait_for_user("@a:x", 2).addCallback(lambda _: fired.append(True))
    clock.reactor.advance(1.9)
    assert fired == []
    clock.reactor.advance(0.2)
    assert fired == [True] and notifier.waiting_count() == 0


def test_changes_before_start_are_assumed() -> None:
    notifier = Notifier(FakeClock(), lambda room: [])
    notifier.start_position = 100
    assert notifier.user_changed_since("@a:x", 50)
    assert not notifier.user_changed_since("@a:x", 100)


def test_typing_expires_after_timeout() -> None:
    clock = FakeClock()
    typing = TypingTracker(clock, Notifier(clock, lambda room: []))
    typing.set_typing("!r", "@a:x", True, 1000)
    serial = typing.serial
    assert typing.typing_users("!r") == ["@a:x"]
    clock.reactor.advance(1.5)
    assert typing.typing_users("!r") == []
    assert typing.changed_since("!r", serial)


def test_typing_remembers_the_last_change_of_at_most_max_room_serials_rooms() -> None:
    clock = FakeClock()
    typing = TypingTracker(clock, Notifier(clock, lambda room: []), max_room_serials=3)
    for i in range(10):
        typing.set_typing(f"!r{i}", "@a:x", True, 1000)
    assert len(typing._room_serial) == 3
    clock.reactor.advance(1.5)  # every typing notice expires
    assert typing._typing == {}


def test_typing_of_a_forgotten_room_may_differ_for_serials_before_it_was_forgotten() -> None:
    clock = FakeClock()
    typing = TypingTracker(clock, Notifier(clock, lambda room: []), max_room_serials=2)
    before = typing.serial
    typing.set_typing("!old", "@a:x", True, 1000)
    typing.set_typing("!b", "@a:x", True, 1000)
    typing.set_typing("!c", "@a:x", True, 1000)  # !old is forgotten
    assert typing.changed_since("!old", before)
    assert not typing.changed_since("!old", typing.serial)
    assert not typing.changed_since("!never", typing.serial)


def test_typing_stopped_by_someone_not_typing_leaves_nothing_behind() -> None:
    clock = FakeClock()
    typing = TypingTracker(clock, Notifier(clock, lambda room: []))
    typing.set_typing("!r", "@a:x", False, 0)
    assert typing._typing == {}


def test_rate_limiter_refills_over_time() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"messages": RateLimit(per_second=1.0, burst=2)}, True, clock)
    limiter.check("messages", "@a:x")
    limiter.check("messages", "@a:x")
    with pytest.raises(LimitExceeded) as refused:
        limiter.check("messages", "@a:x")
    assert refused.value.errcode == "M_LIMIT_EXCEEDED" and refused.value.retry_after_ms > 0
    clock.reactor.advance(1.1)
    limiter.check("messages", "@a:x")


def test_rate_limiter_keeps_a_limited_key_limited_while_many_other_keys_come_and_go() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"messages": RateLimit(per_second=0.0, burst=1)}, True, clock,
                          max_keys=10)
    limiter.check("messages", "@a:x")
    for i in range(100):
        limiter.check("messages", f"198.51.100.{i}")
        with pytest.raises(LimitExceeded):
            limiter.check("messages", "@a:x")


def test_rate_limiter_holds_buckets_for_at_most_max_keys_keys() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"messages": RateLimit(per_second=0.0, burst=1)}, True, clock,
                          max_keys=10)
    for i in range(100):
        limiter.check("messages", f"198.51.100.{i}")
    assert len(limiter._buckets) == 10


def test_rate_limiter_exempts_admins_and_can_be_disabled() -> None:
    clock = FakeClock()
    limiter = RateLimiter({"messages": RateLimit(per_second=0.0, burst=1)}, True, clock)
    for _ in range(5):
        limiter.check("messages", "@admin:x", exempt=True)
    off = RateLimiter({"messages": RateLimit(per_second=0.0, burst=1)}, False, clock)
    for _ in range(5):
        off.check("messages", "@a:x")


def test_sync_token_round_trip_and_rejection() -> None:
    assert SyncToken.parse(str(SyncToken(42, 7))) == SyncToken(42, 7)
    assert SyncToken.parse("s5") == SyncToken(5, 0)
    assert SyncToken.parse("s-7") == SyncToken(-7, 0)  # backfilled history sorts below zero
    for bad in ("", "x1", "s1_x", "sabc", "s1_-2"):
        with pytest.raises(InvalidToken):
            SyncToken.parse(bad)


def test_room_data_changes_are_told_apart_from_events() -> None:
    notifier = Notifier(FakeClock(), lambda room: [])
    notifier.notify(rooms=["!r"], position=5)
    assert notifier.room_changed_since("!r", 4)
    assert not notifier.room_data_changed_since("!r", 4)
    notifier.notify(rooms=["!r"], position=6, room_data=True)
    assert notifier.room_data_changed_since("!r", 5)
