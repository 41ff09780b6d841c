"""The read side: which snapshot answers each catalog now, and the status report."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from datetime import datetime, timezone

from flask import Flask, current_app

from config import Settings

from .curated import load_curated
from .embedding_models import EmbeddingModels, load_embedding_models
from .filters import FilteredAnswers
from .lifecycle import DatedAnswers, LifecyclePolicy
from .logs import mask_secrets
from .refresh import Refresher, RefreshRequests
from .registry import Registry
from .snapshot import Snapshot, curated_snapshot, unreachable_snapshot
from .sources import configured_sources
from .sources.base import CatalogSpec, Source, SourceContext
from .sources.http import HttpClient
from .status import RefreshStatus
from .redis_clients import redis_store
from .store import ProcessStore


@dataclasses.dataclass
class CatalogService:
    """Everything the service holds: settings, registry, store, refresher, and the answers
    that serve when no live data does."""

    settings: Settings
    registry: Registry
    store: ProcessStore
    refresher: Refresher
    filtered: FilteredAnswers
    refresh_requests: RefreshRequests
    # By catalog name: the answer while the source is disabled, and while it has no live data.
    when_disabled: Mapping[str, Snapshot]
    when_no_live_data: Mapping[str, Snapshot]
    # The embedding-model facts (model_key, dimensions) for the compatibility check.
    embedding_models: EmbeddingModels | None = None

    def snapshot(self, name: str) -> Snapshot:
        """The answer for one catalog now; never touches an upstream."""
        if not self.registry.source_of(name).enabled:
            return self.when_disabled[name]
        # A live snapshot is served however old it is: stale live data beats curated data.
        return self.store.read(name) or self.when_no_live_data[name]

    def status_report(self, read_statuses: bool = True) -> dict[str, dict]:
        """Per catalog: what is served, how old it is, and how refreshing its source goes."""
        now = time.time()
        statuses = self.store.read_statuses(tuple(self.registry.sources)) if read_statuses else {}
        report = {}
        for name in self.registry.catalogs:
            source = self.registry.source_of(name)
            snapshot = self.snapshot(name)
            status = statuses.get(source.name) or RefreshStatus(source.name)
            fetched_at = snapshot.fetched_at
            last_error = status.last_error
            report[name] = {
                "source": snapshot.source,
                "refreshed_by": source.name,
                "rows": snapshot.rows,
                "fetched_at": _iso(fetched_at),
                # Never negative, even when a clock jumped back.
                "age_seconds": round(max(0.0, now - fetched_at), 1) if fetched_at else None,
                "last_attempt": _iso(status.last_attempt),
                "last_success": _iso(status.last_success),
                "last_error": mask_secrets(last_error, self.settings.secrets) if last_error else None,
                "consecutive_failures": status.consecutive_failures,
                "skipped_rows": status.skipped_rows,
                "next_run": _iso(status.next_attempt_at) if source.enabled else None,
            }
        return report


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def _when_disabled(catalog: CatalogSpec, source: Source) -> Snapshot:
    if catalog.curated_rows is not None:
        return curated_snapshot(catalog, "curated")
    return unreachable_snapshot(catalog, source.disabled_reason or "not configured")


def _when_no_live_data(catalog: CatalogSpec, source: Source) -> Snapshot:
    if catalog.curated_rows is not None:
        return curated_snapshot(catalog, "curated_fallback")
    return unreachable_snapshot(catalog, f"{source.upstream} has not been polled yet")


def build_service(settings: Settings) -> CatalogService:
    """Load the curated lists, declare the sources and set up the store; connects to nothing yet."""
    curated = load_curated(settings.curated_dir)
    http = HttpClient(settings.upstream_timeout_seconds, settings.upstream_max_bytes)
    embedding_models = load_embedding_models(settings.curated_dir)
    context = SourceContext(http=http, curated=curated, embedding_models=embedding_models)
    registry = Registry(configured_sources(settings, context))
    if settings.redis_url:
        store: ProcessStore = redis_store(settings)
    else:
        store = ProcessStore()
    refresher = Refresher(settings, store, registry)
    sources = {name: registry.source_of(name) for name in registry.catalogs}
    policy = LifecyclePolicy.from_settings(settings)
    return CatalogService(
        settings=settings,
        registry=registry,
        store=store,
        refresher=refresher,
        filtered=FilteredAnswers(),
        refresh_requests=RefreshRequests(refresher, settings.refresh_request_seconds),
        # Curated rows carry the lifecycle fields too (deprecated goes by the date): re-dated as time passes.
        when_disabled=DatedAnswers(
            {name: _when_disabled(spec, sources[name]) for name, spec in registry.catalogs.items()}, policy
        ),
        when_no_live_data=DatedAnswers(
            {name: _when_no_live_data(spec, sources[name]) for name, spec in registry.catalogs.items()}, policy
        ),
        embedding_models=embedding_models,
    )


def init_app(app: Flask, settings: Settings) -> None:
    """Attach the service to the app."""
    app.extensions["catalog_service"] = build_service(settings)


def get_service() -> CatalogService:
    """The catalog service of the current app."""
    return current_app.extensions["catalog_service"]
