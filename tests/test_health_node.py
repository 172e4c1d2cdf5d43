"""``GET /health`` of a real node: 200 while it can serve, 503 once its database stops
answering (a lock another process holds on SQLite; the database dropped on PostgreSQL)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import requests

from tests.node_harness import NodeProcess, node_on_engine
from tests.storage_helpers import (
    POSTGRES_ENV,
    POSTGRES_SKIP,
    create_postgres_database,
    drop_postgres_database,
)


def health(node: NodeProcess) -> tuple[int, dict[str, str]]:
    answer = requests.get(node.base_url + "/health", timeout=30)
    return answer.status_code, answer.json()


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_started_node_with_its_database_is_healthy(engine: str, tmp_path: Path) -> None:
    with node_on_engine(engine, tmp_path) as node:
        assert health(node) == (200, {"status": "ok"})


def test_health_needs_no_token_and_is_not_under_the_matrix_prefix(node: NodeProcess) -> None:
    answer = requests.get(node.base_url + "/health", timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"


def test_a_sqlite_database_locked_by_another_process_is_unhealthy(tmp_path: Path) -> None:
    with node_on_engine("sqlite", tmp_path) as node:
        holder = sqlite3.connect(tmp_path / "data" / "broker.db", isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")  # the write lock every transaction of the node needs
            assert health(node) == (503, {"status": "unavailable", "reason": "database"})
        finally:
            holder.execute("ROLLBACK")
            holder.close()


def test_a_dropped_postgres_database_is_unhealthy(tmp_path: Path) -> None:
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(POSTGRES_SKIP)
    dsn, name = create_postgres_database()
    node = NodeProcess(tmp_path, engine="postgres", dsn=dsn).start()
    try:
        drop_postgres_database(name)  # WITH (FORCE): the node's connections are cut too
        assert health(node) == (503, {"status": "unavailable", "reason": "database"})
    finally:
        node.stop()
        drop_postgres_database(name)
