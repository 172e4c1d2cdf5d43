"""The admin commands (``broker orgs import``, ``broker users import|verify|revoke``,
``broker roles grant|revoke``, ``broker audit verify``): the same services the admin API
calls, over a synchronous database opened from the node's config, acting with node-wide
authority as ``command:<login>``.  A running node takes their changes in within a second
(:mod:`broker.admin.changes`)."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet import defer

from broker.admin.account_import import IMPORT, ImportRefused, import_accounts
from broker.admin.accounts import AccountDeps
from broker.admin.audit import Verification, verify
from broker.admin.model import NODE_AUTHORITY, Actor, Grant, check_org_id
from broker.admin.org_file import OrganisationsFileError, read_organisations_file
from broker.admin.services import AdminServices, AdminStores, build_admin_services, import_file
from broker.admin.user_file import UsersFileError, read_users_file
from broker.admin_tools import normalise_user_id, open_database
from broker.clock import real_clock
from broker.config import NodeConfig
from broker.errors import DomainError
from broker.key_admin import old_keys_path, read_old_keys
from broker.passwords import PasswordHashing
from broker.services.accounts import check_new_password
from protocol.signing import read_signing_key_file, read_signing_keys_file
from storage.accounts import AccountStore
from storage.audit import AuditStore
from storage.database import Database, fired_result
from storage.email_codes import EmailCodeStore
from storage.organisations import OrganisationStore
from storage.reachability import ReachabilityStore
from storage.roles import RoleStore
from storage.users import UserStore

T = TypeVar("T")

PROBLEMS_SHOWN = 100  # lines of a refused file's problems printed
PROBLEMS_RECORDED = 20  # ... and kept in its audit entry


def command_actor() -> Actor:
    try:
        login = getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        login = "unknown"
    return Actor(f"command:{login}", "local", NODE_AUTHORITY)


async def _end_account_offline(user_id: str,
                               deactivate: Callable[[], Awaitable[list[str]]]) -> None:
    """A command deactivates without the node: the write ends every session (a running
    node drops the sessions it holds in memory at its next poll of the changes)."""
    await deactivate()


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return fired_result(defer.ensureDeferred(coroutine))


class AdminSession:
    """The admin services over the node's database, for one command."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.db: Database = open_database(config)
        self.stores = AdminStores(OrganisationStore(self.db), RoleStore(self.db),
                                  AuditStore(self.db), UserStore(self.db),
                                  AccountStore(self.db), EmailCodeStore(self.db),
                                  ReachabilityStore(self.db))
        self.services: AdminServices = build_admin_services(
            self.stores, real_clock(), read_signing_key_file(config.signing_key_path),
            config.audit_sign_interval_seconds, lambda user_id: None,
            AccountDeps(config.server_name, PasswordHashing().hash, check_new_password,
                        _end_account_offline))

    def close(self) -> None:
        self.db.close()


def orgs_import(config: NodeConfig, path: Path) -> int:
    session = AdminSession(config)
    actor = command_actor()
    try:
        try:
            file = read_organisations_file(path)
        except OrganisationsFileError as e:  # not even a list of organisations: recorded too
            _run(session.services.audit.refuse(actor, "organisations.import", str(path),
                                               "M_BAD_JSON", str(e)))
            raise
        orgs = _run(import_file(session.services.organisations, actor, file))
        _run(session.services.audit.sign_head())
    except (OrganisationsFileError, DomainError) as e:
        print(f"broker orgs import: {e}", file=sys.stderr)
        return 1
    finally:
        session.close()
    print(f"imported {len(orgs)} organisation(s) from {path.name}:"
          f" {', '.join(o.org_id for o in orgs)}")
    return 0


Call = Callable[[AdminServices, Actor], Coroutine[Any, Any, T]]


class _Refused(Exception):
    """The command's call was refused; the reason was printed."""


def _reason(error: DomainError) -> list[str]:
    return [error.message]


def _act(config: NodeConfig, command: str, call: Call[T],
         explain: Callable[[DomainError], list[str]] = _reason) -> T:
    """Run ``call`` as the command's actor over the node's database, then sign the audit
    log's head; a refusal is printed on stderr as ``broker <command>: <reason>``, a line
    for each of ``explain``'s lines."""
    session = AdminSession(config)
    try:
        found = _run(call(session.services, command_actor()))
        _run(session.services.audit.sign_head())
    except DomainError as e:
        _print_refusal(command, explain(e))
        raise _Refused from e
    finally:
        session.close()
    return found


def _print_refusal(command: str, lines: list[str]) -> None:
    for line in lines[:PROBLEMS_SHOWN]:
        print(f"broker {command}: {line}", file=sys.stderr)
    if len(lines) > PROBLEMS_SHOWN:
        print(f"broker {command}: ... and {len(lines) - PROBLEMS_SHOWN:,} more problem(s)",
              file=sys.stderr)


