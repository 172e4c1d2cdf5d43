"""Migration 110 on both engines: node admins from before roles existed hold node_admin over
the whole node, and nobody else holds a role."""

from __future__ import annotations

from typing import Any

import pytest

from storage import migrations
from storage.database import Database
from storage.roles import RoleStore
from storage.users import UserStore
from tests.storage_helpers import make_database, result_of


@pytest.fixture(params=["sqlite", "postgres"])
def before_roles(request: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A database migrated up to (not including) migration 110."""
    every = migrations.available_migrations()
    monkeypatch.setattr(migrations, "available_migrations",
                        lambda: [(n, p) for n, p in every if n < 110])
    db, cleanup = make_database(request.param, tmp_path)
    monkeypatch.setattr(migrations, "available_migrations", lambda: every)
    yield db
    cleanup()


def _add_user(db: Database, user_id: str, is_admin: bool) -> None:
    db.run_sync("old user", lambda cur: cur.execute(
        "INSERT INTO users (user_id, password_hash, created_ts, is_admin) VALUES (?, '', 1, ?)",
        (user_id, is_admin)))


def test_existing_node_admins_get_node_admin_over_the_node(before_roles: Database) -> None:
    _add_user(before_roles, "@admin:hs", True)
    _add_user(before_roles, "@user:hs", False)
    assert 110 in migrations.apply_migrations(before_roles)
    roles = RoleStore(before_roles)
    assert result_of(roles.grants_of("@admin:hs")) == {("node_admin", "")}
    assert result_of(roles.grants_of("@user:hs")) == set()


def test_an_admin_created_after_the_migration_holds_node_admin(database: Database) -> None:
    result_of(UserStore(database).create_user("@new:hs", "", 1, is_admin=True))
    assert result_of(RoleStore(database).grants_of("@new:hs")) == {("node_admin", "")}
