"""What a running node learns of the admin changes other processes make (a ``broker`` command,
another node process on the same database).

The audit log is the change feed: every admin change appends its entry in the transaction that
makes it, and appends are serialised by the chain's head (see :mod:`storage.audit`), so the
entries a reader sees always form a prefix of the chain: nothing committed later can appear
below a seq already read.  Every :data:`POLL_SECONDS` the node reads the entries after the last
one it has seen (one query on the primary key; none of it on the send or sync path) and, for
each change that concerns what it holds in memory, reads that again:

- the verification (the class cache) of every user a change was recorded on (created,
  changed, verified by an admin or by an emailed code, revoked, deactivated, and whatever later
  changes are recorded on a user: reading a verification again is cheap, missing one would
  leave a class wrong);
- the user's cached sessions: deactivated (the tokens are gone from the database), or their
  grants changed (the node admin flag a session carries).
- whatever else a listener (:meth:`ChangeFeed.listen`) holds: the rooms shut down, for one.

The organisation tree and role grants are read from the database by every admin call: nothing
to refresh.  The node's own changes come back through the feed too; reading them again is
harmless (the cache already holds what the database says).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from twisted.internet import defer, task

from broker.admin import permissions
from broker.admin.classes import UserClasses
from storage.accounts import AccountStore
from storage.audit import AuditStore, Change

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
PAGE = 1000  # entries read per query
MAX_PAGES = 100  # per poll: a big import is taken in within a few polls

# The actions after which a user's cached sessions are read again.
SESSION_ACTIONS = frozenset({permissions.USERS_DEACTIVATE, permissions.ROLES_CHANGE})


class ChangeFeed:
    """Follows the audit log and refreshes the node's caches of what changed."""

    def __init__(self, audit: AuditStore, accounts: AccountStore, classes: UserClasses,
                 forget_sessions: Callable[[str], None]) -> None:
        self.audit = audit
        self.accounts = accounts
        self.classes = classes
        self.forget_sessions = forget_sessions  # drop the user's cached sessions
        self.seen = 0  # the last entry taken in
        self._listeners: list[Callable[[list[Change]], None]] = []
        self._loop: task.LoopingCall | None = None

    def listen(self, listener: Callable[[list[Change]], None]) -> None:
        """Also hand each page's changes made (not refused) to ``listener`` (a page read
        again is handed over again: a listener takes a change in twice harmlessly)."""
        self._listeners.append(listener)

    async def start_at_head(self) -> None:
        """Take in only what is appended from now on (call before loading the caches)."""
        self.seen, _ = await self.audit.head()

    async def poll(self) -> int:
        """Take in the entries appended since the last poll; how many."""
        taken = 0
        for _ in range(MAX_PAGES):
            since = self.classes.generation
            page = await self.audit.changes(self.seen, PAGE)
            if not page or not await self._apply(page, since):
                break
            self.seen = page[-1].seq
            taken += len(page)
            if len(page) < PAGE:
                break
        return taken

    async def _apply(self, page: list[Change], since: int) -> bool:
        """Refresh what ``page`` changed; False if the node changed one of its users
        meanwhile (the page is read again at the next poll)."""
        done = [c for c in page if c.ok]
        for listener in self._listeners:
            listener(done)
        users = list(dict.fromkeys(c.target for c in done if c.target.startswith("@")))
        rows = await self.accounts.current_of(users) if users else []
        for user_id in dict.fromkeys(c.target for c in done if c.action in SESSION_ACTIONS):
            self.forget_sessions(user_id)
        return self.classes.refresh(users, rows, since)

    async def _poll_quietly(self) -> None:
        try:
            await self.poll()
        except Exception:  # the loop must keep running; the next poll reads the same entries
            logger.exception("reading the admin changes of other processes failed")

    def start(self, reactor: Any) -> None:
        self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self._poll_quietly()))
        self._loop.clock = reactor
        self._loop.start(POLL_SECONDS, now=False)
        reactor.addSystemEventTrigger("before", "shutdown", self.stop)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
