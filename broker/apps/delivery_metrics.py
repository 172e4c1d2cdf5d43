"""What the delivery of application messages shows at a Prometheus scrape (read from memory
when scraped; nothing observed on the paths): messages whose status can still change, the
callbacks' outcomes and those under way, the delivery reports taken, ignored and sent."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from broker.apps.callbacks import Callbacks
from broker.apps.delivery_reports import DeliveryReports
from broker.apps.tracking import MessageTracker


class DeliveryCollector:
    def __init__(self, tracker: MessageTracker, callbacks: Callbacks,
                 reports: DeliveryReports) -> None:
        self.tracker, self.callbacks, self.reports = tracker, callbacks, reports

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "broker_app_messages_open",
            "Application messages whose status can still change (held in memory)",
            value=self.tracker.open_count())
        yield CounterMetricFamily(
            "broker_app_status_write_failures", "Failed writes of application message status",
            value=self.tracker.write_failures)
        outcomes = CounterMetricFamily("broker_app_callbacks",
                                       "Callback attempts to applications, by outcome",
                                       labels=["outcome"])
        for outcome in ("delivered", "retried", "dropped"):
            outcomes.add_metric([outcome], self.callbacks.counts[outcome])
        yield outcomes
        yield GaugeMetricFamily("broker_app_callbacks_in_flight",
                                "Callbacks to applications under way",
                                value=len(self.callbacks.in_flight))
        reports = CounterMetricFamily("broker_delivery_reports",
                                      "Deliveries of in.gov.broker.delivery EDUs, by outcome",
                                      labels=["outcome"])
        for outcome in ("reported", "accepted", "ignored_foreign_user", "ignored_not_ours",
                        "ignored_malformed", "ignored_too_many", "forgotten"):
            reports.add_metric([outcome], self.reports.counts[outcome])
        yield reports
