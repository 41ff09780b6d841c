"""The hosted providers' normalisers, pinned on every recorded answer; their settings and paging."""

from __future__ import annotations

import dataclasses
import json

import pytest

from app.embedding_models import load_embedding_models
from app.sources import anthropic, gemini, mistral, openai
from app.sources.hosted import MAX_PAGES, follow_pages
from app.sources.rows import CAPABILITIES, InvalidDocument
from config import PROJECT_ROOT, ConfigError, Settings
from harness.fake_upstream import fixture_bytes
from tests.support.secrets import JWT_SECRET, PROVIDER_KEYS


@pytest.fixture(scope="module")
def table():
    return load_embedding_models(PROJECT_ROOT / "curated")


def records(name: str, member: str) -> list:
    return json.loads(fixture_bytes(f"providers/{name}"))[member]


def ids(normalised) -> list[str]:
    return [row["id"] for row in normalised.rows]


def check_row_shapes(chat, embeddings) -> None:
    """What every hosted row carries, whatever the provider."""
    for row in chat.rows:
        assert {"id", "name", "provider", "context", "capabilities", "is_free"} <= set(row)
        assert set(row) <= {
            "id", "name", "provider", "context", "capabilities", "is_free", "max_output", "expires_on", "released_at",
        }  # fmt: skip
        assert row["capabilities"] == sorted(row["capabilities"]) and set(row["capabilities"]) <= set(CAPABILITIES)
        assert row["is_free"] is False
    for row in embeddings.rows if embeddings else []:
        assert set(row) - {"released_at"} == {"id", "name", "provider", "context", "dimensions", "is_free"}
    assert not {row["id"] for row in chat.rows} & {row["id"] for row in (embeddings.rows if embeddings else [])}


# --- OpenAI -----------------------------------------------------------------------------------

OPENAI_CHAT = [
    "chatgpt-4o-latest", "codex-mini-latest", "gpt-3.5-turbo", "gpt-3.5-turbo-0125", "gpt-3.5-turbo-1106",
    "gpt-3.5-turbo-16k", "gpt-4", "gpt-4-0125-preview", "gpt-4-0613", "gpt-4-1106-preview", "gpt-4-turbo",
    "gpt-4-turbo-2024-04-09", "gpt-4-turbo-preview", "gpt-4.1", "gpt-4.1-2025-04-14", "gpt-4.1-mini",
    "gpt-4.1-mini-2025-04-14", "gpt-4.1-nano", "gpt-4.1-nano-2025-04-14", "gpt-4o", "gpt-4o-2024-05-13",
    "gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o-mini-search-preview",
    "gpt-4o-mini-search-preview-2025-03-11", "gpt-4o-search-preview", "gpt-4o-search-preview-2025-03-11", "gpt-5",
    "gpt-5-2025-08-07", "gpt-5-chat-latest", "gpt-5-codex", "gpt-5-mini", "gpt-5-mini-2025-08-07", "gpt-5-nano",
    "gpt-5-nano-2025-08-07", "gpt-5-pro", "gpt-5-pro-2025-10-06", "gpt-5-search-api", "gpt-5-search-api-2025-10-14",
    "gpt-5.1", "gpt-5.1-2025-11-13", "gpt-5.1-chat-latest", "gpt-5.1-codex", "gpt-5.1-codex-mini", "o1",
    "o1-2024-12-17", "o1-pro", "o1-pro-2025-03-19", "o3", "o3-2025-04-16", "o3-mini", "o3-mini-2025-01-31",
    "o4-mini", "o4-mini-2025-04-16",
]  # fmt: skip
OPENAI_LEFT_OUT = [
    "babbage-002", "dall-e-2", "dall-e-3", "davinci-002", "gpt-3.5-turbo-instruct", "gpt-3.5-turbo-instruct-0914",
    "gpt-4o-audio-preview", "gpt-4o-audio-preview-2024-10-01", "gpt-4o-audio-preview-2024-12-17",
    "gpt-4o-audio-preview-2025-06-03", "gpt-4o-mini-audio-preview", "gpt-4o-mini-audio-preview-2024-12-17",
    "gpt-4o-mini-realtime-preview", "gpt-4o-mini-realtime-preview-2024-12-17", "gpt-4o-mini-transcribe",
    "gpt-4o-mini-tts", "gpt-4o-realtime-preview", "gpt-4o-realtime-preview-2024-10-01",
    "gpt-4o-realtime-preview-2024-12-17", "gpt-4o-realtime-preview-2025-06-03", "gpt-4o-transcribe",
    "gpt-4o-transcribe-diarize", "gpt-audio", "gpt-audio-2025-08-28", "gpt-audio-mini", "gpt-audio-mini-2025-10-06",
    "gpt-image-1", "gpt-image-1-mini", "gpt-realtime", "gpt-realtime-2025-08-28", "gpt-realtime-mini",
    "gpt-realtime-mini-2025-10-06", "o4-mini-deep-research", "o4-mini-deep-research-2025-06-26",
    "omni-moderation-2024-09-26", "omni-moderation-latest", "sora-2", "sora-2-pro", "tts-1", "tts-1-1106", "tts-1-hd",
    "tts-1-hd-1106", "whisper-1",
]  # fmt: skip


