"""The read side: which snapshot answers each catalog now, and the status report."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from flask import Flask, current_app

from config import Settings

from .curated import load_curated
from .embedding_models import EmbeddingModels, load_embedding_models
from .filters import FilteredAnswers
from .lifecycle import DatedAnswers, LifecyclePolicy
from .logs import mask_secrets
from .redis_clients import redis_store
from .refresh import Refresher, RefreshRequests
from .registry import Registry
from .snapshot import Snapshot, curated_snapshot, unreachable_snapshot
from .sources import configured_sources
from .sources.base import CatalogSpec, Source, SourceContext
from .sources.http import HttpClient
from .status import RefreshStatus
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
    # The combined embedding answer and the ETags of the parts it was built from.
    _all_embeddings: tuple[tuple[str, ...], Snapshot] | None = None

    @property
    def embedding_models(self) -> EmbeddingModels | None:
        """The embedding-model facts (model_key, dimensions), as the refresher applies them."""
        return self.refresher.embedding_models

    def snapshot(self, name: str) -> Snapshot:
        """The answer for one catalog now; never touches an upstream."""
        if not self.registry.source_of(name).enabled:
            return self.when_disabled[name]
        # A live snapshot is served however old it is: stale live data beats curated data.
        return self.store.read(name) or self.when_no_live_data[name]

    def all_embeddings(self) -> Snapshot:
        """Every embedding model of every catalog, each row naming its source (the path segment
        of its catalog): the Create Notebook dialog in one answer. Rebuilt when a part changes."""
        parts = [(catalog, self.snapshot(catalog.name)) for catalog in self.registry.catalogs.values()
                 if catalog.kind == "embedding"]  # fmt: skip
        key = tuple(snapshot.etag for _, snapshot in parts)
        cached = self._all_embeddings
        if cached is not None and cached[0] == key:
            return cached[1]
        models: list[dict] = []
        removed: list[dict] = []
        sources = {}
        for catalog, snapshot in parts:
            segment = catalog.segment
            data = snapshot.data
            models += [{**row, "source": segment} for row in data["models"]]
            # Tombstones too, for include_removed=true, as each part's own answer lists them.
            removed += [{**row, "source": segment} for row in snapshot.removed_rows]
            # What each part serves whole (`total` of the answer counts the rows sent).
            sources[segment] = {key: data[key] for key in ("source", "total", "error") if key in data}
        combined = Snapshot.from_data({"models": models, "sources": sources, "total": len(models)}, removed=removed)
        self._all_embeddings = (key, combined)
        return combined

    def sources_report(self) -> list[dict]:
        """Every configured source: its kind, its catalogs (path, `source`, rows, age), its last error."""
        report = self.status_report()
        listed = []
        for source in self.registry.sources.values():
            catalogs = [
                {"name": catalog.name, "kind": catalog.kind, "path": catalog.path,
                 "source": report[catalog.name]["source"], "total": report[catalog.name]["rows"],
                 "age_seconds": report[catalog.name]["age_seconds"]}
                for catalog in source.catalogs
            ]  # fmt: skip
            first = report[source.catalogs[0].name]
            listed.append({
                "name": source.name, "kind": source.kind, "enabled": source.enabled,
                "catalogs": catalogs, "last_error": first["last_error"], "last_success": first["last_success"],
            })  # fmt: skip
        return listed

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
                # A shrunken answer not published yet (see SHRINK_CONFIRM_SECONDS).
                "held_back": {"rows": status.suspect_rows, "since": _iso(status.shrink_held_since)}
                if status.shrink_held_since is not None
                else None,
            }
        return report


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _when_disabled(catalog: CatalogSpec, source: Source) -> Snapshot:
    if catalog.curated_rows is not None:
        return curated_snapshot(catalog, "curated")
    return unreachable_snapshot(catalog, source.disabled_reason or "not configured")


def _when_no_live_data(catalog: CatalogSpec, source: Source) -> Snapshot:
    if catalog.curated_rows is not None:
        return curated_snapshot(catalog, "curated_fallback")
    return unreachable_snapshot(catalog, f"{source.upstream} has not been polled yet")


def build_service(settings: Settings) -> CatalogService:
    """Load the curated data, declare the sources and set up the store; connects to nothing yet."""
    curated = load_curated(settings.curated_dir)
    http = HttpClient(settings.upstream_timeout_seconds, settings.upstream_max_bytes)
    embedding_models = load_embedding_models(settings.curated_dir)
    context = SourceContext(http=http, curated=curated, embedding_models=embedding_models)
    registry = Registry(configured_sources(settings, context))
    if settings.redis_url:
        store: ProcessStore = redis_store(settings)
    else:
        store = ProcessStore()
    refresher = Refresher(settings, store, registry, embedding_models=embedding_models)
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
    )


def init_app(app: Flask, settings: Settings) -> None:
    """Attach the service to the app."""
    app.extensions["catalog_service"] = build_service(settings)


def get_service() -> CatalogService:
    """The catalog service of the current app."""
    return current_app.extensions["catalog_service"]
