"""Numbered schema migrations apply once, in order, on both engines."""

from __future__ import annotations

from storage.database import Database
from storage.migrations import apply_migrations, available_migrations, current_version


def test_all_migrations_are_recorded(database: Database) -> None:
    numbers = [number for number, _ in available_migrations()]
    assert current_version(database) == max(numbers)


def test_applying_again_changes_nothing(database: Database) -> None:
    assert apply_migrations(database) == []


def test_migration_numbers_are_unique_and_ordered() -> None:
    numbers = [number for number, _ in available_migrations()]
    assert numbers == sorted(set(numbers))
