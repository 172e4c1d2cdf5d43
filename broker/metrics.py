"""The node's Prometheus metrics (docs/admin/metrics.md lists them all).

Each node owns its registry (tests run several nodes in one process, so nothing goes to the
library's global one).  The request path and the database threads only observe histograms:
the router tells :meth:`NodeMetrics.observe_request` of each answer, the database
:meth:`NodeMetrics.observe_transaction` of each transaction, each a dictionary lookup and an
``observe``.  Everything else is read when Prometheus scrapes (:class:`NodeGauges`): the
notifier's waiting syncs, the federation queues, the database pool and the purges' counters,
so nothing is counted twice on the hot path.  Those are read on the reactor thread (they are
its objects); the text is then written on a thread of the reactor's pool, as writing a few
thousand samples takes milliseconds the reactor should spend on requests.  Label values come from bounded sets: route
patterns (never paths), methods, status classes, transaction names, destination servers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from twisted.internet import defer, threads

logger = logging.getLogger(__name__)

# Requests: from a cached answer (sub-millisecond) to a long-poll that waited its timeout.
REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)
TRANSACTION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                       2.5, 5.0, 10.0)
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
# How long a scrape waits for the queue depths before answering without them.
DEPTH_TIMEOUT_S = 2.0


class NodeMetrics:
    """The registry and the instruments the hot paths observe."""

    def __init__(self, reactor: Any = None) -> None:
        """``reactor``: whose thread pool writes the exposition text (None: the caller's
        thread)."""
        self.reactor = reactor
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "broker_http_request_duration_seconds",
            "Time to answer a request, by route pattern, method and status class",
            ["route", "method", "status"], buckets=REQUEST_BUCKETS, registry=self.registry)
        self.transactions = Histogram(
            "broker_db_transaction_duration_seconds",
            "Time a database transaction took on its pool thread, by transaction name",
            ["name"], buckets=TRANSACTION_BUCKETS, registry=self.registry)
        self.transaction_errors = Counter(
            "broker_db_transaction_errors",
            "Database transactions that failed (after their retries), by transaction name",
            ["name"], registry=self.registry)
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._transaction_children: dict[str, Any] = {}
        self._refreshers: list[Callable[[], defer.Deferred[None]]] = []

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status // 100)
        child = self._request_children.get(key)
        if child is None:
            label = STATUS_CLASSES[key[2] - 1] if 1 <= key[2] <= 5 else "other"
            child = self._request_children[key] = self.requests.labels(route, method, label)
        child.observe(seconds)

    def observe_transaction(self, name: str, seconds: float, committed: bool) -> None:
        """Called on a database thread (the instruments are thread-safe)."""
        if not committed:
            self.transaction_errors.labels(name).inc()
            return
        child = self._transaction_children.get(name)
        if child is None:
            child = self._transaction_children[name] = self.transactions.labels(name)
        child.observe(seconds)

    def watch(self, collector: Collector,
              refresh: Callable[[], defer.Deferred[None]] | None = None) -> None:
        """Read ``collector`` at each scrape, after ``refresh`` (what needs the database)."""
        self.registry.register(collector)
        if refresh is not None:
            self._refreshers.append(refresh)

    async def scrape(self) -> bytes:
        """The exposition text, the refreshers run first (on the reactor thread)."""
        for refresh in self._refreshers:
            await refresh()
        if self.reactor is None:
            return generate_latest(self.registry)
        return await threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(),
                                               generate_latest, self.registry)


class Notifications(Protocol):
    def waiting_count(self) -> int: ...
    def waking_count(self) -> int: ...


class Pool(Protocol):
    def pool_stats(self) -> tuple[int, int, int]: ...


class Destinations(Protocol):
    def destination_health(self) -> list[tuple[str, bool, int]]: ...


@dataclass
class PurgeSources:
    """The purges' counters, read at scrape (each an object the purge updates in place)."""

    retention: Any  # broker.retention_purge.PurgeCounts
    to_device: Callable[[], dict[str, Any]]  # ToDevice.summary
    federation_queue: Any | None  # federation.sender.expiry.ExpiredCounts, None without expiry


