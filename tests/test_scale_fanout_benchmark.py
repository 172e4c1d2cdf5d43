"""The fan-out benchmark itself works: members on lean long-poll connections receive the
message and every figure is measured (a small room, one real node)."""

from __future__ import annotations

import asyncio

from benchmarks import scale_fanout


def test_the_fan_out_benchmark_measures_a_small_room_of_lean_long_polls() -> None:
    results = asyncio.run(scale_fanout.run("sqlite", (20,), rounds=1))
    for figure in ("send_20_ms", "fanout_20_p50_ms", "fanout_20_p99_ms"):
        assert results[figure] > 0, figure
    assert results["fanout_20_p50_ms"] <= results["fanout_20_p99_ms"]
