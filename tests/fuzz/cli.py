"""``scripts/fuzz-client-api``: the Client-Server fuzz against a freshly started node.

Starts a node on the chosen engine in a temporary folder (PostgreSQL: a fresh database on the
server ``$BROKER_TEST_POSTGRES`` names, dropped afterwards), sends ``examples`` generated
requests to every operation of the spec plus the hostile table, and prints the summary:
``requests: N, 5xx: X, hangs: Y, closes: Z``, the count of each failure kind, the statuses and
the distinct failures.  Exits 1 when a failure the test suite gates on was found.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from tests.fuzz.engine import BUDGET_ENV, CI_BUDGET, OperationReport, budget
from tests.fuzz.runner import run_fuzz
from tests.fuzz.spec_bundle import missing_spec
from tests.node_harness import node_on_engine
from tests.storage_helpers import POSTGRES_ENV


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fuzz-client-api",
        description="Fuzz every Client-Server operation of the spec against a fresh node.")
    parser.add_argument("examples", nargs="?", help="generated requests per operation "
                        f"(default: ${BUDGET_ENV}, else {CI_BUDGET})")
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--no-hostile", action="store_true",
                        help="leave out the table of hostile inputs")
    parser.add_argument("--progress", action="store_true",
                        help="print a line per operation as it is done")
    return parser.parse_args(argv)


def _progress(report: OperationReport) -> None:
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(report.statuses.items()))
    print(f"{report.seconds:6.1f}s {report.requests:5d} {report.operation.label} ({statuses})",
          flush=True)


def main(argv: list[str]) -> int:
    arguments = _arguments(argv)
    reason = missing_spec()
    if reason is not None:
        print(f"fuzz-client-api: {reason}", file=sys.stderr)
        return 2
    if arguments.engine == "postgres" and not os.environ.get(POSTGRES_ENV):
        print(f"fuzz-client-api: set {POSTGRES_ENV} to a libpq DSN of a server where "
              "databases may be created", file=sys.stderr)
        return 2
    examples = budget(arguments.examples)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-client-api-") as workdir:
        with node_on_engine(arguments.engine, Path(workdir)) as node:
            summary = run_fuzz(node.base_url, node.log_path, examples,
                               hostile=not arguments.no_hostile,
                               progress=_progress if arguments.progress else None)
    print(f"engine: {arguments.engine}, {examples} generated requests per operation, "
          f"{len(summary.reports)} operations, {time.monotonic() - started:.0f}s")
    print(summary.text())
    return 1 if summary.gating_distinct() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