def test_openai_recording_2_splits_by_the_documented_id_patterns(table):
    listed = records("openai_v1-models_2.json", "data")
    chat, embeddings = openai.normalise_openai_models(listed, table)
    check_row_shapes(chat, embeddings)
    assert (len(listed), len(chat.rows), len(embeddings.rows), chat.skipped) == (102, 56, 3, 0)
    assert ids(chat) == OPENAI_CHAT
    left_out = sorted({record["id"] for record in listed} - set(OPENAI_CHAT) - set(ids(embeddings)))
    assert left_out == OPENAI_LEFT_OUT
    # The list says nothing but the id: nothing else is claimed.
    assert next(row for row in chat.rows if row["id"] == "gpt-4o") == {
        "id": "gpt-4o", "name": "gpt-4o", "provider": "OpenAI", "context": None, "capabilities": [], "is_free": False,
        "released_at": "2024-05-10T18:50:49Z",  # OpenAI's `created`
    }  # fmt: skip
    assert embeddings.rows == [
        {"id": "text-embedding-3-large", "name": "text-embedding-3-large", "provider": "OpenAI", "context": None,
         "dimensions": 3072, "is_free": False, "released_at": "2024-01-22T19:53:00Z"},
        {"id": "text-embedding-3-small", "name": "text-embedding-3-small", "provider": "OpenAI", "context": None,
         "dimensions": 1536, "is_free": False, "released_at": "2024-01-22T18:43:17Z"},
        {"id": "text-embedding-ada-002", "name": "text-embedding-ada-002", "provider": "OpenAI", "context": None,
         "dimensions": 1536, "is_free": False, "released_at": "2022-12-16T19:01:39Z"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("model_id", "kind"),
    [
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", "chat"),  # a fine-tune goes by its base model
        ("ft:davinci-002:acme::abc123", None),
        ("o5-mini", "chat"),
        ("gpt-6", "chat"),
        ("text-embedding-4-small", "embedding"),
        ("computer-use-preview", None),  # no pattern says it chats
        ("gpt-image-2", None),
        ("gpt-5-audio-preview", None),
    ],
)
def test_openai_id_patterns_beyond_the_recording(model_id, kind):
    assert openai.family_kind(model_id) == kind


def test_openai_unknown_embedding_model_has_null_dimensions_and_bad_rows_are_counted(table):
    chat, embeddings = openai.normalise_openai_models(
        [{"id": "text-embedding-9"}, {"id": "gpt-4o"}, {"id": ""}, "junk", {"object": "model"}, {"id": "gpt-4o"}], table
    )
    assert embeddings.rows[0]["dimensions"] is None
    assert (ids(chat), chat.skipped) == (["gpt-4o"], 4)  # three malformed, one duplicate


# --- Anthropic --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("anthropic_v1-models_1.json", {
            "claude-2.0": "Claude 2.0", "claude-2.1": "Claude 2.1", "claude-3-5-haiku-20241022": "Claude 3.5 Haiku",
            "claude-3-5-sonnet-20241022": "Claude 3.5 Sonnet (New)",
            "claude-3-5-sonnet-20240620": "Claude 3.5 Sonnet (Old)",
            "claude-3-7-sonnet-20250219": "Claude 3.7 Sonnet", "claude-3-haiku-20240307": "Claude 3 Haiku",
            "claude-3-opus-20240229": "Claude 3 Opus", "claude-3-sonnet-20240229": "Claude 3 Sonnet",
        }),
        ("anthropic_v1-models_3.json", {
            "claude-3-haiku-20240307": "Claude Haiku 3", "claude-3-5-haiku-20241022": "Claude Haiku 3.5",
            "claude-haiku-4-5-20251001": "Claude Haiku 4.5",
            "claude-3-opus-20240229": "Claude Opus 3", "claude-opus-4-20250514": "Claude Opus 4",
            "claude-opus-4-1-20250805": "Claude Opus 4.1", "claude-3-7-sonnet-20250219": "Claude Sonnet 3.7",
            "claude-sonnet-4-20250514": "Claude Sonnet 4", "claude-sonnet-4-5-20250929": "Claude Sonnet 4.5",
        }),
    ],
)  # fmt: skip
def test_anthropic_recordings_list_every_model_by_display_name(fixture, expected):
    normalised = anthropic.normalise_anthropic_models(records(fixture, "data"))
    check_row_shapes(normalised, None)
    assert (len(normalised.rows), normalised.skipped) == (9, 0)
    assert {row["id"]: row["name"] for row in normalised.rows} == expected
    # Sorted by name, as every catalog is.
    assert [row["name"] for row in normalised.rows] == sorted(expected.values(), key=str.casefold)
    # These answers predate max_input_tokens, max_tokens and capabilities: nothing is claimed.
    assert all(
        row["context"] is None and row["capabilities"] == [] and "max_output" not in row for row in normalised.rows
    )


