"""broker/metrics.py and the router's labels: what a scrape shows, read from the node's parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer
from twisted.internet.task import Clock as FakeReactor

from broker.clock import Clock
from broker.http.route_table import route_label
from broker.metrics import NodeGauges, NodeMetrics, PurgeSources
from broker.notifier import Notifier
from broker.retention_purge import PurgeCounts
from federation.sender.expiry import ExpiredCounts
from tests.inprocess_node import InProcessNode
from tests.storage_helpers import result_of


def samples(metrics: NodeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = result_of(defer.ensureDeferred(metrics.scrape())).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


# -- labels ------------------------------------------------------------------------------------
def test_a_route_label_names_the_path_arguments_of_its_pattern() -> None:
    assert route_label("/_matrix/client/(?:v3|r0)/rooms/(?P<room_id>[^/]+)/send/"
                       "(?P<event_type>[^/]+)/(?P<txn_id>[^/]+)") == \
        "/_matrix/client/(?:v3|r0)/rooms/{room_id}/send/{event_type}/{txn_id}"


def test_a_route_label_keeps_optional_parts_and_skips_nested_groups() -> None:
    assert route_label("/download/(?P<media_id>[^/]+)(?:/(?P<file_name>[^/]+))?") == \
        "/download/{media_id}(?:/{file_name})?"
    assert route_label(r"/x/(?P<part>(a|b)[)\]]+)/y") == "/x/{part}/y"


# -- instruments -------------------------------------------------------------------------------
def test_requests_are_counted_by_route_method_and_status_class() -> None:
    metrics = NodeMetrics()
    metrics.observe_request("/sync", "GET", 200, 0.01)
    metrics.observe_request("/sync", "GET", 204, 0.02)
    metrics.observe_request("/sync", "GET", 404, 0.03)
    seen = samples(metrics)
    count = "broker_http_request_duration_seconds_count"
    assert seen[(count, (("method", "GET"), ("route", "/sync"), ("status", "2xx")))] == 2
    assert seen[(count, (("method", "GET"), ("route", "/sync"), ("status", "4xx")))] == 1


def test_failed_transactions_are_counted_apart_from_the_timings() -> None:
    metrics = NodeMetrics()
    metrics.observe_transaction("persist_events", 0.004, True)
    metrics.observe_transaction("persist_events", 0.5, False)
    seen = samples(metrics)
    assert seen[("broker_db_transaction_duration_seconds_count",
                 (("name", "persist_events"),))] == 1
    assert seen[("broker_db_transaction_errors_total", (("name", "persist_events"),))] == 1


def test_each_node_has_its_own_registry() -> None:
    first, second = NodeMetrics(), NodeMetrics()
    first.observe_request("/sync", "GET", 200, 0.01)
    assert not any(name.startswith("broker_http_request_duration_seconds_count")
                   for name, _ in samples(second))


# -- read at scrape ----------------------------------------------------------------------------
class Pool:
    def pool_stats(self) -> tuple[int, int, int]:
        return 4, 1, 7


class Destinations:
    def destination_health(self) -> list[tuple[str, bool, int]]:
        return [("a.example", True, 3), ("b.example", False, 0)]


def watched(notifier: Any = None, depths: Any = None, counts: PurgeCounts | None = None
            ) -> tuple[NodeMetrics, NodeGauges]:
    reactor = FakeReactor()
    notifier = notifier or Notifier(Clock(reactor), lambda room_id: [])
    metrics = NodeMetrics()
    gauges = NodeGauges(
        notifier, Pool(), Destinations(), depths or (lambda: defer.succeed({"a.example": (5, 2)})),
        PurgeSources(counts or PurgeCounts(), lambda: {"deleted_expired": 4,
                                                      "deleted_orphaned": 1},
                     ExpiredCounts(pdus=6, edus=0)), reactor)
    metrics.watch(gauges, lambda: defer.ensureDeferred(gauges.refresh()))
    return metrics, gauges


def test_waiting_and_waking_syncs_are_read_from_the_notifier() -> None:
    reactor = FakeReactor()
    notifier = Notifier(Clock(reactor), lambda room_id: [])
    for user in ("@a:x", "@b:x", "@c:x"):
        notifier.wait_for_user(user, 30)
    notifier.notify(users=["@a:x"])  # queued to be woken on the coming turns
    metrics, _ = watched(notifier)
    seen = samples(metrics)
    assert seen[("broker_sync_waiting", ())] == 2
    assert seen[("broker_sync_waking", ())] == 1


def test_the_pool_and_the_federation_queues_are_read_at_scrape() -> None:
    metrics, _ = watched()
    seen = samples(metrics)
    assert (seen[("broker_db_pool_threads", ())], seen[("broker_db_pool_busy", ())],
            seen[("broker_db_pool_queued", ())]) == (4, 1, 7)
    where = (("destination", "a.example"),)
    assert seen[("broker_federation_destination_backing_off", where)] == 1
    assert seen[("broker_federation_destination_failures", where)] == 3
    assert seen[("broker_federation_queue_pdus", where)] == 5
    assert seen[("broker_federation_queue_edus", where)] == 2


def test_a_scrape_without_the_database_answers_without_the_queue_depths() -> None:
    metrics, _ = watched(depths=lambda: defer.fail(ConnectionError("database gone")))
    seen = samples(metrics)
    assert ("broker_sync_waiting", ()) in seen
    assert not any(name == "broker_federation_queue_pdus" for name, _ in seen)


def test_purge_progress_shows_a_run_under_way() -> None:
    counts = PurgeCounts(events=1500, media=3, media_bytes=4096, runs=2, running=True,
                         run_events=500)
    metrics, _ = watched(counts=counts)
    seen = samples(metrics)
    assert seen[("broker_retention_purged_events_total", ())] == 1500
    assert seen[("broker_retention_purge_running", ())] == 1
    assert seen[("broker_retention_purge_run_events", ())] == 500
    assert seen[("broker_retention_purged_media_total", ())] == 3
    assert seen[("broker_retention_purged_media_bytes_total", ())] == 4096
    assert seen[("broker_undelivered_deleted_total", (("kind", "to_device_expired"),))] == 4
    assert seen[("broker_undelivered_deleted_total", (("kind", "federation_pdus"),))] == 6


# -- wiring ------------------------------------------------------------------------------------
def test_a_node_without_metrics_config_neither_listens_for_nor_observes_them(
        tmp_path: Path) -> None:
    harness = InProcessNode(tmp_path)
    try:
        node = harness.node
        node.listen()
        assert [port for port, *_ in harness.reactor.tcpServers] == [
            listener.port for listener in node.config.listeners]
        assert node.router.observe is None and node.db.observe is None
    finally:
        harness.close()


def test_a_node_with_a_metrics_port_listens_on_it_apart_on_loopback(tmp_path: Path) -> None:
    harness = InProcessNode(tmp_path, config={"metrics": {"port": 9101}})
    try:
        node = harness.node
        node.listen()
        metrics = [(port, interface) for port, _factory, _backlog, interface
                   in harness.reactor.tcpServers if port == 9101]
        assert metrics == [(9101, "127.0.0.1")]
        assert node.router.observe is not None and node.db.observe is not None
    finally:
        harness.close()
