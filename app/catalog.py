"""The read side: which snapshot answers each endpoint, per the serving table in DESIGN.md."""

from __future__ import annotations

import dataclasses

from flask import Flask, current_app

from config import Settings

from .curated import CuratedCatalog, load_curated
from .refresh import Refresher
from .snapshot import EMBEDDINGS, LLMS, OLLAMA, Snapshot, llm_snapshot, ollama_unreachable_snapshot
from .store import ProcessStore, RedisStore

OLLAMA_NOT_POLLED = "Ollama has not been polled yet"


@dataclasses.dataclass
class Catalog:
    """Everything the service holds: settings, store, refresher and the curated answers."""

    settings: Settings
    store: ProcessStore
    refresher: Refresher
    curated: dict[str, Snapshot]
    fallback: dict[str, Snapshot]
    ollama_not_polled: Snapshot

    def snapshot(self, catalog: str) -> Snapshot:
        """The answer for one endpoint now; never touches an upstream."""
        if catalog == OLLAMA:
            return self.store.read(OLLAMA) or self.ollama_not_polled
        if not self.settings.openrouter_api_key:
            return self.curated[catalog]
        # A live snapshot is served however old it is: stale live data beats curated data.
        return self.store.read(catalog) or self.fallback[catalog]


def build_catalog(settings: Settings) -> Catalog:
    """Load the curated lists and set up the store; connects to nothing yet."""
    curated = load_curated(settings.curated_dir)
    if settings.redis_url:
        store: ProcessStore = RedisStore(
            settings.redis_url,
            key_prefix=settings.redis_key_prefix,
            check_seconds=settings.snapshot_check_seconds,
            timeout_seconds=settings.redis_timeout_seconds,
        )
    else:
        store = ProcessStore()
    return Catalog(
        settings=settings,
        store=store,
        refresher=Refresher(settings, store, curated),
        curated=_curated_snapshots(curated, "curated"),
        fallback=_curated_snapshots(curated, "curated_fallback"),
        ollama_not_polled=ollama_unreachable_snapshot(OLLAMA_NOT_POLLED),
    )


def _curated_snapshots(curated: CuratedCatalog, source: str) -> dict[str, Snapshot]:
    return {
        LLMS: llm_snapshot(list(curated.llms), source),
        EMBEDDINGS: llm_snapshot(list(curated.embeddings), source),
    }


def init_app(app: Flask, settings: Settings) -> None:
    """Attach the catalog to the app."""
    app.extensions["catalog"] = build_catalog(settings)


def get_catalog() -> Catalog:
    """The catalog of the current app."""
    return current_app.extensions["catalog"]
