"""Numbered schema migrations, shared by both engines and applied on start.

Files in ``storage/schema`` are named ``NNN_description.sql``; each is applied once, in order, in
its own transaction, and recorded in ``schema_migrations``.  An existing database upgrades in place.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from storage.database import Cursor, Database

logger = logging.getLogger(__name__)

SCHEMA_DIR = Path(__file__).parent / "schema"
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def available_migrations() -> list[tuple[int, Path]]:
    """Every migration file, in order; refuses duplicate numbers."""
    found: dict[int, Path] = {}
    for path in sorted(SCHEMA_DIR.iterdir()):
        match = _NAME.match(path.name)
        if not match:
            continue
        number = int(match.group(1))
        if number in found:
            raise RuntimeError(f"two schema migrations numbered {number}: {path.name}")
        found[number] = path
    return sorted(found.items())


def split_statements(sql: str) -> list[str]:
    """Split a migration into statements (our files keep ';' out of string literals)."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _ensure_table(cur: Cursor) -> set[int]:
    cur.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
        " applied_ts BIGINT NOT NULL)"
    )
    return {row[0] for row in cur.select_all("SELECT version FROM schema_migrations")}


def apply_migrations(db: Database, now_ms: int | None = None) -> list[int]:
    """Apply every pending migration synchronously; returns the numbers applied.

    ``now_ms`` is recorded as each migration's ``applied_ts`` (bookkeeping only: nothing reads
    it back); without it, the wall clock."""
    applied_ts = int(time.time() * 1000) if now_ms is None else now_ms
    applied_now: list[int] = []
    done = db.run_sync("schema_migrations", _ensure_table)
    for number, path in available_migrations():
        if number in done:
            continue
        statements = split_statements(path.read_text())

        def apply(cur: Cursor, statements: list[str] = statements, number: int = number) -> None:
            for statement in statements:
                cur.execute(statement)
            cur.execute(
                "INSERT INTO schema_migrations (version, applied_ts) VALUES (?, ?)",
                (number, applied_ts),
            )

        logger.info("applying schema migration %s", path.name)
        db.run_sync(f"migration {number}", apply)
        applied_now.append(number)
    return applied_now


def current_version(db: Database) -> int:
    done = db.run_sync("schema_migrations", _ensure_table)
    return max(done) if done else 0
