"""Deleting deactivated accounts' personal data after ``retention.deactivated_account_data``.

Every ``retention.purge_interval`` (first at start) the job stamps the accounts deactivated
since its last run with the time it first sees them, then deletes the personal data of those
deactivated longer than the period ago (:mod:`storage.deactivated_data` says what goes and
what stays), one account per transaction: a run stopped anywhere leaves each account done or
not, and the next goes on.  What is deleted in memory too (forced reachability, invite
permissions) is forgotten through ``deleted``.  Counted for the policy document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from broker.clock import Clock
from broker.periodic import Periodic
from storage.deactivated_data import DeactivatedDataStore

logger = logging.getLogger(__name__)

BATCH = 100


class DeactivatedData:
    def __init__(self, store: DeactivatedDataStore, max_age_ms: int | None, interval_ms: int,
                 clock: Clock, deleted: Callable[[str], None], batch: int = BATCH) -> None:
        self.store = store
        self.max_age_ms = max_age_ms
        self.interval_ms = interval_ms
        self.clock = clock
        self.deleted = deleted
        self.batch = batch
        self.deleted_accounts = 0
        self.runs = 0
        self.job = Periodic(self.run, "retention: deleting deactivated accounts' data")

    def start(self, reactor: Any) -> None:
        """Run now and then every interval; nothing when no period is configured."""
        if self.max_age_ms is not None:
            self.job.start(reactor, self.interval_ms / 1000)

    def stop(self) -> None:
        self.job.stop()

    async def run(self) -> int:
        """Stamp newly deactivated accounts and delete the data of those due; how many
        accounts had their data deleted."""
        if self.max_age_ms is None:
            return 0
        now = self.clock.time_ms()
        await self.store.stamp(now)
        done = 0
        while True:
            due = await self.store.due(now - self.max_age_ms, self.batch)
            for user_id in due:
                if await self.store.delete(user_id, self.clock.time_ms()):
                    self.deleted(user_id)
                    done += 1
            if len(due) < self.batch:
                break
        if done:
            await self.store.reclaim()
            logger.info("retention: deleted the personal data of %d deactivated accounts", done)
        self.deleted_accounts += done
        self.runs += 1
        return done

    def summary(self) -> dict[str, Any]:
        return {"max_age": self.max_age_ms, "deleted_accounts": self.deleted_accounts,
                "runs": self.runs, "failed_runs": self.job.failed_runs}
