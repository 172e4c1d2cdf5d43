"""The admin services over their stores, built the same way by the node and by the ``broker``
commands (which run without a node, on a synchronous database)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signedjson.types import SigningKey

from broker.admin.accounts import AccountDeps, AdminAccounts
from broker.admin.audit import AuditLog, AuditReader
from broker.admin.authority import Authority
from broker.admin.changes import ChangeFeed
from broker.admin.classes import UserClasses
from broker.admin.model import NODE_AUTHORITY, Actor, EntryError
from broker.admin.org_file import OrganisationsFile, OrganisationsFileError
from broker.admin.organisations import Organisations
from broker.admin.profile_visibility import ProfileVisibility
from broker.admin.reachability import Reachability
from broker.admin.roles import Roles
from broker.admin.verification_queue import VerificationQueue
from broker.admin.verifications import Verifications
from storage.accounts import AccountStore
from storage.audit import AuditStore
from storage.email_codes import EmailCodeStore
from storage.organisations import Organisation, OrganisationStore
from storage.reachability import ReachabilityStore
from storage.roles import RoleStore
from storage.users import UserStore

# The source under which the organisations file named by the config is recorded as applied.
CONFIG_SOURCE = "organisations.path"
CONFIG_ACTOR = Actor("config:organisations.path", "local", NODE_AUTHORITY)


@dataclass(frozen=True)
class AdminStores:
    organisations: OrganisationStore
    roles: RoleStore
    audit: AuditStore
    users: UserStore
    accounts: AccountStore
    email_codes: EmailCodeStore
    reachability: ReachabilityStore


@dataclass(frozen=True)
class AdminServices:
    audit: AuditLog
    organisations: Organisations
    roles: Roles
    audit_reader: AuditReader
    classes: UserClasses
    reachability: Reachability
    accounts: AdminAccounts
    verifications: Verifications
    changes: ChangeFeed
    verification_queue: VerificationQueue
    authority: Authority
    profile_visibility: ProfileVisibility


def build_admin_services(stores: AdminStores, clock: Any, signing_key: SigningKey,
                         sign_interval_seconds: float, roles_changed: Callable[[str], None],
                         account_deps: AccountDeps) -> AdminServices:
    """``roles_changed`` drops a user's cached sessions (their grants changed, or another
    process ended them)."""
    audit = AuditLog(stores.audit, clock, signing_key, account_deps.server_name,
                     sign_interval_seconds)
    authority = Authority(stores.roles, stores.organisations)
    roles = Roles(stores.roles, authority, audit, clock, stores.users.get_user, roles_changed)
    classes = UserClasses(stores.accounts, clock)
    reachability = Reachability(stores.reachability, classes, account_deps.server_name)
    accounts = AdminAccounts(stores.accounts, authority, audit, clock, classes, roles,
                             account_deps, reachability)
    verifications = Verifications(accounts)
    organisations = Organisations(stores.organisations, authority, audit, clock,
                                  stores.organisations.count_members, stores.roles.count_in)
    visibility = ProfileVisibility(stores.organisations, classes, account_deps.server_name)
    organisations.watch(visibility.written, visibility.deleted)
    changes = ChangeFeed(stores.audit, stores.accounts, classes, roles_changed)
    changes.listen(visibility.changes_seen)  # organisations changed by other processes
    return AdminServices(
        audit, organisations,
        roles, AuditReader(audit, authority), classes, reachability, accounts, verifications,
        changes,
        VerificationQueue(stores.email_codes, verifications, authority, audit, clock),
        authority, visibility)


async def import_file(organisations: Organisations, actor: Actor, file: OrganisationsFile,
                      source: str = "") -> list[Organisation]:
    """Import every organisation of ``file``, all or nothing; an error names its line."""
    try:
        return await organisations.import_entries(actor, file.entries, str(file.path), source,
                                                  file.digest)
    except EntryError as e:
        raise file.error(e) from e


async def apply_config_file(organisations: Organisations, file: OrganisationsFile
                            ) -> list[Organisation] | None:
    """Apply the organisations file the config names, if its content changed since it was
    last applied (None: unchanged, nothing done)."""
    if await organisations.applied_digest(CONFIG_SOURCE) == file.digest:
        return None
    return await import_file(organisations, CONFIG_ACTOR, file, CONFIG_SOURCE)


__all__ = ["OrganisationsFileError", "apply_config_file", "build_admin_services", "import_file"]
