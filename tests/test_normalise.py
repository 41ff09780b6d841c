"""Normalisers on every recorded upstream fixture."""

from __future__ import annotations

import json

import pytest

from app.curated import load_curated
from app.sources.ollama import OllamaModelInfo, is_embedding_only, normalise_ollama_tags, ollama_model_info
from app.sources.openrouter import (
    display_name,
    normalise_openrouter_embeddings,
    normalise_openrouter_models,
    provider_name,
)
from app.sources.rows import InvalidDocument, cost_per_million
from config import PROJECT_ROOT
from harness.fake_upstream import fixture_bytes


def load(relative: str):
    return json.loads(fixture_bytes(relative))


@pytest.fixture(scope="module")
def dimensions():
    return load_curated(PROJECT_ROOT / "curated").embedding_dimensions()


# --- OpenRouter LLMs -------------------------------------------------------------------


def test_openrouter_models_fixture_yields_every_text_model():
    result = normalise_openrouter_models(load("openrouter/models.json"))
    assert len(result.rows) == 414
    assert result.skipped == 0
    assert len({row["id"] for row in result.rows}) == 414


def test_openrouter_all_modalities_keeps_only_text_output():
    document = load("openrouter/models_output_modalities_all.json")
    result = normalise_openrouter_models(document)
    text_ids = {r["id"] for r in document["data"] if "text" in r["architecture"]["output_modalities"]}
    assert {row["id"] for row in result.rows} == text_ids
    assert len(result.rows) == 414
    assert not any("embedding" in row["id"] for row in result.rows)


def test_openrouter_rows_have_exact_spec_fields():
    rows = normalise_openrouter_models(load("openrouter/models.json")).rows
    for row in rows:
        assert {"id", "name", "provider", "context", "capabilities", "is_free"} <= set(row)
        assert set(row) <= {
            "id",
            "name",
            "provider",
            "context",
            "pricing",
            "capabilities",
            "is_free",
            "expires_on",
            "released_at",
        }
        assert isinstance(row["id"], str) and isinstance(row["name"], str)
        assert isinstance(row["context"], int) and row["context"] > 0
        if "pricing" in row:
            assert set(row["pricing"]) == {"prompt", "completion"}
            assert all(isinstance(v, str) for v in row["pricing"].values())


def test_openrouter_names_lose_provider_prefix_and_keep_variant_suffix():
    rows = {row["id"]: row for row in normalise_openrouter_models(load("openrouter/models.json")).rows}
    assert rows["qwen/qwen3.8-27b"]["name"] == "Qwen3.8 27B"
    # Unprefixed upstream names stay as they are.
    assert rows["openrouter/auto"]["name"] == "Auto Router"
    assert not any(row["name"].startswith(("OpenAI: ", "Anthropic: ", "Google: ")) for row in rows.values())
    free = [row for row in rows.values() if row["id"].endswith(":free")]
    assert free and all(row["name"].endswith("(free)") for row in free)


def test_openrouter_variable_priced_routers_have_no_pricing():
    rows = {row["id"]: row for row in normalise_openrouter_models(load("openrouter/models.json")).rows}
    for router in (
        "openrouter/auto",
        "openrouter/auto-beta",
        "openrouter/fusion",
        "openrouter/pareto-code",
        "openrouter/bodybuilder",
    ):
        assert "pricing" not in rows[router], router
    assert rows["openrouter/free"]["pricing"] == {"prompt": "0", "completion": "0"}
    assert sum("pricing" not in row for row in rows.values()) == 5


def test_openrouter_free_variants_are_zero_priced():
    rows = normalise_openrouter_models(load("openrouter/models.json")).rows
    free = [row for row in rows if row["id"].endswith(":free")]
    assert free
    assert all(row["pricing"] == {"prompt": "0", "completion": "0"} for row in free)


def test_openrouter_alias_ids_keep_tilde_and_map_provider():
    rows = {row["id"]: row for row in normalise_openrouter_models(load("openrouter/models.json")).rows}
    aliases = [model_id for model_id in rows if model_id.startswith("~")]
    assert len(aliases) == 11
    assert rows["~anthropic/claude-haiku-latest"]["provider"] == "Anthropic"
    assert rows["~x-ai/grok-latest"]["provider"] == "xAI"


def test_openrouter_rows_are_sorted_by_provider_then_name():
    rows = normalise_openrouter_models(load("openrouter/models.json")).rows
    keys = [(row["provider"].casefold(), row["name"].casefold()) for row in rows]
    assert keys == sorted(keys)


def test_openrouter_malformed_rows_are_skipped_and_counted():
    document = {
        "data": [
            {
                "id": "openai/gpt-x",
                "name": "OpenAI: GPT X",
                "context_length": 1000,
                "pricing": {"prompt": "0.1", "completion": "0.2"},
            },
            {"id": "no-slash", "name": "Bad", "context_length": 1000},
            {"name": "No id", "context_length": 1000},
            {"id": "a/b", "name": "No context"},
            "not an object",
            {"id": "openai/gpt-x", "name": "Duplicate", "context_length": 5},
        ]
    }
    result = normalise_openrouter_models(document)
    assert [row["id"] for row in result.rows] == ["openai/gpt-x"]
    assert result.skipped == 5


