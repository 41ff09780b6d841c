"""What a source is: one upstream poll, and the catalogs it publishes.

A source module (openrouter.py, ollama.py, ...) defines a Source subclass that owns its calls,
its normalisers and its acceptance rules, and a `sources(settings, context)` function that
declares the configured instances. Everything else (routes, jobs, status, CLI choices) is
derived from those declarations by the registry.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import TYPE_CHECKING

from ..status import RefreshStatus
from .http import HttpClient, UpstreamError
from .rows import InvalidDocument

if TYPE_CHECKING:
    from ..curated import CuratedCatalog
    from ..embedding_models import EmbeddingModels

API_PREFIX = "/api/models"


class RejectedCatalog(Exception):
    """A well-formed answer that must not replace the last good snapshot."""


@dataclasses.dataclass(frozen=True)
class CatalogSpec:
    """One list the API serves, declared once by the source that publishes it."""

    name: str  # snapshot, status, metric-label name: "openrouter", "ollama_embeddings", "studio"
    path: str  # the full URL path: "/api/models/openrouter/embeddings"
    kind: str  # "chat" or "embedding": which row shape the list holds
    live_label: str  # the `source` value of live rows: "api", "ollama"
    unreachable_label: str = "unreachable"  # the `source` value when it cannot be polled
    # Rows served as `curated` (source disabled) or `curated_fallback` (no live data yet);
    # None: such a catalog answers `unreachable` with an error instead.
    curated_rows: tuple[dict, ...] | None = None
    # Whether a failed poll replaces the last live rows with `unreachable` (a local server: what
    # is pulled there may have changed) or keeps serving them however old (a hosted catalog).
    failure_replaces_rows: bool = False


def chat_catalog(name: str, segment: str, **fields) -> CatalogSpec:
    """A chat-model list at /api/models/<segment>."""
    return CatalogSpec(name=name, path=f"{API_PREFIX}/{segment}", kind="chat", **fields)


def embedding_catalog(name: str, segment: str, **fields) -> CatalogSpec:
    """An embedding-model list at /api/models/<segment>/embeddings."""
    return CatalogSpec(name=name, path=f"{API_PREFIX}/{segment}/embeddings", kind="embedding", **fields)


@dataclasses.dataclass(frozen=True)
class Fetched:
    """A poll's accepted rows, by catalog name (the main list first), and how many upstream
    rows were skipped."""

    rows: dict[str, list[dict]]
    skipped: int = 0

    @property
    def main_rows(self) -> int:
        """The row count of the main list: what the status, the logs and the shrink guard count."""
        return len(next(iter(self.rows.values()), []))


@dataclasses.dataclass(frozen=True)
class SourceContext:
    """What a source may use when it is built: one HTTP client for every upstream, the curated data,
    the embedding-model facts (curated/embedding_models.yaml)."""

    http: HttpClient
    curated: CuratedCatalog
    embedding_models: EmbeddingModels


class Source(abc.ABC):
    """One upstream poll: the refresh job, lock and status of the catalogs it publishes."""

    name: str  # the refresh job's name: the --source choice, the lock and status key
    kind: str  # what it is: "openrouter", "ollama", "openai", "lmstudio", ...
    label: str  # how messages name it: "OpenRouter at openrouter.ai"
    upstream: str  # the upstream's plain name in messages: "OpenRouter"
    interval_seconds: float
    catalogs: tuple[CatalogSpec, ...]
    # Why it is not polled (for example a missing key), None when it is.
    disabled_reason: str | None = None
    # How long a poll may take at most, in upstream deadlines (a poll may make several calls).
    calls_per_poll: int = 1

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None

    @abc.abstractmethod
    def fetch(self, previous: RefreshStatus) -> Fetched:
        """Call the upstream, normalise and accept; raises UpstreamError, InvalidDocument or RejectedCatalog."""

    def failure_message(self, exc: Exception) -> str:
        """A short message for people about a failed poll."""
        if isinstance(exc, InvalidDocument):
            return f"{self.upstream} sent an unexpected answer: {exc}"
        return str(exc)


FETCH_ERRORS = (UpstreamError, InvalidDocument, RejectedCatalog)
