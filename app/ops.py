"""Operational endpoints, outside /api/models and without auth: health, readiness, metrics."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from .service import get_service

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive; touches nothing."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready whenever at least curated data can be served, which is always once started;
    the body says where the data would come from and whether Redis answers."""
    service = get_service()
    redis_state = "not_configured"
    if service.store.shared:
        redis_state = "ok" if service.store.ping() else "unreachable"
    report = service.status_report(read_statuses=False)
    return jsonify(
        {
            "status": "ready",
            "redis": redis_state,
            "catalogs": {
                name: {"source": entry["source"], "age_seconds": entry["age_seconds"]} for name, entry in report.items()
            },
        }
    )


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format, summed over every worker."""
    body = current_app.extensions["metrics"].exposition(get_service())
    return Response(body, content_type=CONTENT_TYPE_LATEST)
