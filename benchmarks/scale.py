"""Run the scale benchmarks one after another and print all their figures with their targets.

    python benchmarks/scale.py [--engine sqlite|postgres] [--parts memory,fanout,cold_sync,logins]
                               [--quick]

Each part is a script of its own (``benchmarks/scale_<part>.py``, see docs/benchmarks.md) with
its own node and, on PostgreSQL, a fresh database; this runner calls their ``run`` entry points
with the sizes of the issue's figures (or, with ``--quick``, small sizes for a check that the
benchmarks work, whose figures are not comparable with the targets).  Progress lines go to
stdout as each part runs; the last lines are ``RESULT {json}`` and the target table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks import scale_cold_sync, scale_fanout, scale_logins, scale_memory  # noqa: E402
from benchmarks.common import postgres_dsn, print_targets, progress  # noqa: E402

Part = Callable[[str, str, bool], Awaitable[dict[str, Any]]]


async def _memory(engine: str, dsn: str, quick: bool) -> dict[str, Any]:
    sizes = (2_000,) if quick else scale_memory.SIZES
    return await scale_memory.run(engine, sizes, dsn=dsn, idle=2.0 if quick else 30.0)


async def _fanout(engine: str, dsn: str, quick: bool) -> dict[str, Any]:
    sizes = (500,) if quick else scale_fanout.SIZES
    return await scale_fanout.run(engine, sizes, rounds=2 if quick else 3, dsn=dsn)


async def _cold_sync(engine: str, dsn: str, quick: bool) -> dict[str, Any]:
    sizes = (50,) if quick else scale_cold_sync.SIZES
    return await scale_cold_sync.run(engine, sizes, restarts=2 if quick else 5, dsn=dsn)


async def _logins(engine: str, dsn: str, quick: bool) -> dict[str, Any]:
    sizes = (10,) if quick else scale_logins.SIZES
    return await scale_logins.run(engine, sizes, dsn=dsn)


PARTS: dict[str, Part] = {"memory": _memory, "fanout": _fanout, "cold_sync": _cold_sync,
                          "logins": _logins}


def targets(engine: str, results: Mapping[str, Any]) -> dict[str, tuple[str, float]]:
    """Every part's targets for ``engine`` (the login bound follows the configured pool)."""
    table: dict[str, tuple[str, float]] = {}
    table.update(scale_memory.TARGETS)
    table.update(scale_fanout.TARGETS)
    table.update(scale_cold_sync.TARGETS[engine])
    bound = results.get("hashing_bound_mib")
    if bound is not None:
        for size in scale_logins.SIZES:
            table[f"logins_{size}_rss_growth_mib"] = (
                "<", bound + scale_logins.REQUEST_HEADROOM_MIB)
    return table


async def run(engine: str, parts: list[str], quick: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"engine": engine}
    for name in parts:
        progress(f"scale part {name} ({engine}{', quick' if quick else ''})")
        with postgres_dsn(engine) as dsn:
            results.update(await PARTS[name](engine, dsn, quick))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes: a check, not figures")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown parts: {', '.join(unknown)}")
    results = asyncio.run(run(args.engine, parts, args.quick))
    print("RESULT " + json.dumps(results))
    if not args.quick:
        print_targets(results, targets(args.engine, results))


if __name__ == "__main__":
    main()
