"""In-process nodes started one after the other on one database (a restart), on either engine;
and what tests of jobs on the node's clock read of it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.inprocess_node import InProcessNode
from tests.storage_helpers import drop_postgres_database, postgres_database_or_skip, result_of


class Engine:
    """One database for the nodes a test starts one after the other (a restart), each with
    ``config`` (top-level sections of the node's config)."""

    def __init__(self, engine: str, workdir: Path, config: dict[str, Any] | None = None
                 ) -> None:
        self.engine, self.workdir, self.config = engine, workdir, config
        self.dsn, self._name = postgres_database_or_skip() if engine == "postgres" else ("", "")
        self.nodes: list[InProcessNode] = []

    def node(self) -> InProcessNode:
        made = InProcessNode(self.workdir, engine=self.engine, dsn=self.dsn, config=self.config)
        self.nodes.append(made)
        return made

    def restart(self, stopped: InProcessNode) -> InProcessNode:
        """Stop a node and start another on its database (its clock starts where the first
        one's did)."""
        stopped.close()
        self.nodes.remove(stopped)
        return self.node()

    def close(self) -> None:
        for made in self.nodes:
            made.close()
        if self._name:
            drop_postgres_database(self._name)


def engines(config: dict[str, Any] | None = None) -> Callable[..., Iterator[Engine]]:
    """An ``engine`` fixture: each test once per engine, its nodes started with ``config``."""
    @pytest.fixture(params=["sqlite", "postgres"])
    def engine(request: Any, tmp_path: Path) -> Iterator[Engine]:
        made = Engine(request.param, tmp_path, config)
        try:
            yield made
        finally:
            made.close()

    return engine


def stored_json(local: InProcessNode, event_id: str) -> str:
    row = result_of(local.node.db.run_interaction(
        "test_stored_json", lambda cur: cur.select_one(
            "SELECT json FROM events WHERE event_id = ?", (event_id,))))
    return str(row[0])


def run_for(local: InProcessNode, seconds: float) -> None:
    """Move the clock on, then give the group commits the turns they take."""
    local.advance(seconds)
    for _ in range(50):
        local.advance(0)
