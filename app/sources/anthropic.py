"""Anthropic: GET /models (x-api-key, anthropic-version), paged by has_more / last_id.

Every listed model is a Claude chat model; Anthropic lists no embedding models. Rows carry
display_name, and where the API sends them (newer answers) max_input_tokens → context,
max_tokens → max_output and the capabilities object; older answers have none of the three,
so context is null and capabilities empty there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from config import Settings

from .base import Source, SourceContext
from .hosted import MAX_PAGES, HostedSource, Page, follow_pages, records_list
from .http import HttpClient
from .rows import BadRow, InvalidDocument, Normalised, deduplicated, positive_int, released_at

PROVIDER = "Anthropic"
API_VERSION = "2023-06-01"
# The documented maximum page size (1-1000, default 20): one page holds every model.
PAGE_SIZE = 1000

# The API's capability keys (each {"supported": bool}) in the chat rows' vocabulary. Anthropic's
# list has no key for tool use or web search, so those are never claimed.
CAPABILITY_KEYS = {"image_input": "vision", "structured_outputs": "structured_outputs", "thinking": "reasoning"}


def anthropic_page(document: Any) -> Page:
    """One page's records and the cursor of the next one (None when has_more is false)."""
    records = records_list(document, "data")
    if document.get("has_more") is not True:
        return records, None
    last_id = document.get("last_id")
    if not isinstance(last_id, str) or not last_id:
        raise InvalidDocument('"has_more" is true but "last_id" is missing')
    return records, last_id


def normalise_anthropic_models(records: list) -> Normalised:
    """Anthropic /models records → chat rows."""
    rows, skipped = [], 0
    for record in records:
        try:
            rows.append(_row(record))
        except BadRow:
            skipped += 1
    return deduplicated(rows, skipped)


def _row(record: Any) -> dict:
    if not isinstance(record, dict):
        raise BadRow
    model_id, name = record.get("id"), record.get("display_name")
    if not isinstance(model_id, str) or not model_id.strip():
        raise BadRow
    row = {
        "id": model_id,
        "name": name.strip() if isinstance(name, str) and name.strip() else model_id,
        "provider": PROVIDER,
        "context": positive_int(record.get("max_input_tokens")),
        "capabilities": _capabilities(record.get("capabilities")),
        "is_free": False,
    }
    max_output = positive_int(record.get("max_tokens"))
    if max_output:
        row["max_output"] = max_output
    released = released_at(record.get("created_at"))
    if released:
        row["released_at"] = released
    return row


def _capabilities(capabilities: Any) -> list[str]:
    if not isinstance(capabilities, dict):
        return []
    found = set()
    for key, name in CAPABILITY_KEYS.items():
        support = capabilities.get(key)
        if isinstance(support, dict) and support.get("supported") is True:
            found.add(name)
    return sorted(found)


class AnthropicSource(HostedSource):
    """api.anthropic.com (or ANTHROPIC_BASE_URL): the Claude models, all pages."""

    kind = "anthropic"
    upstream = "Anthropic"
    calls_per_poll = MAX_PAGES

    def __init__(self, settings: Settings, http: HttpClient) -> None:
        super().__init__(settings, http, settings.anthropic_base_url, settings.anthropic_api_key or "")

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key, "anthropic-version": API_VERSION}

    def list_records(self) -> list:
        return follow_pages(self._page)

    def _page(self, after_id: str | None) -> Page:
        query = {"limit": PAGE_SIZE} if after_id is None else {"limit": PAGE_SIZE, "after_id": after_id}
        return anthropic_page(self.get(f"/models?{urlencode(query)}"))

    def normalise(self, records: list) -> tuple[Normalised, None]:
        return normalise_anthropic_models(records), None


def sources(settings: Settings, context: SourceContext) -> list[Source]:
    """Anthropic, when ANTHROPIC_API_KEY is set; nothing otherwise."""
    if not settings.anthropic_api_key:
        return []
    return [AnthropicSource(settings, context.http)]
