"""The audit log, on both engines: hash-chained entries, concurrent appends that never fork
the chain, signatures of the head made periodically, and a verifier that names the first bad
entry after a row was changed or removed in the database."""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import MemoryReactorClock

from broker.admin.audit import AuditLog, verify
from broker.clock import Clock
from protocol.signing import generate_signing_key
from storage.audit import AuditDraft, AuditStore, append_entry, entry_hash
from storage.database import Database
from tests.admin_harness import AdminNode, admin
from tests.storage_helpers import at_once, result_of

__all__ = ["admin"]

KEY = generate_signing_key("a_1")


def _draft(n: int) -> AuditDraft:
    return AuditDraft(1_000 + n, "@root:hs", "organisations.create", f"org{n}", f"org{n}",
                      "10.0.0.1", "ok", {"n": n})


def _log(store: AuditStore, reactor: Any = None) -> AuditLog:
    return AuditLog(store, Clock(reactor or MemoryReactorClock()), KEY, "hs", 60)


def _verified(store: AuditStore) -> Any:
    return result_of(_defer(verify(store, "hs", [KEY])))


def _defer(coroutine: Any) -> Any:
    from twisted.internet import defer

    return defer.ensureDeferred(coroutine)


def _fill(db: Database, count: int) -> AuditStore:
    store = AuditStore(db)
    for n in range(1, count + 1):
        result_of(store.append(_draft(n)))
    return store


def test_each_entry_holds_the_hash_of_the_one_before(database: Database) -> None:
    entries = result_of(_fill(database, 3).entries(0, 10))
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev_hash"] == ""
    assert [e["prev_hash"] for e in entries[1:]] == [e["hash"] for e in entries[:2]]
    assert all(e["hash"] == entry_hash(e) for e in entries)


def test_an_entry_records_who_what_on_whom_when_from_where_and_the_outcome(
        database: Database) -> None:
    entry = result_of(_fill(database, 1).entries(0, 1))[0]
    assert {k: entry[k] for k in ("actor", "action", "target", "ts", "client_ip", "outcome")} \
        == {"actor": "@root:hs", "action": "organisations.create", "target": "org1",
            "ts": 1001, "client_ip": "10.0.0.1", "outcome": "ok"}


def test_concurrent_appends_never_fork_the_chain(database: Database) -> None:
    def append_many(db: Database, worker: int) -> None:
        for n in range(25):
            db.run_sync("append", append_entry, _draft(worker * 100 + n))

    at_once(database, append_many, [0, 1, 2, 3])
    store = AuditStore(database)
    assert [e["seq"] for e in result_of(store.entries(0, 1000))] == list(range(1, 101))
    assert _verified(store).ok


def test_signing_records_the_head_once_it_moved(database: Database) -> None:
    store = _fill(database, 2)
    log = _log(store)
    signed = result_of(_defer(log.sign_head()))
    assert (signed.seq, signed.hash) == (2, result_of(store.head())[1])
    assert result_of(_defer(log.sign_head())) is None  # nothing new to sign


def test_the_head_is_signed_every_period_and_on_shutdown(database: Database) -> None:
    reactor = MemoryReactorClock()
    store = _fill(database, 1)
    log = _log(store, reactor)
    log.start(reactor)
    reactor.advance(59)
    assert result_of(store.last_signed_seq()) == 0
    reactor.advance(1)
    assert result_of(store.last_signed_seq()) == 1
    result_of(store.append(_draft(2)))
    for trigger, args, kwargs in reactor.triggers["before"]["shutdown"]:
        result_of(trigger(*args, **kwargs))
    assert result_of(store.last_signed_seq()) == 2


def test_an_intact_chain_verifies(database: Database) -> None:
    store = _fill(database, 5)
    result_of(_defer(_log(store).sign_head()))
    found = _verified(store)
    assert found.ok and (found.entries, found.signed_up_to) == (5, 5)


def _tamper(db: Database, sql: str, args: tuple[Any, ...]) -> None:
    db.run_sync("tamper", lambda cur: cur.execute(sql, args))


