"""A periodic background job: it runs at start and at each interval on the reactor's clock; a
run that fails is counted and the next one still comes; a run asked for while one is under way
is not started twice, and one asked for soon runs once more right after it."""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock

from broker.periodic import Periodic


def test_a_job_runs_at_start_and_at_each_interval() -> None:
    reactor, runs = MemoryReactorClock(), []

    async def run() -> None:
        runs.append(reactor.seconds())

    Periodic(run, "test job").start(reactor, 10)
    reactor.advance(10)
    reactor.advance(10)
    assert runs == [0, 10, 20]


def test_a_failed_run_is_counted_and_the_next_still_comes() -> None:
    reactor, runs = MemoryReactorClock(), []

    async def run() -> None:
        runs.append(reactor.seconds())
        if len(runs) == 1:
            raise RuntimeError("the database went away")

    job = Periodic(run, "test job")
    job.start(reactor, 10)
    reactor.advance(10)
    assert (runs, job.failed_runs) == ([0, 10], 1)


def test_a_run_asked_for_during_another_is_not_started_twice() -> None:
    started, gate = [], defer.Deferred[None]()

    async def run() -> None:
        started.append(1)
        await gate

    job = Periodic(run, "test job")
    job.run_now()
    job.run_now()
    gate.callback(None)
    job.run_now()
    assert len(started) == 2


def test_a_run_asked_for_soon_during_another_runs_once_right_after_it() -> None:
    started, gate = [], defer.Deferred[None]()

    async def run() -> None:
        started.append(1)
        if len(started) == 1:
            await gate

    job = Periodic(run, "test job")
    job.run_now()
    job.run_soon()
    job.run_soon()
    assert len(started) == 1
    gate.callback(None)
    assert len(started) == 2 and not job.running
