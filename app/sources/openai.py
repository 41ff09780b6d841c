"""OpenAI: GET /models (Bearer key), one unpaged list of id, created and owned_by.

The list says nothing else: no display name, no context window, no capabilities, not even what
kind of model a row is. So the chat/embedding split goes by the documented id patterns of
MODEL_FAMILIES below, names are the ids, context is null and capabilities are empty (nothing is
guessed). Embedding rows take their dimensions from curated/embedding_models.yaml.
"""

from __future__ import annotations

import re
from typing import Any

from config import Settings

from ..embedding_models import EmbeddingModels
from .base import Source, SourceContext
from .hosted import BearerModelListSource
from .rows import BadRow, Normalised, deduplicated, released_at

PROVIDER = "OpenAI"

# What each model family is, by its id (fine-tuned ids "ft:<base>:<org>:..." go by their base).
# The first pattern that matches decides; an id no pattern matches is left out, since nothing
# says it can chat. Families from platform.openai.com/docs/models and the API reference pages of
# each endpoint (checked 2026-11); the recorded list is tests/fixtures/providers/openai_v1-models_2.json.
MODEL_FAMILIES: tuple[tuple[re.Pattern, str | None, str], ...] = tuple(
    (re.compile(pattern), kind, why)
    for pattern, kind, why in (
        (r"^text-embedding-", "embedding", "the Embeddings API (text-embedding-3-small/-large, -ada-002)"),
        (r"^(dall-e|gpt-image|chatgpt-image)", None, "image generation: the Images API"),
        (r"^sora", None, "video generation: the Videos API"),
        (r"^(whisper|tts-)|transcribe|-tts($|-)", None, "speech to text or text to speech: the Audio API"),
        (r"realtime", None, "the Realtime API (speech over WebRTC/WebSocket), not a text chat"),
        (r"(^|-)audio", None, "audio in and out (gpt-audio, gpt-4o-audio-preview): built for speech"),
        (r"moderation", None, "the Moderations API: classifies, does not chat"),
        (r"deep-research", None, "Responses API only, and every request needs a data-source tool"),
        (r"^(davinci|babbage)-002$|-instruct", None, "legacy Completions API only (no chat messages)"),
        # Chat Completions and/or the Responses API: gpt-3.5 to gpt-5.x (search, codex, pro and
        # chat-latest variants included), chatgpt-4o-latest, codex-mini, the o-series.
        (r"^(gpt-|chatgpt-|codex-|o\d)", "chat", "text chat"),
    )
)


def family_kind(model_id: str) -> str | None:
    """ "chat", "embedding" or None (left out) for an OpenAI model id."""
    base = model_id.split(":")[1] if model_id.startswith("ft:") else model_id
    for pattern, kind, _ in MODEL_FAMILIES:
        if pattern.search(base.lower()):
            return kind
    return None


def normalise_openai_models(records: list, embedding_models: EmbeddingModels) -> tuple[Normalised, Normalised]:
    """OpenAI /models records → chat rows and embedding rows (by MODEL_FAMILIES)."""
    chat: list[dict] = []
    embeddings: list[dict] = []
    skipped = 0
    for record in records:
        try:
            model_id = _model_id(record)
        except BadRow:
            skipped += 1
            continue
        kind = family_kind(model_id)
        row = {"id": model_id, "name": model_id, "provider": PROVIDER, "context": None}
        released = released_at(record.get("created"))
        if released:
            row["released_at"] = released
        if kind == "chat":
            chat.append({**row, "capabilities": [], "is_free": False})
        elif kind == "embedding":
            known = embedding_models.find("openai", model_id)
            embeddings.append({**row, "dimensions": known.dimensions if known else None, "is_free": False})
    return deduplicated(chat, skipped), deduplicated(embeddings, 0)


def _model_id(record: Any) -> str:
    if not isinstance(record, dict):
        raise BadRow
    model_id = record.get("id")
    if not isinstance(model_id, str) or not model_id.strip():
        raise BadRow
    return model_id


class OpenAISource(BearerModelListSource):
    """api.openai.com (or OPENAI_BASE_URL): chat and embedding models from one list call."""

    kind = "openai"
    upstream = "OpenAI"

    def normalise(self, records: list) -> tuple[Normalised, Normalised]:
        return normalise_openai_models(records, self._embedding_models)


def sources(settings: Settings, context: SourceContext) -> list[Source]:
    """OpenAI, when OPENAI_API_KEY is set; nothing otherwise."""
    if not settings.openai_api_key:
        return []
    return [
        OpenAISource(
            settings, context.http, settings.openai_base_url, settings.openai_api_key, context.embedding_models
        )
    ]
