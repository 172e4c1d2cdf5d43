"""What the encryption-at-rest tests share: a key file, a node configured with it on either
engine, and the raw stored values of a table, read past the stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.at_rest_keys import write_key_file
from storage.at_rest import DataKey
from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine
from tests.storage_helpers import result_of

MARKER = "heliotrope-marker-5521"


def key_file(workdir: Path, *keys: DataKey) -> Path:
    path = workdir / "at_rest.keys"
    write_key_file(path, list(keys) or [DataKey.generate()], replace=True)
    return path


def at_rest_config(path: Path) -> dict[str, Any]:
    return {"at_rest": {"key_file": str(path)}}


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: Any, tmp_path: Path) -> Iterator[Engine]:
    """Nodes on each engine, configured with a key file (``tmp_path / "at_rest.keys"``)."""
    made = Engine(request.param, tmp_path, at_rest_config(key_file(tmp_path)))
    try:
        yield made
    finally:
        made.close()


def raw_values(local: InProcessNode, table: str, column: str) -> list[str]:
    """Every stored value of a column, as the database holds it."""
    return [str(row[0]) for row in result_of(local.node.db.run_interaction(
        "test_raw_values", lambda cur: cur.select_all(f"SELECT {column} FROM {table}")))]


def holding(values: list[str], text: str = MARKER) -> list[str]:
    return [value for value in values if text in value]
