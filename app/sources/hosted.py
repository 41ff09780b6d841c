"""What the hosted providers (OpenAI, Anthropic, Gemini, Mistral) share: a key, one list call
(paged for some), a chat catalog and maybe an embedding catalog, served however old.

Each provider module subclasses HostedSource with its headers, its paging and its normaliser.
A source is declared only when its key is set: an unconfigured provider has no catalog at all.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from config import Settings

from ..embedding_models import EmbeddingModels
from ..status import RefreshStatus
from .base import CatalogSpec, Fetched, RejectedCatalog, Source, chat_catalog, embedding_catalog
from .http import HttpClient, display_host
from .rows import InvalidDocument, Normalised

# A poll follows at most this many pages; a provider sending more is taken to be looping.
MAX_PAGES = 10

# What a page fetcher returns: the page's records and the cursor of the next page (None: last page).
Page = tuple[list, str | None]


def follow_pages(fetch_page: Callable[[str | None], Page]) -> list:
    """Every record of a paged list, from the first page (cursor None) to the one without a cursor."""
    records: list = []
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_PAGES):
        page, cursor = fetch_page(cursor)
        records.extend(page)
        if cursor is None:
            return records
        if cursor in seen:
            raise InvalidDocument("the same page cursor came back twice (a page loop)")
        seen.add(cursor)
    raise InvalidDocument(f"the model list goes on for more than {MAX_PAGES} pages")


def records_list(document: Any, member: str) -> list:
    """The list of model records under `member` of a JSON object, or InvalidDocument."""
    if not isinstance(document, dict) or not isinstance(document.get(member), list):
        raise InvalidDocument(f'expected a JSON object with a "{member}" list')
    return document[member]


class HostedSource(Source):
    """One hosted provider: its list call with its key, a chat catalog and an optional embedding one."""

    kind: str  # also the source name and the URL segment: "openai"
    upstream: str  # "OpenAI"
    has_embeddings: bool = False

    def __init__(self, settings: Settings, http: HttpClient, base_url: str, api_key: str) -> None:
        self.name = self.kind
        self.label = f"{self.upstream} at {display_host(base_url)}"
        self.interval_seconds = settings.provider_refresh_seconds
        self.catalogs = self._declare_catalogs()
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key

    def _declare_catalogs(self) -> tuple[CatalogSpec, ...]:
        # Hosted lists: live data served however old, `unreachable` only until the first success.
        chat = chat_catalog(self.kind, self.kind, live_label="api")
        if not self.has_embeddings:
            return (chat,)
        return chat, embedding_catalog(f"{self.kind}_embeddings", self.kind, live_label="api")

    @abc.abstractmethod
    def auth_headers(self) -> dict[str, str]:
        """The headers that carry the key (never the URL)."""

    @abc.abstractmethod
    def list_records(self) -> list:
        """Every model record of the provider's list, all pages."""

    @abc.abstractmethod
    def normalise(self, records: list) -> tuple[Normalised, Normalised | None]:
        """Chat rows and, where the source has that catalog, embedding rows."""

    def get(self, path_and_query: str) -> Any:
        """One GET under the base URL with the key headers; no redirects, so the key stays on this host."""
        return self._http.request_json("GET", self._base_url + path_and_query, self.label, headers=self.auth_headers())

    def fetch(self, previous: RefreshStatus) -> Fetched:
        chat, embeddings = self.normalise(self.list_records())
        if not chat.rows:
            # A provider that lists no chat model at all is answering wrongly, not changing its offer.
            raise RejectedCatalog(f"the answer had no usable models ({chat.skipped} malformed)")
        rows = {self.kind: chat.rows}
        skipped = chat.skipped
        if self.has_embeddings:
            rows[f"{self.kind}_embeddings"] = embeddings.rows if embeddings else []
            skipped += embeddings.skipped if embeddings else 0
        return Fetched(rows, skipped)


class BearerModelListSource(HostedSource):
    """A provider whose catalog is one unpaged `GET /models` with a Bearer key, listing chat and
    embedding models together (OpenAI's shape, which Mistral follows)."""

    has_embeddings = True

    def __init__(
        self, settings: Settings, http: HttpClient, base_url: str, api_key: str, embedding_models: EmbeddingModels
    ) -> None:
        super().__init__(settings, http, base_url, api_key)
        self._embedding_models = embedding_models

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"}

    def list_records(self) -> list:
        return records_list(self.get("/models"), "data")
