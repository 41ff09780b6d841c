"""The read side: which snapshot answers each endpoint, per the serving table in DESIGN.md."""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone

from flask import Flask, current_app

from config import Settings

from .curated import CuratedCatalog, load_curated
from .filters import FilteredAnswers
from .logs import mask_secrets
from .refresh import Refresher, RefreshQueue
from .snapshot import (
    CATALOGS,
    EMBEDDINGS,
    LLMS,
    OLLAMA,
    OLLAMA_EMBEDDINGS,
    Snapshot,
    llm_snapshot,
    ollama_unreachable_snapshot,
)
from .redis_clients import redis_store
from .store import ProcessStore

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
    filtered: FilteredAnswers
    refresh_queue: RefreshQueue

    def snapshot(self, catalog: str) -> Snapshot:
        """The answer for one endpoint now; never touches an upstream."""
        if catalog in (OLLAMA, OLLAMA_EMBEDDINGS):
            return self.store.read(catalog) or self.ollama_not_polled
        if not self.settings.openrouter_api_key:
            return self.curated[catalog]
        # A live snapshot is served however old it is: stale live data beats curated data.
        return self.store.read(catalog) or self.fallback[catalog]

    def status_report(self, read_statuses: bool = True) -> dict[str, dict]:
        """Per catalog: what is served, how old it is, and how refreshing it goes."""
        now = time.time()
        statuses = self.store.read_statuses(CATALOGS) if read_statuses else {}
        report = {}
        for name in CATALOGS:
            snapshot = self.snapshot(name)
            status = statuses.get(name) or {}
            fetched_at = snapshot.fetched_at
            last_error = status.get("last_error")
            report[name] = {
                "source": snapshot.source,
                "rows": snapshot.rows,
                "fetched_at": _iso(fetched_at),
                # Never negative, even when a clock jumped back.
                "age_seconds": round(max(0.0, now - fetched_at), 1) if fetched_at else None,
                "last_attempt": _iso(status.get("last_attempt")),
                "last_success": _iso(status.get("last_success")),
                "last_error": mask_secrets(last_error, self.settings.secrets) if last_error else None,
                "consecutive_failures": int(status.get("consecutive_failures") or 0),
                "skipped_rows": status.get("skipped_rows"),
                "next_run": _iso(status.get("next_attempt_at")) if self.refresher.enabled(name) else None,
            }
        return report


def _iso(timestamp) -> str | None:
    if not isinstance(timestamp, (int, float)):
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def build_catalog(settings: Settings) -> Catalog:
    """Load the curated lists and set up the store; connects to nothing yet."""
    curated = load_curated(settings.curated_dir)
    if settings.redis_url:
        store: ProcessStore = redis_store(settings)
    else:
        store = ProcessStore()
    refresher = Refresher(settings, store, curated)
    return Catalog(
        settings=settings,
        store=store,
        refresher=refresher,
        curated=_curated_snapshots(curated, "curated"),
        fallback=_curated_snapshots(curated, "curated_fallback"),
        ollama_not_polled=ollama_unreachable_snapshot(OLLAMA_NOT_POLLED),
        filtered=FilteredAnswers(),
        refresh_queue=RefreshQueue(refresher),
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
