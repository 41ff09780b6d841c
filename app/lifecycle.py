"""Lifecycle fields of served rows (first_seen_at, is_new, deprecated, removed_at) and the
refresher's side of the history: what a publish writes besides the snapshot.

The fields depend on "now", while a snapshot is bytes encoded once. They are computed when a
snapshot is built, and the time the next one would change is kept with the history; a failed
poll re-encodes the last rows once that time has passed, and static (curated) answers are
re-encoded in the process when theirs does (docs/lifecycle.md, "Why the fields are baked in").
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from config import Settings

from .history import DAY_SECONDS, CatalogHistory, ChangeEntry, HistoryUpdate, advance, expire_tombstones, iso_time
from .snapshot import Snapshot, live_snapshot

if TYPE_CHECKING:
    from .sources.base import CatalogSpec, Source
    from .store import ProcessStore


@dataclasses.dataclass(frozen=True)
class LifecyclePolicy:
    """The settings of the lifecycle, in days (HISTORY_DAYS, NEW_MODEL_DAYS, ...); their defaults
    live in config.Settings alone."""

    new_model_days: float
    deprecation_warning_days: float
    tombstone_days: float
    history_days: float
    history_max_entries: int

    @classmethod
    def from_settings(cls, settings: Settings) -> LifecyclePolicy:
        return cls(
            new_model_days=settings.new_model_days,
            deprecation_warning_days=settings.deprecation_warning_days,
            tombstone_days=settings.tombstone_days,
            history_days=settings.history_days,
            history_max_entries=settings.history_max_entries,
        )


@dataclasses.dataclass(frozen=True)
class DatedRows:
    """Rows with their lifecycle fields as of one moment, and when those next change."""

    rows: list[dict]
    removed: list[dict]
    next_boundary_at: int | None


def parse_time(value: Any) -> float | None:
    """An RFC 3339 time or a YYYY-MM-DD date (midnight UTC) as Unix seconds; None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def dated_row(row: dict, first_seen_at: int | None, now: float, policy: LifecyclePolicy) -> tuple[dict, float | None]:
    """The row with first_seen_at, is_new and deprecated as of `now`, and when one of them changes next.

    is_new goes by the upstream's own date where the row has one (released_at), else by when
    this deployment first saw the model (never for the baseline's rows)."""
    boundaries = []
    released = parse_time(row.get("released_at"))
    since = released if released is not None else first_seen_at
    is_new = since is not None and now < since + policy.new_model_days * DAY_SECONDS
    if is_new:
        boundaries.append(since + policy.new_model_days * DAY_SECONDS)  # type: ignore[operator]
    expires = parse_time(row.get("expires_on"))
    deprecated = False
    if expires is not None:
        warn_from = expires - policy.deprecation_warning_days * DAY_SECONDS
        deprecated = now >= warn_from
        if not deprecated:
            boundaries.append(warn_from)
    dated = {
        **row,
        "first_seen_at": iso_time(first_seen_at) if first_seen_at is not None else None,
        "is_new": is_new,
        "deprecated": deprecated,
    }
    return dated, min(boundaries, default=None)


def dated_rows(state: CatalogHistory, now: float, policy: LifecyclePolicy) -> DatedRows:
    """The state's rows and tombstones with their lifecycle fields as of `now`."""
    boundaries: list[float] = []
    rows = []
    for model_id, row in state.rows.items():
        dated, boundary = dated_row(row, state.first_seen.get(model_id), now, policy)
        rows.append(dated)
        if boundary is not None:
            boundaries.append(boundary)
    removed = []
    for model_id, tombstone in state.tombstones.items():
        dated, boundary = dated_row(tombstone.row, state.first_seen.get(model_id), now, policy)
        # A model that is gone is not new, however recently it came.
        removed.append({**dated, "is_new": False, "removed_at": iso_time(tombstone.removed_at)})
        boundaries.append(tombstone.removed_at + policy.tombstone_days * DAY_SECONDS)
        if boundary is not None:
            boundaries.append(boundary)
    next_boundary = min(boundaries, default=None)
    return DatedRows(rows, removed, None if next_boundary is None else math.ceil(next_boundary))


