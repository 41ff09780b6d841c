"""The history of each catalog: what every publish added, removed and changed, and since when
each model has been listed. Pure functions and plain data; the store keeps them, the refresher
calls them (docs/lifecycle.md).

Times are whole Unix seconds: entries are compared with a client's `since` and must print
exactly as they are stored.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
# The row fields whose changes are recorded. Pricing is `pricing` on chat rows and
# `cost_per_million` on embedding rows; sizes of local files and the like are not watched.
WATCHED_FIELDS = ("name", "context", "pricing", "cost_per_million", "capabilities", "dimensions", "expires_on")
# Bumped when the stored state changes shape; a state of another version starts a new baseline.
STATE_VERSION = 1


def iso_time(timestamp: float) -> str:
    """RFC 3339 in UTC with whole seconds: 2026-08-18T12:00:00Z."""
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class Tombstone:
    """A model gone from its upstream: its last row, and when it went."""

    row: dict
    removed_at: int


@dataclasses.dataclass(frozen=True)
class CatalogHistory:
    """What one catalog's history goes on from publish to publish."""

    baseline_at: int  # the first live publish this deployment saw: its rows are not "added"
    rows: dict[str, dict]  # the last live rows by id, as the source produced them, in its order
    first_seen: dict[str, int]  # ids that appeared after the baseline (baseline rows have none)
    tombstones: dict[str, Tombstone]  # by id, oldest removal first
    # When a lifecycle field of the rows as last served changes next (None: never).
    next_boundary_at: int | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": STATE_VERSION,
                "baseline_at": self.baseline_at,
                "next_boundary_at": self.next_boundary_at,
                "rows": list(self.rows.values()),
                "first_seen": self.first_seen,
                "tombstones": [{"removed_at": t.removed_at, "row": t.row} for t in self.tombstones.values()],
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> CatalogHistory | None:
        """The stored state; None when there is none or it cannot be read (a new baseline follows)."""
        if raw is None:
            return None
        try:
            document = json.loads(raw)
            if document.get("version") != STATE_VERSION:
                raise ValueError(f"version {document.get('version')!r}")
            tombstones = {t["row"]["id"]: Tombstone(t["row"], int(t["removed_at"])) for t in document["tombstones"]}
            boundary = document["next_boundary_at"]
            return cls(
                baseline_at=int(document["baseline_at"]),
                rows={row["id"]: row for row in document["rows"]},
                first_seen={str(key): int(value) for key, value in document["first_seen"].items()},
                tombstones=tombstones,
                next_boundary_at=None if boundary is None else int(boundary),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring an unreadable catalog history state (%s): a new baseline follows", exc)
            return None


@dataclasses.dataclass(frozen=True)
class ChangeEntry:
    """One recorded change of one model in one catalog."""

    at: int
    catalog: str
    source: str
    kind: str  # added | removed | changed
    id: str
    name: str
    changes: dict[str, dict] | None = None  # changed: field → {"before", "after"}

    def as_dict(self) -> dict:
        """The feed's item; keys in one fixed order, so equal entries are equal strings."""
        item: dict[str, Any] = {
            "at": iso_time(self.at),
            "catalog": self.catalog,
            "source": self.source,
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
        }
        if self.changes is not None:
            item["changes"] = self.changes
        return item

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":"))


@dataclasses.dataclass(frozen=True)
class HistoryUpdate:
    """What one publish writes for one catalog: the new state, the entries to append, and the
    bounds the store trims the kept entries to."""

    state: CatalogHistory
    entries: tuple[ChangeEntry, ...]
    keep_after: int  # entries older than this (now - HISTORY_DAYS) are dropped
    max_entries: int  # and only the newest this many are kept


@dataclasses.dataclass(frozen=True)
class ChangeLog:
    """The kept entries of one catalog since a time, and from when its history is complete."""

    history_from: int | None  # None: no history yet (no live publish)
    entries: list[tuple[int, str]]  # (at, entry JSON), oldest first


def field_changes(before: dict, after: dict) -> dict[str, dict]:
    """The watched fields whose values differ, each with its value before and after (None: absent)."""
    changes = {}
    for field in WATCHED_FIELDS:
        old, new = before.get(field), after.get(field)
        if old != new:
            changes[field] = {"before": old, "after": new}
    return changes


def advance(
    previous: CatalogHistory | None,
    rows: list[dict],
    now: int,
    catalog: str,
    source: str,
    tombstone_days: float,
) -> tuple[CatalogHistory, list[ChangeEntry]]:
    """The state after a live publish of `rows`, and the entries it records. Without a previous
    state the rows are the baseline: nothing is recorded and no row counts as first seen now."""
    current = {row["id"]: row for row in rows}
    if previous is None:
        return CatalogHistory(baseline_at=now, rows=current, first_seen={}, tombstones={}), []
    before = previous.rows
    first_seen = dict(previous.first_seen)
    tombstones = dict(previous.tombstones)
    entries = []
    for model_id, row in current.items():
        old = before.get(model_id)
        if old is None:
            entries.append(ChangeEntry(now, catalog, source, "added", model_id, row["name"]))
            # A model back within its tombstone time keeps its first sighting (none for baseline
            # rows): a flicker upstream is not a new model.
            if tombstones.pop(model_id, None) is None:
                first_seen[model_id] = now
            continue
        changes = field_changes(old, row)
        if changes:
            entries.append(ChangeEntry(now, catalog, source, "changed", model_id, row["name"], changes))
    for model_id, old in before.items():
        if model_id not in current:
            entries.append(ChangeEntry(now, catalog, source, "removed", model_id, old["name"]))
            tombstones[model_id] = Tombstone(old, now)
    entries.sort(key=lambda entry: (entry.id, entry.kind))
    state = CatalogHistory(previous.baseline_at, current, first_seen, tombstones, previous.next_boundary_at)
    return expire_tombstones(state, now, tombstone_days), entries


def expire_tombstones(state: CatalogHistory, now: int, tombstone_days: float) -> CatalogHistory:
    """The state without tombstones older than TOMBSTONE_DAYS, and without first sightings of
    models that are neither listed nor tombstoned."""
    tombstones = {
        model_id: tombstone
        for model_id, tombstone in state.tombstones.items()
        if now < tombstone.removed_at + tombstone_days * DAY_SECONDS
    }
    first_seen = {
        model_id: seen
        for model_id, seen in state.first_seen.items()
        if model_id in state.rows or model_id in tombstones
    }
    return dataclasses.replace(state, tombstones=tombstones, first_seen=first_seen)


def trim(entries: list[tuple[int, str]], keep_after: int, max_entries: int) -> tuple[list[tuple[int, str]], int | None]:
    """Entries (oldest first) within the bounds, and the time of the newest dropped one (None:
    none dropped). A publish's entries share one time and go together: a feed answer is never
    part of one publish."""
    older = [at for at, _ in entries if at < keep_after]
    dropped_through = max(older) if older else None
    kept = [(at, item) for at, item in entries if at >= keep_after]
    excess = len(kept) - max_entries
    if excess > 0:
        boundary = kept[excess - 1][0]
        dropped_through = boundary if dropped_through is None else max(dropped_through, boundary)
        kept = [(at, item) for at, item in kept if at > boundary]
    return kept, dropped_through