def test_anthropic_newer_fields_give_context_max_output_and_capabilities():
    # The documented ModelInfo shape of newer API versions (platform.claude.com Models API
    # reference); no recording of it exists, so this record is written from that reference.
    supported, unsupported = {"supported": True}, {"supported": False}
    record = {
        "type": "model", "id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5",
        "created_at": "2025-09-29T00:00:00Z", "max_input_tokens": 200000, "max_tokens": 64000,
        "capabilities": {
            "batch": supported, "citations": supported, "code_execution": supported, "image_input": supported,
            "pdf_input": supported, "structured_outputs": unsupported,
            "thinking": {"supported": True, "types": {"enabled": supported, "adaptive": unsupported}},
            "effort": {"supported": False}, "context_management": {"supported": True},
        },
    }  # fmt: skip
    (row,) = anthropic.normalise_anthropic_models([record]).rows
    assert row == {
        "id": "claude-sonnet-4-5-20250929", "name": "Claude Sonnet 4.5", "provider": "Anthropic", "context": 200000,
        "capabilities": ["reasoning", "vision"], "is_free": False, "max_output": 64000,
        "released_at": "2025-09-29T00:00:00Z",
    }  # fmt: skip


def test_anthropic_page_cursor():
    assert anthropic.anthropic_page({"data": [], "has_more": False, "last_id": "x"}) == ([], None)
    assert anthropic.anthropic_page({"data": [1], "has_more": True, "last_id": "x"}) == ([1], "x")
    with pytest.raises(InvalidDocument, match="last_id"):
        anthropic.anthropic_page({"data": [], "has_more": True, "last_id": None})
    with pytest.raises(InvalidDocument, match='"data" list'):
        anthropic.anthropic_page({"models": []})


# --- Gemini -----------------------------------------------------------------------------------

