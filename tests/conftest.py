"""Shared fixtures: a migrated database on each engine, and real nodes on loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from storage.database import Database
from tests.inprocess_node import InProcessNode
from tests.node_harness import NodeProcess
from tests.storage_helpers import (
    POSTGRES_ENV,
    POSTGRES_SKIP,
    create_postgres_database,
    drop_postgres_database,
    make_database,
)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: Any, tmp_path: Any) -> Iterator[Database]:
    """A fresh migrated database; every storage test runs once per engine."""
    db, cleanup = make_database(request.param, tmp_path)
    try:
        yield db
    finally:
        cleanup()


@pytest.fixture
def local(tmp_path: Any) -> Iterator[InProcessNode]:
    """A node in this process on a fake clock (``tests/inprocess_node.py``)."""
    harness = InProcessNode(tmp_path)
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="session")
def node(tmp_path_factory: Any) -> Iterator[NodeProcess]:
    """One running node (SQLite) shared by the session's integration tests."""
    running = NodeProcess(tmp_path_factory.mktemp("node")).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def any_node(request: Any, tmp_path_factory: Any) -> Iterator[NodeProcess]:
    """A running node on each engine: integration tests using it run against both."""
    if request.param == "postgres":
        if not os.environ.get(POSTGRES_ENV):
            pytest.skip(POSTGRES_SKIP)
        dsn, name = create_postgres_database()
        running = NodeProcess(tmp_path_factory.mktemp("pgnode"), engine="postgres", dsn=dsn)
    else:
        name = ""
        running = NodeProcess(tmp_path_factory.mktemp("node"))
    running.start()
    try:
        yield running
    finally:
        running.stop()
        if name:
            drop_postgres_database(name)
