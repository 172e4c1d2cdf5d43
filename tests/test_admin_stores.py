"""The admin stores on both engines, where concurrent writes meet: two node admins removed at
the same moment never leave the node without one; audit entries appended in batches and one by
one, at the same moment, form one chain with no gap, which the change feed reads in order."""

from __future__ import annotations

from storage.audit import AuditDraft, AuditStore, append_entries, entry_hash
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


def _chain_is_whole(database: Database, count: int) -> None:
    entries = result_of(AuditStore(database).entries(0, 10_000))
    assert [e["seq"] for e in entries] == list(range(1, count + 1))
    previous = ""
    for entry in entries:
        assert (entry["prev_hash"], entry_hash(entry)) == (previous, entry["hash"])
        previous = entry["hash"]
    assert result_of(AuditStore(database).head()) == (count, previous)


def test_entries_appended_in_one_batch_chain_like_entries_appended_one_by_one(
        database: Database) -> None:
    audit = AuditStore(database)
    result_of(audit.append(_entry("@first:hs")))
    seqs = database.run_sync("batch", append_entries,
                             [_entry(f"@u{n}:hs") for n in range(5)])
    result_of(audit.append(_entry("@last:hs")))
    assert seqs == [2, 3, 4, 5, 6]
    _chain_is_whole(database, 7)


def test_a_batch_and_single_entries_appended_at_once_never_fork_the_chain(
        database: Database) -> None:
    def append(db: Database, batch: int) -> None:
        db.run_sync("append", append_entries, [_entry(f"@b{batch}.{n}:hs")
                                               for n in range(batch)])

    at_once(database, append, [300, 1, 1, 1])
    _chain_is_whole(database, 303)
    changes = result_of(AuditStore(database).changes(0, 1000))
    assert [c.seq for c in changes] == list(range(1, 304))
    batch = [c for c in changes if c.target.startswith("@b300.")]
    assert [c.target for c in batch] == [f"@b300.{n}:hs" for n in range(300)]
    assert [c.seq for c in batch] == list(range(batch[0].seq, batch[0].seq + 300))


def test_the_change_feed_reads_refusals_as_not_ok(database: Database) -> None:
    audit = AuditStore(database)
    result_of(audit.append(_entry("@a:hs")))
    result_of(audit.append(AuditDraft(2, "@x:hs", "users.revoke", "@b:hs", "", "local",
                                      "refused")))
    assert [(c.seq, c.target, c.ok) for c in result_of(audit.changes(0, 10))] == [
        (1, "@a:hs", True), (2, "@b:hs", False)]
    assert result_of(audit.changes(2, 10)) == []
