"""Prometheus metrics: requests, latency, refreshes, Redis errors, snapshot ages.

Under gunicorn, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before anything imports
prometheus_client, so every worker writes its counts to files there and a scrape of any worker
sums them all (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from .refresh import RefreshResult
from .snapshot import CATALOGS

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """The service's metrics, registered on a registry of their own (one per app)."""

    def __init__(self) -> None:
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
            "catalog_refresh_runs_total", "Refresh runs by catalog and outcome.",
            ["catalog", "outcome"], registry=self.registry,
        )  # fmt: skip
        self.refresh_duration = Histogram(
            "catalog_refresh_duration_seconds", "Duration of refresh runs that called an upstream.",
            ["catalog"], buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=self.registry,
        )  # fmt: skip
        self.redis_errors = Counter(
            "catalog_redis_errors_total", "Failed Redis operations by operation.",
            ["operation"], registry=self.registry,
        )  # fmt: skip

    def observe_refresh(self, result: RefreshResult) -> None:
        self.refresh_runs.labels(result.catalog, result.outcome).inc()
        if result.outcome not in ("fresh", "locked", "disabled"):
            self.refresh_duration.labels(result.catalog).observe(result.duration)

    def exposition(self, catalog) -> bytes:
        """The text a scrape gets: counters of every worker, plus ages read now."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            counted = generate_latest(registry)
        else:
            counted = generate_latest(self.registry)
        ages = CollectorRegistry()
        ages.register(SnapshotAgeCollector(catalog))
        return counted + generate_latest(ages)


class SnapshotAgeCollector:
    """Gauges computed at scrape time from the shared refresh status."""

    def __init__(self, catalog) -> None:
        self._catalog = catalog

    def collect(self):
        age = GaugeMetricFamily("catalog_snapshot_age_seconds", "Seconds since the served live snapshot was fetched.", labels=["catalog"])
        failures = GaugeMetricFamily("catalog_refresh_consecutive_failures", "Refresh failures in a row.", labels=["catalog"])
        for name, report in self._catalog.status_report().items():
            if report["age_seconds"] is not None:
                age.add_metric([name], report["age_seconds"])
            failures.add_metric([name], report["consecutive_failures"])
        yield age
        yield failures


def _endpoint() -> str:
    # The route pattern, not the path: unknown paths must not create new label values.
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def init_app(app: Flask) -> None:
    """Count every request; feed refresh results and Redis errors into the metrics."""
    metrics = Metrics()
    catalog = app.extensions["catalog"]
    catalog.refresher.observers.append(metrics.observe_refresh)
    catalog.store.on_shared_error = lambda operation: metrics.redis_errors.labels(operation).inc()
    app.extensions["metrics"] = metrics

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        started = g.pop("request_started", None)
        endpoint = _endpoint()
        metrics.requests.labels(endpoint, str(response.status_code)).inc()
        if started is not None:
            metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        return response
