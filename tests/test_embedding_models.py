"""Embedding-model facts: the shipped table loads, lookups across sources, bad entries stop start-up."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from app.curated import CuratedDataError, load_curated
from app.embedding_models import EMBEDDING_MODELS_FILE, load_embedding_models
from config import PROJECT_ROOT

CURATED = PROJECT_ROOT / "curated"
RECORDED_CATALOG = PROJECT_ROOT / "tests" / "fixtures" / "openrouter" / "embeddings_models.json"


@pytest.fixture(scope="module")
def models():
    return load_embedding_models(CURATED)


def recorded_embedding_rows() -> list[dict]:
    """The live OpenRouter embedding rows of the recorded catalog, as the refresher selects them."""
    rows = json.loads(RECORDED_CATALOG.read_text(encoding="utf-8"))["data"]
    return [
        row
        for row in rows
        if "embeddings" in (row.get("architecture") or {}).get("output_modalities", []) and "/" in row.get("id", "")
    ]


# --- the shipped table --------------------------------------------------------------------------


def test_shipped_table_loads_with_a_source_for_every_entry(models):
    assert len(models) == 49
    assert all(model.sources for model in models)
    assert len({model.key.lower() for model in models}) == len(models)


def test_recorded_openrouter_catalog_gets_dimensions_for_at_least_95_percent(models):
    rows = recorded_embedding_rows()
    sized = [row["id"] for row in rows if (found := models.find("openrouter", row["id"])) and found.dimensions]
    print(f"OpenRouter embedding rows with dimensions: {len(sized)} of {len(rows)}")
    assert len(rows) == 34
    assert len(sized) >= 0.95 * len(rows)
    assert len(sized) == 34


def test_every_recorded_openrouter_row_gets_a_model_key(models):
    unmatched = [row["id"] for row in recorded_embedding_rows() if models.find("openrouter", row["id"]) is None]
    assert unmatched == []


def test_openrouter_hugging_face_ids_point_at_the_same_entry(models):
    # OpenRouter's own hugging_face_id field is an independent claim about which weights it serves.
    checked = 0
    for row in recorded_embedding_rows():
        if row.get("hugging_face_id"):
            assert models.find("huggingface", row["hugging_face_id"]) is models.find("openrouter", row["id"]), row["id"]
            checked += 1
    assert checked == 16


def test_table_agrees_with_the_curated_openrouter_list():
    models = load_embedding_models(CURATED)
    for row in load_curated(CURATED).embeddings:
        assert models.find("openrouter", row["id"]).dimensions == row["dimensions"], row["id"]


def test_every_source_key_is_explained_in_the_file_header(models):
    header = "\n".join(
        line
        for line in (CURATED / EMBEDDING_MODELS_FILE).read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    )
    keys = {source for model in models for source in model.sources if re.fullmatch(r"[A-Z0-9-]+", source)}
    assert keys
    undefined = sorted(key for key in keys if not re.search(rf"^#\s+{re.escape(key)}\s", header, re.MULTILINE))
    assert undefined == []


def test_supported_dimensions_contain_the_default_size(models):
    with_sizes = [model for model in models if model.supported_dimensions]
    assert len(with_sizes) >= 20
    assert all(model.dimensions in model.supported_dimensions for model in with_sizes)


# --- lookups --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "model_id", "key", "dimensions"),
    [
        # OpenRouter ids, with the variant suffixes OpenRouter lists as separate rows.
        ("openrouter", "openai/text-embedding-3-small", "openai/text-embedding-3-small", 1536),
        ("openrouter", "openai/text-embedding-3-large:batch", "openai/text-embedding-3-large", 3072),
        ("openrouter", "nvidia/nemotron-3-embed-1b:free", "nvidia/nemotron-3-embed-1b", 2048),
        ("openrouter", "BAAI/BGE-M3", "BAAI/bge-m3", 1024),
        # The same weights under the maker's own API ids (recorded /v1/models answers).
        ("openai", "text-embedding-3-small", "openai/text-embedding-3-small", 1536),
        ("openai", "text-embedding-ada-002", "openai/text-embedding-ada-002", 1536),
        ("gemini", "models/gemini-embedding-001", "google/gemini-embedding-001", 3072),
        ("gemini", "models/text-embedding-004", "google/text-embedding-004", 768),
        ("gemini", "models/gemini-embedding-exp", "google/gemini-embedding-exp-03-07", 3072),
        ("gemini", "gemini-embedding-2", "google/gemini-embedding-2", 3072),
        ("mistral", "mistral-embed", "mistralai/mistral-embed-2312", 1024),
        ("mistral", "codestral-embed-2505", "mistralai/codestral-embed-2505", 1536),
        # Ollama library names; the tag picks the weights only where the library has several.
        ("ollama", "nomic-embed-text:latest", "nomic-ai/nomic-embed-text-v1.5", 768),
        ("ollama", "nomic-embed-text", "nomic-ai/nomic-embed-text-v1.5", 768),
        ("ollama", "nomic-embed-text:v1.5", "nomic-ai/nomic-embed-text-v1.5", 768),
        ("ollama", "mxbai-embed-large", "mixedbread-ai/mxbai-embed-large-v1", 1024),
        ("ollama", "bge-m3:latest", "BAAI/bge-m3", 1024),
        ("ollama", "snowflake-arctic-embed2", "Snowflake/snowflake-arctic-embed-l-v2.0", 1024),
        ("ollama", "all-minilm", "sentence-transformers/all-MiniLM-L6-v2", 384),
        ("ollama", "all-minilm:33m", "sentence-transformers/all-MiniLM-L12-v2", 384),
        ("ollama", "qwen3-embedding:0.6b", "Qwen/Qwen3-Embedding-0.6B", 1024),
        ("ollama", "qwen3-embedding:8b-q4_K_M", "Qwen/Qwen3-Embedding-8B", 4096),
        ("ollama", "snowflake-arctic-embed:137m", "Snowflake/snowflake-arctic-embed-m-long", 768),
        ("ollama", "hf.co/nomic-ai/nomic-embed-text-v1.5-GGUF:Q4_K_M", "nomic-ai/nomic-embed-text-v1.5", 768),
        # Local servers: Hugging Face repo ids, GGUF repos and files, LM Studio's own ids.
        ("huggingface", "BAAI/bge-m3", "BAAI/bge-m3", 1024),
        ("vllm", "baai/bge-m3", "BAAI/bge-m3", 1024),
        ("vllm", "/models/BAAI/bge-m3", "BAAI/bge-m3", 1024),
        ("huggingface", "nomic-ai/nomic-embed-text-v1.5-GGUF", "nomic-ai/nomic-embed-text-v1.5", 768),
        ("lmstudio", "text-embedding-nomic-embed-text-v1.5", "nomic-ai/nomic-embed-text-v1.5", 768),
        ("lmstudio", "text-embedding-nomic-embed-text-v1.5@q4_k_m", "nomic-ai/nomic-embed-text-v1.5", 768),
        ("lmstudio", "text-embedding-qwen3-embedding-0.6b", "Qwen/Qwen3-Embedding-0.6B", 1024),
        ("llamacpp", "nomic-embed-text-v1.5.Q8_0.gguf", "nomic-ai/nomic-embed-text-v1.5", 768),
        ("llamacpp", "/srv/models/Qwen3-Embedding-8B-Q4_K_M.gguf", "Qwen/Qwen3-Embedding-8B", 4096),
        ("huggingface", "CompendiumLabs/bge-large-en-v1.5-gguf", "BAAI/bge-large-en-v1.5", 1024),
        ("huggingface", "nvidia/llama-nemotron-embed-vl-1b-v2-fp8", "nvidia/llama-nemotron-embed-vl-1b-v2", 2048),
    ],
)
def test_ids_of_every_source_find_the_same_weights(models, kind, model_id, key, dimensions):
    found = models.find(kind, model_id)
    assert found is not None
    assert (found.key, found.dimensions) == (key, dimensions)


def test_openrouter_and_openai_ids_are_one_model(models):
    assert models.find("openrouter", "openai/text-embedding-3-small") is models.find("openai", "text-embedding-3-small")


def test_ollama_nomic_and_the_nomic_v15_repo_are_one_model_but_not_v1(models):
    ollama = models.find("ollama", "nomic-embed-text:latest")
    assert ollama is models.find("huggingface", "nomic-ai/nomic-embed-text-v1.5")
    assert ollama is not models.find("huggingface", "nomic-ai/nomic-embed-text-v1")


@pytest.mark.parametrize(
    ("kind", "model_id"),
    [
        # Other weights with a similar name must never resolve to a known entry.
        ("huggingface", "nomic-embed-text"),  # which version? not said
        ("huggingface", "intfloat/e5-large"),  # v1, not e5-large-v2
        ("huggingface", "BAAI/bge-large-en"),  # v1, not v1.5
        ("huggingface", "someone/bge-m3"),  # another owner's repo of that name may be a fine-tune
        ("huggingface", "second-state/All-MiniLM-L6-v2-Embedding-GGUF"),  # not the repo's name
        ("lmstudio", "text-embedding-3-small"),  # an OpenAI name is not a local model
        ("ollama", "bge-m3-unified:latest"),  # a user-built model (recorded /api/tags)
        ("ollama", "someone/nomic-embed-text:latest"),  # a user namespace, not the library
        ("ollama", "qwen3-embedding:2b"),  # no such size documented
        ("ollama", "snowflake-arctic-embed:335m-l-fp16"),  # tag not seen: not guessed
        ("ollama", "embeddinggemma"),  # tags include QAT builds: other weights
        ("openrouter", "openai/text-embedding-3-small:thinking"),  # unknown variant
        ("openrouter", "openai/text-embedding-3-smaller"),
        ("openai", "text-embedding-3"),
        ("gemini", "models/gemini-embedding"),
        ("mistral", "mistral-embed-2"),
        ("openrouter", ""),
        ("openrouter", "   "),
    ],
)
def test_ids_of_other_weights_find_nothing(models, kind, model_id):
    assert models.find(kind, model_id) is None


def test_unknown_dimensions_stay_unknown(models):
    gecko = models.find("gemini", "models/embedding-gecko-001")
    assert gecko is not None
    assert gecko.dimensions is None


def test_unknown_source_kind_is_a_programming_error(models):
    with pytest.raises(ValueError, match="unknown source kind 'cohere'"):
        models.find("cohere", "embed-english-v3.0")


def test_loaded_table_cannot_be_changed(models):
    model = models.find("openai", "text-embedding-3-small")
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.dimensions = 3
    with pytest.raises(TypeError):
        model.ids["openai"] = ("other",)
    assert isinstance(model.supported_dimensions, tuple)


# --- validation -----------------------------------------------------------------------------------

GOOD = """  - key: acme/embed-1
    dimensions: 768
    ids:
      openrouter: [acme/embed-1]
      ollama: [acme-embed]
      huggingface: [acme/embed-1]
    sources: [test]
