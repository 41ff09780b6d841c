"""Local servers' answers → rows: every recorded fixture pinned, and the rules that split them."""

from __future__ import annotations

import json

import pytest

from app.embedding_models import load_embedding_models
from app.sources.llamacpp import read_llamacpp
from app.sources.lmstudio import read_lmstudio
from app.sources.openai_compatible import (
    CHAT,
    EMBEDDING,
    OTHER,
    local_rows,
    maker_from_id,
    meaningful_owner,
    read_openai_list,
    role_by_id,
)
from app.sources.rows import InvalidDocument
from app.sources.vllm import read_vllm
from config import PROJECT_ROOT
from harness.fake_upstream import fixture_bytes


@pytest.fixture(scope="module")
def table():
    return load_embedding_models(PROJECT_ROOT / "curated")


def fixture(name: str):
    return json.loads(fixture_bytes(f"providers/{name}"))


def rows_of(reader, document, table, **reader_args):
    models, skipped = reader(document, **reader_args)
    chat, embedding = local_rows(models, skipped, table, "huggingface")
    return chat, embedding


def by_id(rows):
    return {row["id"]: row for row in rows}


# Per fixture: chat ids (in served order), embedding ids, embedding rows with dimensions, skipped.
EXPECTED = {
    ("lmstudio_api-v1-models_1.json", read_lmstudio): (
        ["meta-llama-3-8b-instruct", "qwen/qwen3-coder-next", "qwen3.6-35b-a3b-mtp"],
        ["text-embedding-nomic-embed-text-v1.5"], 1, 0),
    ("lmstudio_api-v0-models_1.json", read_lmstudio): (
        ["meta-llama-3-8b-instruct", "qwen/qwen3-coder-next", "qwen3.6-35b-a3b-mtp"],
        ["text-embedding-nomic-embed-text-v1.5"], 1, 0),
    ("lmstudio_api-v0-models_2.json", read_lmstudio): (
        ["google/gemma-4-e4b", "lfm2.5-1.2b-instruct-mlx", "qwen3-0.6b-mlx", "qwen/qwen3.6-27b",
         "qwen/qwen3.6-35b-a3b"],
        ["text-embedding-nomic-embed-text-v1.5"], 1, 0),
    ("lmstudio_api-v0-models_5.json", read_lmstudio): (["gemma-3n-e4b-it-mlx"], [], 0, 0),
    ("lmstudio_api-v0-models_6.json", read_lmstudio): ([], [], 0, 0),
    ("lmstudio_v1-models_1.json", read_lmstudio): (
        ["glm-4.7-flash", "nvidia/nemotron-3-nano", "openai/gpt-oss-20b"],
        ["text-embedding-nomic-embed-text-v1.5"], 1, 0),
    ("fastflowlm_api-v1-models_1.json", read_lmstudio): (["gemma3:4b", "gpt-oss:20b", "qwen3.6-moe:35b-a3b"], [], 0, 0),
    ("vllm_v1-models_1.json", read_vllm): (["meta-llama/Meta-Llama-3.1-8B-Instruct"], [], 0, 0),
    ("vllm_v1-models_2.json", read_vllm): (["qwen3-30b-tq"], [], 0, 0),
    ("llamacpp_v1-models_1.json", read_llamacpp): (["QuantFactory/tinyllama-15M-alpaca-finetuned-GGUF"], [], 0, 0),
    ("llamacpp_models_1.json", read_llamacpp): ([], [], 0, 0),
    ("localai_v1-models_1.json", read_openai_list): (
        [".devcontainer", ".dockerignore", ".DS_Store", ".env", ".git", ".github", ".gitignore", ".vscode", "api",
         "charts", "Dockerfile", "Earthfile", "examples", "go-gpt2", "go-gpt4all-j", "go-llama", "go.mod", "go.sum",
         "LICENSE", "local-ai", "main.go", "Makefile", "models", "pkg", "prompt-templates", "README.md",
         "renovate.json", "tests"], [], 0, 1),
    ("rapidmlx_v1-models_1.json", read_openai_list): (["mlx-community/Qwen3.6-27B-8bit"], [], 0, 0),
    ("fastflowlm_api-v1-models_1.json", read_openai_list): (
        ["gemma3:4b", "gpt-oss:20b", "qwen3.6-moe:35b-a3b"], [], 0, 0,
    ),
    ("groq_openai-v1-models_1.json", read_openai_list): (
        ["qwen/qwen3-32b", "groq/compound", "groq/compound-mini", "llama-3.1-8b-instant", "llama-3.3-70b-versatile",
         "meta-llama/llama-4-maverick-17b-128e-instruct", "meta-llama/llama-4-scout-17b-16e-instruct",
         "moonshotai/kimi-k2-instruct", "moonshotai/kimi-k2-instruct-0905", "openai/gpt-oss-120b",
         "openai/gpt-oss-20b", "openai/gpt-oss-safeguard-20b", "allam-2-7b"], [], 0, 0),
    ("ollama_v1-models_1.json", read_openai_list): (["gemma4:31b"], [], 0, 0),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "reader"), list(EXPECTED), ids=[f"{n}-{r.__module__.rsplit('.', 1)[1]}" for n, r in EXPECTED]
)
def test_every_fixture_splits_into_the_pinned_rows(name, reader, table):
    chat_ids, embedding_ids, with_dimensions, skipped = EXPECTED[(name, reader)]
    chat, embedding = rows_of(reader, fixture(name), table)
    assert [row["id"] for row in chat.rows] == chat_ids
    assert [row["id"] for row in embedding.rows] == embedding_ids
    assert sum(row["dimensions"] is not None for row in embedding.rows) == with_dimensions
    assert chat.skipped == skipped
    for row in chat.rows:
        assert row["is_free"] is True and row["capabilities"] == sorted(row["capabilities"])
        assert set(row) >= {"id", "name", "provider", "context", "capabilities", "is_free"}
    for row in embedding.rows:
        assert set(row) >= {"id", "name", "provider", "dimensions", "context", "is_free"}
        assert "capabilities" not in row


