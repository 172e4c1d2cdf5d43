"""Fuzz every Client-Server operation of the spec against one running node.

``run_fuzz`` loads the bundled spec once, gives each operation ``examples`` generated requests
(operations that end the session last, so the others keep their account), and returns a
``FuzzSummary``: the request count, the count of each failure kind and the distinct failures.
The test (tests/test_client_api_fuzz.py) and the script (scripts/fuzz-client-api) share it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemathesis

from tests.fuzz.engine import SESSION_ENDING, Failure, OperationFuzz, OperationReport
from tests.fuzz.spec_bundle import SpecOperation, bundle, operations
from tests.fuzz.target import FuzzTarget

SUMMARY_KINDS = ("5xx", "hang", "close")


@dataclass
class FuzzSummary:
    reports: list[OperationReport] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(report.requests for report in self.reports)

    def kind_counts(self) -> Counter[str]:
        return Counter(f.kind for report in self.reports for f in report.failures)

    def distinct(self) -> list[Failure]:
        return [f for report in self.reports for f in report.distinct()]

    def gating_distinct(self) -> list[Failure]:
        return [f for f in self.distinct() if f.gating]

    def headline(self) -> str:
        counts = self.kind_counts()
        return (f"requests: {self.requests}, 5xx: {counts['5xx']}, hangs: {counts['hang']}, "
                f"closes: {counts['close']}")

    def text(self) -> str:
        """The headline, the count of each failure kind and every distinct failure."""
        counts = self.kind_counts()
        lines = [self.headline()]
        lines += [f"  {kind}: {count}" for kind, count in sorted(counts.items())]
        statuses: Counter[int] = Counter()
        for report in self.reports:
            statuses.update(report.statuses)
        lines.append("statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
        distinct = self.distinct()
        lines.append(f"distinct failures: {len(distinct)}")
        lines += [failure.describe() for failure in
                  sorted(distinct, key=lambda f: (not f.gating, f.kind, f.operation))]
        return "\n".join(lines)


def ordered(found: list[SpecOperation]) -> list[SpecOperation]:
    """The spec's operations in a stable order, those that end the session at the end."""
    return sorted(found, key=lambda op: (op.operation_id in SESSION_ENDING, op.label))


def schema_operations() -> dict[str, Any]:
    """schemathesis's operation objects of the bundled spec, by ``"METHOD /path"``."""
    schema: Any = schemathesis.openapi.from_dict(bundle())
    found = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        found[f"{operation.method.upper()} {operation.path}"] = operation
    return found


def run_fuzz(base_url: str, log_path: Path | None, examples: int, hostile: bool = True,
             progress: Callable[[OperationReport], None] | None = None) -> FuzzSummary:
    """Fuzz every operation of the spec on the node at ``base_url`` (``log_path``: its log,
    to pair failures with tracebacks): ``examples`` generated requests each, then the hostile
    table unless ``hostile`` is false."""
    by_label = schema_operations()
    target = FuzzTarget(base_url, log_path)
    target.new_account()
    target.new_log_text()
    summary = FuzzSummary()
    for spec in ordered(operations()):
        report = OperationFuzz(by_label[spec.label], spec, target).run(examples, hostile)
        summary.reports.append(report)
        if progress is not None:
            progress(report)
    return summary
