"""Prometheus metrics: requests, latency, refreshes, Redis errors, snapshot ages.

Under gunicorn, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before anything imports
prometheus_client, so every worker writes its counts to files there and a scrape of any worker
sums them all (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from .refresh import IDLE_OUTCOMES, RefreshResult

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The service's metrics, registered on a registry of their own (one per app)."""

    def __init__(self) -> None:
        # prometheus-client's own setting, fixed before it was imported (gunicorn.conf.py):
        # read once here, not on every scrape.
        self._multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "catalog_http_requests_total", "HTTP requests by endpoint and status.",
            ["endpoint", "status"], registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "catalog_http_request_duration_seconds", "Time to answer an HTTP request.",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.refresh_runs = Counter(
            "catalog_refresh_runs_total", "Refresh runs by source and outcome.",
            ["source", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.refresh_duration = Histogram(
            "catalog_refresh_duration_seconds", "Duration of refresh runs that called an upstream.",
            ["source"], buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=self.registry,
        )  # fmt: skip
        self.redis_errors = Counter(
            "catalog_redis_errors_total", "Failed Redis operations by operation.",
            ["operation"], registry=self.registry,
        )  # fmt: skip

    def observe_refresh(self, result: RefreshResult) -> None:
        self.refresh_runs.labels(result.source, result.outcome).inc()
        if result.outcome not in IDLE_OUTCOMES:
            self.refresh_duration.labels(result.source).observe(result.duration)

    def exposition(self, service) -> bytes:
        """The text a scrape gets: counters of every worker, plus ages read now."""
        if self._multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            counted = generate_latest(registry)
        else:
            counted = generate_latest(self.registry)
        ages = CollectorRegistry()
        ages.register(SnapshotAgeCollector(service))
        return counted + generate_latest(ages)


class SnapshotAgeCollector:
    """Gauges computed at scrape time from the shared refresh status."""

    def __init__(self, service) -> None:
        self._service = service

    def collect(self):
        age = GaugeMetricFamily(
            "catalog_snapshot_age_seconds", "Seconds since the served live snapshot was fetched.", labels=["catalog"]
        )
        failures = GaugeMetricFamily(
            "catalog_refresh_consecutive_failures", "Refresh failures in a row.", labels=["catalog"]
        )
        for name, report in self._service.status_report().items():
            if report["age_seconds"] is not None:
                age.add_metric([name], report["age_seconds"])
            failures.add_metric([name], report["consecutive_failures"])
        yield age
        yield failures


class RequestMetrics:
    """WSGI middleware: counts requests by endpoint and status and times them.

    A middleware rather than Flask hooks, and label children looked up once: on the catalog
    hot path every microsecond shows in the benchmark.
    """

    def __init__(self, wsgi_app, app: Flask, metrics: Metrics) -> None:
        self.wsgi_app = wsgi_app
        self._app = app
        self._metrics = metrics
        self._paths: frozenset[str] | None = None
        # Label children (prometheus-client has no types for them).
        self._counters: dict[tuple[str, str], Any] = {}
        self._timers: dict[str, Any] = {}

    def _endpoint(self, path: str) -> str:
        if self._paths is None:
            self._paths = frozenset(rule.rule for rule in self._app.url_map.iter_rules())
        # The route, never the raw path: unknown paths must not create new label values.
        return path if path in self._paths else "unmatched"

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        statuses = []

        def capture(status, headers, exc_info=None):
            statuses.append(status[:3])
            return start_response(status, headers, exc_info)

        body = self.wsgi_app(environ, capture)
        elapsed = time.perf_counter() - started
        endpoint = self._endpoint(environ.get("PATH_INFO", ""))
        key = (endpoint, statuses[0] if statuses else "500")
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = self._metrics.requests.labels(*key)
        timer = self._timers.get(endpoint)
        if timer is None:
            timer = self._timers[endpoint] = self._metrics.latency.labels(endpoint)
        counter.inc()
        timer.observe(elapsed)
        return body


def init_app(app: Flask) -> None:
    """Count every request; feed refresh results and Redis errors into the metrics."""
    metrics = Metrics()
    service = app.extensions["catalog_service"]
    service.refresher.observers.append(metrics.observe_refresh)
    service.store.on_shared_error = lambda operation: metrics.redis_errors.labels(operation).inc()
    app.extensions["metrics"] = metrics
    app.wsgi_app = RequestMetrics(app.wsgi_app, app, metrics)  # type: ignore[method-assign]  # Flask's documented way to add middleware