def test_lmstudio_v1_native_rows(table):
    chat, embedding = rows_of(read_lmstudio, fixture("lmstudio_api-v1-models_1.json"), table)
    rows = by_id(chat.rows)
    assert rows["qwen3.6-35b-a3b-mtp"] == {
        "id": "qwen3.6-35b-a3b-mtp", "name": "Qwen3.6 35B A3B UD", "provider": "Unsloth",
        # Loaded: the loaded instance's context_length (here equal to max_context_length).
        "context": 262144, "capabilities": ["reasoning", "tools", "vision"], "is_free": True,
        "loaded": True, "quantization": "Q3_K_M",
    }  # fmt: skip
    assert rows["qwen/qwen3-coder-next"] == {
        "id": "qwen/qwen3-coder-next", "name": "Qwen3 Coder Next", "provider": "Qwen", "context": 262144,
        "capabilities": ["tools"], "is_free": True, "loaded": False, "quantization": "Q4_K_M",
    }  # fmt: skip
    assert rows["meta-llama-3-8b-instruct"]["capabilities"] == []
    assert rows["meta-llama-3-8b-instruct"]["provider"] == "QuantFactory"
    # The embedding row has no architecture and no capabilities; its size comes from the sourced table.
    assert embedding.rows == [{
        "id": "text-embedding-nomic-embed-text-v1.5", "name": "Nomic Embed Text v1.5", "provider": "Nomic AI",
        "dimensions": 768, "context": 2048, "is_free": True, "loaded": False, "quantization": "Q4_K_M",
        "model_key": "nomic-ai/nomic-embed-text-v1.5", "supported_dimensions": [64, 128, 256, 512, 768],
    }]  # fmt: skip


def test_lmstudio_v0_native_rows(table):
    chat, embedding = rows_of(read_lmstudio, fixture("lmstudio_api-v0-models_1.json"), table)
    rows = by_id(chat.rows)
    # v0 says "vlm" where v1 says "llm" with vision: both are vision; tool_use is tools.
    assert rows["qwen3.6-35b-a3b-mtp"] == {
        "id": "qwen3.6-35b-a3b-mtp", "name": "qwen3.6-35b-a3b-mtp", "provider": "Unsloth", "context": 262144,
        "capabilities": ["tools", "vision"], "is_free": True, "loaded": True, "quantization": "Q3_K_M",
    }  # fmt: skip
    assert rows["meta-llama-3-8b-instruct"]["context"] == 8192
    assert embedding.rows[0]["dimensions"] == 768 and embedding.rows[0]["context"] == 2048


def test_lmstudio_v0_a_model_loaded_twice_is_listed_once_with_its_loaded_context(table):
    chat, _ = rows_of(read_lmstudio, fixture("lmstudio_api-v0-models_2.json"), table)
    rows = by_id(chat.rows)
    assert "qwen3-0.6b-mlx:2" not in rows
    # Loaded with 4096 of 40960: what a request gets is the loaded context.
    assert (rows["qwen3-0.6b-mlx"]["context"], rows["qwen3-0.6b-mlx"]["loaded"]) == (4096, True)
    assert rows["qwen3-0.6b-mlx"]["provider"] == "LM Studio Community"
    assert (rows["lfm2.5-1.2b-instruct-mlx"]["context"], rows["lfm2.5-1.2b-instruct-mlx"]["loaded"]) == (128000, False)
    assert rows["google/gemma-4-e4b"]["capabilities"] == ["tools", "vision"]
    assert rows["lfm2.5-1.2b-instruct-mlx"]["quantization"] == "8bit"


