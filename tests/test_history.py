"""The pure parts of the lifecycle: history diffs and states (app/history.py), the dated fields
(app/lifecycle.py), the feed's time parsing and the compatibility verdict."""

from __future__ import annotations

import pytest

from app.changes import parse_since
from app.compatibility import EmbeddingSide, verdict
from app.filters import InvalidParameter
from app.history import (
    CatalogHistory,
    ChangeEntry,
    Tombstone,
    advance,
    expire_tombstones,
    field_changes,
    iso_time,
    trim,
)
from app.lifecycle import LifecyclePolicy, dated_row, dated_rows, parse_time
from app.sources.rows import released_at

DAY = 86_400
T0 = 1_760_000_000  # 2025-10-09T08:53:20Z
POLICY = LifecyclePolicy(
    new_model_days=14, deprecation_warning_days=30, tombstone_days=30, history_days=90, history_max_entries=10_000
)


def row(model_id: str, **fields) -> dict:
    return {"id": model_id, "name": model_id.upper(), "context": 1000, **fields}


def step(previous, rows, at):
    return advance(previous, rows, at, "cat", "src", tombstone_days=30)


def test_the_first_publish_is_the_baseline():
    state, entries = step(None, [row("a"), row("b")], T0)
    assert entries == []
    assert state.baseline_at == T0 and list(state.rows) == ["a", "b"]
    assert state.first_seen == {} and state.tombstones == {}


def test_added_removed_and_changed_with_before_and_after():
    state, _ = step(None, [row("a"), row("b", pricing={"prompt": "1", "completion": "2"}), row("c")], T0)
    later = T0 + 60
    state, entries = step(state, [row("b", pricing={"prompt": "1", "completion": "3"}, context=2000), row("c"),
                                  row("d")], later)  # fmt: skip
    assert [(e.kind, e.id) for e in entries] == [("removed", "a"), ("changed", "b"), ("added", "d")]
    assert entries[1].changes == {
        "context": {"before": 1000, "after": 2000},
        "pricing": {"before": {"prompt": "1", "completion": "2"}, "after": {"prompt": "1", "completion": "3"}},
    }
    assert all(entry.at == later and entry.catalog == "cat" and entry.source == "src" for entry in entries)
    assert state.first_seen == {"d": later}  # the baseline's rows have none
    assert state.tombstones == {"a": Tombstone(row("a"), later)}


def test_unwatched_fields_are_not_changes():
    assert field_changes(row("a", size_mb=5, quantization="Q4"), row("a", size_mb=6, quantization="Q8")) == {}
    assert field_changes(row("a"), row("a", capabilities=["tools"])) == {
        "capabilities": {"before": None, "after": ["tools"]}
    }


def test_a_model_back_within_its_tombstone_time_keeps_its_first_sighting():
    state, _ = step(None, [row("a")], T0)
    state, _ = step(state, [row("a"), row("n")], T0 + DAY)
    state, _ = step(state, [], T0 + 2 * DAY)
    assert set(state.tombstones) == {"a", "n"} and state.first_seen == {"n": T0 + DAY}
    state, entries = step(state, [row("a"), row("n")], T0 + 3 * DAY)
    assert [(e.kind, e.id) for e in entries] == [("added", "a"), ("added", "n")]
    # A flicker is not a new model: n keeps its sighting, a (a baseline row) still has none.
    assert state.first_seen == {"n": T0 + DAY} and state.tombstones == {}


def test_tombstones_expire_and_take_their_first_sighting_along():
    state, _ = step(None, [row("a")], T0)
    state, _ = step(state, [row("a"), row("n")], T0 + DAY)
    state, _ = step(state, [], T0 + 2 * DAY)
    assert set(expire_tombstones(state, T0 + 32 * DAY - 1, 30).tombstones) == {"a", "n"}
    expired = expire_tombstones(state, T0 + 32 * DAY, 30)
    assert expired.tombstones == {} and expired.first_seen == {}
    # After that a return is a new model.
    state, _ = step(expired, [row("n")], T0 + 40 * DAY)
    assert state.first_seen == {"n": T0 + 40 * DAY}


def test_state_survives_json_and_a_bad_state_means_a_new_baseline(caplog):
    state, _ = step(None, [row("a"), row("é")], T0)
    state, _ = step(state, [row("é"), row("z")], T0 + 5)
    assert CatalogHistory.from_json(state.to_json()) == state
    assert CatalogHistory.from_json(None) is None
    assert CatalogHistory.from_json('{"version": 99}') is None
    assert CatalogHistory.from_json("not json") is None
    assert "new baseline follows" in caplog.text


def test_entries_print_whole_seconds_in_utc_with_a_fixed_key_order():
    entry = ChangeEntry(T0, "cat", "src", "changed", "m", "M", {"name": {"before": "x", "after": "M"}})
    assert entry.to_json() == (
        '{"at":"2025-10-09T08:53:20Z","catalog":"cat","source":"src","kind":"changed","id":"m","name":"M",'
        '"changes":{"name":{"before":"x","after":"M"}}}'
    )
    assert "changes" not in ChangeEntry(T0, "cat", "src", "added", "m", "M").as_dict()