def test_openrouter_context_falls_back_to_top_provider():
    document = {
        "data": [{"id": "a/b", "name": "A: B", "context_length": None, "top_provider": {"context_length": 4096}}]
    }
    assert normalise_openrouter_models(document).rows[0]["context"] == 4096


@pytest.mark.parametrize("document", [[], {"models": []}, {"data": {}}, "text", None])
def test_openrouter_wrong_top_level_shape_is_invalid(document):
    with pytest.raises(InvalidDocument):
        normalise_openrouter_models(document)


@pytest.mark.parametrize(
    ("model_id", "provider"),
    [
        ("openai/x", "OpenAI"),
        ("anthropic/x", "Anthropic"),
        ("google/x", "Google"),
        ("meta-llama/x", "Meta"),
        ("mistralai/x", "Mistral"),
        ("x-ai/x", "xAI"),
        ("deepseek/x", "DeepSeek"),
        ("qwen/x", "Qwen"),
        ("~openai/gpt-latest", "OpenAI"),
        ("thedrummer/x", "Thedrummer"),
        ("some-new-lab/x", "Some New Lab"),
    ],
)
def test_provider_names(model_id, provider):
    assert provider_name(model_id) == provider


def test_display_name():
    assert display_name("OpenAI: GPT-4o-mini") == "GPT-4o-mini"
    assert display_name("VoyageAI by MongoDB: voyage-4") == "voyage-4"
    assert display_name("Claude Opus 5") == "Claude Opus 5"


# --- OpenRouter embeddings -------------------------------------------------------------


def test_embeddings_fixture_rows(dimensions):
    result = normalise_openrouter_embeddings(load("openrouter/embeddings_models.json"), dimensions)
    assert len(result.rows) == 34 and result.skipped == 0
    rows = {row["id"]: row for row in result.rows}
    small = rows["openai/text-embedding-3-small"]
    assert small == {
        "id": "openai/text-embedding-3-small",
        "name": "Text Embedding 3 Small",
        "provider": "OpenAI",
        "dimensions": 1536,
        "context": 8192,
        "cost_per_million": "$0.02",
        "is_free": False,
        "released_at": "2025-10-30T20:50:55Z",
    }
    assert rows["baai/bge-base-en-v1.5"]["cost_per_million"] == "$0.005"
    assert rows["nvidia/nemotron-3-embed-1b:free"]["is_free"] is True
    assert rows["openai/text-embedding-ada-002"]["cost_per_million"] == "$0.10"
    assert rows["baai/bge-m3"]["provider"] == "BAAI"


def test_embedding_dimensions_come_from_curated_data_or_are_null(dimensions):
    rows = {
        r["id"]: r for r in normalise_openrouter_embeddings(load("openrouter/embeddings_models.json"), dimensions).rows
    }
    # Not in the curated list: unknown, never guessed.
    assert rows["voyageai/voyage-4"]["dimensions"] is None
    assert rows["perplexity/pplx-embed-v1-4b"]["dimensions"] is None
    # A ":batch" variant is the same model, so the same vectors.
    assert rows["openai/text-embedding-3-large:batch"]["dimensions"] == 3072
    known = [r for r in rows.values() if r["dimensions"] is not None]
    assert all(r["dimensions"] == dimensions[r["id"].split(":")[0]] for r in known)


def test_embeddings_normaliser_skips_non_embedding_models(dimensions):
    result = normalise_openrouter_embeddings(load("openrouter/models_output_modalities_all.json"), dimensions)
    assert len(result.rows) == 34


@pytest.mark.parametrize(
    ("price", "display"),
    [
        ("0.00000002", "$0.02"),
        ("0.000000005", "$0.005"),
        ("0.0000001", "$0.10"),
        ("0.000000065", "$0.065"),
        ("0", "$0.00"),
        ("0.0000015", "$1.50"),
        ("-1", None),
        ("abc", None),
        (None, None),
    ],
)
def test_cost_per_million(price, display):
    assert cost_per_million(price) == display


# --- Ollama ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "expected_rows", "embedding_names"),
    [
        ("ollama/tags_1.json", 21, {"nomic-embed-text:latest"}),
        ("ollama/tags_2.json", 4, {"bge-m3:latest", "bge-m3-unified:latest"}),
        ("ollama/tags_3.json", 4, set()),
        ("ollama/tags_4.json", 16, set()),
    ],
)
def test_ollama_fixtures(fixture, expected_rows, embedding_names):
    document = load(fixture)
    result = normalise_ollama_tags(document)
    names = {row["name"] for row in result.rows}
    assert len(result.rows) == expected_rows
    assert result.skipped == 0
    assert names.isdisjoint(embedding_names)
    assert names | embedding_names == {entry["name"] for entry in document["models"]}