def roles_change(config: NodeConfig, user: str, role: str, organisation: str | None, *,
                 grant: bool) -> int:
    name = "grant" if grant else "revoke"
    try:
        user_id = normalise_user_id(user, config.server_name)
        if organisation is not None:
            check_org_id(organisation, "organisation")
    except (ValueError, DomainError) as e:
        print(f"broker roles {name}: {e}", file=sys.stderr)
        return 1

    def change(services: AdminServices, actor: Actor) -> Coroutine[Any, Any, list[Grant]]:
        roles = services.roles
        return (roles.grant if grant else roles.revoke)(actor, user_id,
                                                        Grant(role, organisation))

    try:
        held = _act(config, f"roles {name}", change)
    except _Refused:
        return 1
    shown = ", ".join(g.role + (f"@{g.organisation}" if g.organisation else "") for g in held)
    print(f"{user_id} now holds: {shown or 'no role'}")
    return 0


def users_import(config: NodeConfig, path: Path) -> int:
    """Create every account of the CSV file at ``path``, all or none."""
    try:
        file = read_users_file(path)
    except UsersFileError as e:  # not even a users file: recorded too
        _run_refusal(config, IMPORT, str(path), "\n".join(e.problems[:PROBLEMS_RECORDED]))
        _print_refusal("users import", e.problems)
        return 1

    def progress(stage: str, done: int, total: int) -> None:
        what = "rows" if stage == "checked" else "accounts"
        print(f"{path.name}: {stage} {done:,} of {total:,} {what}", file=sys.stderr,
              flush=True)

    def explain(error: DomainError) -> list[str]:
        if isinstance(error, ImportRefused):
            return [file.describe(e) for e in error.errors]
        return [error.message]

    try:
        created = _act(config, "users import", lambda services, actor: import_accounts(
            services.accounts, actor, file.bodies, str(path), progress), explain)
    except _Refused:
        return 1
    verified = sum(1 for body in file.bodies if body.get("class") == "verified")
    print(f"imported {len(created):,} user(s) from {path.name} ({verified:,} verified)")
    return 0


def _run_refusal(config: NodeConfig, action: str, target: str, message: str) -> None:
    session = AdminSession(config)
    try:
        _run(session.services.audit.refuse(command_actor(), action, target,
                                           "M_INVALID_PARAM", message))
    finally:
        session.close()


def users_verify(config: NodeConfig, user: str, organisation: str, basis: str,
                 expires: str | None) -> int:
    body: dict[str, Any] = {"organisation": organisation, "basis": basis}
    try:
        if expires is not None:
            body["expires_at"] = expiry_ms(expires)
    except ValueError as e:
        print(f"broker users verify: --expires: {e}", file=sys.stderr)
        return 1
    return _verification_command(
        config, "verify", user,
        lambda services, actor, user_id: services.verifications.verify(actor, user_id, body))


def users_revoke(config: NodeConfig, user: str) -> int:
    return _verification_command(
        config, "revoke", user,
        lambda services, actor, user_id: services.verifications.revoke(actor, user_id))


VerificationCall = Callable[[AdminServices, Actor, str], Coroutine[Any, Any, dict[str, Any]]]


def _verification_command(config: NodeConfig, name: str, user: str,
                          call: VerificationCall) -> int:
    try:
        user_id = normalise_user_id(user, config.server_name)
        account = _act(config, f"users {name}",
                       lambda services, actor: call(services, actor, user_id))
    except ValueError as e:
        print(f"broker users {name}: {e}", file=sys.stderr)
        return 1
    except _Refused:
        return 1
    verification = account["verification"]
    held = "" if verification is None or account["class"] == "public" else (
        f" ({verification['organisation']}, {verification['basis']})")
    print(f"{user_id} is now {account['class']}{held}")
    return 0


def expiry_ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 date (its midnight, UTC) or date and
    time (UTC unless it names its zone); ValueError if it is neither."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise ValueError(f"{text!r} is not a date (2027-03-31) or a date and time"
                         " (2027-03-31T18:00:00+05:30)") from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def audit_verify(config: NodeConfig) -> int:
    session = AdminSession(config)
    try:
        old = {k.key_id: k.key for k in read_old_keys(old_keys_path(config.signing_key_path))}
        found: Verification = _run(verify(session.stores.audit, config.server_name,
                                          read_signing_keys_file(config.signing_key_path), old))
    finally:
        session.close()
    if not found.ok:
        print(f"audit log: entry {found.bad_seq} is bad: {found.problem}"
              f" ({found.entries} entries before it are intact)")
        return 1
    unsigned = found.entries - found.signed_up_to
    print(f"audit log: {found.entries} entries, chain intact; head signed at entry"
          f" {found.signed_up_to}" + (f" ({unsigned} entries since, signed at the next"
                                     " period)" if unsigned else ""))
    return 0
