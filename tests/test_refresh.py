"""The refresher: fetch → normalise → validate → publish, failures that keep the last good snapshot."""

from __future__ import annotations

import json
import threading

import pytest

from app import create_app
from harness.fake_upstream import fixture_bytes
from tests.support.secrets import OLLAMA_BASE, OPENROUTER_KEY, OR_BASE


def catalog_of(app):
    return app.extensions["catalog_service"]


def served(app, path, headers):
    response = app.test_client().get(path, headers=headers)
    assert response.status_code == 200
    return response.get_json()["data"]


def test_llm_refresh_publishes_live_rows(requests_mock, keyed_app, auth_headers):
    requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    result = catalog_of(keyed_app).refresher.run("openrouter")
    assert (result.outcome, result.rows, result.skipped) == ("published", 414, 0)
    data = served(keyed_app, "/api/models/openrouter", auth_headers)
    assert data["source"] == "api" and data["total"] == 414 == len(data["models"])
    status = catalog_of(keyed_app).store.read_status("openrouter")
    assert status.rows == 414 and status.consecutive_failures == 0 and status.outcome == "ok"


def test_embedding_refresh_publishes_live_rows_with_curated_dimensions(requests_mock, keyed_app, auth_headers):
    requests_mock.get(f"{OR_BASE}/embeddings/models", content=fixture_bytes("openrouter/embeddings_models.json"))
    assert catalog_of(keyed_app).refresher.run("embeddings").outcome == "published"
    data = served(keyed_app, "/api/models/openrouter/embeddings", auth_headers)
    assert data["source"] == "api" and data["total"] == 34
    rows = {row["id"]: row for row in data["models"]}
    assert rows["openai/text-embedding-3-large"]["dimensions"] == 3072
    # Sizes, model_key and reduced sizes come from curated/embedding_models.yaml.
    assert rows["voyageai/voyage-4"]["dimensions"] == 1024
    assert rows["openai/text-embedding-3-large:batch"]["model_key"] == "openai/text-embedding-3-large"
    assert rows["openai/text-embedding-3-large"]["supported_dimensions"][-1] == 3072
    assert "supported_dimensions" not in rows["baai/bge-m3"]


@pytest.mark.parametrize(
    ("answer", "outcome", "message"),
    [
        ({"status_code": 503}, "failed", "answered HTTP 503"),
        ({"text": "<html>down</html>", "headers": {"Content-Type": "text/html"}}, "failed", "not JSON (text/html"),
        ({"json": {"models": []}}, "rejected", "unexpected answer"),
        ({"json": {"data": []}}, "rejected", "no usable models"),
        ({"json": {"data": [{"id": "bad"}]}}, "rejected", "no usable models (1 malformed)"),
    ],
)
def test_failed_refresh_keeps_the_previous_snapshot(requests_mock, keyed_app, auth_headers, answer, outcome, message):
    refresher = catalog_of(keyed_app).refresher
    requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    assert refresher.run("openrouter").outcome == "published"
    before = served(keyed_app, "/api/models/openrouter", auth_headers)

    requests_mock.get(f"{OR_BASE}/models", **answer)
    result = refresher.run("openrouter", force=True)
    assert result.outcome == outcome and result.failed
    assert message in result.message
    assert served(keyed_app, "/api/models/openrouter", auth_headers) == before
    status = catalog_of(keyed_app).store.read_status("openrouter")
    assert status.consecutive_failures == 1
    assert message in status.last_error
    assert status.rows == 414  # the last good run's count stays


def test_failure_without_any_snapshot_serves_curated_fallback(requests_mock, keyed_app, auth_headers):
    requests_mock.get(f"{OR_BASE}/models", status_code=500)
    assert catalog_of(keyed_app).refresher.run("openrouter").outcome == "failed"
    assert served(keyed_app, "/api/models/openrouter", auth_headers)["source"] == "curated_fallback"


def test_malformed_rows_are_skipped_counted_and_the_rest_published(requests_mock, keyed_app):
    document = json.loads(fixture_bytes("openrouter/models.json"))
    document["data"][:3] = [{"id": 1}, "junk", {"name": "no id"}]
    requests_mock.get(f"{OR_BASE}/models", json=document)
    result = catalog_of(keyed_app).refresher.run("openrouter")
    assert (result.outcome, result.rows, result.skipped) == ("published", 411, 3)
    assert catalog_of(keyed_app).store.read_status("openrouter").skipped_rows == 3


def test_fresh_snapshot_is_not_fetched_again_unless_forced(requests_mock, keyed_app):
    route = requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    refresher = catalog_of(keyed_app).refresher
    assert refresher.run("openrouter").outcome == "published"
    assert refresher.run("openrouter").outcome == "fresh"
    assert route.call_count == 1
    assert refresher.run("openrouter", force=True).outcome == "published"
    assert route.call_count == 2


def test_a_held_lock_skips_the_run(requests_mock, keyed_app):
    route = requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    catalog = catalog_of(keyed_app)
    lock = catalog.store.acquire_lock("openrouter", 10)
    assert catalog.refresher.run("openrouter", force=True).outcome == "locked"
    assert route.call_count == 0
    catalog.store.release_lock(lock)