class Lifecycle:
    """The refresher's side: the history update and the dated snapshot of each catalog it publishes."""

    def __init__(self, policy: LifecyclePolicy) -> None:
        self.policy = policy

    def published(
        self, store: ProcessStore, source: Source, rows: dict[str, list[dict]], fetched_at: float, now: float
    ) -> tuple[dict[str, Snapshot], dict[str, HistoryUpdate]]:
        """Snapshots and history updates for a successful poll's rows, by catalog name."""
        stamp = int(now)
        previous = store.read_histories(tuple(catalog.name for catalog in source.catalogs))
        snapshots, updates = {}, {}
        for catalog in source.catalogs:
            state, entries = advance(
                previous.get(catalog.name), rows[catalog.name], stamp, catalog.name, source.name,
                self.policy.tombstone_days,
            )  # fmt: skip
            snapshots[catalog.name], updates[catalog.name] = self._dated(catalog, state, entries, fetched_at, now)
        return snapshots, updates

    def redated(
        self, store: ProcessStore, source: Source, leave_out: set[str], now: float
    ) -> tuple[dict[str, Snapshot], dict[str, HistoryUpdate]]:
        """After a failed poll: the last live rows re-encoded, for the catalogs that keep serving
        them and whose next boundary has passed (a model stops being new, a tombstone expires)."""
        names = tuple(catalog.name for catalog in source.catalogs if catalog.name not in leave_out)
        states = store.read_histories(names) if names else {}
        snapshots, updates = {}, {}
        for catalog in source.catalogs:
            state = states.get(catalog.name)
            if state is None or state.next_boundary_at is None or now < state.next_boundary_at:
                continue
            current = store.read_current(catalog.name)
            if current is None or current.source != catalog.live_label or current.fetched_at is None:
                continue
            state = expire_tombstones(state, int(now), self.policy.tombstone_days)
            snapshots[catalog.name], updates[catalog.name] = self._dated(catalog, state, [], current.fetched_at, now)
        return snapshots, updates

    def _dated(
        self, catalog: CatalogSpec, state: CatalogHistory, entries: list[ChangeEntry], fetched_at: float, now: float
    ) -> tuple[Snapshot, HistoryUpdate]:
        dated = dated_rows(state, now, self.policy)
        state = dataclasses.replace(state, next_boundary_at=dated.next_boundary_at)
        update = HistoryUpdate(
            state=state,
            entries=tuple(entries),
            keep_after=int(now - self.policy.history_days * DAY_SECONDS),
            max_entries=self.policy.history_max_entries,
        )
        return live_snapshot(catalog, dated.rows, fetched_at, dated.removed), update


class DatedAnswers(Mapping[str, Snapshot]):
    """Answers of static rows (the curated lists) with their lifecycle fields, re-encoded in
    this process when one of those changes (a deprecation warning period begins)."""

    def __init__(
        self, answers: Mapping[str, Snapshot], policy: LifecyclePolicy, clock: Callable[[], float] = time.time
    ) -> None:
        self._plain = dict(answers)
        self._policy = policy
        self._clock = clock
        self._mutex = threading.Lock()
        self._answers: dict[str, Snapshot] = {}
        self._next_boundary = 0.0
        self._date(clock())

    def __getitem__(self, name: str) -> Snapshot:
        now = self._clock()
        if now >= self._next_boundary:
            with self._mutex:
                if now >= self._next_boundary:
                    self._date(now)
        return self._answers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._plain)

    def __len__(self) -> int:
        return len(self._plain)

    def _date(self, now: float) -> None:
        answers, boundaries = {}, []
        for name, plain in self._plain.items():
            data = plain.data
            rows = []
            for row in data["models"]:
                dated, boundary = dated_row(row, None, now, self._policy)
                rows.append(dated)
                if boundary is not None:
                    boundaries.append(boundary)
            answers[name] = Snapshot.from_data({**data, "models": rows}, plain.fetched_at) if rows else plain
        self._answers = answers
        self._next_boundary = min(boundaries, default=float("inf"))