def test_a_changed_entry_is_named(database: Database) -> None:
    store = _fill(database, 5)
    _tamper(database, "UPDATE audit_log SET target = ? WHERE seq = ?", ("someone else", 3))
    found = _verified(store)
    assert found.bad_seq == 3 and "changed" in found.problem


def test_a_removed_entry_is_named(database: Database) -> None:
    store = _fill(database, 5)
    _tamper(database, "DELETE FROM audit_log WHERE seq = ?", (2,))
    found = _verified(store)
    assert found.bad_seq == 2 and "missing" in found.problem


def test_removing_the_newest_entries_is_detected(database: Database) -> None:
    store = _fill(database, 5)
    result_of(_defer(_log(store).sign_head()))
    _tamper(database, "DELETE FROM audit_log WHERE seq >= ?", (4,))
    _tamper(database, "UPDATE audit_head SET seq = 3", ())
    assert _verified(store).bad_seq == 4


def test_a_rewritten_chain_fails_against_its_signed_head(database: Database) -> None:
    store = _fill(database, 3)
    result_of(_defer(_log(store).sign_head()))
    entries = result_of(store.entries(0, 10))
    entries[1]["target"] = "forged"
    prev = entries[0]["hash"]
    for entry in entries[1:]:  # recompute every hash from the forged entry on
        entry["prev_hash"] = prev
        entry["hash"] = prev = entry_hash(entry)
        _tamper(database, "UPDATE audit_log SET target = ?, prev_hash = ?, hash = ?"
                " WHERE seq = ?", (entry["target"], entry["prev_hash"], entry["hash"],
                                   entry["seq"]))
    found = _verified(store)
    assert found.bad_seq == 3 and "signed" in found.problem


def test_a_forged_signature_is_named(database: Database) -> None:
    store = _fill(database, 2)
    result_of(_defer(AuditLog(store, Clock(MemoryReactorClock()), generate_signing_key("a_1"),
                              "hs", 60).sign_head()))
    found = _verified(store)
    assert found.bad_seq == 2 and "signature" in found.problem


# -- through the API ---------------------------------------------------------------------------
def test_the_api_pages_through_the_log(admin: AdminNode) -> None:
    for n in range(3):
        admin.org(f"o{n}")
    first = admin.ok("GET", "/audit?limit=2")
    assert [e["seq"] for e in first["entries"]] == [1, 2] and first["next_from"] == 2
    rest = admin.ok("GET", "/audit?from=2&limit=2")
    assert [e["target"] for e in rest["entries"]] == ["o2"] and "next_from" not in rest


def test_an_org_scoped_auditor_sees_only_its_sub_tree(admin: AdminNode) -> None:
    auditor, token = admin.ministries("auditor", "auditor")
    status, body = admin.api("GET", "/audit", token)
    assert status == 200
    # the organisations of its sub-tree and the grant over mha; nothing about mea
    assert {e["target"] for e in body["entries"]} == {"mha", "mha.dm", auditor}


def test_a_bad_page_argument_is_refused_and_recorded(admin: AdminNode) -> None:
    status, body = admin.api("GET", "/audit?from=yesterday", admin.root)
    assert (status, body["errcode"]) == (400, "M_INVALID_PARAM")
    assert admin.last_entry()["outcome"] == "refused"


def test_no_route_edits_or_deletes_entries(admin: AdminNode) -> None:
    routes = [r for r in admin.node.router.routes() if "/audit" in r.pattern
              and r.pattern.startswith("/_broker/admin")]
    assert routes and {r.method for r in routes} == {"GET"}
    admin.org("mha")
    for method in ("PUT", "POST", "DELETE", "PATCH"):
        status, _ = admin.api(method, "/audit", admin.root, {})
        assert status in (404, 405)
    assert len(admin.entries()) == 1


def test_a_started_node_signs_the_audit_head_every_period(admin: AdminNode) -> None:
    admin.local.run(admin.node.start())
    admin.org("mha")
    admin.local.advance(admin.node.config.audit_sign_interval_seconds)
    assert result_of(admin.stores.audit.last_signed_seq()) == 1