def test_lmstudio_0_3_20_without_capabilities(table):
    chat, _ = rows_of(read_lmstudio, fixture("lmstudio_api-v0-models_5.json"), table)
    assert chat.rows == [{
        "id": "gemma-3n-e4b-it-mlx", "name": "gemma-3n-e4b-it-mlx", "provider": "LM Studio Community",
        "context": 4096, "capabilities": ["vision"], "is_free": True, "loaded": True, "quantization": "4bit",
    }]  # fmt: skip


def test_lmstudio_openai_list_has_ids_only(table):
    chat, embedding = rows_of(read_lmstudio, fixture("lmstudio_v1-models_1.json"), table)
    assert by_id(chat.rows)["openai/gpt-oss-20b"] == {
        "id": "openai/gpt-oss-20b", "name": "openai/gpt-oss-20b", "provider": "OpenAI", "context": None,
        "capabilities": [], "is_free": True,
    }  # fmt: skip
    # owned_by "organization_owner" names nobody; a bare id has no maker.
    assert by_id(chat.rows)["glm-4.7-flash"]["provider"] is None
    assert by_id(chat.rows)["nvidia/nemotron-3-nano"]["provider"] == "NVIDIA"
    # No type here: the sourced table knows the weights, so the embedding model stays out of chat.
    assert embedding.rows == [{
        "id": "text-embedding-nomic-embed-text-v1.5", "name": "text-embedding-nomic-embed-text-v1.5",
        "provider": None, "dimensions": 768, "context": None, "is_free": True,
        "model_key": "nomic-ai/nomic-embed-text-v1.5", "supported_dimensions": [64, 128, 256, 512, 768],
    }]  # fmt: skip


def test_lmstudio_unknown_shapes_and_types(table):
    with pytest.raises(InvalidDocument, match='"models" or a "data" list'):
        read_lmstudio({"object": "list"})
    models, skipped = read_lmstudio({"models": [
        {"key": "a", "type": "llm"}, {"key": "", "type": "llm"}, "junk", {"key": "img", "type": "image"},
    ]})  # fmt: skip
    chat, embedding = local_rows(models, skipped, table, "huggingface")
    assert ([row["id"] for row in chat.rows], embedding.rows, chat.skipped) == (["a"], [], 2)


def test_vllm_rows(table):
    chat, _ = rows_of(read_vllm, fixture("vllm_v1-models_1.json"), table)
    assert chat.rows == [{
        "id": "meta-llama/Meta-Llama-3.1-8B-Instruct", "name": "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "provider": "Meta", "context": 8096, "capabilities": [], "is_free": True,
    }]  # fmt: skip
    chat, _ = rows_of(read_vllm, fixture("vllm_v1-models_2.json"), table)
    # id is a served name, root a local path, owned_by "vllm": no maker is known.
    assert chat.rows[0]["provider"] is None and chat.rows[0]["context"] == 262144


def test_vllm_embedding_model_by_root_and_adapter_context(table):
    document = {"object": "list", "data": [
        {"id": "embedder", "owned_by": "vllm", "root": "BAAI/bge-m3", "max_model_len": 8192},
        {"id": "base", "owned_by": "vllm", "root": "Qwen/Qwen3-8B", "max_model_len": 32768},
        {"id": "my-lora", "owned_by": "vllm", "root": "/adapters/my-lora", "parent": "base"},
    ]}  # fmt: skip
    chat, embedding = rows_of(read_vllm, document, table)
    assert embedding.rows == [{
        "id": "embedder", "name": "embedder", "provider": "BAAI", "dimensions": 1024, "context": 8192, "is_free": True,
        "model_key": "BAAI/bge-m3",  # found by its root; the maker documents one size only
    }]  # fmt: skip
    rows = by_id(chat.rows)
    assert rows["my-lora"]["context"] == 32768 and rows["base"]["provider"] == "Qwen"


def test_llamacpp_one_model_server(table):
    chat, embedding = rows_of(read_llamacpp, fixture("llamacpp_v1-models_1.json"), table)
    assert chat.rows == [{
        "id": "QuantFactory/tinyllama-15M-alpaca-finetuned-GGUF",
        "name": "QuantFactory/tinyllama-15M-alpaca-finetuned-GGUF", "provider": "QuantFactory",
        "context": 256, "capabilities": [], "is_free": True, "loaded": True,
    }]  # fmt: skip
    assert embedding.rows == []