GEMINI_1_CHAT = [
    "gemini-1.0-pro-vision-latest", "gemini-pro-vision", "gemini-1.5-flash", "gemini-1.5-flash-001",
    "gemini-1.5-flash-001-tuning", "gemini-1.5-flash-002", "gemini-1.5-flash-8b-exp-0827",
    "gemini-1.5-flash-8b-exp-0924", "gemini-1.5-flash-latest", "gemini-1.5-flash-8b", "gemini-1.5-flash-8b-001",
    "gemini-1.5-flash-8b-latest", "gemini-1.5-pro", "gemini-1.5-pro-001", "gemini-1.5-pro-002",
    "gemini-1.5-pro-latest", "gemini-2.0-flash", "gemini-2.0-flash-001", "gemini-2.0-flash-exp",
    "gemini-2.0-flash-thinking-exp-1219", "gemini-2.0-flash-thinking-exp", "gemini-2.0-flash-thinking-exp-01-21",
    "gemini-2.0-flash-lite", "gemini-2.0-flash-lite-001", "gemini-2.0-flash-lite-preview",
    "gemini-2.0-flash-lite-preview-02-05", "gemini-2.0-pro-exp", "gemini-2.0-pro-exp-02-05",
    "gemini-2.5-flash-preview-04-17", "gemini-2.5-pro-exp-03-25", "gemini-2.5-pro-preview-03-25", "gemini-exp-1206",
    "gemma-3-12b-it", "gemma-3-1b-it", "gemma-3-27b-it", "gemma-3-4b-it", "learnlm-1.5-pro-experimental",
    "learnlm-2.0-flash-experimental",
]  # fmt: skip
GEMINI_4_CHAT = [
    "antigravity-preview-05-2026", "deep-research-max-preview-04-2026", "deep-research-preview-04-2026",
    "deep-research-pro-preview-12-2025", "gemini-2.0-flash", "gemini-2.0-flash-001", "gemini-2.0-flash-lite",
    "gemini-2.0-flash-lite-001", "gemini-2.5-computer-use-preview-10-2025", "gemini-2.5-flash",
    "gemini-2.5-flash-lite", "gemini-2.5-pro", "gemini-3-flash-preview", "gemini-3-pro-preview",
    "gemini-3.1-flash-lite", "gemini-3.1-flash-lite-preview", "gemini-3.1-pro-preview",
    "gemini-3.1-pro-preview-customtools", "gemini-3.5-flash", "gemini-3.5-flash-lite", "gemini-3.6-flash",
    "gemini-flash-latest", "gemini-flash-lite-latest", "gemini-omni-flash-preview", "gemini-pro-latest",
    "gemini-robotics-er-1.5-preview", "gemini-robotics-er-1.6-preview", "gemini-robotics-er-2-preview",
    "gemma-4-26b-a4b-it", "gemma-4-31b-it",
]  # fmt: skip


@pytest.mark.parametrize(
    ("fixture", "chat_ids", "embedding_dimensions", "left_out", "without_reasoning"),
    [
        ("gemini_v1beta-models_1.json", GEMINI_1_CHAT,
         {"embedding-001": 768, "embedding-gecko-001": None, "gemini-embedding-exp": 3072,
          "gemini-embedding-exp-03-07": 3072, "text-embedding-004": 768},
         ["aqa", "chat-bison-001", "gemini-2.0-flash-exp-image-generation", "gemini-2.0-flash-live-001",
          "imagen-3.0-generate-002", "text-bison-001", "veo-2.0-generate-001"],
         set(GEMINI_1_CHAT)),
        ("gemini_v1beta-models_4.json", GEMINI_4_CHAT,
         {"gemini-embedding-001": 3072, "gemini-embedding-2": 3072, "gemini-embedding-2-preview": 3072},
         ["aqa", "gemini-2.5-flash-image", "gemini-2.5-flash-preview-tts", "gemini-2.5-pro-preview-tts",
          "gemini-3-pro-image", "gemini-3-pro-image-preview",
          "gemini-3.1-flash-image", "gemini-3.1-flash-image-preview",
          "gemini-3.1-flash-lite-image", "gemini-3.1-flash-tts-preview", "imagen-4.0-fast-generate-001",
          "imagen-4.0-generate-001", "imagen-4.0-ultra-generate-001", "lyria-3-clip-preview", "lyria-3-pro-preview",
          "nano-banana-pro-preview", "veo-3.1-generate-preview"],
         {"antigravity-preview-05-2026", "gemini-2.0-flash", "gemini-2.0-flash-001", "gemini-2.0-flash-lite",
          "gemini-2.0-flash-lite-001"}),
    ],
)  # fmt: skip
def test_gemini_recordings_split_by_generation_methods(
    table, fixture, chat_ids, embedding_dimensions, left_out, without_reasoning
):
    listed = records(fixture, "models")
    chat, embeddings = gemini.normalise_gemini_models(listed, table)
    check_row_shapes(chat, embeddings)
    assert (len(listed), chat.skipped) == (50, 0)
    assert ids(chat) == chat_ids
    assert {row["id"]: row["dimensions"] for row in embeddings.rows} == embedding_dimensions
    every = {record["name"].removeprefix("models/") for record in listed}
    assert sorted(every - set(chat_ids) - set(embedding_dimensions)) == left_out
    # `thinking: true` is the only capability the list shows.
    assert {row["id"] for row in chat.rows if row["capabilities"] != ["reasoning"]} == without_reasoning
    assert all(row["capabilities"] in ([], ["reasoning"]) for row in chat.rows)


