"""The admin stores on both engines, where concurrent writes meet: two node admins removed at
the same moment never leave the node without one."""

from __future__ import annotations

from storage.audit import AuditDraft
from storage.database import Database
from storage.roles import LastNodeAdmin, RoleStore
from storage.users import UserStore
from tests.storage_helpers import at_once, result_of


def _entry(target: str) -> AuditDraft:
    return AuditDraft(1, "@x:hs", "roles.change", target, "", "local", "ok")


def test_two_concurrent_removals_of_the_last_two_node_admins_leave_one(
        database: Database) -> None:
    users = UserStore(database)
    for user_id in ("@a:hs", "@b:hs"):
        result_of(users.create_user(user_id, "", 1, is_admin=True))
    refused: list[str] = []

    def remove(db: Database, user_id: str) -> None:
        try:
            result_of(RoleStore(db).replace(user_id, set(), "@x:hs", 2, _entry(user_id)))
        except LastNodeAdmin:
            refused.append(user_id)

    at_once(database, remove, ["@a:hs", "@b:hs"])
    assert len(refused) == 1
    roles = RoleStore(database)
    kept = [u for u in ("@a:hs", "@b:hs") if result_of(roles.grants_of(u))]
    assert kept == refused
