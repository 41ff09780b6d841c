"""The refresh jobs: fetch → normalise → validate → publish, one catalog at a time.

Any number of processes may run these jobs: the per-catalog lock and the freshness check in
the store make one upstream call per catalog per interval, whoever makes it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from config import Settings

from .curated import CuratedCatalog
from .logs import mask_secrets
from .normalise import (
    InvalidDocument,
    Normalised,
    OllamaModelInfo,
    needs_ollama_show,
    normalise_ollama_embedding_tags,
    normalise_ollama_tags,
    normalise_openrouter_embeddings,
    normalise_openrouter_models,
    ollama_entries,
    ollama_model_info,
)
from .snapshot import (
    CATALOGS,
    EMBEDDINGS,
    LLMS,
    OLLAMA,
    OLLAMA_EMBEDDINGS,
    Snapshot,
    llm_snapshot,
    ollama_snapshot,
    ollama_unreachable_snapshot,
)
from .store import ProcessStore, StoreUnavailable
from .upstream import HttpClient, OllamaClient, OpenRouterClient, UpstreamError, UpstreamRateLimited

log = logging.getLogger(__name__)

# A 429's Retry-After is honoured up to this many seconds, so a silly value cannot stop refreshes.
RATE_LIMIT_CAP_SECONDS = 3600.0
# Scheduler ticks are at most this far apart, so a failed fetch is retried before its interval ends.
MAX_TICK_SECONDS = 60.0

# The sources a person can ask to refresh (CLI --source, POST /refresh), and the jobs each runs.
REFRESH_SOURCES = {"openrouter": (LLMS,), "embeddings": (EMBEDDINGS,), "ollama": (OLLAMA,), "all": CATALOGS}

# Outcomes that mean the catalog was not refreshed when it should have been.
FAILED_OUTCOMES = frozenset({"failed", "rejected", "lost_lock", "store_unavailable"})
# Outcomes that made no upstream call and changed nothing: logged at DEBUG only.
IDLE_OUTCOMES = frozenset({"fresh", "locked", "disabled"})


class RejectedCatalog(Exception):
    """A well-formed answer that must not replace the last good snapshot."""


class ShrunkCatalog(RejectedCatalog):
    """Far fewer models than last time: more likely an upstream fault than a real change."""

    def __init__(self, before: int, rows: int) -> None:
        super().__init__(
            f"the catalog shrank from {before} to {rows} models; the last one stays "
            "(the same count twice in a row is accepted)"
        )
        self.rows = rows


@dataclasses.dataclass(frozen=True)
class RefreshResult:
    """What one run did, for logs, the CLI and tests."""

    catalog: str
    outcome: str  # published | failed | rejected | fresh | locked | disabled | lost_lock | store_unavailable | abandoned
    duration: float
    rows: int | None = None
    skipped: int | None = None
    message: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in FAILED_OUTCOMES

    def describe(self) -> str:
        """One line for people: catalog, outcome, rows, duration."""
        parts = [f"{self.catalog}: {self.outcome}"]
        if self.rows is not None:
            parts.append(f"{self.rows} rows ({self.skipped or 0} skipped)")
        parts.append(f"in {self.duration:.2f}s")
        if self.message:
            parts.append(f"- {self.message}")
        return " ".join(parts)


class Refresher:
    """Runs the refresh of each catalog against the configured upstreams and store."""

    def __init__(
        self,
        settings: Settings,
        store: ProcessStore,
        curated: CuratedCatalog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self._clock = clock
        self._dimensions = curated.embedding_dimensions()
        http = HttpClient(settings.upstream_timeout_seconds, settings.upstream_max_bytes)
        self._openrouter = (
            OpenRouterClient(http, settings.openrouter_base_url, settings.openrouter_api_key)
            if settings.openrouter_api_key
            else None
        )
        self._ollama = OllamaClient(http, settings.ollama_base_url)
        # /api/show answers by digest: a model's capabilities change only with its digest.
        self._show_cache: dict[str, OllamaModelInfo] = {}
        # Called with every result (metrics count them).
        self.observers: list[Callable[[RefreshResult], None]] = []
        # Set on shutdown: a run in progress publishes nothing; its lock expires by its TTL.
        self.stopping = threading.Event()

    def enabled(self, catalog: str) -> bool:
        """Whether this catalog has an upstream to poll (OpenRouter needs a key)."""
        return catalog == OLLAMA or self._openrouter is not None

    def interval(self, catalog: str) -> float:
        """Seconds between two upstream calls for this catalog."""
        if catalog == OLLAMA:
            return self.settings.ollama_refresh_seconds
        return self.settings.openrouter_refresh_seconds

    def tick(self, catalog: str) -> float:
        """Seconds between scheduler runs: the interval cut into equal steps of at most a minute."""
        interval = self.interval(catalog)
        return interval / math.ceil(interval / MAX_TICK_SECONDS)

    @property
    def lock_ttl(self) -> float:
        """Longer than any run: an Ollama poll makes a tags call and a bounded round of show calls."""
        return 3 * self.settings.upstream_timeout_seconds + 5

    def run_all(self, catalogs=CATALOGS, force: bool = False) -> list[RefreshResult]:
        """Run several catalogs one after the other."""
        return [self.run(catalog, force=force) for catalog in catalogs]

    def run(self, catalog: str, force: bool = False) -> RefreshResult:
        """One refresh of one catalog; `force` ignores freshness, never the lock."""
        began = time.monotonic()
        if not self.enabled(catalog):
            return self._finish(catalog, began, "disabled", message="OPENROUTER_API_KEY is not set")
        try:
            lock = self.store.acquire_lock(catalog, self.lock_ttl)
        except StoreUnavailable as exc:
            return self._finish(catalog, began, "store_unavailable", message=str(exc))
        if lock is None:
            return self._finish(catalog, began, "locked", message="another process is refreshing")
        try:
            previous = self.store.read_status(catalog) or {}
            now = self._clock()
            if not force and not self._due(catalog, previous, now):
                return self._finish(catalog, began, "fresh")
            try:
                normalised, snapshots = self._fetch(catalog, now, previous)
            except (UpstreamError, InvalidDocument, RejectedCatalog) as exc:
                message = mask_secrets(_failure_message(catalog, exc), self.settings.secrets)
                status = self._failed_status(catalog, previous, now, began, message, exc)
                # A failed poll is itself news for Ollama; for OpenRouter the last good list stays.
                snapshots = {}
                if catalog == OLLAMA:
                    unreachable = ollama_unreachable_snapshot(message, now)
                    snapshots = {OLLAMA: unreachable, OLLAMA_EMBEDDINGS: unreachable}
                outcome = "failed" if isinstance(exc, UpstreamError) else "rejected"
                rows = skipped = None
            else:
                status = self._success_status(catalog, previous, now, began, normalised)
                outcome, rows, skipped, message = "published", len(normalised.rows), normalised.skipped, None
            if self.stopping.is_set():
                return self._finish(catalog, began, "abandoned", message="shutting down")
            if not self.store.publish(lock, snapshots, status):
                return self._finish(catalog, began, "lost_lock", message="the refresh lock expired before publishing")
            return self._finish(catalog, began, outcome, rows, skipped, message)
        except StoreUnavailable as exc:
            return self._finish(catalog, began, "store_unavailable", message=str(exc))
        finally:
            self.store.release_lock(lock)

    def _fetch(self, catalog: str, now: float, previous: dict) -> tuple[Normalised, dict[str, Snapshot]]:
        """Fetch, normalise and validate; the snapshots to publish, by name."""
        if catalog == LLMS:
            normalised = normalise_openrouter_models(self._openrouter.models())
            _check_openrouter_rows(normalised, previous)
            return normalised, {LLMS: llm_snapshot(normalised.rows, "api", now)}
        if catalog == EMBEDDINGS:
            document = self._openrouter.embedding_models()
            normalised = normalise_openrouter_embeddings(document, self._dimensions)
            _check_openrouter_rows(normalised, previous)
            return normalised, {EMBEDDINGS: llm_snapshot(normalised.rows, "api", now)}
        document = self._ollama.tags()
        infos = self._ollama_infos(ollama_entries(document))
        normalised = normalise_ollama_tags(document, infos)
        embedding = normalise_ollama_embedding_tags(document, infos)
        return normalised, {
            OLLAMA: ollama_snapshot(normalised.rows, now),
            OLLAMA_EMBEDDINGS: ollama_snapshot(embedding.rows, now),
        }

    def _ollama_infos(self, entries: list) -> dict[str, OllamaModelInfo]:
        """/api/show results for entries whose tags do not list capabilities, cached by digest."""
        infos: dict[str, OllamaModelInfo] = {}
        digests: set[str] = set()
        deadline = time.monotonic() + self.settings.upstream_timeout_seconds
        for entry in entries:
            if not needs_ollama_show(entry) or not isinstance(entry.get("name"), str):
                continue
            name, digest = entry["name"], str(entry.get("digest") or entry["name"])
            digests.add(digest)
            if digest in self._show_cache:
                infos[name] = self._show_cache[digest]
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                continue  # Names and families decide for the rest; show is asked next poll.
            try:
                info = ollama_model_info(self._ollama.show(name, timeout_seconds=remaining))
            except (UpstreamError, InvalidDocument) as exc:
                log.info("no /api/show answer for %s: %s", name, exc)
                continue
            self._show_cache[digest] = infos[name] = info
        for stale in self._show_cache.keys() - digests:
            del self._show_cache[stale]
        return infos

    def _due(self, catalog: str, status: dict, now: float) -> bool:
        next_attempt = status.get("next_attempt_at")
        if not isinstance(next_attempt, (int, float)):
            return True
        wait = next_attempt - now
        # A wait longer than any we schedule means the clock jumped back: refresh now.
        if wait > max(self.interval(catalog), RATE_LIMIT_CAP_SECONDS) + self.tick(catalog):
            return True
        # Ticks fire a few milliseconds either side of the due time; do not wait a whole tick for that.
        return wait <= min(1.0, 0.05 * self.tick(catalog))

    def _success_status(self, catalog, previous, now, began, normalised: Normalised) -> dict:
        previous = {key: value for key, value in previous.items() if key != "suspect_rows"}
        return {
            **previous,
            "catalog": catalog,
            "outcome": "ok",
            "last_attempt": now,
            "last_success": now,
            "consecutive_failures": 0,
            "rows": len(normalised.rows),
            "skipped_rows": normalised.skipped,
            "duration_seconds": round(time.monotonic() - began, 3),
            "next_attempt_at": now + self.interval(catalog),
        }

    def _failed_status(self, catalog, previous, now, began, message, exc) -> dict:
        failures = int(previous.get("consecutive_failures") or 0) + 1
        # Back off from one tick, doubling, up to the interval; jitter spreads replicas apart.
        wait = min(self.interval(catalog), self.tick(catalog) * 2 ** (failures - 1))
        wait *= random.uniform(0.8, 1.0)
        if isinstance(exc, UpstreamRateLimited) and exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, RATE_LIMIT_CAP_SECONDS))
        if isinstance(exc, ShrunkCatalog):
            previous = {**previous, "suspect_rows": exc.rows}
        return {
            **previous,
            "catalog": catalog,
            "outcome": "failed",
            "last_attempt": now,
            "last_error": message,
            "last_error_at": now,
            "consecutive_failures": failures,
            "duration_seconds": round(time.monotonic() - began, 3),
            "next_attempt_at": now + wait,
        }

    def _finish(self, catalog, began, outcome, rows=None, skipped=None, message=None) -> RefreshResult:
        result = RefreshResult(catalog, outcome, time.monotonic() - began, rows, skipped, message)
        level = logging.WARNING if result.failed else logging.INFO
        if outcome in IDLE_OUTCOMES:
            level = logging.DEBUG
        fields = {"event": "refresh", "catalog": catalog, "outcome": outcome, "rows": rows, "skipped": skipped,
                  "duration_ms": round(result.duration * 1000, 1), "error": message if result.failed else None}
        log.log(level, "refresh %s", result.describe(), extra=fields)
        for observer in self.observers:
            observer(result)
        return result


class RefreshQueue:
    """Refreshes asked for over the API, run one after the other on a background thread."""

    def __init__(self, refresher: Refresher) -> None:
        self._refresher = refresher
        self._executor: ThreadPoolExecutor | None = None
        self._mutex = threading.Lock()

    def submit(self, catalog: str) -> None:
        """Queue a forced refresh (the lock still applies); returns at once."""
        with self._mutex:
            if self._executor is None:  # no thread until the first request
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-refresh")
        self._executor.submit(self._run, catalog)

    def _run(self, catalog: str) -> None:
        try:
            self._refresher.run(catalog, force=True)
        except Exception:  # a queued job has nobody to raise to
            log.exception("queued refresh of %s failed", catalog)


def _check_openrouter_rows(normalised: Normalised, previous: dict) -> None:
    """Validation before publish: some rows, and not a sudden collapse of the catalog."""
    rows = len(normalised.rows)
    if not rows:
        raise RejectedCatalog(f"the answer had no usable models ({normalised.skipped} malformed)")
    before = previous.get("rows")
    # A real shrink shows up again on the next fetch, and is then believed.
    if isinstance(before, int) and rows < before / 2 and previous.get("suspect_rows") != rows:
        raise ShrunkCatalog(before, rows)


def _failure_message(catalog: str, exc: Exception) -> str:
    if isinstance(exc, InvalidDocument):
        upstream = "Ollama" if catalog == OLLAMA else "OpenRouter"
        return f"{upstream} sent an unexpected answer: {exc}"
    return str(exc)