def test_ollama_row_fields_and_size():
    rows = {row["id"]: row for row in normalise_ollama_tags(load("ollama/tags_4.json")).rows}
    assert rows["qwen3:1.7b"] == {
        "id": "qwen3:1.7b",
        "name": "qwen3:1.7b",
        "parameter_size": "2.0B",
        "quantization": "Q4_K_M",
        "family": "qwen3",
        "size_mb": 1359,
        "remote": False,
    }


def test_ollama_size_mb_is_decimal_megabytes_rounded():
    document = {
        "models": [
            {"name": "qwen2.5:1.5b", "size": 986061892, "details": {}},
            {"name": "half:up", "size": 1_500_000, "details": {}},
        ]
    }
    rows = {row["name"]: row["size_mb"] for row in normalise_ollama_tags(document).rows}
    assert rows == {"qwen2.5:1.5b": 986, "half:up": 2}


def test_ollama_empty_details_and_null_families_are_kept():
    rows = {row["id"]: row for row in normalise_ollama_tags(load("ollama/tags_1.json")).rows}
    assert rows["zone:latest"] == {
        "id": "zone:latest",
        "name": "zone:latest",
        "parameter_size": "",
        "quantization": "",
        "family": "",
        "size_mb": 0,
        "remote": False,
    }
    assert rows["glm-4.7:cloud"]["family"] == ""


def test_ollama_rows_sorted_by_name():
    rows = normalise_ollama_tags(load("ollama/tags_1.json")).rows
    names = [row["name"].casefold() for row in rows]
    assert names == sorted(names)


def test_ollama_empty_list_is_valid():
    assert normalise_ollama_tags({"models": []}).rows == []


@pytest.mark.parametrize("document", [[], {"data": []}, {"models": None}, "x"])
def test_ollama_wrong_shape_is_invalid(document):
    with pytest.raises(InvalidDocument):
        normalise_ollama_tags(document)


def test_ollama_malformed_entries_are_skipped_and_counted():
    document = {"models": [{"name": "ok:1", "size": 1}, {"size": 5}, {"name": "x", "size": "big"}, 7]}
    result = normalise_ollama_tags(document)
    assert [row["name"] for row in result.rows] == ["ok:1"]
    assert result.skipped == 3


def test_capabilities_decide_over_names():
    # A server that reports capabilities is believed, whatever the name says.
    chat_named_like_embedding = {"name": "bge-chat:1", "size": 1, "capabilities": ["completion"]}
    embedding_with_odd_name = {"name": "custom:1", "size": 1, "capabilities": ["embedding"]}
    assert not is_embedding_only(chat_named_like_embedding)
    assert is_embedding_only(embedding_with_odd_name)


def test_show_info_decides_when_tags_have_no_capabilities():
    entry = {"name": "my-vectors:latest", "size": 1, "details": {"family": "llama"}}
    assert is_embedding_only(entry, OllamaModelInfo(capabilities=("embedding",)))
    assert not is_embedding_only(entry, OllamaModelInfo(capabilities=("completion", "tools")))
    assert is_embedding_only(entry, OllamaModelInfo(has_pooling=True))
    assert not is_embedding_only(entry, None)


@pytest.mark.parametrize(
    "name",
    [
        "nomic-embed-text:latest",
        "mxbai-embed-large:335m",
        "all-minilm:l6",
        "bge-large:latest",
        "snowflake-arctic-embed:s",
        "granite-embedding:30m",
        "library/nomic-embed-text:v1.5",
    ],
)
def test_embedding_names_without_capabilities(name):
    assert is_embedding_only({"name": name, "size": 1, "details": {"family": "x"}})


def test_ollama_show_with_capabilities():
    info = ollama_model_info(load("ollama/show_qwen3_1.7b.json"))
    assert info.capabilities == ("completion", "tools", "thinking")
    assert info.context_length == 40960
    assert info.embedding_length == 2048
    assert not info.has_pooling


def test_ollama_show_of_an_old_server_without_capabilities():
    info = ollama_model_info(load("ollama/show_llama3.2_latest.json"))
    assert info.capabilities is None
    assert info.context_length == 131072
    assert info.embedding_length == 3072
    assert not info.has_pooling


def test_ollama_show_pooling_type_marks_an_embedding_model():
    document = {
        "model_info": {
            "general.architecture": "nomic-bert",
            "nomic-bert.pooling_type": 1,
            "nomic-bert.embedding_length": 768,
            "nomic-bert.context_length": 2048,
        }
    }
    info = ollama_model_info(document)
    assert info.has_pooling and info.embedding_length == 768 and info.context_length == 2048
    assert is_embedding_only({"name": "custom:1"}, info)


def test_ollama_show_does_not_suffix_match_other_towers():
    document = {
        "model_info": {
            "general.architecture": "qwen25vl",
            "qwen25vl.vision.embedding_length": 1280,
            "qwen25vl.embedding_length": 3584,
        }
    }
    assert ollama_model_info(document).embedding_length == 3584