def test_gemini_full_rows(table):
    chat, embeddings = gemini.normalise_gemini_models(records("gemini_v1beta-models_4.json", "models"), table)
    rows = {row["id"]: row for row in chat.rows + embeddings.rows}
    assert rows["gemini-2.5-pro"] == {
        "id": "gemini-2.5-pro", "name": "Gemini 2.5 Pro", "provider": "Google", "context": 1048576,
        "capabilities": ["reasoning"], "is_free": False, "max_output": 65536,
    }  # fmt: skip
    assert rows["gemma-4-31b-it"]["context"] == 262144
    assert rows["gemini-embedding-001"] == {
        "id": "gemini-embedding-001", "name": "Gemini Embedding 001", "provider": "Google", "context": 2048,
        "dimensions": 3072, "is_free": False,
    }  # fmt: skip
    chat, embeddings = gemini.normalise_gemini_models(records("gemini_v1beta-models_1.json", "models"), table)
    rows = {row["id"]: row for row in chat.rows + embeddings.rows}
    assert rows["gemini-1.5-pro"] == {
        "id": "gemini-1.5-pro", "name": "Gemini 1.5 Pro", "provider": "Google", "context": 2000000,
        "capabilities": [], "is_free": False, "max_output": 8192,
    }  # fmt: skip
    assert rows["embedding-gecko-001"] == {
        "id": "embedding-gecko-001", "name": "Embedding Gecko", "provider": "Google", "context": 1024,
        "dimensions": None, "is_free": False,
    }  # fmt: skip


def test_gemini_bad_rows_are_skipped_and_counted(table):
    good = {"name": "models/gemini-x", "supportedGenerationMethods": ["generateContent"]}
    chat, _ = gemini.normalise_gemini_models(
        [good, {"name": "gemini-y", "supportedGenerationMethods": ["generateContent"]}, {"name": "models/"}, 7], table
    )
    assert (ids(chat), chat.skipped) == (["gemini-x"], 3)
    assert chat.rows[0] == {
        "id": "gemini-x",
        "name": "gemini-x",
        "provider": "Google",
        "context": None,
        "capabilities": [],
        "is_free": False,
    }


def test_gemini_page_token():
    assert gemini.gemini_page({"models": [1], "nextPageToken": "abc"}) == ([1], "abc")
    assert gemini.gemini_page({"models": [1], "nextPageToken": ""}) == ([1], None)
    assert gemini.gemini_page({"models": []}) == ([], None)
    with pytest.raises(InvalidDocument, match='"models" list'):
        gemini.gemini_page({"data": []})


# --- Mistral ----------------------------------------------------------------------------------

MISTRAL_CHAT = [
    "codestral-2501", "codestral-2508", "devstral-2512", "devstral-medium-2507", "devstral-small-2507",
    "labs-devstral-small-2512", "labs-mistral-small-creative", "magistral-medium-2509", "magistral-small-2509",
    "ministral-14b-2512", "ministral-3b-2410", "ministral-3b-2512", "ministral-8b-2410", "ministral-8b-2512",
    "mistral-large-2411", "mistral-large-2512", "mistral-medium-2505", "mistral-medium-2508", "mistral-small-2501",
    "mistral-small-2506", "open-mistral-7b", "open-mistral-nemo", "pixtral-12b-2409", "pixtral-large-2411",
    "voxtral-mini-2507", "voxtral-small-2507",
]  # fmt: skip


