"""Google Gemini API: GET /models (key in x-goog-api-key, never in the URL), paged by nextPageToken.

A record's supportedGenerationMethods says what it does: generateContent → chat; embedContent or
embedText → embedding; anything else (predict: Imagen, predictLongRunning: Veo, generateAnswer:
AQA, bidiGenerateContent only: Live, generateMessage/generateText: PaLM) is left out. The methods
do not say what a generateContent model outputs, so the few families that answer only with
audio or images are left out by the id patterns of NOT_TEXT_CHAT.

Ids are the record's `name` without "models/": what the SDKs and the OpenAI-compatible endpoint
take as `model`, and what the REST call puts after it (POST /v1beta/models/{id}:generateContent).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from config import Settings

from ..embedding_models import EmbeddingModels
from .base import Source, SourceContext
from .hosted import MAX_PAGES, HostedSource, Page, follow_pages, records_list
from .http import HttpClient
from .rows import BadRow, Normalised, deduplicated, positive_int

PROVIDER = "Google"
NAME_PREFIX = "models/"
# The documented maximum page size (default 50, at most 1000): one page holds every model.
PAGE_SIZE = 1000

CHAT_METHODS = frozenset({"generateContent"})
EMBEDDING_METHODS = frozenset({"embedContent", "embedText"})

# generateContent models whose answers are not text, by id (ai.google.dev/gemini-api/docs/models,
# .../speech-generation, .../music-generation, .../image-generation; checked 2026-11).
NOT_TEXT_CHAT: tuple[tuple[re.Pattern, str], ...] = tuple(
    (re.compile(pattern), why)
    for pattern, why in (
        (r"-tts($|-)", "text to speech: text in, audio only out"),
        (r"^lyria-", "Lyria music generation: the answer is an MP3"),
        # Gemini image models ("Nano Banana") answer with images, text only alongside them.
        (r"-image($|-)|^nano-banana", "image generation and editing"),
    )
)


def gemini_page(document: Any) -> Page:
    """One page's records and the next page's token (None when nextPageToken is absent or empty)."""
    records = records_list(document, "models")
    token = document.get("nextPageToken")
    return records, token if isinstance(token, str) and token else None


def model_id(name: Any) -> str:
    """The id from a record's `name` ("models/gemini-2.5-flash" → "gemini-2.5-flash")."""
    if not isinstance(name, str) or not name.startswith(NAME_PREFIX) or not name[len(NAME_PREFIX) :].strip():
        raise BadRow
    return name[len(NAME_PREFIX) :]


def normalise_gemini_models(records: list, embedding_models: EmbeddingModels) -> tuple[Normalised, Normalised]:
    """Gemini /models records → chat rows and embedding rows, by supportedGenerationMethods."""
    chat, embeddings, skipped = [], [], 0
    for record in records:
        try:
            row = _base_row(record)
        except BadRow:
            skipped += 1
            continue
        methods = record.get("supportedGenerationMethods")
        methods = {m for m in methods if isinstance(m, str)} if isinstance(methods, list) else set()
        if methods & CHAT_METHODS:
            if any(pattern.search(row["id"]) for pattern, _ in NOT_TEXT_CHAT):
                continue
            row["capabilities"] = ["reasoning"] if record.get("thinking") is True else []
            row["is_free"] = False
            max_output = positive_int(record.get("outputTokenLimit"))
            if max_output:
                row["max_output"] = max_output
            chat.append(row)
        elif methods & EMBEDDING_METHODS:
            known = embedding_models.find("gemini", row["id"])
            row["dimensions"] = known.dimensions if known else None
            row["is_free"] = False
            embeddings.append(row)
    return deduplicated(chat, skipped), deduplicated(embeddings, 0)


def _base_row(record: Any) -> dict:
    if not isinstance(record, dict):
        raise BadRow
    model = model_id(record.get("name"))
    name = record.get("displayName")
    return {
        "id": model,
        "name": name.strip() if isinstance(name, str) and name.strip() else model,
        "provider": PROVIDER,
        "context": positive_int(record.get("inputTokenLimit")),
    }


class GeminiSource(HostedSource):
    """generativelanguage.googleapis.com (or GEMINI_BASE_URL): chat and embedding models, all pages."""

    kind = "gemini"
    upstream = "Gemini API"
    has_embeddings = True
    calls_per_poll = MAX_PAGES

    def __init__(self, settings: Settings, http: HttpClient, embedding_models: EmbeddingModels) -> None:
        super().__init__(settings, http, settings.gemini_base_url, settings.gemini_api_key or "")
        self._embedding_models = embedding_models

    def auth_headers(self) -> dict[str, str]:
        # The header, not ?key=: a URL ends up in access logs and error messages.
        return {"x-goog-api-key": self._api_key}

    def list_records(self) -> list:
        return follow_pages(self._page)

    def _page(self, token: str | None) -> Page:
        query = {"pageSize": PAGE_SIZE} if token is None else {"pageSize": PAGE_SIZE, "pageToken": token}
        return gemini_page(self.get(f"/models?{urlencode(query)}"))

    def normalise(self, records: list) -> tuple[Normalised, Normalised]:
        return normalise_gemini_models(records, self._embedding_models)


def sources(settings: Settings, context: SourceContext) -> list[Source]:
    """Gemini, when GEMINI_API_KEY is set; nothing otherwise."""
    if not settings.gemini_api_key:
        return []
    return [GeminiSource(settings, context.http, context.embedding_models)]
