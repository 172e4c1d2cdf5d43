"""Helpers the benchmark scripts share: the arguments every scale benchmark takes, a PostgreSQL
database for one run, the target table printed after the RESULT line, progress lines and
accounts written straight into a stopped node's database."""

from __future__ import annotations

import argparse
import os
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.node_harness import NodeProcess


def scale_arguments(description: str, sizes: Sequence[int],
                    what: str) -> argparse.ArgumentParser:
    """A parser with the arguments every scale benchmark takes: --engine, --dsn and
    --sizes (comma-separated counts of ``what``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--dsn", default="", help="PostgreSQL DSN of an empty database")
    parser.add_argument("--sizes", type=_counts, default=list(sizes),
                        help=f"comma-separated {what}")
    return parser


def _counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


@contextmanager
def postgres_dsn(engine: str, dsn: str = "") -> Iterator[str]:
    """``dsn`` as given; for PostgreSQL without one, a fresh database (dropped on exit)."""
    if engine != "postgres" or dsn:
        yield dsn
        return
    from tests.storage_helpers import (
        POSTGRES_ENV,
        create_postgres_database,
        drop_postgres_database,
    )

    os.environ.setdefault(POSTGRES_ENV, "host=127.0.0.1 user=postgres dbname=postgres")
    fresh, name = create_postgres_database()
    try:
        yield fresh
    finally:
        drop_postgres_database(name)


def print_targets(results: Mapping[str, Any], targets: Mapping[str, tuple[str, float]]) -> None:
    """One line per target figure present in ``results``: value, target, ok or MISSED."""
    for key, (op, limit) in targets.items():
        if key in results:
            value = results[key]
            ok = value >= limit if op == ">=" else value < limit
            print(f"{key:28s} {value:10.1f}   target {op} {limit}   {'ok' if ok else 'MISSED'}")


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def create_accounts(node: NodeProcess, count: int, prefix: str = "m") -> list[tuple[str, str]]:
    """``count`` accounts with one access token each, written into a stopped node's database
    with the library (one Argon2 hash shared by all); returns (user_id, token) pairs."""
    from broker.admin_tools import open_database
    from broker.auth import hash_token
    from broker.config import load_config
    from broker.passwords import PasswordHashing
    from storage.database import fired_result
    from storage.users import UserStore

    config = load_config(node.config_path)
    db = open_database(config)
    try:
        store = UserStore(db)
        password_hash = PasswordHashing().hash_sync("benchmark-password")
        now = int(time.time() * 1000)
        accounts = []
        for i in range(count):
            user_id = f"@{prefix}{i:05d}:{config.server_name}"
            token = "brk_" + secrets.token_urlsafe(24)
            fired_result(store.create_user(user_id, password_hash, now))
            fired_result(store.add_device_and_token(user_id, "BENCH", None, hash_token(token),
                                                    now, None))
            accounts.append((user_id, token))
            if (i + 1) % 1000 == 0:
                progress(f"{i + 1}/{count} accounts written")
    finally:
        db.close()
    return accounts


def results_on_a_node(engine: str, dsn: str, overrides: Mapping[str, Any],
                      run: Any) -> dict[str, Any]:
    """``run(node)`` (a coroutine function) on a node of its own started in a temporary
    directory, stopped afterwards; its results with the engine's name."""
    import asyncio
    import tempfile
    from pathlib import Path

    from tests.node_harness import NodeProcess

    with tempfile.TemporaryDirectory() as tmp, postgres_dsn(engine, dsn) as fresh:
        node = NodeProcess(Path(tmp) / "node", engine=engine, dsn=fresh,
                           overrides=dict(overrides))
        node.start()
        try:
            return {"engine": engine, **asyncio.run(run(node))}
        finally:
            node.stop()
