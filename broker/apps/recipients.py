"""Whom an application's message is for: a user ID, an (organisation, employee ID) pair, an
official email or a phone number, resolved to one user ID at once.

A user of this node must have an active account; a user of another server is taken when the
ID is well formed and the server is a federation peer (the node cannot ask another node whether
an account exists without a round trip per message; an unknown remote user shows as a message
that is never delivered).  Anything else is refused at once with 404 ``M_NOT_FOUND`` and
``in.gov.broker.reason: "unknown_recipient"``.  Answers found are kept for a minute
(:data:`KEEP_SECONDS`, the 100,000 used last), so repeated messages to one recipient read no
database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

from broker.access_policy import REASON_FIELD
from broker.errors import InvalidInput, NotFound
from protocol.identifiers import is_user_id
from protocol.signing import server_name_of
from storage.apps import AppStore

UNKNOWN = "unknown_recipient"
AMBIGUOUS = "ambiguous_recipient"
KEEP_SECONDS = 60.0
KEPT = 100_000


@dataclass(frozen=True)
class RecipientRef:
    """One way of naming a recipient: exactly one of a user ID, an (organisation, employee
    ID) pair, an email or a phone."""

    user_id: str | None = None
    organisation: str | None = None
    employee_id: str | None = None
    email: str | None = None
    phone: str | None = None

    def describe(self) -> str:
        if self.user_id is not None:
            return self.user_id
        if self.employee_id is not None:
            return f"employee {self.employee_id!r} of {self.organisation!r}"
        return repr(self.email if self.email is not None else self.phone)


def _unknown(ref: RecipientRef) -> NotFound:
    return NotFound(f"No recipient {ref.describe()}", **{REASON_FIELD: UNKNOWN})


class Recipients:
    def __init__(self, store: AppStore, server_name: str,
                 is_peer: Callable[[str], bool], clock: Callable[[], float]) -> None:
        self.store = store
        self.server_name = server_name
        self.is_peer = is_peer  # whether a server is in the federation list
        self._found: TTLCache[RecipientRef, str] = TTLCache(KEPT, KEEP_SECONDS, timer=clock)

    async def resolve(self, ref: RecipientRef) -> str:
        """The user ID ``ref`` names; NotFound (unknown_recipient) if nobody."""
        found = self._found.get(ref)
        if found is not None:
            return found
        user_id = await self._look_up(ref)
        self._found[ref] = user_id
        return user_id

    async def _look_up(self, ref: RecipientRef) -> str:
        if ref.user_id is not None:
            if not is_user_id(ref.user_id):
                raise _unknown(ref)
            server = server_name_of(ref.user_id)
            if server != self.server_name:
                if not self.is_peer(server):
                    raise _unknown(ref)
                return ref.user_id
            if not await self.store.active_user(ref.user_id):
                raise _unknown(ref)
            return ref.user_id
        if ref.employee_id is not None:
            found = await self.store.members_where("employee_id", ref.employee_id,
                                                   ref.organisation)
        elif ref.email is not None:
            local, _, domain = ref.email.rpartition("@")
            found = await self.store.members_where("email", f"{local}@{domain.lower()}")
        else:
            found = await self.store.members_where("phone", str(ref.phone))
        if not found:
            raise _unknown(ref)
        if len(found) > 1:
            raise InvalidInput(f"More than one account has {ref.describe()}: name the user ID",
                               **{REASON_FIELD: AMBIGUOUS})
        return found[0]

    def forget(self, user_id: str) -> None:
        """A user deactivated or moved: the answers naming them are read again."""
        for ref in [r for r, u in self._found.items() if u == user_id]:
            self._found.pop(ref, None)
