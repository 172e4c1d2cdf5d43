"""broker/health.py: when the node reports itself healthy, on a fake clock."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.task import Clock as FakeReactor

from broker.clock import Clock
from broker.health import DATABASE, STARTING, STOPPING, Health
from tests.storage_helpers import result_of


class Database:
    """A ping whose answers the test gives: each ping waits until answered."""

    def __init__(self) -> None:
        self.pings: list[defer.Deferred[None]] = []

    def ping(self) -> defer.Deferred[None]:
        d: defer.Deferred[None] = defer.Deferred()
        self.pings.append(d)
        return d


def started(reactor: FakeReactor, db: Database) -> Health:
    health = Health(db.ping, Clock(reactor), timeout_s=2.0, interval_s=1.0)
    health.ready()
    return health


def ask(health: Health) -> defer.Deferred[str | None]:
    return defer.ensureDeferred(health.problem())


def test_a_node_still_starting_is_unhealthy_without_asking_the_database() -> None:
    db = Database()
    health = Health(db.ping, Clock(FakeReactor()))
    assert result_of(ask(health)) == STARTING
    assert db.pings == []


def test_a_ready_node_whose_database_answers_is_healthy() -> None:
    db = Database()
    health = started(FakeReactor(), db)
    answer = ask(health)
    db.pings[0].callback(None)
    assert result_of(answer) is None


def test_a_database_error_is_unhealthy() -> None:
    db = Database()
    health = started(FakeReactor(), db)
    answer = ask(health)
    db.pings[0].errback(ConnectionError("server closed the connection"))
    assert result_of(answer) == DATABASE


def test_a_ping_that_does_not_come_back_in_time_is_unhealthy() -> None:
    reactor, db = FakeReactor(), Database()
    health = started(reactor, db)
    answer = ask(health)
    reactor.advance(1.9)
    assert not answer.called
    reactor.advance(0.2)
    assert result_of(answer) == DATABASE


def test_the_answer_is_kept_for_a_second() -> None:
    reactor, db = FakeReactor(), Database()
    health = started(reactor, db)
    first = ask(health)
    db.pings[0].callback(None)
    result_of(first)
    reactor.advance(0.9)
    assert result_of(ask(health)) is None
    assert len(db.pings) == 1
    reactor.advance(0.2)
    ask(health)
    assert len(db.pings) == 2


def test_callers_during_a_ping_share_it() -> None:
    db = Database()
    health = started(FakeReactor(), db)
    answers = [ask(health), ask(health), ask(health)]
    assert len(db.pings) == 1
    db.pings[0].callback(None)
    assert [result_of(a) for a in answers] == [None, None, None]


def test_a_stuck_ping_is_not_repeated_until_it_comes_back() -> None:
    reactor, db = FakeReactor(), Database()
    health = started(reactor, db)
    first = ask(health)
    reactor.advance(2.0)  # timed out: the database holds the ping
    assert result_of(first) == DATABASE
    reactor.advance(1.0)
    assert result_of(ask(health)) == DATABASE
    assert len(db.pings) == 1
    db.pings[0].callback(None)  # the database answers at last
    reactor.advance(1.0)
    again = ask(health)
    assert len(db.pings) == 2
    db.pings[1].callback(None)
    assert result_of(again) is None


def test_a_node_shutting_down_is_unhealthy() -> None:
    db = Database()
    health = started(FakeReactor(), db)
    health.stopping()
    assert result_of(ask(health)) == STOPPING