def test_rate_limit_defers_the_next_attempt(requests_mock, keyed_app):
    requests_mock.get(f"{OR_BASE}/models", status_code=429, headers={"Retry-After": "1200"})
    catalog = catalog_of(keyed_app)
    result = catalog.refresher.run("openrouter")
    assert result.outcome == "failed"
    status = catalog.store.read_status("openrouter")
    assert status.next_attempt_at - status.last_attempt == pytest.approx(1200)
    assert catalog.refresher.run("openrouter").outcome == "fresh"  # no call before Retry-After has passed


def test_a_rejected_key_is_retried_only_after_the_interval(requests_mock, keyed_app):
    requests_mock.get(f"{OR_BASE}/models", status_code=401)
    service = catalog_of(keyed_app)
    service.refresher.run("openrouter", force=True)
    status = service.store.read_status("openrouter")
    assert status.last_error == "OpenRouter at openrouter.test: key rejected (401)"
    assert status.next_attempt_at - status.last_attempt == pytest.approx(
        service.registry.sources["openrouter"].interval_seconds
    )


def test_failures_back_off_up_to_the_interval(requests_mock, keyed_app):
    requests_mock.get(f"{OR_BASE}/models", status_code=500)
    catalog = catalog_of(keyed_app)
    waits = []
    for _ in range(6):
        catalog.refresher.run("openrouter", force=True)
        status = catalog.store.read_status("openrouter")
        waits.append(status.next_attempt_at - status.last_attempt)
    assert catalog.store.read_status("openrouter").consecutive_failures == 6
    source = catalog.registry.sources["openrouter"]
    tick = catalog.refresher.tick(source)
    assert tick * 0.8 <= waits[0] <= tick
    assert waits[1] > waits[0]
    assert all(wait <= source.interval_seconds for wait in waits)


def test_without_a_key_openrouter_is_not_polled(requests_mock, app):
    result = catalog_of(app).refresher.run("openrouter")
    assert result.outcome == "disabled" and not result.failed
    assert requests_mock.call_count == 0


# --- Ollama --------------------------------------------------------------------------------


def embedding_show() -> dict:
    return {
        "model_info": {
            "general.architecture": "nomic-bert",
            "nomic-bert.pooling_type": 1,
            "nomic-bert.embedding_length": 768,
        },
        "details": {"family": "nomic-bert"},
    }


def test_ollama_refresh_asks_show_once_per_digest(requests_mock, keyed_app, auth_headers):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_1.json"))
    old_server_show = json.loads(fixture_bytes("ollama/show_llama3.2_latest.json"))

    def show(request, context):
        return embedding_show() if request.json()["model"].startswith("nomic") else old_server_show

    show_route = requests_mock.post(f"{OLLAMA_BASE}/api/show", json=show)
    refresher = catalog_of(keyed_app).refresher
    result = refresher.run("ollama")
    assert (result.outcome, result.rows) == ("published", 21)
    digests = {entry["digest"] for entry in json.loads(fixture_bytes("ollama/tags_1.json"))["models"]}
    assert show_route.call_count == len(digests) == 21  # two tags share one digest
    data = served(keyed_app, "/api/models/ollama", auth_headers)
    assert data["source"] == "ollama" and data["total"] == 21
    assert "nomic-embed-text:latest" not in {row["name"] for row in data["models"]}

    assert refresher.run("ollama", force=True).outcome == "published"
    assert show_route.call_count == 21  # cached by digest


def test_ollama_show_decides_over_names(requests_mock, keyed_app, auth_headers):
    tags = json.loads(fixture_bytes("ollama/tags_4.json"))
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", json=tags)
    chat_show = json.loads(fixture_bytes("ollama/show_qwen3_1.7b.json"))

    def show(request, context):
        # A server >= 0.6.4 says so: here it calls one of the chat-looking models an embedder.
        return {"capabilities": ["embedding"]} if request.json()["model"] == "cogito:3b" else chat_show

    requests_mock.post(f"{OLLAMA_BASE}/api/show", json=show)
    assert catalog_of(keyed_app).refresher.run("ollama").rows == 15
    names = {row["name"] for row in served(keyed_app, "/api/models/ollama", auth_headers)["models"]}
    assert "cogito:3b" not in names and "qwen3:1.7b" in names


def test_ollama_tags_with_capabilities_need_no_show(requests_mock, keyed_app):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_3.json"))
    show_route = requests_mock.post(f"{OLLAMA_BASE}/api/show", json={})
    assert catalog_of(keyed_app).refresher.run("ollama").rows == 4
    assert show_route.call_count == 0


def test_ollama_show_failures_fall_back_to_names(requests_mock, keyed_app):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_2.json"))
    requests_mock.post(f"{OLLAMA_BASE}/api/show", status_code=500)
    result = catalog_of(keyed_app).refresher.run("ollama")
    assert (result.outcome, result.rows) == ("published", 4)


