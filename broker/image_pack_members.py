"""An organisation's members get its image packs without setting anything up: the node joins
each of them to the organisation's pack room and lists the room's packs in their image pack
account data (``m.image_pack.rooms`` and the unstable ``im.ponies.emote_rooms`` that today's
clients read), merged into what the user has there.

A user's packs are those of their organisation and of its ancestors (a ministry's packs reach
its departments' staff).  :meth:`PackMembers.refresh` brings one user up to date: joined to the
pack rooms they should be in (invited by the organisation's account, then joined in their
name), out of those they should not (moved to another organisation, deactivated), and every
pack room's entry in their account data as it should be: the room's packs listed (a setting
the user gave a pack there is kept), a room they lost removed, every other entry untouched.

Changes of one user (an account created, imported, moved or deactivated) are queued and
brought up to date one after the other, with a reactor turn between users.  A change
that concerns many members (a pack published or deleted, an organisation moved) runs
as a job per organisation over the accounts of its sub-tree, ``BATCH`` at a time in user ID
order with a reactor turn between users; its place is stored after each batch, so a job
stopped by a restart (:meth:`PackMembers.stop` before a shutdown, or a crash) goes on from
there (:meth:`PackMembers.start`), and admins read its
progress in the pack listing.  A new change restarts the organisation's job from the start.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from twisted.internet import defer, task

from broker.admin import permissions
from broker.admin.model import Tree
from broker.errors import Forbidden
from broker.image_pack_content import PACK_TYPES
from broker.org_accounts import OrganisationAccounts
from broker.rooms.live_room import LiveRoom
from broker.rooms.service import Rooms
from broker.streams import StreamWriter
from storage.account_data import GLOBAL, AccountDataStore
from storage.accounts import AccountStore, UserQuery
from storage.audit import Change
from storage.image_packs import ImagePackStore, RoomEntries, merged_rooms
from storage.organisations import Organisation, OrganisationStore

logger = logging.getLogger(__name__)

ROOMS_TYPES = ("m.image_pack.rooms", "im.ponies.emote_rooms")  # stable, then unstable
BATCH = 100
# What, in the audit log's feed, may change whose packs a user gets.
USER_ACTIONS = frozenset({permissions.USERS_CREATE, permissions.USERS_UPDATE,
                          permissions.USERS_DEACTIVATE})
ORGANISATION_ACTIONS = frozenset({permissions.ORG_CREATE, permissions.ORG_UPDATE})
Join = Callable[[str, str], Awaitable[Any]]  # (room ID, user ID): join in the user's name


def pack_keys(room: LiveRoom) -> list[str]:
    """The state keys of the room's packs (a deleted pack's event has no images)."""
    return sorted(key for (event_type, key), event in room.state.items()
                  if event_type == PACK_TYPES[0] and event.content.get("images"))


class PackMembers:
    def __init__(self, store: ImagePackStore, accounts: AccountStore,
                 organisations: OrganisationStore, account_data: AccountDataStore,
                 rooms: Rooms, join: Join, org_accounts: OrganisationAccounts,
                 streams: StreamWriter, clock: Any, reactor: Any) -> None:
        self.store = store
        self.accounts = accounts
        self.organisations = organisations
        self.account_data = account_data
        self.rooms = rooms
        self.join = join
        self.org_accounts = org_accounts
        self.streams = streams
        self.clock = clock
        self.reactor = reactor
        self.pack_rooms: dict[str, str] = {}  # organisation ID -> its pack room
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._jobs: dict[str, defer.Deferred[None]] = {}
        self._queue: deque[str] = deque()  # users whose packs follow a change of theirs
        self.draining = False
        self._stopping = False
        self._pack_keys: dict[str, list[str]] = {}  # pack room -> its packs' state keys

    async def load(self) -> None:
        self.pack_rooms = await self.store.rooms()

    async def start(self) -> None:
        """Go on with the jobs a stop interrupted (in the background)."""
        self._stopping = False
        for org_id in await self.store.unfinished_jobs():
            if org_id not in self._running:  # not started again meanwhile
                self._launch(org_id)

    def keys_of(self, room: LiveRoom) -> list[str]:
        """The room's packs, read from its state once (a pack room's state holds all its
        members: scanning it for every member would cost each one the room's size) until
        :meth:`packs_changed`; only the organisation's account changes them, through
        :mod:`broker.image_packs`."""
        keys = self._pack_keys.get(room.room_id)
        if keys is None:
            keys = self._pack_keys[room.room_id] = pack_keys(room)
        return keys

    def packs_changed(self, room_id: str) -> None:
        self._pack_keys.pop(room_id, None)

    def stop(self) -> None:
        """Stop the jobs after the member each is at (before the node shuts down); the
        members of a batch not finished are taken again at the next start."""
        self._stopping = True

    # -- jobs ------------------------------------------------------------------------------
    async def request(self, org_id: str) -> None:
        """Bring every member of ``org_id``'s sub-tree up to date, in the background (the
        organisation's job starts again from its first member)."""
        tree = Tree(await self.organisations.all())
        scope = tree.subtree(org_id) if org_id in tree else []
        await self.store.restart_job(org_id, await self.store.count_members(scope),
                                     self.clock.time_ms())
        if org_id in self._running:
            self._again.add(org_id)  # the running job reads the restarted one
        else:
            self._launch(org_id)

    def organisations_written(self, orgs: list[Organisation]) -> None:
        """Organisations created or changed (one may have moved under another: its members'
        packs change): their members are brought up to date, if any organisation has packs."""
        if not self.pack_rooms:
            return
        for org in orgs:
            defer.ensureDeferred(self._request_quietly(org.org_id))

    async def _request_quietly(self, org_id: str) -> None:
        try:
            await self.request(org_id)
        except Exception:  # the next change starts it again
            logger.exception("starting the image pack job of %s failed", org_id)

    def changes_seen(self, changes: list[Change]) -> None:
        """The audit log's feed, with what other processes change (``broker users import``,
        ``broker orgs import``): accounts created, changed or deactivated follow, and so do
        the members of organisations created or changed."""
        if not self.pack_rooms:
            return
        for change in changes:
            if change.action in USER_ACTIONS and change.target.startswith("@"):
                self.user_changed(change.target)
            elif change.action in ORGANISATION_ACTIONS:
                defer.ensureDeferred(self._request_quietly(change.target))

    def _launch(self, org_id: str) -> None:
        self._running.add(org_id)
        d = defer.ensureDeferred(self._run(org_id))
        d.addErrback(lambda f: logger.error("the image pack job of %s failed: %s", org_id,
                                            f.getErrorMessage()))
        self._jobs[org_id] = d

    def job_done(self, org_id: str) -> defer.Deferred[None] | None:
        """The running job of ``org_id`` (None when none runs)."""
        return self._jobs.get(org_id) if org_id in self._running else None

    async def _run(self, org_id: str) -> None:
        try:
            while True:
                job = await self.store.job(org_id)
                if job is None or job.finished_ts is not None:
                    if org_id not in self._again:
                        return
                    self._again.discard(org_id)
                    continue
                tree = Tree(await self.organisations.all())
                scope = tree.subtree(org_id) if org_id in tree else []
                rows = await self.accounts.accounts(UserQuery(scope, after=job.after_user,
                                                              limit=BATCH))
                for row in rows:
                    await self._refresh_quietly(row.user_id, tree)
                    await self._yield()
                    if self._stopping:
                        return
                finished = self.clock.time_ms() if len(rows) < BATCH else None
                after = rows[-1].user_id if rows else job.after_user
                await self.store.progress(job, after, job.done + len(rows), finished)
        finally:
            self._running.discard(org_id)

    # -- one user --------------------------------------------------------------------------
    def user_changed(self, user_id: str) -> None:
        """A user was created, moved or deactivated: their packs follow, in the background,
        one user after the other (an import of thousands queues them all)."""
        if not self.pack_rooms:
            return
        self._queue.append(user_id)
        if not self.draining:
            self.draining = True
            defer.ensureDeferred(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue and not self._stopping:
                await self._refresh_quietly(self._queue.popleft())
                await self._yield()
        finally:
            self.draining = False

    async def _yield(self) -> None:
        """Let the reactor serve others before the next user."""
        await task.deferLater(self.reactor, 0, lambda: None)

    async def _refresh_quietly(self, user_id: str, tree: Tree | None = None) -> None:
        try:
            await self.refresh(user_id, tree)
        except Exception:  # the next change or job tries again; the others go on
            logger.exception("bringing %s's image packs up to date failed", user_id)

    async def refresh(self, user_id: str, tree: Tree | None = None) -> None:
        """Join the user to the pack rooms they should be in, take them out of the others,
        and make their account data list what they have."""
        lineage = await self._lineage(user_id, tree)
        entries: dict[str, list[str] | None] = {}
        for org_id, room_id in sorted(self.pack_rooms.items()):
            room = await self.rooms.registry.get(room_id)
            if room is None:
                continue
            membership = room.membership_of(user_id)
            if org_id in lineage:
                if membership != "join":
                    await self._admit(room_id, org_id, user_id, membership)
                entries[room_id] = self.keys_of(room) or None
            else:
                if membership in ("join", "invite"):
                    await self._leave(room_id, user_id)
                entries[room_id] = None
        await self._write_entries(user_id, entries)

    async def _lineage(self, user_id: str, tree: Tree | None) -> set[str]:
        """The organisations whose packs the user gets: theirs and its ancestors."""
        row = await self.accounts.account(user_id)
        if row is None or row.deactivated or row.member is None:
            return set()
        tree = tree or Tree(await self.organisations.all())
        org_id = row.member.org_id
        return set(tree.ancestors(org_id)) if org_id in tree else set()

    async def _admit(self, room_id: str, org_id: str, user_id: str, membership: str | None
                     ) -> None:
        sender = self.org_accounts.account_of(org_id)
        if sender is None:
            return
        if membership != "invite":
            await self.rooms.send(room_id, sender, "m.room.member", {"membership": "invite"},
                                  state_key=user_id)
        await self.join(room_id, user_id)

    async def _leave(self, room_id: str, user_id: str) -> None:
        try:
            await self.rooms.send(room_id, user_id, "m.room.member", {"membership": "leave"},
                                  state_key=user_id)
        except Forbidden:
            pass  # left meanwhile

    async def _write_entries(self, user_id: str, entries: RoomEntries) -> None:
        for data_type in ROOMS_TYPES:
            content = await self.account_data.get_account_data(user_id, GLOBAL, data_type)
            merged = merged_rooms(content, entries)
            if merged == content or (content is None and not merged["rooms"]):
                continue
            await self.streams.write(partial(self.store.merge_entries, user_id, data_type,
                                             entries), users=[user_id])


__all__ = ["BATCH", "ROOMS_TYPES", "PackMembers", "pack_keys"]
