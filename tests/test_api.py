"""The contract of the three endpoints, for every `source` value, and JSON for every error."""

from __future__ import annotations

import pytest

from app import create_app
from app.status import RefreshStatus
from tests.support.secrets import OPENROUTER_KEY
from tests.support.snapshots import llm_snapshot, ollama_snapshot, ollama_unreachable_snapshot

LLM_FIELDS = {"id", "name", "provider", "context"}
# Optional fields beyond the spec (capabilities and filters): allowed, never instead of the spec's.
LLM_EXTRAS = {"pricing", "capabilities", "is_free", "expires_on", "released_at"}
# The lifecycle fields every served row carries (docs/lifecycle.md).
LIFECYCLE_FIELDS = {"first_seen_at", "is_new", "deprecated"}
EMBEDDING_FIELDS = {"id", "name", "provider", "dimensions", "context", "cost_per_million"}
OLLAMA_FIELDS = {"id", "name", "parameter_size", "quantization", "family", "size_mb"}


def publish(app, catalog: str, snapshot) -> None:
    """Put a snapshot in the app's store the way the refresher does: under the lock."""
    store = app.extensions["catalog_service"].store
    lock = store.acquire_lock(catalog, 10)
    assert store.publish(lock, {catalog: snapshot}, RefreshStatus(catalog, outcome="ok"))
    store.release_lock(lock)


@pytest.fixture
def keyed_app(make_settings):
    return create_app(make_settings(openrouter_api_key=OPENROUTER_KEY))


def get_data(client, path, headers):
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["success"] is True
    return body["data"]


def test_llms_without_key_are_curated(client, auth_headers):
    data = get_data(client, "/api/models/openrouter", auth_headers)
    assert data["source"] == "curated"
    assert "total" not in data
    assert len(data["models"]) == 23
    for row in data["models"]:
        assert LLM_FIELDS | LIFECYCLE_FIELDS <= set(row) <= LLM_FIELDS | LLM_EXTRAS | LIFECYCLE_FIELDS
        assert (row["first_seen_at"], row["is_new"]) == (None, False)  # curated rows were never "seen"
        assert isinstance(row["context"], int)
        assert set(row["pricing"]) == {"prompt", "completion"}
        assert all(isinstance(price, str) for price in row["pricing"].values())


def test_embeddings_without_key_are_curated(client, auth_headers):
    data = get_data(client, "/api/models/openrouter/embeddings", auth_headers)
    assert data["source"] == "curated"
    assert len(data["models"]) == 21
    assert len({row["provider"] for row in data["models"]}) == 8
    for row in data["models"]:
        assert EMBEDDING_FIELDS | LIFECYCLE_FIELDS | {"is_free", "model_key"} <= set(row)
        assert set(row) <= EMBEDDING_FIELDS | LIFECYCLE_FIELDS | {"is_free", "model_key", "supported_dimensions"}
        assert isinstance(row["dimensions"], int)
        assert row["cost_per_million"].startswith("$")
    small = next(row for row in data["models"] if row["id"] == "openai/text-embedding-3-small")
    assert small == {
        "id": "openai/text-embedding-3-small",
        "name": "OpenAI Text Embedding 3 Small",
        "provider": "OpenAI",
        "dimensions": 1536,
        "context": 8192,
        "cost_per_million": "$0.02",
        "is_free": False,
        "model_key": "openai/text-embedding-3-small",
        "supported_dimensions": [512, 1536],
        "first_seen_at": None,
        "is_new": False,
        "deprecated": False,
    }


@pytest.mark.parametrize(("path", "count"), [("/api/models/openrouter", 23), ("/api/models/openrouter/embeddings", 21)])
def test_key_but_no_live_snapshot_is_curated_fallback(keyed_app, auth_headers, path, count):
    data = get_data(keyed_app.test_client(), path, auth_headers)
    assert data["source"] == "curated_fallback"
    assert len(data["models"]) == count


@pytest.mark.parametrize("query", ["", "?q=e"], ids=["whole", "filtered"])
@pytest.mark.parametrize("path", ["/api/models/openrouter", "/api/models/openrouter/embeddings"])
@pytest.mark.parametrize(
    ("key", "source"), [(None, "curated"), (OPENROUTER_KEY, "curated_fallback")], ids=["curated", "curated_fallback"]
)
def test_curated_answers_carry_no_total(make_settings, auth_headers, key, source, path, query):
    """The contract: `total` is present only when `source` is "api"."""
    app = create_app(make_settings(openrouter_api_key=key))
    data = get_data(app.test_client(), path + query, auth_headers)
    assert data["source"] == source and data["models"]
    assert "total" not in data


def test_live_snapshot_is_served_as_api_with_total(keyed_app, auth_headers):
    rows = [
        {
            "id": "openai/gpt-x",
            "name": "GPT X",
            "provider": "OpenAI",
            "context": 1000,
            "pricing": {"prompt": "0.1", "completion": "0.2"},
        },
        {"id": "anthropic/claude-y", "name": "Claude Y", "provider": "Anthropic", "context": 2000},
    ]
    publish(keyed_app, "openrouter", llm_snapshot(rows, "api", fetched_at=1.0))
    data = get_data(keyed_app.test_client(), "/api/models/openrouter", auth_headers)
    assert data == {"models": rows, "source": "api", "total": 2}