def test_mistral_recording_2_lists_each_model_once(table):
    listed = records("mistral_v1-models_2.json", "data")
    chat, embeddings = mistral.normalise_mistral_models(listed, table)
    check_row_shapes(chat, embeddings)
    assert (len(listed), len(chat.rows), len(embeddings.rows), chat.skipped) == (66, 26, 2, 0)
    assert ids(chat) == MISTRAL_CHAT
    # Each listed row is its model's own (id == the model's name): no alias is a row of its own.
    names: dict[str, str] = {}
    for record in listed:
        names.setdefault(record["id"], record["name"])  # the first model an id names
    assert all(names[row["id"]] == row["id"] for row in chat.rows + embeddings.rows)
    assert embeddings.rows == [
        {"id": "codestral-embed", "name": "codestral-embed", "provider": "Mistral", "context": 8192,
         "dimensions": 1536, "is_free": False},
        {"id": "mistral-embed-2312", "name": "mistral-embed-2312", "provider": "Mistral", "context": 8192,
         "dimensions": 1024, "is_free": False},
    ]  # fmt: skip
    rows = {row["id"]: row for row in chat.rows}
    assert rows["pixtral-12b-2409"] == {
        "id": "pixtral-12b-2409", "name": "pixtral-12b-2409", "provider": "Mistral", "context": 131072,
        "capabilities": ["tools", "vision"], "is_free": False, "expires_on": "2026-01-31",
    }  # fmt: skip
    assert {model: row["expires_on"] for model, row in rows.items() if "expires_on" in row} == {
        "codestral-2501": "2026-01-31", "ministral-3b-2410": "2025-12-31", "ministral-8b-2410": "2025-12-31",
        "mistral-small-2501": "2026-01-31", "open-mistral-7b": "2026-01-31", "pixtral-12b-2409": "2026-01-31",
    }  # fmt: skip
    assert {model for model, row in rows.items() if "vision" in row["capabilities"]} == {
        "labs-devstral-small-2512", "magistral-medium-2509", "magistral-small-2509", "ministral-14b-2512",
        "ministral-3b-2512", "ministral-8b-2512", "mistral-large-2512", "mistral-medium-2505", "mistral-medium-2508",
        "mistral-small-2506", "pixtral-12b-2409", "pixtral-large-2411",
    }  # fmt: skip
    assert {model for model, row in rows.items() if "tools" not in row["capabilities"]} == {"voxtral-mini-2507"}
    # voxtral-mini-2507 is listed twice (its own model, and an alias of the transcription model):
    # it stays the chat model it names.
    assert rows["voxtral-mini-2507"]["context"] == 32768
    # OCR, moderation and the transcription-only model are not chat models.
    assert not {"mistral-ocr-2512", "mistral-moderation-2411", "voxtral-mini-transcribe-2507"} & set(rows)


def test_mistral_without_an_own_row_an_alias_stands_for_the_model(table):
    capabilities = {"completion_chat": True}
    chat, _ = mistral.normalise_mistral_models(
        [{"id": "m-latest", "name": "m-2601", "capabilities": capabilities},
         {"id": "m", "name": "m-2601", "capabilities": capabilities},
         {"id": "other", "capabilities": capabilities, "max_context_length": 0, "deprecation": "soon"},
         {"name": "no id"}, None],
        table,
    )  # fmt: skip
    assert ids(chat) == ["m-latest", "other"] and chat.skipped == 2
    assert chat.rows[1] == {
        "id": "other",
        "name": "other",
        "provider": "Mistral",
        "context": None,
        "capabilities": [],
        "is_free": False,
    }


# --- Paging, declarations, settings -------------------------------------------------------------


