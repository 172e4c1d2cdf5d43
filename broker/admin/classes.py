"""The one answer to "what class is user X now": ``verified`` or ``public``.

A user is verified while they hold a verification that is neither revoked nor past its expiry
(read on the injected clock, so expiry takes effect at its moment without any write) and their
account is not deactivated.  The answer comes from memory, never the database: the current
verifications are loaded once at start and every change the node makes (verify, revoke,
deactivation, by the admin API or the client API) updates the cache in the same step as its
write, so the send and sync paths may ask freely.  A change made by another process (a
``broker`` command) reaches the cache through :mod:`broker.admin.changes`, which reads the
users' verifications again (:meth:`UserClasses.refresh`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from storage.accounts import AccountStore, VerificationRow

VERIFIED = "verified"
PUBLIC = "public"


class UserClasses:
    def __init__(self, store: AccountStore, clock: Any) -> None:
        self.store = store
        self.clock = clock
        self._current: dict[str, VerificationRow] = {}
        # Accounts the node holds for an organisation (its organisation account, an app's
        # sender): verified for it while they exist, kept in memory only (see :meth:`serve`).
        self._serving: dict[str, VerificationRow] = {}
        # Counts the node's own changes; user -> the count at their last one (kept until a
        # refresh that started after it).
        self.generation = 0
        self._written: dict[str, int] = {}
        # Told the user ID of each user whose verification ended (revoked, deactivated, or
        # gone in a refresh); an expiry is found by :meth:`expired_between`.
        self._lost_listeners: list[Callable[[str], None]] = []
        # Told the user ID of each user who holds a verification they did not (verified, or
        # verified for another organisation; also in a refresh).
        self._gained_listeners: list[Callable[[str], None]] = []

    def on_lost(self, listener: Callable[[str], None]) -> None:
        self._lost_listeners.append(listener)

    def on_gained(self, listener: Callable[[str], None]) -> None:
        self._gained_listeners.append(listener)

    def _replace(self, row: VerificationRow) -> None:
        before = self._current.get(row.user_id)
        self._current[row.user_id] = row
        if before is None or before.verification_id != row.verification_id:
            for listener in self._gained_listeners:
                listener(row.user_id)

    def _lost(self, user_id: str) -> None:
        for listener in self._lost_listeners:
            listener(user_id)

    def expired_between(self, after_ms: int, up_to_ms: int) -> list[str]:
        """Users whose current verification expired after ``after_ms``, at ``up_to_ms`` at the
        latest."""
        return [row.user_id for row in self._current.values()
                if row.expires_ts is not None and after_ms < row.expires_ts <= up_to_ms]

    async def load(self) -> int:
        """Read every current verification (at start); how many."""
        rows = await self.store.current_all()
        self._current = {row.user_id: row for row in rows}
        return len(rows)

    def serve(self, user_id: str, org_id: str, since_ms: int) -> None:
        """``user_id`` is an account the node holds to speak for ``org_id`` (nobody logs in
        as it): verified for that organisation from ``since_ms``, as this node attests to
        others.  Not a verification anyone granted, so :meth:`verified_now` leaves it out."""
        self._serving[user_id] = VerificationRow(
            verification_id=f"service:{user_id}", user_id=user_id, org_id=org_id,
            basis="service_account", verified_by="", verified_ts=since_ms)

    def verification(self, user_id: str) -> VerificationRow | None:
        """The user's current verification if it is in force now."""
        row = self._current.get(user_id) or self._serving.get(user_id)
        if row is None or (row.expires_ts is not None
                           and row.expires_ts <= self.clock.time_ms()):
            return None
        return row

    def verified_now(self) -> dict[str, VerificationRow]:
        """Every user verified now: user ID -> their verification."""
        now = self.clock.time_ms()
        return {user_id: row for user_id, row in self._current.items()
                if row.expires_ts is None or row.expires_ts > now}

    def class_of(self, user_id: str) -> str:
        return VERIFIED if self.verification(user_id) is not None else PUBLIC

    def verified(self, row: VerificationRow) -> None:
        self._replace(row)
        self._wrote(row.user_id)

    def ended(self, user_id: str) -> None:
        """The user's verification was revoked or their account deactivated."""
        self._current.pop(user_id, None)
        self._wrote(user_id)
        self._lost(user_id)

    def _wrote(self, user_id: str) -> None:
        self.generation += 1
        self._written[user_id] = self.generation

    def refresh(self, user_ids: Iterable[str], rows: Iterable[VerificationRow],
                since: int) -> bool:
        """Make ``rows`` (read from the database once :attr:`generation` was ``since``) the
        current verifications of ``user_ids``.  A user the node changed since then keeps what
        memory holds, which may be newer than the read; whether no user was kept so (else the
        caller reads again)."""
        found = {row.user_id: row for row in rows}
        complete = True
        for user_id in user_ids:
            if self._written.get(user_id, 0) > since:
                complete = False
            elif user_id in found:
                self._replace(found[user_id])
            elif self._current.pop(user_id, None) is not None:
                self._lost(user_id)
        for user_id in [u for u, at in self._written.items() if at <= since]:
            del self._written[user_id]
        return complete
