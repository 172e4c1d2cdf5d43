"""Account validity: an account is valid for a period from its creation or last renewal.

With ``account_validity.enabled`` every account has an expiry (``users.expires_ts``): set when
it is registered, given by :class:`AccountValidity`'s job (at start, then hourly) to accounts
that have none (made before validity was enabled, or by a command), and moved by a renewal.
A request of an expired account is refused by the router's guards with Synapse's
``ORG_MATRIX_EXPIRED_ACCOUNT`` (so clients know it), except the routes that declare
``allow_expired`` (logout).  The check reads the expiry the access-token cache holds with the
requester, so it costs no database round trip; a renewal drops the user's cached sessions.
Node admins are not held to it, so the node always keeps someone who can renew.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from broker.auth import Auth, Requester
from broker.clock import Clock
from broker.periodic import Periodic
from storage.account_validity import AccountValidityStore

logger = logging.getLogger(__name__)

# How often accounts without an expiry are given one, and how many per transaction.
GIVE_INTERVAL_S = 3600
BATCH = 500


@dataclass(frozen=True)
class ValiditySettings:
    """``account_validity`` in the config."""

    enabled: bool = False
    period_ms: int = 0


class AccountValidity:
    def __init__(self, settings: ValiditySettings, store: AccountValidityStore, auth: Auth,
                 clock: Clock, batch: int = BATCH) -> None:
        self.settings = settings
        self.store = store
        self.auth = auth
        self.clock = clock
        self.batch = batch
        self.given = 0  # accounts given an expiry since the node started
        self.job = Periodic(self.give_missing, "account validity: giving expiries")

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def expiry_for_new(self, now_ms: int) -> int | None:
        """The expiry of an account created at ``now_ms`` (None: validity is off)."""
        return now_ms + self.settings.period_ms if self.enabled else None

    def renewed_expiry(self) -> int:
        """The expiry a renewal now gives when it names none."""
        return self.clock.time_ms() + self.settings.period_ms

    def expired(self, requester: Requester) -> bool:
        """Whether the requester's account has expired (from memory)."""
        return (self.enabled and not requester.is_admin and requester.expires_ts is not None
                and requester.expires_ts <= self.clock.time_ms())

    def start(self, reactor: Any) -> None:
        if self.enabled:
            self.job.start(reactor, GIVE_INTERVAL_S)

    def stop(self) -> None:
        self.job.stop()

    def created(self, user_id: str) -> None:
        """An account was made without an expiry (the admin API, an import): give it one now,
        off the request (the next hourly run does if this fails)."""
        if self.enabled:
            self.job.run_now()

    async def give_missing(self) -> int:
        """Give every active account without an expiry one a period from now, a batch per
        transaction; how many were given one."""
        done = 0
        while True:
            ids = await self.store.give_expiry(self.renewed_expiry(), self.batch)
            for user_id in ids:
                self.auth.forget_user(user_id)  # a cached session holds no expiry
            done += len(ids)
            if len(ids) < self.batch:
                break
        self.given += done
        if done:
            logger.info("account validity: gave %d accounts an expiry", done)
        return done

    def renewed(self, user_id: str) -> None:
        """The user's expiry changed: their sessions are read again."""
        self.auth.forget_user(user_id)
