"""What metrics add per request and per transaction, and what a scrape costs.

    python benchmarks/metrics_cost.py

Prints the best of five runs, in microseconds per call: ``NodeMetrics.observe_request`` (each
answered request), ``NodeMetrics.observe_transaction`` (each database transaction, on its
thread) and the router's label lookup; and in milliseconds, writing the text of a registry
holding 300 routes x 3 status classes and 150 transaction names (a node writes it on a thread
of the reactor's pool).
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

from twisted.internet import defer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker.http.route_table import route_label  # noqa: E402
from broker.metrics import NodeMetrics  # noqa: E402

CALLS = 200_000
SEND = ("/_matrix/client/(?:v3|r0)/rooms/(?P<room_id>[^/]+)/send/(?P<event_type>[^/]+)"
        "/(?P<txn_id>[^/]+)")


def per_call_us(statement: str, namespace: dict[str, object]) -> float:
    runs = timeit.repeat(statement, globals=namespace, number=CALLS, repeat=5)
    return min(runs) / CALLS * 1e6


def main() -> None:
    metrics = NodeMetrics()
    labels = {SEND: route_label(SEND)}
    namespace: dict[str, object] = {"m": metrics, "labels": labels, "SEND": SEND}
    request = per_call_us("m.observe_request(labels[SEND], 'PUT', 200, 0.0016)", namespace)
    transaction = per_call_us("m.observe_transaction('persist_events', 0.001, True)", namespace)
    print(f"observe_request: {request:.2f} µs")
    print(f"observe_transaction: {transaction:.2f} µs")
    print(f"label lookup: {per_call_us('labels[SEND]', namespace):.3f} µs")
    for route in range(300):
        for status in (200, 400, 500):
            metrics.observe_request(f"/route/{route}", "GET", status, 0.01)
    for name in range(150):
        metrics.observe_transaction(f"txn_{name}", 0.001, True)

    def scrape() -> None:
        d = defer.ensureDeferred(metrics.scrape())
        d.addCallback(lambda body: None)

    best = min(timeit.repeat(scrape, number=20, repeat=5)) / 20
    print(f"text of 900 request series and 150 transaction series: {best * 1000:.1f} ms")


if __name__ == "__main__":
    main()
