"""Deleting deactivated accounts' personal data (``retention.deactivated_account_data``) on
both engines, on the node's clock: once an account has been deactivated longer than the
period, its profile, organisation details, account data, filters, push rules, keys and key
backups go, one account per transaction, counted; the account row, its room events and the
audit log stay; a run that fails part-way leaves each account whole or done, and the next
run goes on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import storage.deactivated_data as deactivated_data
from storage.media_references import account_data_key
from tests.admin_harness import AdminNode
from tests.storage_helpers import result_of

DAY_S = 86_400
PERIOD_DAYS = 30


@pytest.fixture(params=["sqlite", "postgres"])
def node(request: Any, tmp_path: Path) -> Iterator[AdminNode]:
    made = AdminNode(tmp_path, request.param,
                     config={"retention": {"deactivated_account_data": f"{PERIOD_DAYS}d"}})
    try:
        made.org("mha")
        yield made
    finally:
        made.close()


def person(node: AdminNode, localpart: str) -> str:
    """An account in mha with official details, a profile, account data, a filter, a push
    rule, device keys and a key backup; its user ID."""
    user_id = str(node.ok("POST", "/users", {
        "localpart": localpart, "organisation": "mha", "designation": "Under Secretary",
        "employee_id": "E-1", "email": f"{localpart}@mha.gov.in", "phone": "+91 11 2309 2011",
        "password": "a long passphrase for tests"}, status=201)["user_id"])
    node.tokens[localpart] = node.local.run(
        node.node.auth.create_session(user_id, "PHONE", None, None))[0]
    user = quote(user_id)
    for method, path, body in (
            ("PUT", f"/profile/{user}/displayname", {"displayname": "A. Sharma"}),
            ("PUT", f"/user/{user}/account_data/m.direct", {"@x:elsewhere": ["!r:x"]}),
            ("PUT", f"/user/{user}/account_data/im.ponies.user_emotes",
             {"images": {"wave": {"url": "mxc://admin.test/Emote00001"}}}),
            ("POST", f"/user/{user}/filter", {"room": {"timeline": {"limit": 5}}}),
            ("PUT", "/pushrules/global/override/u.one", {"actions": ["notify"]})):
        status, answer = node.client(localpart, method, path, body)
        assert status == 200, (path, answer)

    def seed(cur: Any) -> None:
        cur.execute("INSERT INTO e2e_device_keys (user_id, device_id, key_json, ts)"
                    " VALUES (?, 'PHONE', '{}', 0)", (user_id,))
        cur.execute("INSERT INTO room_key_backup_versions (user_id, version, algorithm,"
                    " auth_data, etag, deleted) VALUES (?, 1, 'm.megolm_backup.v1', '{}', 0,"
                    " FALSE)", (user_id,))
        cur.execute("INSERT INTO sync_progress (user_id, position) VALUES (?, 12)", (user_id,))
        cur.execute("INSERT INTO delivery_pending (user_id, event_id, room_id, origin, position)"
                    " VALUES (?, '$e', '!r:b.example', 'b.example', 13)", (user_id,))

    node.node.db.run_sync("seed", seed)
    return user_id


def personal_rows(node: AdminNode, user_id: str) -> dict[str, int]:
    """Rows naming the user in each table whose rows the job deletes (none left: {})."""
    def count(cur: Any) -> dict[str, int]:
        found = {}
        for table, column in deactivated_data.DELETED:
            row = cur.select_one(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (user_id,))
            if row[0]:
                found[table] = int(row[0])
        return found

    return node.node.db.run_sync("count", count)


def details(node: AdminNode, user_id: str) -> tuple[Any, ...]:
    return node.node.db.run_sync("details", lambda cur: cur.select_one(
        "SELECT p.displayname, p.avatar_url, m.org_id, m.designation, m.employee_id, m.email,"
        " m.phone, u.deactivated FROM users u JOIN profiles p ON p.user_id = u.user_id"
        " LEFT JOIN organisation_members m ON m.user_id = u.user_id WHERE u.user_id = ?",
        (user_id,)))


def deactivate(node: AdminNode, user_id: str) -> None:
    node.ok("POST", f"/users/{user_id}/deactivate", {})


def run(node: AdminNode) -> int:
    return node.local.run(node.node.deactivated_data.run())


def test_an_account_deactivated_longer_than_the_period_loses_its_personal_data(
        node: AdminNode) -> None:
    user_id = person(node, "asharma")
    assert {"account_data", "user_filters", "push_rules", "e2e_device_keys",
            "room_key_backup_versions", "sync_progress", "delivery_pending"} <= set(
        personal_rows(node, user_id))
    deactivate(node, user_id)
    run(node)  # first sight: stamped
    node.local.advance((PERIOD_DAYS + 1) * DAY_S)
    assert run(node) == 1
    assert personal_rows(node, user_id) == {}
    assert details(node, user_id) == (None, None, "mha", None, None, None, None, True)
    assert node.node.db.run_sync("uses", lambda cur: cur.select_all(
        "SELECT event_id FROM media_references WHERE event_id = ?",
        (account_data_key(user_id, "", "im.ponies.user_emotes"),))) == []


def test_personal_data_stays_until_the_period_has_passed(node: AdminNode) -> None:
    user_id = person(node, "asharma")
    deactivate(node, user_id)
    run(node)
    node.local.advance((PERIOD_DAYS - 1) * DAY_S)
    assert run(node) == 0
    assert "account_data" in personal_rows(node, user_id)
    assert details(node, user_id)[0] == "A. Sharma"


def test_an_active_account_is_never_touched(node: AdminNode) -> None:
    user_id = person(node, "asharma")
    run(node)
    node.local.advance((PERIOD_DAYS + 1) * DAY_S)
    assert run(node) == 0
    assert details(node, user_id)[3] == "Under Secretary"


def test_room_events_the_account_row_and_the_audit_log_stay(node: AdminNode) -> None:
    user_id = person(node, "asharma")
    room_id = node.client("asharma", "POST", "/createRoom", {})[1]["room_id"]
    node.client("asharma", "PUT", f"/rooms/{quote(room_id)}/send/m.room.message/1",
                {"msgtype": "m.text", "body": "on the record"})
    audit_before = node.entries()
    deactivate(node, user_id)
    run(node)
    node.local.advance((PERIOD_DAYS + 1) * DAY_S)
    run(node)
    kinds = node.node.db.run_sync("events", lambda cur: sorted(row[0] for row in cur.select_all(
        "SELECT type FROM events WHERE sender = ?", (user_id,))))
    assert "m.room.message" in kinds and "m.room.member" in kinds
    assert node.entries()[:len(audit_before)] == audit_before
    assert result_of(node.stores.users.get_user(user_id)) is not None


def test_the_deletions_are_counted_in_the_policy_document(node: AdminNode) -> None:
    deactivate(node, person(node, "asharma"))
    run(node)
    node.local.advance((PERIOD_DAYS + 1) * DAY_S)
    run(node)
    section = node.ok("GET", "/policy")["retention"]["deactivated_accounts"]
    assert section["deleted_accounts"] == 1
    assert section["max_age"] == PERIOD_DAYS * DAY_S * 1000


def test_a_failed_deletion_leaves_the_account_whole_and_the_next_run_finishes(
        node: AdminNode, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = person(node, "asharma"), person(node, "bverma")
    for user_id in (first, second):
        deactivate(node, user_id)
    run(node)
    node.local.advance((PERIOD_DAYS + 1) * DAY_S)
    # The second account's transaction fails after all its statements: nothing of it may go.
    whole = deactivated_data._delete_txn

    def crash_on_second(cur: Any, user_id: str, now_ms: int) -> bool:
        done = whole(cur, user_id, now_ms)
        if user_id == second:
            raise RuntimeError("the process died here")
        return done

    monkeypatch.setattr(deactivated_data, "_delete_txn", crash_on_second)
    with pytest.raises(RuntimeError):
        run(node)
    assert personal_rows(node, first) == {}
    assert "account_data" in personal_rows(node, second)
    assert details(node, second)[0] == "A. Sharma"
    monkeypatch.undo()
    assert run(node) == 1
    assert personal_rows(node, second) == {}


def test_nothing_is_deleted_without_a_configured_period(tmp_path: Path) -> None:
    made = AdminNode(tmp_path, "sqlite")
    try:
        made.org("mha")
        user_id = person(made, "asharma")
        deactivate(made, user_id)
        made.local.advance(400 * DAY_S)
        assert run(made) == 0
        assert "account_data" in personal_rows(made, user_id)
    finally:
        made.close()
