"""Password hashing runs on a bounded pool: never more than ``concurrency`` hashes at once, up to
``queue_limit`` waiting, and beyond that an immediate LimitExceeded with ``retry_after_ms``.

The hash function is blocked on a threading.Event, so every step is decided by the test: the
pool's threads hand their results to the reactor thread through ``callFromThread``, which the
test's reactor queues until the test runs them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from twisted.internet import defer

from broker.errors import LimitExceeded
from broker.passwords import HashingSettings, PasswordHashing
from tests.thread_reactor import WAIT_S, ThreadCallsReactor

CHEAP = {"memory_cost_kib": 8192, "time_cost": 1}


class BlockedHasher:
    """Stands in for Argon2: counts the hashes inside it and holds each until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.inside = 0
        self.most_inside = 0
        self.entered = threading.Semaphore(0)

    def hash(self, password: str) -> str:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.release()
        self.release.wait(WAIT_S)
        with self.lock:
            self.inside -= 1
        return f"hashed:{password}"


@pytest.fixture
def reactor() -> ThreadCallsReactor:
    return ThreadCallsReactor()


@pytest.fixture
def blocked() -> BlockedHasher:
    return BlockedHasher()


@pytest.fixture
def hashing(reactor: ThreadCallsReactor, blocked: BlockedHasher) -> Iterator[PasswordHashing]:
    passwords = PasswordHashing(HashingSettings(concurrency=2, queue_limit=3, **CHEAP), reactor)
    passwords._hasher = blocked  # type: ignore[assignment]
    try:
        yield passwords
    finally:
        blocked.release.set()
        passwords.stop()


def _start(hashing: PasswordHashing, count: int) -> list[defer.Deferred[str]]:
    return [defer.ensureDeferred(hashing.hash(f"pw{i}")) for i in range(count)]


def _refusal(d: defer.Deferred[Any]) -> LimitExceeded:
    failures: list[Any] = []
    d.addErrback(failures.append)
    assert len(failures) == 1, "expected an immediate refusal"
    error = failures[0].value
    assert isinstance(error, LimitExceeded)
    return error


def test_no_more_than_the_concurrency_run_at_once(
        hashing: PasswordHashing, blocked: BlockedHasher, reactor: ThreadCallsReactor) -> None:
    pending = _start(hashing, 5)
    for _ in range(2):
        assert blocked.entered.acquire(timeout=WAIT_S)
    assert hashing.in_progress() == (2, 3)  # the other three wait for a thread
    blocked.release.set()
    for _ in range(5):
        reactor.run_one()
    assert [d.result for d in pending] == [f"hashed:pw{i}" for i in range(5)]
    assert blocked.most_inside == 2


def test_beyond_the_queue_limit_a_hash_is_refused_at_once_with_a_retry_time(
        hashing: PasswordHashing, blocked: BlockedHasher) -> None:
    _start(hashing, 5)  # two running, three waiting
    error = _refusal(defer.ensureDeferred(hashing.hash("one too many")))
    assert error.errcode == "M_LIMIT_EXCEEDED"
    assert error.retry_after_ms > 0
    assert error.extra["retry_after_ms"] == error.retry_after_ms


def test_a_check_beyond_the_queue_limit_is_refused_too(hashing: PasswordHashing) -> None:
    _start(hashing, 5)
    _refusal(defer.ensureDeferred(hashing.verify("$argon2id$stored", "guess")))


def test_a_place_frees_up_once_a_hash_is_done(
        hashing: PasswordHashing, blocked: BlockedHasher, reactor: ThreadCallsReactor) -> None:
    _start(hashing, 5)
    _refusal(defer.ensureDeferred(hashing.hash("refused")))
    blocked.release.set()
    reactor.run_one()
    later = defer.ensureDeferred(hashing.hash("admitted"))
    assert not later.called  # waits its turn instead of being refused
    for _ in range(5):
        reactor.run_one()
    assert later.result == "hashed:admitted"


def test_hashes_made_with_other_settings_still_verify(reactor: ThreadCallsReactor) -> None:
    stored = PasswordHasher().hash("correct horse")  # the library's defaults, as before
    passwords = PasswordHashing(HashingSettings(**CHEAP), reactor)
    try:
        right = defer.ensureDeferred(passwords.verify(stored, "correct horse"))
        wrong = defer.ensureDeferred(passwords.verify(stored, "wrong horse"))
        reactor.run_one()
        reactor.run_one()
        assert (right.result, wrong.result) == (True, False)
    finally:
        passwords.stop()


def test_new_hashes_carry_the_configured_cost(reactor: ThreadCallsReactor) -> None:
    passwords = PasswordHashing(HashingSettings(**CHEAP), reactor)
    try:
        made = defer.ensureDeferred(passwords.hash("correct horse"))
        reactor.run_one()
        assert "$m=8192,t=1," in made.result
    finally:
        passwords.stop()