def test_trim_by_age_then_by_count_whole_publishes_at_a_time():
    entries = [(10, "a"), (10, "b"), (20, "c"), (30, "d"), (30, "e"), (40, "f")]
    assert trim(entries, keep_after=0, max_entries=10) == (entries, None)
    assert trim(entries, keep_after=20, max_entries=10) == (entries[2:], 10)
    assert trim(entries, keep_after=0, max_entries=3) == (entries[3:], 20)
    # Two newest kept: the cut falls inside the publish at 30, so all of it goes.
    assert trim(entries, keep_after=0, max_entries=2) == ([(40, "f")], 30)
    assert trim(entries, keep_after=25, max_entries=1) == ([(40, "f")], 30)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-08-14", 1_786_665_600.0),
        ("2026-08-14T00:00:00Z", 1_786_665_600.0),
        ("2026-08-14T02:00:00+02:00", 1_786_665_600.0),
        ("2026-08-14T00:00:00", None),  # no offset: ambiguous
        ("soon", None),
        (None, None),
    ],
)
def test_parse_time(value, expected):
    assert parse_time(value) == expected


def test_is_new_by_the_upstreams_date_first_then_by_first_sighting():
    now = T0 + 20 * DAY
    released_recently = row("a", released_at=iso_time(T0 + 10 * DAY))
    dated, boundary = dated_row(released_recently, None, now, POLICY)
    assert dated["is_new"] is True and boundary == T0 + 24 * DAY
    # An old release date wins over a recent first sighting.
    dated, _ = dated_row(row("a", released_at=iso_time(T0)), T0 + 19 * DAY, now, POLICY)
    assert dated["is_new"] is False and dated["first_seen_at"] == iso_time(T0 + 19 * DAY)
    dated, boundary = dated_row(row("a"), T0 + 19 * DAY, now, POLICY)
    assert dated["is_new"] is True and boundary == T0 + 33 * DAY
    dated, boundary = dated_row(row("a"), None, now, POLICY)  # a baseline row
    assert (dated["is_new"], dated["first_seen_at"], boundary) == (False, None, None)


def test_deprecated_from_the_warning_period_on():
    expires = row("a", expires_on="2026-08-24")
    warn_from = parse_time("2026-08-24") - 30 * DAY
    dated, boundary = dated_row(expires, None, warn_from - 1, POLICY)
    assert dated["deprecated"] is False and boundary == warn_from
    assert dated_row(expires, None, warn_from, POLICY)[0]["deprecated"] is True
    assert dated_row(expires, None, warn_from + 90 * DAY, POLICY) == ({**dated, "deprecated": True}, None)


def test_dated_rows_list_tombstones_apart_and_name_the_next_boundary():
    state, _ = step(None, [row("a"), row("b", expires_on="2030-01-01")], T0)
    state, _ = step(state, [row("b", expires_on="2030-01-01"), row("c")], T0 + DAY)
    dated = dated_rows(state, T0 + DAY, POLICY)
    assert [(r["id"], r["is_new"], r["deprecated"]) for r in dated.rows] == [("b", False, False), ("c", True, False)]
    assert dated.removed == [{**row("a"), "first_seen_at": None, "is_new": False, "deprecated": False,
                              "removed_at": iso_time(T0 + DAY)}]  # fmt: skip
    # c stops being new 14 days after it came; the tombstone goes after 30.
    assert dated.next_boundary_at == T0 + 15 * DAY


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1_786_636_912, "2026-08-13T16:01:52Z"),
        ("2025-10-15T00:00:00Z", "2025-10-15T00:00:00Z"),
        ("2025-10-15T02:00:00+02:00", "2025-10-15T00:00:00Z"),
        ("2025-10-15T00:00:00", None),
        ("2025-10-15", None),
        (True, None),
        (0, None),
        (10**20, None),
    ],
)
def test_released_at_of_upstream_values(value, expected):
    assert released_at(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-08-01T00:00:00Z", 1_785_542_400.0),
        ("2026-08-01t02:00:00.5+02:00", 1_785_542_400.5),
        ("2016-12-31T23:59:60Z", 1_483_228_799.0),  # a leap second
    ],
)
def test_since_takes_rfc_3339(value, expected):
    assert parse_since(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "2026-08-01",
        "2026-08-01T00:00:00",
        "2026-08-01 00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-08-01T00:00:00+25:00",
        "yesterday",
    ],
)
def test_since_refuses_anything_else_naming_the_parameter(value):
    with pytest.raises(InvalidParameter) as raised:
        parse_since(value)
    assert raised.value.parameter == "since"


def side(key, dimensions, model_id="x"):
    return EmbeddingSide("embeddings", model_id, key, dimensions)


@pytest.mark.parametrize(
    ("current", "candidate", "reason"),
    [
        (side("m/a", 1024), side("m/a", 1024, "y"), None),
        (side("m/a", 1024), side("m/b", 1024), "different_model"),  # equal sizes, other weights
        (side("m/a", 1024), side("m/a", 512), "different_dimensions"),
        (side(None, 768), side(None, 768), "unknown_model"),  # even the same unknown model
        (side("m/a", 768), side(None, 768), "unknown_model"),
        (side("m/a", None), side("m/a", 768), "unknown_dimensions"),
    ],
)
def test_verdict(current, candidate, reason):
    answer = verdict(current, candidate)
    assert answer["reason"] == reason
    assert answer["compatible"] is (reason is None) and answer["reindex_required"] is (reason is not None)
    assert answer["message"]
