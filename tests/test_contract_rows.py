"""The example rows of the API contract (the frontend's; the README's "The endpoints") are served as it shows them.

The contract shows two LLM rows as live OpenRouter data (source "api": whatever OpenRouter
says is served), two embedding rows as curated data, and one Ollama row as live data. The
curated rows and the Ollama row are ours to get right: each is served with exactly the
contract's fields and values (plus the optional fields documented beyond it).
"""

from __future__ import annotations

import json

import pytest

from app import create_app
from tests.support.secrets import OLLAMA_BASE, OPENROUTER_KEY

# Copied from the contract's examples, field for field.
CONTRACT_LLM_ROWS = [
    {
        "id": "openai/gpt-4o-mini",
        "name": "GPT-4o Mini",
        "provider": "OpenAI",
        "context": 128000,
        "pricing": {"prompt": "0.00000015", "completion": "0.0000006"},
    },
    {"id": "anthropic/claude-sonnet-4", "name": "Claude Sonnet 4", "provider": "Anthropic", "context": 200000},
]
CONTRACT_EMBEDDING_ROWS = [
    {
        "id": "openai/text-embedding-3-small",
        "name": "OpenAI Text Embedding 3 Small",
        "provider": "OpenAI",
        "dimensions": 1536,
        "context": 8192,
        "cost_per_million": "$0.02",
    },
    {
        "id": "baai/bge-m3",
        "name": "BGE-M3 (Multilingual)",
        "provider": "BAAI",
        "dimensions": 1024,
        "context": 8192,
        "cost_per_million": "$0.01",
    },
]
CONTRACT_OLLAMA_ROW = {
    "id": "qwen2.5:1.5b",
    "name": "qwen2.5:1.5b",
    "parameter_size": "1.5B",
    "quantization": "Q4_K_M",
    "family": "qwen2",
    "size_mb": 986,
}
# The optional fields beyond the contract that embedding rows carry (openapi.yaml): price,
# the lifecycle (docs/lifecycle.md) and the embedding facts (docs/embedding-models.md).
LIFECYCLE_EXTRAS = {"first_seen_at", "is_new", "deprecated"}
EMBEDDING_EXTRAS = {"is_free", "model_key", "supported_dimensions", *LIFECYCLE_EXTRAS}


def served_rows(app, path: str, auth_headers: dict) -> dict[str, dict]:
    response = app.test_client().get(path, headers=auth_headers)
    assert response.status_code == 200
    return {row["id"]: row for row in response.get_json()["data"]["models"]}


def assert_served_as_shown(served: dict, shown: dict, extras: set[str]) -> None:
    assert {field: served.get(field) for field in shown} == shown
    assert set(served) - set(shown) <= extras


@pytest.mark.parametrize("key", [None, OPENROUTER_KEY], ids=["curated", "curated_fallback"])
def test_curated_rows_the_contract_shows_are_served_as_it_shows_them(make_settings, auth_headers, key):
    app = create_app(make_settings(openrouter_api_key=key))
    llms = served_rows(app, "/api/models/openrouter", auth_headers)
    embeddings = served_rows(app, "/api/models/openrouter/embeddings", auth_headers)
    for shown in CONTRACT_EMBEDDING_ROWS:
        assert_served_as_shown(embeddings[shown["id"]], shown, EMBEDDING_EXTRAS)
    # The contract's LLM rows are examples of live data ("api"), and the curated list leaves
    # both models out on purpose (see curated/openrouter_models.yaml). One curated later must be
    # served as shown, like the embedding rows above.
    assert {row["id"] for row in CONTRACT_LLM_ROWS} & set(llms) == set()


def test_the_contract_ollama_row_is_served_as_it_shows_it(requests_mock, make_settings, auth_headers):
    # /api/tags as an Ollama server reports the model the contract shows (no capabilities: an
    # older server), and no /api/show answer: the row carries the contract's fields alone.
    entry = {
        "name": "qwen2.5:1.5b",
        "model": "qwen2.5:1.5b",
        "size": 986061892,
        "digest": "a" * 64,
        "details": {
            "format": "gguf",
            "family": "qwen2",
            "families": ["qwen2"],
            "parameter_size": "1.5B",
            "quantization_level": "Q4_K_M",
        },
    }
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", text=json.dumps({"models": [entry]}))
    requests_mock.post(f"{OLLAMA_BASE}/api/show", status_code=404)
    app = create_app(make_settings(ollama_base_url=OLLAMA_BASE))
    assert app.extensions["catalog_service"].refresher.run("ollama").outcome == "published"
    served = served_rows(app, "/api/models/ollama", auth_headers)
    assert list(served) == [CONTRACT_OLLAMA_ROW["id"]]
    # The contract's fields exactly, plus the documented extras: the lifecycle and `remote`.
    assert_served_as_shown(served[CONTRACT_OLLAMA_ROW["id"]], CONTRACT_OLLAMA_ROW, {"remote", *LIFECYCLE_EXTRAS})
