"""Prometheus metrics: request counts and latency per endpoint pattern, DB pool usage, and
events persisted (by kind) with the number of persistence batches.

Each app gets its own registry so several servers (tests) can live in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _PoolCollector(Collector):
    """Reads the storage pool's stats at scrape time."""

    def __init__(self, stats: Callable[[], dict[str, Any] | None]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats() or {}
        for name, value in stats.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                yield GaugeMetricFamily(f"hs_db_pool_{name}", f"Database pool {name}", value=value)


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("hs_http_requests", "HTTP requests handled",
                                ["method", "endpoint", "code"], registry=self.registry)
        self.latency = Histogram("hs_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "endpoint"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5, 1.0, 2.5, 5.0, 10.0))
        self.in_flight = 0
        self.events_persisted = Counter(
            "hs_events_persisted", "Events written to the database",
            ["kind"], registry=self.registry)
        self.persist_batches = Counter(
            "hs_event_persist_batches", "Event persistence transactions", registry=self.registry)

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(method, endpoint, str(status)).inc()
        self.latency.labels(method, endpoint).observe(seconds)

    def count_persisted(self, batch: Sequence[Any], results: Sequence[Any]) -> None:
        """An ``EventsStore.persist_listeners`` entry: kinds are live, outlier, backfilled,
        rejected and soft_failed."""
        self.persist_batches.inc()
        for item in batch:
            if item.pdu.rejected_reason is not None:
                kind = "rejected"
            elif item.outlier:
                kind = "outlier"
            elif item.backfilled:
                kind = "backfilled"
            elif item.soft_failed:
                kind = "soft_failed"
            else:
                kind = "live"
            self.events_persisted.labels(kind).inc()

    def watch_pool(self, stats: Callable[[], dict[str, Any] | None]) -> None:
        self.registry.register(_PoolCollector(stats))

    def render(self) -> bytes:
        return generate_latest(self.registry)
