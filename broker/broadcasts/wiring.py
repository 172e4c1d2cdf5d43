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
                     clock: Any) -> Broadcasts:
    store = BroadcastStore(db)
    jobs = BroadcastJobs(store, notice_rooms, clock)
    return Broadcasts(admin.authority, admin.audit, store, jobs, org_accounts, synced_upto,
                      clock)
