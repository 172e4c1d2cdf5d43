"""Prometheus metrics of a real node, scraped over HTTP on its metrics listener, both engines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.node_harness import NodeProcess, free_port, node_on_engine

SEND_ROUTE = "/_matrix/client/(?:v3|r0)/rooms/{room_id}/send/{event_type}/{txn_id}"
SYNC_ROUTE = "/_matrix/client/(?:v3|r0)/sync"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def scraped(request: Any, tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, str]]:
    """A running node with a metrics listener, and the URL to scrape."""
    port = free_port()
    with node_on_engine(request.param, Path(tmp_path_factory.mktemp("metrics")),
                        overrides={"metrics": {"port": port}}) as node:
        yield node, f"http://127.0.0.1:{port}/metrics"


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> (labels, value) of each of its samples."""
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict[str, list[tuple[dict[str, str], float]]], sample: str,
          **labels: str) -> float:
    found = [v for have, v in samples.get(sample, []) if all(have.get(k) == w
                                                            for k, w in labels.items())]
    assert len(found) == 1, (sample, labels, samples.get(sample))
    return found[0]


def send_message(node: NodeProcess) -> tuple[Any, str]:
    client = node.register()
    room_id = client.post("/_matrix/client/v3/createRoom", {})["room_id"]
    client.put(f"/_matrix/client/v3/rooms/{room_id}/send/m.room.message/txn1",
               {"msgtype": "m.text", "body": "counted"})
    assert client.status == 200
    return client, room_id


def test_a_send_is_counted_under_its_route_pattern_not_its_path(
        scraped: tuple[NodeProcess, str]) -> None:
    node, url = scraped
    before = scrape(url).get("broker_http_request_duration_seconds_count", [])
    sends_before = sum(v for labels, v in before if labels["route"] == SEND_ROUTE)
    _client, room_id = send_message(node)
    samples = scrape(url)
    assert value(samples, "broker_http_request_duration_seconds_count", route=SEND_ROUTE,
                 method="PUT", status="2xx") == sends_before + 1
    routes = {labels["route"] for labels, _ in samples["broker_http_request_duration_seconds_count"]}
    assert not any(room_id in route for route in routes)


def test_sync_latency_is_a_histogram_of_its_route(scraped: tuple[NodeProcess, str]) -> None:
    node, url = scraped
    client, _room_id = send_message(node)
    client.get("/_matrix/client/v3/sync")
    samples = scrape(url)
    assert value(samples, "broker_http_request_duration_seconds_count", route=SYNC_ROUTE,
                 method="GET", status="2xx") >= 1
    assert value(samples, "broker_http_request_duration_seconds_bucket", route=SYNC_ROUTE,
                 method="GET", status="2xx", le="+Inf") >= 1


def test_a_path_no_route_matches_is_counted_as_unmatched(
        scraped: tuple[NodeProcess, str]) -> None:
    node, url = scraped
    node.client().get("/_matrix/client/v3/no/such/endpoint/abc123")
    samples = scrape(url)
    assert value(samples, "broker_http_request_duration_seconds_count", route="unmatched",
                 method="GET", status="4xx") >= 1
    routes = {labels["route"] for labels, _ in samples["broker_http_request_duration_seconds_count"]}
    assert not any("abc123" in route for route in routes)


def test_transactions_are_timed_by_name(scraped: tuple[NodeProcess, str]) -> None:
    node, url = scraped
    send_message(node)
    samples = scrape(url)
    assert value(samples, "broker_db_transaction_duration_seconds_count",
                 name="persist_events") >= 1


def test_scrape_time_gauges_are_there(scraped: tuple[NodeProcess, str]) -> None:
    _node, url = scraped
    samples = scrape(url)
    for name in ("broker_sync_waiting", "broker_sync_waking", "broker_db_pool_threads",
                 "broker_db_pool_busy", "broker_db_pool_queued",
                 "broker_retention_purged_events_total", "broker_retention_purge_running"):
        assert name in samples, name
    assert value(samples, "broker_db_pool_threads") >= 1


def test_the_metrics_listener_serves_nothing_else(scraped: tuple[NodeProcess, str]) -> None:
    _node, url = scraped
    assert requests.get(url.replace("/metrics", "/_matrix/client/versions"),
                        timeout=10).status_code == 404


def test_metrics_are_off_unless_configured(node: NodeProcess) -> None:
    """The shared node has no ``metrics`` key: its client listener does not serve them."""
    config = node.config_path.read_text()
    assert "metrics" not in config
    assert requests.get(node.base_url + "/metrics", timeout=10).status_code == 404