def test_live_embeddings_snapshot_is_served_as_api(keyed_app, auth_headers):
    rows = [
        {
            "id": "openai/text-embedding-3-small",
            "name": "Text Embedding 3 Small",
            "provider": "OpenAI",
            "dimensions": 1536,
            "context": 8192,
            "cost_per_million": "$0.02",
        }
    ]
    publish(keyed_app, "embeddings", llm_snapshot(rows, "api", fetched_at=1.0))
    data = get_data(keyed_app.test_client(), "/api/models/openrouter/embeddings", auth_headers)
    assert data["source"] == "api" and data["models"] == rows and data["total"] == 1


def test_live_snapshot_is_ignored_without_a_key(app, client, auth_headers):
    # No key configured means curated, whatever a store may hold.
    publish(app, "openrouter", llm_snapshot([{"id": "a/b", "name": "B", "provider": "A", "context": 1}], "api", 1.0))
    assert get_data(client, "/api/models/openrouter", auth_headers)["source"] == "curated"


def test_ollama_before_first_poll_is_unreachable_with_error(client, auth_headers):
    data = get_data(client, "/api/models/ollama", auth_headers)
    assert data == {"models": [], "source": "ollama_unreachable", "total": 0, "error": "Ollama has not been polled yet"}


def test_ollama_snapshot_is_served(app, client, auth_headers):
    rows = [
        {
            "id": "qwen2.5:1.5b",
            "name": "qwen2.5:1.5b",
            "parameter_size": "1.5B",
            "quantization": "Q4_K_M",
            "family": "qwen2",
            "size_mb": 986,
        }
    ]
    publish(app, "ollama", ollama_snapshot(rows, fetched_at=1.0))
    data = get_data(client, "/api/models/ollama", auth_headers)
    assert data == {"models": rows, "source": "ollama", "total": 1}
    assert set(data["models"][0]) == OLLAMA_FIELDS


def test_ollama_unreachable_snapshot_is_served(app, client, auth_headers):
    publish(
        app, "ollama", ollama_unreachable_snapshot("cannot connect to Ollama at localhost:11434 (connection refused)")
    )
    data = get_data(client, "/api/models/ollama", auth_headers)
    assert data["source"] == "ollama_unreachable"
    assert data["models"] == [] and data["total"] == 0
    assert data["error"].startswith("cannot connect to Ollama")


def test_etag_and_conditional_get(client, auth_headers):
    first = client.get("/api/models/openrouter", headers=auth_headers)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert "no-cache" in first.headers["Cache-Control"]
    again = client.get("/api/models/openrouter", headers={**auth_headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    other = client.get("/api/models/openrouter", headers={**auth_headers, "If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_etag_changes_exactly_when_the_catalog_changes():
    rows = [{"id": "a/b", "name": "B", "provider": "A", "context": 1}]
    first = llm_snapshot(rows, "api", fetched_at=1.0)
    assert llm_snapshot([dict(row) for row in rows], "api", fetched_at=99.0).etag == first.etag
    changed = [dict(rows[0], context=2)]
    assert llm_snapshot(changed, "api", fetched_at=1.0).etag != first.etag


def test_unknown_path_is_json_404(client, auth_headers):
    response = client.get("/api/models/nope", headers=auth_headers)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == "not_found"
    assert client.get("/").status_code == 404
    assert client.get("/").mimetype == "application/json"


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_wrong_method_is_json_405_with_allow(client, auth_headers, method):
    response = getattr(client, method)("/api/models/openrouter", headers=auth_headers)
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert response.get_json() == {
        "success": False,
        "error": {"code": "method_not_allowed", "message": response.get_json()["error"]["message"]},
    }
    assert "GET" in response.headers["Allow"]


def test_head_is_answered_without_body(client, auth_headers):
    response = client.head("/api/models/openrouter", headers=auth_headers)
    assert response.status_code == 200
    assert response.get_data() == b""


def test_envelope_has_success_first(client, auth_headers):
    body = client.get("/api/models/ollama", headers=auth_headers).get_data()
    assert body.startswith(b'{"success":true,"data":{')


def test_app_starts_and_answers_while_redis_is_down(make_settings, auth_headers):
    """No I/O in the factory; a Redis nobody answers on degrades to curated data, not errors."""
    app = create_app(make_settings(redis_url="redis://127.0.0.1:1/0", openrouter_api_key=OPENROUTER_KEY))
    assert app.extensions["catalog_service"].store.shared
    client = app.test_client()
    assert get_data(client, "/api/models/openrouter", auth_headers)["source"] == "curated_fallback"
    assert get_data(client, "/api/models/ollama", auth_headers)["source"] == "ollama_unreachable"
