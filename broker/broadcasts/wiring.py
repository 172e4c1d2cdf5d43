"""The broadcasts' service and job, built once by the node (after the notice rooms and the
delivery status, whose sync progress says who received what)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.admin.services import AdminServices
from broker.broadcasts.jobs import BroadcastJobs
from broker.broadcasts.service import Broadcasts
from broker.notice_rooms import NoticeRooms
from broker.org_accounts import OrganisationAccounts
from storage.broadcasts import BroadcastStore
from storage.database import Database


def build_broadcasts(db: Database, notice_rooms: NoticeRooms, admin: AdminServices,
                     org_accounts: OrganisationAccounts, synced_upto: Callable[[str], int],
                     clock: Any) -> tuple[Broadcasts, BroadcastJobs]:
    store = BroadcastStore(db)
    jobs = BroadcastJobs(store, notice_rooms, clock)
    admin.changes.listen(jobs.changes_seen)  # sent by a command: the job runs here
    return Broadcasts(admin.authority, admin.audit, store, jobs.start, org_accounts,
                      synced_upto, clock), jobs
