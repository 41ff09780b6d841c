"""Health, readiness, status and metrics endpoints; log lines and what they never contain."""

from __future__ import annotations

import json
import logging

from app import create_app
from app.logs import JsonFormatter, SecretMaskingFilter, configure_logging
from harness.fake_upstream import fixture_bytes
from tests.support.secrets import JWT_SECRET, OLLAMA_BASE, OPENROUTER_KEY, OR_BASE


def test_healthz_needs_no_token(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}


def test_readyz_reports_sources_and_redis(client):
    body = client.get("/readyz").get_json()
    assert body["status"] == "ready"
    assert body["redis"] == "not_configured"
    assert body["catalogs"]["openrouter"] == {"source": "curated", "age_seconds": None}
    assert body["catalogs"]["ollama"]["source"] == "ollama_unreachable"


def test_readyz_stays_ready_when_redis_is_down(make_settings):
    app = create_app(make_settings(redis_url="redis://127.0.0.1:1/0", openrouter_api_key=OPENROUTER_KEY))
    response = app.test_client().get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["redis"] == "unreachable"
    assert response.get_json()["catalogs"]["embeddings"]["source"] == "curated_fallback"


def test_readyz_with_a_live_redis(redis_url, make_settings):
    app = create_app(make_settings(redis_url=redis_url))
    assert app.test_client().get("/readyz").get_json()["redis"] == "ok"


def test_status_needs_a_token(client):
    assert client.get("/api/models/status").status_code == 401


def test_status_reports_each_catalog(requests_mock, keyed_app, auth_headers):
    requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", status_code=503)
    refresher = keyed_app.extensions["catalog_service"].refresher
    refresher.run("openrouter")
    refresher.run("ollama")
    data = keyed_app.test_client().get("/api/models/status", headers=auth_headers).get_json()["data"]["catalogs"]
    assert set(data) == {"openrouter", "embeddings", "ollama", "ollama_embeddings"}
    assert data["ollama_embeddings"]["refreshed_by"] == "ollama" and data["embeddings"]["refreshed_by"] == "embeddings"
    llms = data["openrouter"]
    assert llms["source"] == "api" and llms["rows"] == 414
    assert llms["age_seconds"] >= 0 and llms["fetched_at"].endswith("+00:00")
    assert llms["consecutive_failures"] == 0 and llms["last_error"] is None and llms["next_run"]
    assert data["embeddings"]["source"] == "curated_fallback" and data["embeddings"]["last_attempt"] is None
    ollama = data["ollama"]
    assert ollama["source"] == "ollama_unreachable"
    assert ollama["consecutive_failures"] == 1
    assert ollama["last_error"] == "Ollama at ollama.test:11434 answered HTTP 503"


def test_metrics_count_requests_by_endpoint_and_status(client, auth_headers):
    for _ in range(3):
        client.get("/api/models/openrouter", headers=auth_headers)
    client.get("/api/models/openrouter")
    client.get("/no/such/path")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'catalog_http_requests_total{endpoint="/api/models/openrouter",status="200"} 3.0' in text
    assert 'catalog_http_requests_total{endpoint="/api/models/openrouter",status="401"} 1.0' in text
    assert 'catalog_http_requests_total{endpoint="unmatched",status="404"} 1.0' in text
    assert 'catalog_http_request_duration_seconds_count{endpoint="/api/models/openrouter"} 4.0' in text


def test_metrics_count_refreshes_and_ages(requests_mock, keyed_app):
    requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    refresher = keyed_app.extensions["catalog_service"].refresher
    refresher.run("openrouter")
    refresher.run("openrouter")
    text = keyed_app.test_client().get("/metrics").get_data(as_text=True)
    assert 'catalog_refresh_runs_total{outcome="published",source="openrouter"} 1.0' in text
    assert 'catalog_refresh_runs_total{outcome="fresh",source="openrouter"} 1.0' in text
    assert 'catalog_refresh_duration_seconds_count{source="openrouter"} 1.0' in text
    assert 'catalog_snapshot_age_seconds{catalog="openrouter"}' in text
    assert 'catalog_refresh_consecutive_failures{catalog="openrouter"} 0.0' in text


def test_metrics_count_redis_errors(make_settings):
    app = create_app(make_settings(redis_url="redis://127.0.0.1:1/0"))
    client = app.test_client()
    client.get("/readyz")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'catalog_redis_errors_total{operation="ping"}' in text


def test_json_log_line_carries_refresh_fields(requests_mock, keyed_app, caplog):
    requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    with caplog.at_level(logging.INFO, logger="app.refresh"):
        keyed_app.extensions["catalog_service"].refresher.run("openrouter")
    text = JsonFormatter().format(caplog.records[-1])
    line = json.loads(text)
    assert line["event"] == "refresh" and line["source"] == "openrouter" and line["outcome"] == "published"
    assert line["rows"] == 414 and line["skipped"] == 0 and line["duration_ms"] >= 0
    assert "\n" not in text


def test_secrets_are_masked_in_any_log_line():
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "key %s and secret %s", (OPENROUTER_KEY, JWT_SECRET), None
    )
    SecretMaskingFilter((OPENROUTER_KEY, JWT_SECRET)).filter(record)
    assert record.getMessage() == "key *** and secret ***"


def test_configure_logging_json(make_settings, capsys):
    configure_logging(make_settings(log_format="json", openrouter_api_key=OPENROUTER_KEY))
    root = logging.getLogger()
    try:
        [handler] = [h for h in root.handlers if getattr(h, "_catalog_handler", False)]
        # Straight to the service's handler: the suite's own check on the root logger would
        # (rightly) flag a record that carries the key before that handler masks it.
        record = root.makeRecord(
            "app.test", logging.WARNING, __file__, 1, "leaked %s?", (OPENROUTER_KEY,), None, extra={"event": "test"}
        )
        handler.handle(record)
        err = capsys.readouterr().err.strip().splitlines()[-1]
        line = json.loads(err)
        assert line["message"] == "leaked ***?" and line["event"] == "test" and line["level"] == "warning"
    finally:
        for handler in [h for h in root.handlers if getattr(h, "_catalog_handler", False)]:
            root.removeHandler(handler)