def test_ollama_down_publishes_unreachable_with_a_short_message(requests_mock, keyed_app, auth_headers):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_3.json"))
    refresher = catalog_of(keyed_app).refresher
    refresher.run("ollama")
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", status_code=502)
    assert refresher.run("ollama", force=True).outcome == "failed"
    data = served(keyed_app, "/api/models/ollama", auth_headers)
    assert data == {
        "models": [],
        "source": "ollama_unreachable",
        "total": 0,
        "error": "Ollama at ollama.test:11434 answered HTTP 502",
    }


def test_ollama_empty_list_is_published(requests_mock, keyed_app, auth_headers):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", json={"models": []})
    assert catalog_of(keyed_app).refresher.run("ollama").outcome == "published"
    assert served(keyed_app, "/api/models/ollama", auth_headers) == {"models": [], "source": "ollama", "total": 0}


def test_ollama_wrong_shape_is_unreachable_with_reason(requests_mock, keyed_app, auth_headers):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", json=["not", "tags"])
    assert catalog_of(keyed_app).refresher.run("ollama").outcome == "rejected"
    data = served(keyed_app, "/api/models/ollama", auth_headers)
    assert data["source"] == "ollama_unreachable"
    assert data["error"].startswith("Ollama sent an unexpected answer")


# --- many refreshers, one Redis --------------------------------------------------------------


def test_two_refreshers_racing_on_one_redis_make_one_upstream_call(upstream, redis_url, make_settings):
    upstream.set("/api/v1/models", fixture_bytes("openrouter/models.json"), delay=0.3)
    settings = make_settings(
        redis_url=redis_url, openrouter_api_key=OPENROUTER_KEY, openrouter_base_url=f"{upstream.url}/api/v1"
    )
    refreshers = [create_app(settings).extensions["catalog_service"].refresher for _ in range(4)]
    results = []
    threads = [threading.Thread(target=lambda r=r: results.append(r.run("openrouter"))) for r in refreshers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert upstream.count("/api/v1/models") == 1
    assert sorted(result.outcome for result in results).count("published") == 1
    assert {result.outcome for result in results} <= {"published", "locked", "fresh"}
    # A later round finds the snapshot fresh: still one call.
    assert {refresher.run("openrouter").outcome for refresher in refreshers} == {"fresh"}
    assert upstream.count("/api/v1/models") == 1


# --- the CLI --------------------------------------------------------------------------------


def test_cli_refresh_prints_one_line_per_source_and_exit_code(requests_mock, keyed_app):
    requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    requests_mock.get(f"{OR_BASE}/embeddings/models", content=fixture_bytes("openrouter/embeddings_models.json"))
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_3.json"))
    runner = keyed_app.test_cli_runner()
    result = runner.invoke(args=["models", "refresh"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("openrouter: published 414 rows (0 skipped) in ")
    assert lines[1].startswith("embeddings: published 34 rows")
    assert lines[2].startswith("ollama: published 4 rows")

    again = runner.invoke(args=["models", "refresh", "--source", "openrouter"])
    assert again.exit_code == 0 and again.output.startswith("openrouter: fresh")
    forced = runner.invoke(args=["models", "refresh", "--source", "openrouter", "--force"])
    assert forced.output.startswith("openrouter: published")


def test_cli_refresh_fails_when_a_requested_source_fails(requests_mock, keyed_app):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", status_code=500)
    result = keyed_app.test_cli_runner().invoke(args=["models", "refresh", "--source", "ollama"])
    assert result.exit_code == 1
    assert result.output.startswith("ollama: failed")
    assert "answered HTTP 500" in result.output


def test_cli_refresh_without_key_reports_disabled(runner):
    result = runner.invoke(args=["models", "refresh", "--source", "embeddings"])
    assert result.exit_code == 0
    assert result.output.startswith("embeddings: disabled")


def test_cli_status(requests_mock, keyed_app):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_2.json"))
    requests_mock.post(f"{OLLAMA_BASE}/api/show", status_code=404)
    runner = keyed_app.test_cli_runner()
    runner.invoke(args=["models", "refresh", "--source", "ollama"])
    lines = [json.loads(line) for line in runner.invoke(args=["models", "status"]).output.splitlines()]
    by_catalog = {line["source"]: line for line in lines}
    assert set(by_catalog) == {"openrouter", "embeddings", "ollama"}
    assert by_catalog["openrouter"]["outcome"] == "never_run"
    assert by_catalog["ollama"]["rows"] == 4 and by_catalog["ollama"]["age_seconds"] >= 0


def test_a_success_clears_the_last_error_in_the_status(requests_mock, keyed_app, auth_headers):
    service = catalog_of(keyed_app)
    requests_mock.get(f"{OR_BASE}/models", status_code=503)
    service.refresher.run("openrouter", force=True)
    report = keyed_app.test_client().get("/api/models/status", headers=auth_headers).get_json()["data"]["catalogs"]
    assert report["openrouter"]["last_error"] == "OpenRouter at openrouter.test answered HTTP 503"
    requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    service.refresher.run("openrouter", force=True)
    report = keyed_app.test_client().get("/api/models/status", headers=auth_headers).get_json()["data"]["catalogs"]
    assert report["openrouter"]["last_error"] is None and report["openrouter"]["consecutive_failures"] == 0
