"""Benchmark a burst of concurrent password logins: the node's memory and its answers.

    python benchmarks/scale_logins.py [--engine sqlite|postgres] [--sizes 50] [--dsn DSN]

The script registers as many accounts as the largest size (one after another), then for each
size sends that many ``POST /login`` with the right password at once (one connection each),
while a thread samples the node's resident memory (``VmRSS`` in ``/proc/<pid>/status``) every
few milliseconds.  It prints, per size:

- ``logins_<n>_ok`` / ``_429`` / ``_other``: how the logins were answered;
- ``logins_<n>_rss_before_mib`` / ``_rss_peak_mib``: resident memory just before the burst and
  the most sampled during it; ``_rss_growth_mib`` is the difference;
- ``logins_<n>_seconds``: until the last answer;
- ``hashing_bound_mib``: the configured bound on hashing memory (concurrency x memory cost);
  ``_rss_growth_mib`` has to stay under it plus 16 MiB for the requests themselves.

The last lines are ``RESULT {json}`` and the target table.  ``run(engine, sizes)`` is the entry
point for a runner of several scale benchmarks.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench import V3  # noqa: E402
from benchmarks.common import postgres_dsn, print_targets, scale_arguments  # noqa: E402
from tests.node_harness import NodeProcess  # noqa: E402

SIZES = (50,)
PASSWORD = "benchmark-password"
SAMPLE_INTERVAL_S = 0.005
MIB = 1024 * 1024
# Memory a burst needs besides the hashes (connections, requests, sessions): the target is
# the hashing bound plus this.
REQUEST_HEADROOM_MIB = 16


def rss_bytes(pid: int) -> int:
    """The process's resident memory now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


class RssSampler:
    """The highest resident memory of a process seen while running (a thread of its own)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(SAMPLE_INTERVAL_S):
            self.peak = max(self.peak, rss_bytes(self.pid))


def hashing_bound_mib(node: NodeProcess) -> float | None:
    """concurrency x memory cost from the node's config (None where the node has no bound)."""
    from broker.config import load_config

    settings = getattr(load_config(node.config_path), "password_hashing", None)
    return None if settings is None else settings.memory_bound_bytes / MIB


async def register_accounts(session: aiohttp.ClientSession, base: str, count: int) -> list[str]:
    names = []
    for i in range(count):
        name = f"login{i:04d}"
        async with session.post(base + f"{V3}/register", json={
                "username": name, "password": PASSWORD,
                "auth": {"type": "m.login.dummy"}}) as response:
            if response.status != 200:
                raise RuntimeError(f"register {name}: {response.status} {await response.text()}")
        names.append(name)
    return names


async def login(session: aiohttp.ClientSession, base: str, name: str) -> int:
    async with session.post(base + f"{V3}/login", json={
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": name},
            "password": PASSWORD}) as response:
        body = await response.json()
        if response.status == 429 and "retry_after_ms" not in body:
            raise RuntimeError(f"429 without retry_after_ms: {body}")
        return response.status


async def measure(node: NodeProcess, sizes: Sequence[int]) -> dict[str, Any]:
    assert node.process is not None
    pid = node.process.pid
    results: dict[str, Any] = {"hashing_bound_mib": hashing_bound_mib(node)}
    connector = aiohttp.TCPConnector(limit=max(sizes) + 8)
    async with aiohttp.ClientSession(connector=connector) as session:
        names = await register_accounts(session, node.base_url, max(sizes))
        for size in sorted(sizes):
            before = rss_bytes(pid)
            started = time.perf_counter()
            with RssSampler(pid) as sampler:
                statuses = await asyncio.gather(
                    *(login(session, node.base_url, name) for name in names[:size]))
            prefix = f"logins_{size}"
            results.update({
                f"{prefix}_ok": statuses.count(200), f"{prefix}_429": statuses.count(429),
                f"{prefix}_other": len(statuses) - statuses.count(200) - statuses.count(429),
                f"{prefix}_seconds": round(time.perf_counter() - started, 2),
                f"{prefix}_rss_before_mib": round(before / MIB, 1),
                f"{prefix}_rss_peak_mib": round(sampler.peak / MIB, 1),
                f"{prefix}_rss_growth_mib": round((sampler.peak - before) / MIB, 1),
            })
            print(json.dumps(results), flush=True)
    return results


async def run(engine: str, sizes: Sequence[int] = SIZES, dsn: str = "") -> dict[str, Any]:
    """A fresh node on ``engine``; the memory and answers of each burst of logins."""
    results: dict[str, Any] = {"engine": engine}
    with postgres_dsn(engine, dsn) as node_dsn, tempfile.TemporaryDirectory() as tmp:
        node = NodeProcess(Path(tmp), engine=engine, dsn=node_dsn,
                           overrides={"logging.level": "WARNING"})
        node.start()
        try:
            results.update(await measure(node, sizes))
        finally:
            node.stop()
    return results


def main() -> None:
    args = scale_arguments(__doc__.splitlines()[0], SIZES, "numbers of concurrent logins"
                           ).parse_args()
    results = asyncio.run(run(args.engine, args.sizes, args.dsn))
    print("RESULT " + json.dumps(results))
    bound = results.get("hashing_bound_mib")
    if bound is not None:
        print_targets(results, {f"logins_{size}_rss_growth_mib": ("<", bound + REQUEST_HEADROOM_MIB)
                                for size in args.sizes})


if __name__ == "__main__":
    main()