class NodeGauges(Collector):
    """What is read when Prometheus scrapes: nothing here runs on the request path.

    :meth:`refresh`, on the reactor thread before each scrape, reads everything into a
    snapshot that :meth:`collect` hands over (from the thread writing the text).
    ``queue_depths`` reads the federation queue from the database, with a timeout: a scrape
    during a database outage answers without the depths."""

    def __init__(self, notifier: Notifications, pool: Pool, destinations: Destinations,
                 queue_depths: Callable[[], defer.Deferred[dict[str, tuple[int, int]]]],
                 purges: PurgeSources, reactor: Any) -> None:
        self.notifier = notifier
        self.pool = pool
        self.destinations = destinations
        self._queue_depths = queue_depths
        self.purges = purges
        self.reactor = reactor
        self.depths: dict[str, tuple[int, int]] | None = None
        self._snapshot: list[Metric] = []

    def describe(self) -> list[Metric]:
        return []  # read at each scrape; nothing to check at registration

    async def refresh(self) -> None:
        d = self._queue_depths()
        d.addTimeout(DEPTH_TIMEOUT_S, self.reactor)
        try:
            self.depths = await d
        except Exception as e:
            logger.warning("metrics: reading the federation queue depths failed: %s", e)
            self.depths = None
        self._snapshot = list(self._read())

    def collect(self) -> Iterator[Metric]:
        return iter(self._snapshot)

    def _read(self) -> Iterator[Metric]:
        yield from self._sync()
        yield from self._database()
        yield from self._federation()
        yield from self._purges()

    def _sync(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("broker_sync_waiting",
                                "Long-polling syncs waiting for something to happen",
                                value=self.notifier.waiting_count())
        yield GaugeMetricFamily("broker_sync_waking",
                                "Syncs queued to be woken on the coming reactor turns",
                                value=self.notifier.waking_count())

    def _database(self) -> Iterator[Metric]:
        size, busy, queued = self.pool.pool_stats()
        yield GaugeMetricFamily("broker_db_pool_threads", "Database threads at most",
                                value=size)
        yield GaugeMetricFamily("broker_db_pool_busy", "Database threads running a transaction",
                                value=busy)
        yield GaugeMetricFamily("broker_db_pool_queued",
                                "Transactions waiting for a database thread", value=queued)

    def _federation(self) -> Iterator[Metric]:
        backing_off = GaugeMetricFamily(
            "broker_federation_destination_backing_off",
            "1 while delivery to a destination server waits to retry after failures",
            labels=["destination"])
        failures = GaugeMetricFamily(
            "broker_federation_destination_failures",
            "Failed delivery attempts in a row to a destination server", labels=["destination"])
        for name, waiting, failed in self.destinations.destination_health():
            backing_off.add_metric([name], 1 if waiting else 0)
            failures.add_metric([name], failed)
        yield backing_off
        yield failures
        if self.depths is None:
            return
        pdus = GaugeMetricFamily("broker_federation_queue_pdus",
                                 "PDUs queued for a destination server", labels=["destination"])
        edus = GaugeMetricFamily("broker_federation_queue_edus",
                                 "Persistent EDUs queued for a destination server",
                                 labels=["destination"])
        for name, (pdu_count, edu_count) in sorted(self.depths.items()):
            pdus.add_metric([name], pdu_count)
            edus.add_metric([name], edu_count)
        yield pdus
        yield edus

    def _purges(self) -> Iterator[Metric]:
        counts = self.purges.retention
        yield CounterMetricFamily("broker_retention_purged_events",
                                  "Expired events whose content the retention purge removed",
                                  value=counts.events)
        yield CounterMetricFamily("broker_retention_purged_media",
                                  "Local media files deleted with the expired events that alone"
                                  " used them", value=counts.media)
        yield CounterMetricFamily("broker_retention_purged_media_bytes",
                                  "Bytes those media files and their thumbnails held",
                                  value=counts.media_bytes)
        yield CounterMetricFamily("broker_retention_purge_runs", "Retention purge runs done",
                                  value=counts.runs)
        yield CounterMetricFamily("broker_retention_purge_failed_runs",
                                  "Retention purge runs that failed (retried at the next run)",
                                  value=counts.failed_runs)
        yield GaugeMetricFamily("broker_retention_purge_running",
                                "1 while a retention purge is under way",
                                value=1 if counts.running else 0)
        yield GaugeMetricFamily("broker_retention_purge_run_events",
                                "Events purged by the run under way, or by the last one",
                                value=counts.run_events)
        if counts.last_run_ts is not None:
            yield GaugeMetricFamily("broker_retention_purge_last_run_timestamp_seconds",
                                    "When the last retention purge run ended",
                                    value=counts.last_run_ts / 1000)
        undelivered = CounterMetricFamily(
            "broker_undelivered_deleted",
            "Undelivered data deleted when its time passed, by kind", labels=["kind"])
        to_device = self.purges.to_device()
        undelivered.add_metric(["to_device_expired"], to_device["deleted_expired"])
        undelivered.add_metric(["to_device_orphaned"], to_device["deleted_orphaned"])
        queue = self.purges.federation_queue
        if queue is not None:
            undelivered.add_metric(["federation_pdus"], queue.pdus)
            undelivered.add_metric(["federation_edus"], queue.edus)
        yield undelivered


class AppServiceQueues(Protocol):
    def health(self) -> list[tuple[Any, Any]]: ...


class AppServiceGauges(Collector):
    """Each application service's delivery, read at each scrape from the pusher's memory."""

    def __init__(self, pusher: AppServiceQueues) -> None:
        self.pusher = pusher

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("broker_appservice_up",
                               "1 while the application service accepts transactions, 0 while"
                               " they are retried after failures", labels=["service"])
        failures = GaugeMetricFamily("broker_appservice_failures_in_a_row",
                                     "Failed transaction attempts in a row", labels=["service"])
        failed = CounterMetricFamily("broker_appservice_failed_attempts",
                                     "Failed transaction attempts since the node started",
                                     labels=["service"])
        sent = CounterMetricFamily("broker_appservice_transactions",
                                   "Transactions the service accepted since the node started",
                                   labels=["service"])
        queued = GaugeMetricFamily("broker_appservice_queued",
                                   "Ephemeral events and to-device messages held for the"
                                   " service", labels=["service", "kind"])
        dropped = CounterMetricFamily("broker_appservice_dropped",
                                      "Ephemeral events and to-device messages dropped beyond"
                                      " the memory limit", labels=["service", "kind"])
        for service, queue in self.pusher.health():
            health = queue.health
            up.add_metric([service.id], 1 if health.state == "up" else 0)
            failures.add_metric([service.id], health.failures_in_a_row)
            failed.add_metric([service.id], health.failed_attempts)
            sent.add_metric([service.id], health.transactions)
            queued.add_metric([service.id, "ephemeral"], len(queue.ephemeral))
            queued.add_metric([service.id, "to_device"], len(queue.to_device))
            for kind, count in health.dropped.items():
                dropped.add_metric([service.id, kind], count)
        yield from (up, failures, failed, sent, queued, dropped)


def node_gauges(notifier: Notifications, pool: Pool, sender: Any, retention: Any,
                to_device: Callable[[], dict[str, Any]], reactor: Any
                ) -> tuple[NodeGauges, Callable[[], defer.Deferred[None]]]:
    """The scrape-time gauges of a node and their refresh, for :meth:`NodeMetrics.watch`
    (``sender``: the federation sender, whose store holds the queue; ``retention``: the
    retention purge's counts; ``to_device``: the to-device purge's summary)."""
    expiry = sender.expiry
    purges = PurgeSources(retention, to_device, expiry.counts if expiry is not None else None)
    gauges = NodeGauges(notifier, pool, sender, sender.store.queue_depths, purges, reactor)
    return gauges, lambda: defer.ensureDeferred(gauges.refresh())
