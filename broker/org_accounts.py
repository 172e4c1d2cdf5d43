"""The accounts the node holds for organisations: one per organisation, made on first use,
the sender of what an organisation publishes to its members (its image pack room; notices
later).  A per-organisation account rather than one node account, so clients show who
speaks (the organisation's name) and each organisation's rooms have their own creator.

An account's user ID is ``@_org.<organisation ID>:<server>``; localparts starting ``_org.``
(and ``_app.``, applications' senders) are reserved (registration and the admin API refuse
them).  Nobody logs in as one: it has no
password and no device; the node sends in its name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.errors import Conflict
from storage.database import IntegrityError
from storage.organisation_accounts import OrganisationAccountStore

RESERVED_PREFIX = "_org."
APP_PREFIX = "_app."  # the sender accounts of organisations' eGov applications


def is_reserved_localpart(localpart: str) -> bool:
    """Whether a new account may not take ``localpart`` (an organisation account's or an
    organisation's application's)."""
    return localpart.startswith((RESERVED_PREFIX, APP_PREFIX))


class OrganisationAccounts:
    def __init__(self, store: OrganisationAccountStore, server_name: str, clock: Any) -> None:
        self.store = store
        self.server_name = server_name
        self.clock = clock
        self._accounts: dict[str, str] = {}  # organisation ID -> user ID
        # Told (organisation ID, user ID, when made) of each account, at load and when made.
        self.listeners: list[Callable[[str, str, int], None]] = []

    async def load(self) -> None:
        created = await self.store.created()
        self._accounts = {org_id: user_id for org_id, (user_id, _) in created.items()}
        for org_id, (user_id, created_ts) in created.items():
            self._tell(org_id, user_id, created_ts)

    def _tell(self, org_id: str, user_id: str, created_ts: int) -> None:
        for listener in self.listeners:
            listener(org_id, user_id, created_ts)

    def user_id_of(self, org_id: str) -> str:
        return f"@{RESERVED_PREFIX}{org_id}:{self.server_name}"

    def account_of(self, org_id: str) -> str | None:
        """The organisation's account, if it has one (memory)."""
        return self._accounts.get(org_id)

    def is_organisation_account(self, user_id: str) -> bool:
        return user_id in self._accounts.values()

    async def ensure(self, org_id: str, name: str) -> str:
        """The organisation's account, made now (display name ``name``) if it has none."""
        found = self._accounts.get(org_id)
        if found is not None:
            return found
        now = self.clock.time_ms()
        try:
            user_id = await self.store.create(org_id, self.user_id_of(org_id), name, now)
        except IntegrityError as e:
            raise Conflict(f"the account {self.user_id_of(org_id)} exists already and is not"
                           f" {org_id}'s") from e
        self._accounts[org_id] = user_id
        self._tell(org_id, user_id, now)
        return user_id
