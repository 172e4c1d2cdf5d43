"""Creating many government accounts at once (``broker users import FILE.csv``), all or none.

Each account is checked by :meth:`broker.admin.accounts.AdminAccounts.prepare`, the code that
checks one account created through the admin API (fields, organisation, the right to create
it and to verify it); then the accounts are checked against each other (a localpart listed
twice) and against the node (a localpart taken).  Every problem is collected, naming its
entry and field, before anything is written; with none, every account and its audit entry
(one ``users.create`` entry per account, its detail naming the file) is written in one
transaction.  A refused import is one ``users.import`` entry with the first problems.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from broker.admin import permissions
from broker.admin.accounts import AdminAccounts
from broker.admin.audit import Recording
from broker.admin.model import Actor, FieldConflict, Grant, Tree
from broker.errors import DomainError, InvalidInput
from storage.accounts import NewAccount
from storage.audit import AuditDraft

IMPORT = "users.import"
PROGRESS_EVERY = 1000  # accounts checked (and written) between progress reports
ERRORS_RECORDED = 20  # problems kept in the refusal's audit entry

# Told ("checked" or "written", how many so far, how many in all).
Progress = Callable[[str, int, int], None]


class RowError(InvalidInput):
    """Entry ``index`` of an import is wrong at ``field`` ('' when no one field is);
    ``first`` is the earlier entry a duplicate repeats."""

    def __init__(self, index: int, error: DomainError, first: int | None = None) -> None:
        self.field = str(getattr(error, "field", ""))
        message = error.message
        if self.field and message.startswith(f"'{self.field}': "):
            message = message[len(self.field) + 4:]
        super().__init__(message, errcode=error.errcode)
        self.index = index
        self.first = first


class ImportRefused(InvalidInput):
    """Some entries are wrong (every problem in ``errors``, in entry order): nothing was
    written."""

    def __init__(self, errors: list[RowError]) -> None:
        first = errors[0]
        where = f"entry {first.index}" + (f" {first.field}" if first.field else "")
        super().__init__(f"{len(errors)} problem(s), nothing imported; the first: {where}:"
                         f" {first.message}")
        self.errors = errors


def _quiet(stage: str, done: int, total: int) -> None:
    """No progress reports."""


Made = list[tuple[int, NewAccount, AuditDraft]]  # (entry, account, its audit entry)


async def import_accounts(accounts: AdminAccounts, actor: Actor,
                          bodies: Sequence[dict[str, Any]], source: str,
                          progress: Progress = _quiet) -> list[str]:
    """Create the account of every body (each a ``POST /users`` body without a password),
    read from ``source``: all of them, or none and :class:`ImportRefused`; their user IDs."""
    async with accounts.audit.recording(actor, IMPORT, source) as entry:
        tree, grants = await accounts.authority.tree(), await accounts.authority.grants(actor)
        permissions.require_some(grants, permissions.USERS_CREATE)
        entry.detail["rows"] = len(bodies)
        made, errors = _check_each(accounts, entry, (tree, grants), bodies, progress)
        taken = await accounts.store.taken([account.user_id for _, account, _ in made])
        errors.extend(RowError(index, FieldConflict(
            "localpart", f"{account.user_id} exists already"))
            for index, account, _ in made if account.user_id in taken)
        if errors:
            errors.sort(key=lambda e: e.index)
            entry.detail["errors"] = [_summary(e) for e in errors[:ERRORS_RECORDED]]
            raise ImportRefused(errors)
        await accounts.write([a for _, a, _ in made], [d for _, _, d in made],
                             lambda done: progress("written", done, len(made)))
        return [account.user_id for _, account, _ in made]


def _check_each(accounts: AdminAccounts, entry: Recording, authority: tuple[Tree, list[Grant]],
                bodies: Sequence[dict[str, Any]], progress: Progress
                ) -> tuple[Made, list[RowError]]:
    """Each body checked as the API checks one, and against the ones before it: the
    accounts to write and the problems."""
    made: Made = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}  # user ID -> the first entry naming it
    for index, body in enumerate(bodies):
        row = Recording(entry.actor, permissions.USERS_CREATE, "", entry.ts)
        account = None
        try:
            if "password" in body:
                raise InvalidInput("an import creates accounts without a password")
            account, _ = accounts.prepare(row, *authority, body)
        except DomainError as e:
            errors.append(RowError(index, e))
        if row.target in seen:  # the user ID is known once the localpart is checked
            errors.append(RowError(index, FieldConflict(
                "localpart", f"{body['localpart']!r} is listed twice"), seen[row.target]))
        elif account is not None:
            row.detail["source"] = entry.target
            made.append((index, account, row.draft()))
        if row.target:
            seen.setdefault(row.target, index)
        if (index + 1) % PROGRESS_EVERY == 0:
            progress("checked", index + 1, len(bodies))
    progress("checked", len(bodies), len(bodies))
    return made, errors


def _summary(error: RowError) -> dict[str, Any]:
    return {"entry": error.index, "field": error.field, "error": error.message}