def test_llamacpp_props_give_the_served_context_and_capabilities(table):
    # The /props recording comes from another server (gemma-4 behind llama-swap); paired here to
    # read its fields: n_ctx 262144, modalities.vision, chat_template_caps.supports_tool_calls.
    chat, _ = rows_of(
        read_llamacpp, fixture("llamacpp_v1-models_1.json"), table, props=fixture("llamacpp_props_1.json")
    )
    assert (chat.rows[0]["context"], chat.rows[0]["capabilities"]) == (262144, ["tools", "vision"])
    sleeping = {**fixture("llamacpp_props_1.json"), "is_sleeping": True}
    chat, _ = rows_of(read_llamacpp, fixture("llamacpp_v1-models_1.json"), table, props=sleeping)
    assert chat.rows[0]["loaded"] is False


def test_llamacpp_router_decision_model_cannot_chat(table):
    chat, embedding = rows_of(read_llamacpp, fixture("llamacpp_models_1.json"), table)
    assert (chat.rows, embedding.rows) == ([], [])


def test_llamacpp_embedding_models_by_what_the_server_says(table):
    meta = {"vocab_type": 3, "n_vocab": 30522, "n_ctx_train": 2048, "n_embd": 768, "n_params": 136731648, "size": 1}
    single = {"object": "list", "data": [{"id": "/models/nomic-embed-text-v1.5.Q8_0.gguf", "object": "model",
                                          "owned_by": "llamacpp", "meta": meta}]}  # fmt: skip
    chat, embedding = rows_of(read_llamacpp, single, table)
    # A WordPiece (BERT) vocabulary only embeds; n_embd is its size; a path names no maker.
    assert chat.rows == [] and embedding.rows == [{
        "id": "/models/nomic-embed-text-v1.5.Q8_0.gguf", "name": "/models/nomic-embed-text-v1.5.Q8_0.gguf",
        "provider": None, "dimensions": 768, "context": 2048, "is_free": True, "loaded": True,
        "model_key": "nomic-ai/nomic-embed-text-v1.5", "supported_dimensions": [64, 128, 256, 512, 768],
    }]  # fmt: skip
    router = {"object": "list", "data": [
        {"id": "ggml-org/Qwen3-Embedding-0.6B-GGUF:Q8_0", "owned_by": "llamacpp",
         "status": {"value": "unloaded", "args": ["llama-server", "--embedding", "--pooling", "last", "-c", "8192"]}},
        {"id": "ggml-org/bge-reranker-v2-m3-GGUF", "owned_by": "llamacpp",
         "status": {"value": "loaded", "args": ["llama-server", "--reranking"]}},
        {"id": "ggml-org/gemma-3-4b-it-GGUF:Q4_K_M", "owned_by": "llamacpp",
         "status": {"value": "loaded", "args": ["llama-server", "-ctx", "4096"]},
         "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["text"]}},
        {"id": "preset-embedder", "owned_by": "llamacpp",
         "status": {"value": "unloaded", "preset": "[preset-embedder]\nembeddings = true\nctx-size = 512\n"}},
    ]}  # fmt: skip
    chat, embedding = rows_of(read_llamacpp, router, table)
    assert chat.rows == [{
        "id": "ggml-org/gemma-3-4b-it-GGUF:Q4_K_M", "name": "ggml-org/gemma-3-4b-it-GGUF:Q4_K_M",
        "provider": "Ggml Org", "context": 4096, "capabilities": ["vision"], "is_free": True, "loaded": True,
        "quantization": "Q4_K_M",
    }]  # fmt: skip
    rows = by_id(embedding.rows)
    assert list(rows) == ["preset-embedder", "ggml-org/Qwen3-Embedding-0.6B-GGUF:Q8_0"]
    # An unloaded router model has no meta: its size comes from the sourced table (by the repo
    # its id names), else null.
    assert rows["ggml-org/Qwen3-Embedding-0.6B-GGUF:Q8_0"] == {
        "id": "ggml-org/Qwen3-Embedding-0.6B-GGUF:Q8_0", "name": "ggml-org/Qwen3-Embedding-0.6B-GGUF:Q8_0",
        "provider": "Ggml Org", "dimensions": 1024, "context": 8192, "is_free": True, "loaded": False,
        "quantization": "Q8_0", "model_key": "Qwen/Qwen3-Embedding-0.6B", "supported_dimensions": [32, 1024],
    }  # fmt: skip
    assert rows["preset-embedder"]["context"] == 512
    assert rows["preset-embedder"]["dimensions"] is None and rows["preset-embedder"]["loaded"] is False


def test_openai_compatible_rows(table):
    chat, _ = rows_of(read_openai_list, fixture("groq_openai-v1-models_1.json"), table)
    rows = by_id(chat.rows)
    # owned_by names the maker here; context and output lengths as the server states them.
    assert rows["llama-3.3-70b-versatile"] == {
        "id": "llama-3.3-70b-versatile", "name": "llama-3.3-70b-versatile", "provider": "Meta",
        "context": 131072, "capabilities": [], "is_free": True, "max_output": 32768,
    }  # fmt: skip
    assert rows["qwen/qwen3-32b"]["provider"] == "Alibaba Cloud"
    # Speech, transcription and guard models cannot chat: none of them is listed.
    assert not {"whisper-large-v3", "whisper-large-v3-turbo", "playai-tts", "playai-tts-arabic",
                "meta-llama/llama-guard-4-12b", "meta-llama/llama-prompt-guard-2-86m",
                "meta-llama/llama-prompt-guard-2-22m"} & rows.keys()  # fmt: skip
    chat, _ = rows_of(read_openai_list, fixture("rapidmlx_v1-models_1.json"), table)
    assert chat.rows[0]["provider"] == "MLX Community"  # owned_by "rapid-mlx" is the server
    chat, _ = rows_of(read_openai_list, fixture("ollama_v1-models_1.json"), table)
    assert chat.rows == [{"id": "gemma4:31b", "name": "gemma4:31b", "provider": None, "context": None,
                          "capabilities": [], "is_free": True}]  # fmt: skip


def test_openai_compatible_embedding_models_and_inactive_ones(table):
    document = {"object": "list", "data": [
        {"id": "nomic-embed-text:latest", "owned_by": "library"},
        {"id": "my-embedder-v2", "owned_by": "someone"},
        {"id": "retired", "active": False},
        {"id": "typed-embedder", "type": "embedding"},
    ]}  # fmt: skip
    chat, embedding = rows_of(read_openai_list, document, table)
    assert chat.rows == []
    assert [(row["id"], row["dimensions"], row["provider"]) for row in embedding.rows] == [
        # Sorted by maker, the unknown first, then by name.
        ("nomic-embed-text:latest", 768, None),
        ("typed-embedder", None, None),
        ("my-embedder-v2", None, "someone"),
    ]


def test_wrong_shapes_raise_and_an_empty_list_is_valid(table):
    for reader in (read_openai_list, read_vllm, read_llamacpp):
        with pytest.raises(InvalidDocument):
            reader({"models": []})
        with pytest.raises(InvalidDocument):
            reader([])
        models, skipped = reader({"object": "list", "data": []})
        assert (models, skipped) == ([], 0)


@pytest.mark.parametrize(
    ("ids", "role"),
    [
        (("text-embedding-3-small",), EMBEDDING),
        (("Qwen/Qwen3-Embedding-8B",), EMBEDDING),
        (("whisper-large-v3",), OTHER),
        (("playai-tts",), OTHER),
        (("gpt-4o-transcribe",), OTHER),
        (("text-moderation-latest",), OTHER),
        (("meta-llama/Llama-Guard-4-12B",), OTHER),
        (("BAAI/bge-reranker-v2-m3",), OTHER),
        (("gpt-image-1",), OTHER),
        (("dall-e-3",), OTHER),
        (("openai/gpt-oss-safeguard-20b",), CHAT),
        (("llama-3.3-70b",), CHAT),
        (("served", "nomic-embed-v1"), EMBEDDING),
    ],
)
def test_id_patterns_are_the_last_resort(ids, role):
    assert role_by_id(*ids) == role


@pytest.mark.parametrize(
    ("owned_by", "expected"),
    [
        ("Meta", "Meta"),
        ("vllm", None),
        ("llamacpp", None),
        ("organization_owner", None),
        ("FastFlowLM", None),
        ("library", None),
        ("/srv/models", None),
        ("", None),
        (None, None),
        (7, None),
    ],
)
def test_owned_by_counts_only_when_it_names_a_maker(owned_by, expected):
    assert meaningful_owner(owned_by) == expected


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("meta-llama/Llama-3.1-8B", "Meta"),
        ("mistralai/x", "Mistral"),
        ("plain-name", None),
        ("/models/a/b.gguf", None),
        ("../models/x.gguf", None),
        ("a/b/c", None),
        ("C:\\models\\x.gguf", None),
    ],
)
def test_maker_from_id(model_id, expected):
    assert maker_from_id(model_id) == expected
