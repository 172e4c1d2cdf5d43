"""Helpers the benchmark scripts share: the arguments every scale benchmark takes, a PostgreSQL
database for one run, and the target table printed after the RESULT line."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any


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