def test_follow_pages_stops_at_the_last_page_a_loop_or_the_page_limit():
    pages = {None: ([1, 2], "b"), "b": ([3], "c"), "c": ([4], None)}
    assert follow_pages(lambda cursor: pages[cursor]) == [1, 2, 3, 4]
    looping = {None: ([1], "b"), "b": ([2], "c"), "c": ([3], "b")}
    with pytest.raises(InvalidDocument, match="page loop"):
        follow_pages(lambda cursor: looping[cursor])
    calls = []

    def endless(cursor):
        calls.append(cursor)
        return [len(calls)], f"page-{len(calls)}"

    with pytest.raises(InvalidDocument, match=f"more than {MAX_PAGES} pages"):
        follow_pages(endless)
    assert len(calls) == MAX_PAGES


@pytest.mark.parametrize("module", [openai, anthropic, gemini, mistral], ids=lambda module: module.__name__)
def test_a_provider_is_declared_only_with_its_key(module, make_settings):
    from app.service import build_service

    name = module.__name__.rsplit(".", 1)[1]
    service = build_service(make_settings())
    assert name not in service.registry.sources
    assert not any(path.startswith(f"/api/models/{name}") for path in service.registry.by_path)

    service = build_service(make_settings(**{f"{name}_api_key": PROVIDER_KEYS[name]}))
    source = service.registry.sources[name]
    assert source.enabled and source.interval_seconds == 900
    catalogs = {catalog.name: (catalog.path, catalog.kind, catalog.live_label, catalog.failure_replaces_rows,
                               catalog.curated_rows) for catalog in source.catalogs}  # fmt: skip
    expected = {name: (f"/api/models/{name}", "chat", "api", False, None)}
    if name != "anthropic":  # Anthropic lists no embedding models
        expected[f"{name}_embeddings"] = (f"/api/models/{name}/embeddings", "embedding", "api", False, None)
    assert catalogs == expected
    assert source.calls_per_poll == (MAX_PAGES if name in ("anthropic", "gemini") else 1)


def test_settings_read_the_providers_keys_urls_and_interval():
    env = {
        "JWT_SECRET_KEY": JWT_SECRET, "OPENAI_API_KEY": PROVIDER_KEYS["openai"],
        "ANTHROPIC_API_KEY": PROVIDER_KEYS["anthropic"], "GEMINI_API_KEY": PROVIDER_KEYS["gemini"],
        "MISTRAL_API_KEY": PROVIDER_KEYS["mistral"], "GEMINI_BASE_URL": "http://gateway.local/gemini/v1beta/",
        "PROVIDER_REFRESH_SECONDS": "120",
    }  # fmt: skip
    settings = Settings.from_env(env)
    assert settings.gemini_base_url == "http://gateway.local/gemini/v1beta"
    assert (settings.openai_base_url, settings.anthropic_base_url, settings.mistral_base_url) == (
        "https://api.openai.com/v1",
        "https://api.anthropic.com/v1",
        "https://api.mistral.ai/v1",
    )
    assert settings.provider_refresh_seconds == 120
    assert set(PROVIDER_KEYS.values()) <= set(settings.secrets)
    assert not any(key in repr(settings) for key in PROVIDER_KEYS.values())
    defaults = Settings.from_env({"JWT_SECRET_KEY": JWT_SECRET})
    assert defaults.provider_refresh_seconds == 900 and defaults.openai_api_key is None
    assert set(defaults.secrets) == {JWT_SECRET}


@pytest.mark.parametrize("name", ["OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "GEMINI_BASE_URL", "MISTRAL_BASE_URL"])
def test_a_bad_base_url_names_the_variable_not_its_value(name):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"JWT_SECRET_KEY": JWT_SECRET, name: "ftp://user:hunter2@example.com"})
    assert name in str(caught.value) and "hunter2" not in str(caught.value)


def test_provider_interval_must_be_positive():
    with pytest.raises(ConfigError, match="PROVIDER_REFRESH_SECONDS"):
        Settings.from_env({"JWT_SECRET_KEY": JWT_SECRET, "PROVIDER_REFRESH_SECONDS": "0"})


def test_settings_replace_keeps_keys_out_of_repr():
    settings = dataclasses.replace(Settings(jwt_secret_key=JWT_SECRET), mistral_api_key=PROVIDER_KEYS["mistral"])
    assert PROVIDER_KEYS["mistral"] not in repr(settings)
