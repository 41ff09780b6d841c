"""One refresh of one source: lock → freshness → fetch (normalise, accept) → publish + status.

Any number of processes may run these jobs: the per-source lock and the freshness check in
the store make one upstream call per source per interval, whoever makes it.
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

from .embedding_models import EmbeddingModels, table_kind
from .lifecycle import Lifecycle, LifecyclePolicy
from .logs import mask_secrets
from .registry import Registry
from .snapshot import Snapshot, unreachable_snapshot
from .sources.base import FETCH_ERRORS, Fetched, ShrunkCatalog, Source
from .sources.http import UpstreamError, UpstreamKeyRejected, UpstreamRateLimited
from .sources.rows import embedding_facts
from .status import RefreshStatus
from .store import ProcessStore, StoreUnavailable

log = logging.getLogger(__name__)

# A 429's Retry-After is honoured up to this many seconds, so a silly value cannot stop refreshes.
RATE_LIMIT_CAP_SECONDS = 3600.0
# A main list that shrank by more than half is published only once answers this long apart
# confirm it (or an admin accepts it): a truncated upstream must not replace a good catalog.
SHRINK_CONFIRM_SECONDS = 3600.0
# Scheduler ticks are at most this far apart, so a failed fetch is retried before its interval ends.
MAX_TICK_SECONDS = 60.0

# Outcomes that mean the source was not refreshed when it should have been.
FAILED_OUTCOMES = frozenset({"failed", "rejected", "lost_lock", "store_unavailable"})
# Outcomes that made no upstream call and changed nothing: logged at DEBUG only.
IDLE_OUTCOMES = frozenset({"fresh", "locked", "disabled"})


@dataclasses.dataclass(frozen=True)
class RefreshResult:
    """What one run did, for logs, the CLI and tests."""

    source: str
    outcome: (
        str  # published | failed | rejected | fresh | locked | disabled | lost_lock | store_unavailable | abandoned
    )
    duration: float
    rows: int | None = None
    skipped: int | None = None
    message: str | None = None

    @property
    def failed(self) -> bool:
        return self.outcome in FAILED_OUTCOMES

    def describe(self) -> str:
        """One line for people: catalog, outcome, rows, duration."""
        parts = [f"{self.source}: {self.outcome}"]
        if self.rows is not None:
            parts.append(f"{self.rows} rows ({self.skipped or 0} skipped)")
        parts.append(f"in {self.duration:.2f}s")
        if self.message:
            parts.append(f"- {self.message}")
        return " ".join(parts)


class Refresher:
    """Runs the refresh of each registered source against the store."""

    def __init__(
        self,
        settings: Settings,
        store: ProcessStore,
        registry: Registry,
        clock: Callable[[], float] = time.time,
        embedding_models: EmbeddingModels | None = None,
    ) -> None:
        self.settings = settings
        # The sourced embedding-model table: model_key and sizes for every source's embedding rows.
        self.embedding_models = embedding_models
        self.store = store
        self.registry = registry
        self._clock = clock
        # The history and lifecycle fields of every catalog published (app/lifecycle.py).
        self.lifecycle = Lifecycle(LifecyclePolicy.from_settings(settings))
        # Called with every result (metrics count them).
        self.observers: list[Callable[[RefreshResult], None]] = []
        # Set on shutdown: a run in progress publishes nothing; its lock expires by its TTL.
        self.stopping = threading.Event()

    def tick(self, source: Source) -> float:
        """Seconds between scheduler runs: the interval cut into equal steps of at most a minute."""
        interval = source.interval_seconds
        return interval / math.ceil(interval / MAX_TICK_SECONDS)

    def lock_ttl(self, source: Source) -> float:
        """Longer than any run: every call a poll may make, each under the upstream deadline."""
        return (source.calls_per_poll + 1) * self.settings.upstream_timeout_seconds + 5

    def run_all(self, sources: list[Source] | None = None, force: bool = False) -> list[RefreshResult]:
        """Run several sources (default: every one) one after the other."""
        chosen = list(self.registry.sources.values()) if sources is None else sources
        return [self.run(source.name, force=force) for source in chosen]

    def run(self, name: str, force: bool = False, accept_shrink: bool = False) -> RefreshResult:
        """One refresh of one source; `force` ignores freshness, never the lock; `accept_shrink`
        publishes a main list that shrank by more than half at once."""
        began = time.monotonic()
        source = self.registry.sources[name]
        if not source.enabled:
            return self._finish(name, began, "disabled", message=source.disabled_reason)
        try:
            lock = self.store.acquire_lock(name, self.lock_ttl(source))
        except StoreUnavailable as exc:
            return self._finish(name, began, "store_unavailable", message=str(exc))
        if lock is None:
            return self._finish(name, began, "locked", message="another process is refreshing")
        try:
            previous = self.store.read_status(name) or RefreshStatus(name)
            now = self._clock()
            if not force and not self._due(source, previous, now):
                return self._finish(name, began, "fresh")
            rows: int | None = None
            skipped: int | None = None
            message: str | None = None
            try:
                fetched = source.fetch(previous)
                self._check_shrink(source, fetched, previous, now, accept_shrink)
            except FETCH_ERRORS as exc:
                message = mask_secrets(source.failure_message(exc), self.settings.secrets)
                status = self._failed_status(source, previous, now, began, message, exc)
                snapshots = self._failure_snapshots(source, message, now)
                # The rows still served get their lifecycle fields re-dated once one is due.
                redated, histories = self.lifecycle.redated(self.store, source, set(snapshots), self._clock())
                snapshots.update(redated)
                outcome = "failed" if isinstance(exc, UpstreamError) else "rejected"
            else:
                status = self._success_status(source, previous, now, began, fetched)
                # History entries are stamped now, after the fetch, so that they are close to
                # the moment they become visible (clients ask for changes since a time).
                completed = {
                    name: self._with_embedding_facts(name, source, found) for name, found in fetched.rows.items()
                }
                snapshots, histories = self.lifecycle.published(self.store, source, completed, now, self._clock())
                outcome, rows, skipped = "published", fetched.main_rows, fetched.skipped
            if self.stopping.is_set():
                return self._finish(name, began, "abandoned", message="shutting down")
            if not self.store.publish(lock, snapshots, status, histories):
                return self._finish(name, began, "lost_lock", message="the refresh lock expired before publishing")
            return self._finish(name, began, outcome, rows, skipped, message)
        except StoreUnavailable as exc:
            return self._finish(name, began, "store_unavailable", message=str(exc))
        finally:
            self.store.release_lock(lock)

    def _with_embedding_facts(self, name: str, source: Source, rows: list[dict]) -> list[dict]:
        """Every embedding row gets its `model_key` (and `supported_dimensions`, and `dimensions`
        where the upstream gave none) from the sourced table, whichever source it came from."""
        if self.embedding_models is None or self.registry.catalogs[name].kind != "embedding":
            return rows
        kind = table_kind(source.kind)
        completed = []
        for row in rows:
            if "model_key" not in row:
                known = self.embedding_models.find(kind, row["id"])
                row = {**row, **embedding_facts(known)}
                if row.get("dimensions") is None and known is not None:
                    row["dimensions"] = known.dimensions
            completed.append(row)
        return completed

    def _check_shrink(
        self, source: Source, fetched: Fetched, previous: RefreshStatus, now: float, accept_shrink: bool
    ) -> None:
        """Hold back a main list that shrank by more than half until an hour of answers confirms it."""
        before, rows = previous.rows, fetched.main_rows
        if not source.shrink_guard or accept_shrink or before is None or rows >= before / 2:
            return
        since = previous.shrink_held_since
        if since is not None and now - since >= SHRINK_CONFIRM_SECONDS:
            return  # still shrunk after an hour: believed
        raise ShrunkCatalog(before, rows, now if since is None else since)

    def _failure_snapshots(self, source: Source, message: str, now: float) -> dict[str, Snapshot]:
        """What a failed poll publishes: `unreachable` where the last rows must not stay."""
        snapshots = {}
        for catalog in source.catalogs:
            if catalog.failure_replaces_rows:
                snapshots[catalog.name] = unreachable_snapshot(catalog, message, now)
            elif catalog.curated_rows is None:
                # A hosted list is served however old; without one, say why there is none.
                current = self.store.read_current(catalog.name)
                if current is None or current.source != catalog.live_label:
                    snapshots[catalog.name] = unreachable_snapshot(catalog, message, now)
        return snapshots

    def _due(self, source: Source, status: RefreshStatus, now: float) -> bool:
        next_attempt = status.next_attempt_at
        if next_attempt is None:
            return True
        wait = next_attempt - now
        tick = self.tick(source)
        # A wait longer than any we schedule means the clock jumped back: refresh now.
        if wait > max(source.interval_seconds, RATE_LIMIT_CAP_SECONDS) + tick:
            return True
        # Ticks fire a few milliseconds either side of the due time; do not wait a whole tick for that.
        return wait <= min(1.0, 0.05 * tick)

    def _success_status(
        self, source: Source, previous: RefreshStatus, now: float, began: float, fetched: Fetched
    ) -> RefreshStatus:
        return previous.replace(
            outcome="ok",
            last_attempt=now,
            last_success=now,
            last_error=None,
            consecutive_failures=0,
            rows=fetched.main_rows,
            skipped_rows=fetched.skipped,
            duration_seconds=round(time.monotonic() - began, 3),
            next_attempt_at=now + source.interval_seconds,
            suspect_rows=None,
            shrink_held_since=None,
        )

    def _failed_status(
        self, source: Source, previous: RefreshStatus, now: float, began: float, message: str, exc: Exception
    ) -> RefreshStatus:
        failures = previous.consecutive_failures + 1
        # Back off from one tick, doubling, up to the interval; jitter spreads replicas apart.
        wait = min(source.interval_seconds, self.tick(source) * 2 ** (failures - 1))
        wait *= random.uniform(0.8, 1.0)
        if isinstance(exc, UpstreamKeyRejected):
            wait = source.interval_seconds  # a new key needs a person, not a quick retry
        if isinstance(exc, UpstreamRateLimited) and exc.retry_after is not None:
            wait = max(wait, min(exc.retry_after, RATE_LIMIT_CAP_SECONDS))
        suspect_rows, held_since = previous.suspect_rows, previous.shrink_held_since
        if isinstance(exc, ShrunkCatalog):
            suspect_rows, held_since = exc.suspect_rows, exc.held_since
        return previous.replace(
            outcome="failed",
            last_attempt=now,
            last_error=message,
            last_error_at=now,
            consecutive_failures=failures,
            duration_seconds=round(time.monotonic() - began, 3),
            next_attempt_at=now + wait,
            suspect_rows=suspect_rows,
            shrink_held_since=held_since,
        )

    def _finish(self, source, began, outcome, rows=None, skipped=None, message=None) -> RefreshResult:
        result = RefreshResult(source, outcome, time.monotonic() - began, rows, skipped, message)
        level = logging.WARNING if result.failed else logging.INFO
        if outcome in IDLE_OUTCOMES:
            level = logging.DEBUG
        fields = {
            "event": "refresh",
            "source": source,
            "outcome": outcome,
            "rows": rows,
            "skipped": skipped,
            "duration_ms": round(result.duration * 1000, 1),
            "error": message if result.failed else None,
        }
        log.log(level, "refresh %s", result.describe(), extra=fields)
        for observer in self.observers:
            observer(result)
        return result


class RefreshRequests:
    """Refreshes asked for over the API. With a shared store the request only marks the sources
    due and the process that runs the refresh jobs carries them out (the web tier only reads);
    the embedded run has no such process to hand them to, so they run here, in the background."""

    def __init__(self, refresher: Refresher, window_seconds: float) -> None:
        self._refresher = refresher
        self._window_seconds = window_seconds
        self._executor: ThreadPoolExecutor | None = None
        self._mutex = threading.Lock()

    def ask(self, names: list[str], accept_shrink: bool = False) -> float:
        """Queue a forced refresh of each source, all or none: 0 when queued, else seconds to wait
        (one request per source per window, across every process when Redis is there)."""
        store = self._refresher.store
        wait = store.claim_refresh_requests(names, self._window_seconds)
        if wait:
            return wait
        if store.shared:
            store.mark_due(names, accept_shrink)
        else:
            for name in names:
                self._submit(name, accept_shrink)
        return 0.0

    def _submit(self, name: str, accept_shrink: bool) -> None:
        with self._mutex:
            if self._executor is None:  # no thread until the first request
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-refresh")
        self._executor.submit(self._run, name, accept_shrink)

    def _run(self, name: str, accept_shrink: bool) -> None:
        try:
            self._refresher.run(name, force=True, accept_shrink=accept_shrink)
        except Exception:  # a queued job has nobody to raise to
            log.exception("queued refresh of %s failed", name)
