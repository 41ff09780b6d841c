"""Mistral: GET /models (Bearer key), one unpaged list.

Every alias comes back as a row of its own, with the same `name` (the model it points to):
"mistral-large-latest" has name "mistral-large-2512". Rows are grouped by that name and each
model is listed once, under the row whose id is that name (the pinned, dated id where Mistral
has one); the `aliases` field is not trusted for this, since some aliases are missing from it.
An id that points to two models at once (the recording has voxtral-mini-latest twice) stays
with the model whose own row comes first.

capabilities.completion_chat decides the chat list (OCR, moderation and classification models
have it false); function_calling → tools, vision → vision. Embedding models have no capability
of their own: they are the non-chat models with "embed" in the id. `deprecation` → expires_on.
"""

from __future__ import annotations

from typing import Any

from config import Settings

from ..embedding_models import EmbeddingModels
from .base import Source, SourceContext
from .hosted import BearerModelListSource
from .rows import Normalised, deduplicated, iso_date, positive_int

PROVIDER = "Mistral"

# Mistral's capability flags in the chat rows' vocabulary.
CAPABILITY_FLAGS = {"function_calling": "tools", "vision": "vision"}

# Chat-flagged models that are not chat models, by id: docs.mistral.ai/models/voxtral-mini-transcribe-25-07
# ("optimized for transcription purposes only"; served on /v1/audio/transcriptions).
NOT_CHAT_MARKERS = ("transcribe",)


def normalise_mistral_models(records: list, embedding_models: EmbeddingModels) -> tuple[Normalised, Normalised]:
    """Mistral /models records → one chat or embedding row per model (aliases folded in)."""
    chat, embeddings, skipped = [], [], 0
    for record in _one_per_model(records):
        if record is None:
            skipped += 1
            continue
        capabilities = record.get("capabilities")
        capabilities = capabilities if isinstance(capabilities, dict) else {}
        row = {
            "id": record["id"],
            "name": record["id"],  # Mistral has no display name: its `name` is the model id
            "provider": PROVIDER,
            "context": positive_int(record.get("max_context_length")),
        }
        if capabilities.get("completion_chat") is True:
            if any(marker in row["id"] for marker in NOT_CHAT_MARKERS):
                continue
            row["capabilities"] = sorted(
                {name for flag, name in CAPABILITY_FLAGS.items() if capabilities.get(flag) is True}
            )
            row["is_free"] = False
            expires_on = _date(record.get("deprecation"))
            if expires_on:
                row["expires_on"] = expires_on
            chat.append(row)
        elif "embed" in row["id"]:
            known = embedding_models.find("mistral", row["id"])
            embeddings.append({**row, "dimensions": known.dimensions if known else None, "is_free": False})
    return deduplicated(chat, skipped), deduplicated(embeddings, 0)


def _one_per_model(records: list) -> list[dict | None]:
    """One record per model (by `name`), the one whose id is that name first; None for each bad record."""
    groups: dict[str, list[dict]] = {}
    bad: list[None] = []
    claimed: set[str] = set()
    for record in records:
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"].strip():
            bad.append(None)
            continue
        model: str = record["name"] if isinstance(record.get("name"), str) and record["name"].strip() else record["id"]
        groups.setdefault(model, []).append(record)
    chosen: list[dict | None] = []
    for model, members in groups.items():
        # The model's own row first, then its aliases in the order sent; an id already listed
        # for an earlier model is not listed again.
        candidates = sorted(members, key=lambda record: record["id"] != model)
        own = next((record for record in candidates if record["id"] not in claimed), None)
        claimed.update(record["id"] for record in members)
        if own is not None:
            chosen.append(own)
    return chosen + bad


def _date(value: Any) -> str | None:
    """YYYY-MM-DD from an ISO 8601 timestamp such as "2026-01-31T12:00:00Z"."""
    return iso_date(value[:10]) if isinstance(value, str) else None


class MistralSource(BearerModelListSource):
    """api.mistral.ai (or MISTRAL_BASE_URL): chat and embedding models from one list call."""

    kind = "mistral"
    upstream = "Mistral"

    def normalise(self, records: list) -> tuple[Normalised, Normalised]:
        return normalise_mistral_models(records, self._embedding_models)


def sources(settings: Settings, context: SourceContext) -> list[Source]:
    """Mistral, when MISTRAL_API_KEY is set; nothing otherwise."""
    if not settings.mistral_api_key:
        return []
    return [
        MistralSource(
            settings, context.http, settings.mistral_base_url, settings.mistral_api_key, context.embedding_models
        )
    ]
