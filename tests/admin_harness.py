"""An in-process node on each engine with a node admin, for the admin API and command tests.

Requests go through the node's real router (``InProcessNode.call``); accounts and sessions
are made directly in its stores.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from storage.audit import AuditDraft
from storage.database import Database, DatabaseConfig
from storage.migrations import apply_migrations
from tests.inprocess_node import InProcessNode
from tests.smtp_server import deliver_on_this_thread
from tests.storage_helpers import (
    POSTGRES_ENV,
    POSTGRES_SKIP,
    create_postgres_database,
    drop_postgres_database,
    result_of,
)

ADMIN = "/_broker/admin/v1"


class _SharedPostgres:
    """One migrated PostgreSQL database for the session's admin tests: each test starts from
    it emptied and its migrations' seed rows written back (much faster than a database each)."""

    def __init__(self) -> None:
        self.dsn, self.name = create_postgres_database()
        db = Database(DatabaseConfig(engine="postgres", dsn=self.dsn), synchronous=True)
        apply_migrations(db)
        self.seeds = db.run_sync("seeds", self._read_seeds)
        db.close()
        atexit.register(drop_postgres_database, self.name)

    @staticmethod
    def _tables(cur: Any) -> list[str]:
        return [row[0] for row in cur.select_all(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'schema_migrations' ORDER BY tablename")]

    def _read_seeds(self, cur: Any) -> dict[str, list[tuple[Any, ...]]]:
        return {table: cur.select_all(f"SELECT * FROM {table}") for table in self._tables(cur)}

    def reset(self) -> str:
        db = Database(DatabaseConfig(engine="postgres", dsn=self.dsn), synchronous=True)

        def empty(cur: Any) -> None:
            for table in self.seeds:
                cur.execute(f"DELETE FROM {table}")
            for table, rows in self.seeds.items():
                if rows:
                    marks = ", ".join("?" for _ in rows[0])
                    cur.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)

        db.run_sync("reset", empty)
        db.close()
        return self.dsn


_SHARED: list[_SharedPostgres] = []


def _postgres_dsn() -> str:
    if not _SHARED:
        _SHARED.append(_SharedPostgres())
    return _SHARED[0].reset()


class AdminNode:
    def __init__(self, workdir: Path, engine: str, config: dict[str, Any] | None = None
                 ) -> None:
        self.engine = engine
        self.dsn = ""
        if engine == "postgres":
            if not os.environ.get(POSTGRES_ENV):
                pytest.skip(POSTGRES_SKIP)
            self.dsn = _postgres_dsn()
        self.local = InProcessNode(workdir, "admin.test", engine=engine, dsn=self.dsn,
                                   config=config)
        self.node = self.local.node
        self.stores = self.node.stores
        self._hash_on_this_thread()
        self.node.mailer.run_blocking = deliver_on_this_thread
        self.tokens: dict[str, str] = {}  # localpart -> access token of each user made
        self.root_id, self.root = self.user("root", admin=True)

    def _hash_on_this_thread(self) -> None:
        """Accounts made through the admin API hash their password on the calling thread:
        the fake reactor runs no pool threads (the hash is the same Argon2id)."""
        passwords = self.node.auth.passwords

        async def hash_password(password: str) -> str:
            return passwords.hash_sync(password)

        accounts = self.node.admin.accounts
        accounts.deps = replace(accounts.deps, hash_password=hash_password)

        async def run_here(work: Any, *args: Any) -> Any:
            return work(*args)

        passwords._pool.run = run_here  # type: ignore[method-assign]  # logins, changes

    def user(self, localpart: str, *, admin: bool = False) -> tuple[str, str]:
        """A new account with a session: its user ID and access token."""
        user_id = self.node.user_id(localpart)
        result_of(self.stores.users.create_user(user_id, "", self.node.clock.time_ms(),
                                                is_admin=admin))
        token, _ = self.local.run(self.node.auth.create_session(user_id, None, None, None))
        self.tokens[localpart] = token
        return user_id, token

    def api(self, method: str, path: str, token: str | None, body: Any = None, *,
            raw: bytes | None = None) -> tuple[int, Any]:
        return self.local.call(method, f"{ADMIN}{path}", token, body, raw=raw)

    def api_as(self, localpart: str, method: str, path: str, body: Any = None
               ) -> tuple[int, Any]:
        """An admin API request by the user made as ``localpart``."""
        return self.api(method, path, self.tokens[localpart], body)

    def client(self, localpart: str, method: str, path: str, body: Any = None
               ) -> tuple[int, Any]:
        """A Client-Server API request (``path`` under /_matrix/client/v3) by ``localpart``."""
        return self.local.call(method, f"/_matrix/client/v3{path}", self.tokens[localpart],
                               body)

    def ok(self, method: str, path: str, body: Any = None, *, status: int = 200) -> Any:
        """A request by the node admin that must succeed with ``status``; its answer."""
        got, answer = self.api(method, path, self.root, body)
        assert got == status, answer
        return answer

    def refused(self, answer: tuple[int, Any], status: int, errcode: str) -> None:
        """``answer`` is the refusal ``status``/``errcode``, recorded as the last entry."""
        got, body = answer
        assert (got, body.get("errcode")) == (status, errcode), body
        entry = self.last_entry()
        assert entry["outcome"] == "refused" and entry["detail"]["error"] == body["error"]

    def org(self, org_id: str, parent: str | None = None, **fields: Any) -> None:
        body = {"id": org_id, "name": fields.pop("name", org_id.upper()), **fields}
        if parent is not None:
            body["parent"] = parent
        self.ok("POST", "/organisations", body, status=201)

    def ministries(self, localpart: str, role: str) -> tuple[str, str]:
        """mha (with mha.dm) and mea, and a user holding ``role`` over mha: its ID and token."""
        self.org("mha")
        self.org("mha.dm", "mha")
        self.org("mea")
        user_id, token = self.user(localpart)
        self.grant(user_id, (role, "mha"))
        return user_id, token

    def grant(self, user_id: str, *grants: tuple[str, str | None]) -> None:
        roles = [{"role": role, **({"organisation": org} if org else {})}
                 for role, org in grants]
        self.ok("PUT", f"/users/{user_id}/roles", {"roles": roles})

    def entries(self) -> list[dict[str, Any]]:
        return result_of(self.stores.audit.entries(0, 10_000))

    def last_entry(self) -> dict[str, Any]:
        return self.entries()[-1]

    def last_entry_draft(self) -> AuditDraft:
        """An entry to record a write made directly in a store."""
        return AuditDraft(self.node.clock.time_ms(), "test", "test.write", "", "", "local", "ok")

    def organisation_ids(self) -> list[str]:
        return [o.org_id for o in result_of(self.stores.organisations.all())]

    def close(self) -> None:
        self.local.close()


@pytest.fixture(params=["sqlite", "postgres"])
def admin(request: Any, tmp_path: Path) -> Iterator[AdminNode]:
    """A node with a node admin (``root``), once per engine."""
    made = AdminNode(tmp_path, request.param)
    try:
        yield made
    finally:
        made.close()