"""


def write_table(directory, entries: str) -> None:
    (directory / EMBEDDING_MODELS_FILE).write_text("models:\n" + entries, encoding="utf-8")


def entry(body: str, key: str = "acme/embed-2") -> str:
    return f"  - key: {key}\n" + body


@pytest.mark.parametrize(
    ("second", "problem"),
    [
        (entry("    ids: {openai: [x]}\n    sources: [t]\n"), "missing dimensions"),
        (entry("    dimensions: 5\n    ids: {openai: [x]}\n"), "missing sources"),
        (entry("    dimensions: 5\n    ids: {openai: [x]}\n    sources: [t]\n    dims: 5\n"), "unknown field dims"),
        (
            entry("    dimensions: 0\n    ids: {openai: [x]}\n    sources: [t]\n"),
            "'dimensions' must be a positive integer or null",
        ),
        (
            entry("    dimensions: '768'\n    ids: {openai: [x]}\n    sources: [t]\n"),
            "'dimensions' must be a positive integer or null",
        ),
        (
            entry("    dimensions: true\n    ids: {openai: [x]}\n    sources: [t]\n"),
            "'dimensions' must be a positive integer or null",
        ),
        (
            entry(
                "    dimensions: 768\n    supported_dimensions: [512, 256, 768]\n"
                "    ids: {openai: [x]}\n    sources: [t]\n"
            ),
            "ascending order",
        ),
        (
            entry(
                "    dimensions: 768\n    supported_dimensions: [256, 256, 768]\n"
                "    ids: {openai: [x]}\n    sources: [t]\n"
            ),
            "ascending order",
        ),
        (
            entry(
                "    dimensions: 768\n    supported_dimensions: [0, 768]\n    ids: {openai: [x]}\n    sources: [t]\n"
            ),
            "list of positive integers",
        ),
        (
            entry("    dimensions: 768\n    supported_dimensions: []\n    ids: {openai: [x]}\n    sources: [t]\n"),
            "non-empty list of positive integers",
        ),
        (
            entry(
                "    dimensions: 768\n    supported_dimensions: [256, 512]\n    ids: {openai: [x]}\n    sources: [t]\n"
            ),
            "must include 'dimensions' (768)",
        ),
        (
            entry("    dimensions: null\n    supported_dimensions: [256]\n    ids: {openai: [x]}\n    sources: [t]\n"),
            "needs a known 'dimensions'",
        ),
        (entry("    dimensions: 5\n    ids: {openai: [x]}\n    sources: []\n"), "'sources' must be a non-empty list"),
        (
            entry("    dimensions: 5\n    ids: {openai: [x]}\n    sources: ['  ']\n"),
            "'sources' must be a non-empty list",
        ),
        (entry("    dimensions: 5\n    ids: {}\n    sources: [t]\n"), "'ids' must be a non-empty mapping"),
        (entry("    dimensions: 5\n    ids: {cohere: [x]}\n    sources: [t]\n"), "unknown source kind cohere"),
        (
            entry("    dimensions: 5\n    ids: {openai: []}\n    sources: [t]\n"),
            "'ids.openai' must be a non-empty list",
        ),
        (
            entry("    dimensions: 5\n    ids: {openrouter: [embed-2]}\n    sources: [t]\n"),
            "'ids.openrouter' has a malformed id 'embed-2'",
        ),
        (
            entry("    dimensions: 5\n    ids: {openrouter: ['acme/embed-2:free']}\n    sources: [t]\n"),
            "malformed id 'acme/embed-2:free'",
        ),
        (
            entry("    dimensions: 5\n    ids: {ollama: ['Bad Name']}\n    sources: [t]\n"),
            "'ids.ollama' has a malformed id",
        ),
        (
            entry("    dimensions: 5\n    ids: {openai: [x]}\n    sources: [t]\n", key="nobody"),
            "'key' must look like maker/model",
        ),
        ("  - just a string\n", "must be a mapping"),
        # Checks across entries: one key, and one owner per id and source kind.
        (
            entry("    dimensions: 5\n    ids: {openai: [x]}\n    sources: [t]\n", key="ACME/Embed-1"),
            "duplicate key 'ACME/Embed-1'",
        ),
        (
            entry("    dimensions: 5\n    ids: {openrouter: [ACME/embed-1]}\n    sources: [t]\n"),
            "ids.openrouter 'ACME/embed-1' is already an id of acme/embed-1",
        ),
        (
            entry("    dimensions: 5\n    ids: {huggingface: [acme/embed-1-GGUF]}\n    sources: [t]\n"),
            "ids.huggingface 'acme/embed-1-GGUF' is already an id of acme/embed-1",
        ),
        (
            entry("    dimensions: 5\n    ids: {ollama: ['acme-embed:large']}\n    sources: [t]\n"),
            "'acme-embed' already names every tag of acme/embed-1",
        ),
        (
            entry("    dimensions: 5\n    ids: {ollama: [acme-embed]}\n    sources: [t]\n"),
            "ids.ollama 'acme-embed' is already an id of acme/embed-1",
        ),
    ],
)
def test_bad_entry_is_refused_with_file_and_entry_named(tmp_path, second, problem):
    write_table(tmp_path, GOOD + second)
    with pytest.raises(CuratedDataError) as caught:
        load_embedding_models(tmp_path)
    message = str(caught.value)
    assert EMBEDDING_MODELS_FILE in message
    assert "entry 2" in message
    assert problem in message


def test_entry_label_names_the_model_key(tmp_path):
    write_table(tmp_path, GOOD + entry("    dimensions: -1\n    ids: {openai: [x]}\n    sources: [t]\n"))
    with pytest.raises(CuratedDataError, match=r"entry 2 \(acme/embed-2\)"):
        load_embedding_models(tmp_path)


def test_a_tag_then_a_bare_claim_of_the_same_ollama_name_is_refused(tmp_path):
    first = entry("    dimensions: 5\n    ids: {ollama: ['acme-other:small']}\n    sources: [t]\n", key="acme/other")
    second = entry("    dimensions: 5\n    ids: {ollama: [acme-other]}\n    sources: [t]\n")
    write_table(tmp_path, first + second)
    with pytest.raises(CuratedDataError, match="a tag of 'acme-other' already belongs to acme/other"):
        load_embedding_models(tmp_path)


def test_tags_of_one_ollama_name_may_belong_to_different_weights(tmp_path):
    small = entry(
        "    dimensions: 384\n    ids: {ollama: ['acme:small', 'acme:latest']}\n    sources: [t]\n", key="acme/small"
    )
    large = entry("    dimensions: 1024\n    ids: {ollama: ['acme:large']}\n    sources: [t]\n", key="acme/large")
    write_table(tmp_path, small + large)
    table = load_embedding_models(tmp_path)
    assert table.find("ollama", "acme").key == "acme/small"
    assert table.find("ollama", "acme:large-q8_0").key == "acme/large"
    assert table.find("ollama", "acme:medium") is None


def test_a_repo_name_shared_by_two_makers_is_not_guessed_from_the_name_alone(tmp_path):
    one = entry("    dimensions: 384\n    ids: {huggingface: [maker-a/embed]}\n    sources: [t]\n", key="maker-a/embed")
    two = entry("    dimensions: 768\n    ids: {huggingface: [maker-b/embed]}\n    sources: [t]\n", key="maker-b/embed")
    write_table(tmp_path, one + two)
    table = load_embedding_models(tmp_path)
    assert table.find("huggingface", "maker-b/embed").dimensions == 768
    assert table.find("lmstudio", "embed") is None
    assert table.find("llamacpp", "embed.Q4_K_M.gguf") is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("models: [\n", "not valid YAML"),
        ("- a list\n", "must be a mapping with a 'models' list"),
        ("models: []\n", "the 'models' list is empty"),
    ],
)
def test_bad_file_is_refused_with_file_named(tmp_path, content, problem):
    (tmp_path / EMBEDDING_MODELS_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(CuratedDataError) as caught:
        load_embedding_models(tmp_path)
    assert EMBEDDING_MODELS_FILE in str(caught.value)
    assert problem in str(caught.value)


def test_missing_file_is_refused_with_file_named(tmp_path):
    with pytest.raises(CuratedDataError, match=rf"{EMBEDDING_MODELS_FILE}: cannot be read"):
        load_embedding_models(tmp_path)
