"""The catalog lifecycle end to end: real recordings of one catalog replayed in sequence under a
frozen clock, through the refresher, the store (process and Redis), the filters, the change
feed and the embedding compatibility check."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime

import pytest
from werkzeug.datastructures import MultiDict

from app import create_app
from app.changes import HistoryGone, changes_answer
from app.filters import CatalogFilter, FilteredAnswers
from app.history import CatalogHistory, HistoryUpdate, advance
from app.redis_clients import redis_store
from app.refresh import Refresher
from app.registry import Registry
from app.sources.base import Fetched, Source, chat_catalog
from app.sources.http import HttpClient
from app.sources.rows import released_at
from app.status import RefreshStatus
from app.store import ProcessStore
from config import Settings
from harness.fake_upstream import fixture_bytes
from tests.support.secrets import JWT_SECRET, OLLAMA_BASE, OPENROUTER_KEY, OR_BASE

ANTHROPIC = "http://anthropic.test/v1"


def utc(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclasses.dataclass
class Clock:
    """A clock the test sets: the refresher reads it, nothing else moves it."""

    now: float

    def __call__(self) -> float:
        return self.now


def frozen_refresher(app, clock: Clock) -> Refresher:
    """The app's refresher, reading the test's clock."""
    service = app.extensions["catalog_service"]
    service.refresher = Refresher(service.settings, service.store, service.registry, clock=clock)
    return service.refresher


def get(app, path: str, headers: dict, status: int = 200):
    response = app.test_client().get(path, headers=headers)
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def data(app, path: str, headers: dict) -> dict:
    return get(app, path, headers).get_json()["data"]


def ids(rows) -> list[str]:
    return sorted(row["id"] for row in rows)


def kinds(entries) -> dict[str, int]:
    counted: dict[str, int] = {}
    for entry in entries:
        counted[entry["kind"]] = counted.get(entry["kind"], 0) + 1
    return counted


class DatedListSource(Source):
    """A source like any other (Anthropic's GET /v1/models shape, normalised the simplest way):
    the lifecycle comes with publishing, whichever source publishes."""

    name = kind = "anthropic"
    label = "Anthropic at anthropic.test"
    upstream = "Anthropic"
    interval_seconds = 900.0
    catalogs = (chat_catalog("anthropic", "anthropic", live_label="api"),)

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def fetch(self, previous: RefreshStatus) -> Fetched:
        document = self._http.request_json("GET", f"{ANTHROPIC}/models", self.label)
        rows = [
            {"id": record["id"], "name": record["display_name"], "provider": "Anthropic",
             "released_at": released_at(record["created_at"])}
            for record in document["data"]
        ]  # fmt: skip
        return Fetched({"anthropic": rows})


# --- Anthropic, 2025-04-28 then 2025-11-06 ------------------------------------------------

APRIL, NOVEMBER = "2025-04-28T21:57:24Z", "2025-11-06T03:56:34Z"
ADDED = ["claude-haiku-4-5-20251001", "claude-opus-4-1-20250805", "claude-opus-4-20250514",
         "claude-sonnet-4-20250514", "claude-sonnet-4-5-20250929"]  # fmt: skip
GONE = ["claude-2.0", "claude-2.1", "claude-3-5-sonnet-20240620", "claude-3-5-sonnet-20241022",
        "claude-3-sonnet-20240229"]  # fmt: skip


@pytest.fixture
def anthropic(requests_mock, settings):
    """A refresher of the dated-list source on a process store, at the first recording's date."""
    clock = Clock(utc(APRIL))
    store = ProcessStore()
    registry = Registry([DatedListSource(HttpClient(5.0, 1 << 20))])
    refresher = Refresher(settings, store, registry, clock=clock)
    requests_mock.get(f"{ANTHROPIC}/models", content=fixture_bytes("providers/anthropic_v1-models_1.json"))
    assert refresher.run("anthropic").outcome == "published"
    clock.now = utc(NOVEMBER)
    requests_mock.get(f"{ANTHROPIC}/models", content=fixture_bytes("providers/anthropic_v1-models_3.json"))
    assert refresher.run("anthropic", force=True).outcome == "published"
    return clock, store, registry, refresher


def feed(store, registry, **args) -> dict:
    return json.loads(changes_answer(store, registry, MultiDict(args)).body)["data"]


def test_anthropic_replay_records_five_added_five_removed_four_renamed(anthropic):
    _, store, registry, _ = anthropic
    answer = feed(store, registry, since=APRIL)
    assert answer["history_from"] == APRIL and answer["total"] == 14
    assert kinds(answer["changes"]) == {"added": 5, "changed": 4, "removed": 5}
    assert {entry["at"] for entry in answer["changes"]} == {NOVEMBER}
    assert ids(e for e in answer["changes"] if e["kind"] == "added") == ADDED
    assert ids(e for e in answer["changes"] if e["kind"] == "removed") == GONE
    renamed = {e["id"]: e["changes"] for e in answer["changes"] if e["kind"] == "changed"}
    assert renamed["claude-3-7-sonnet-20250219"] == {
        "name": {"before": "Claude 3.7 Sonnet", "after": "Claude Sonnet 3.7"}
    }
    assert sorted(renamed) == ["claude-3-5-haiku-20241022", "claude-3-7-sonnet-20250219", "claude-3-haiku-20240307",
                               "claude-3-opus-20240229"]  # fmt: skip
    # Oldest first; within a publish by catalog, kind and id.
    assert [e["kind"] for e in answer["changes"]] == ["added"] * 5 + ["changed"] * 4 + ["removed"] * 5
    assert all(e["catalog"] == e["source"] == "anthropic" for e in answer["changes"])


def test_anthropic_replay_rows_tombstones_and_is_new_under_the_frozen_clock(anthropic):
    _, store, _, _ = anthropic
    snapshot = store.read("anthropic")
    rows = {row["id"]: row for row in snapshot.data["models"]}
    assert len(rows) == 9 and snapshot.fetched_at == utc(NOVEMBER)
    assert {rows[model]["first_seen_at"] for model in ADDED} == {NOVEMBER}
    assert rows["claude-3-opus-20240229"]["first_seen_at"] is None  # a baseline row
    # By Anthropic's own dates, nothing is new on 2025-11-06: Haiku 4.5 came out 22 days before.
    assert [row["id"] for row in rows.values() if row["is_new"]] == []
    assert rows["claude-haiku-4-5-20251001"]["released_at"] == "2025-10-15T00:00:00Z"
    assert ids(snapshot.removed_rows) == GONE
    assert {row["removed_at"] for row in snapshot.removed_rows} == {NOVEMBER}
    assert all(row["is_new"] is False for row in snapshot.removed_rows)
    # Tombstones are listed only when asked for.
    filtered = FilteredAnswers()
    assert ids(filtered.get(snapshot, CatalogFilter(include_removed=True)).data["models"]) == sorted([*rows, *GONE])
    assert filtered.get(snapshot, CatalogFilter(include_removed=True)).data["total"] == 14
    assert filtered.get(snapshot, CatalogFilter(deprecated=False)).data["total"] == 9


def test_anthropic_feed_bounds(anthropic):
    _, store, registry, _ = anthropic
    assert feed(store, registry, since=NOVEMBER)["changes"] == []  # entries newer than since only
    assert feed(store, registry, since="2025-11-06T03:56:33Z")["total"] == 14
    with pytest.raises(HistoryGone) as gone:
        feed(store, registry, since="2025-04-28T21:57:23Z")  # a second before the baseline
    assert gone.value.oldest == APRIL


def test_a_failed_poll_expires_tombstones_when_their_time_is_up(anthropic, requests_mock):
    clock, store, _, refresher = anthropic
    before = store.read("anthropic")
    requests_mock.get(f"{ANTHROPIC}/models", status_code=503)
    clock.now = utc(NOVEMBER) + 30 * 86_400 - 1
    assert refresher.run("anthropic", force=True).outcome == "failed"
    assert store.read("anthropic") is before  # no boundary passed: nothing re-encoded
    clock.now += 1
    assert refresher.run("anthropic", force=True).outcome == "failed"
    after = store.read("anthropic")
    assert after.removed_rows == [] and after.etag != before.etag
    assert after.data["models"] == before.data["models"] and after.fetched_at == before.fetched_at
    assert store.read_histories(("anthropic",))["anthropic"].tombstones == {}


# --- OpenRouter embeddings, 2025-12-14 then 2026-08-18 -------------------------------------

DECEMBER, AUGUST = "2025-12-14T12:00:00Z", "2026-08-18T12:00:00Z"
EMBEDDINGS = "/api/models/openrouter/embeddings"


@pytest.fixture
def embeddings_app(requests_mock, make_settings):
    app = create_app(make_settings(openrouter_api_key=OPENROUTER_KEY, openrouter_base_url=OR_BASE))
    clock = Clock(utc(DECEMBER))
    refresher = frozen_refresher(app, clock)
    requests_mock.get(
        f"{OR_BASE}/embeddings/models", content=fixture_bytes("providers/openrouter_api-v1-embeddings-models_1.json")
    )
    assert refresher.run("embeddings").outcome == "published"
    clock.now = utc(AUGUST)
    requests_mock.get(f"{OR_BASE}/embeddings/models", content=fixture_bytes("openrouter/embeddings_models.json"))
    assert refresher.run("embeddings", force=True).outcome == "published"
    return app, clock, refresher


def test_openrouter_embeddings_replay_over_http(embeddings_app, auth_headers):
    app, _, _ = embeddings_app
    answer = data(app, f"/api/models/changes?since={DECEMBER}&source=embeddings", auth_headers)
    assert kinds(answer["changes"]) == {"added": 13, "changed": 1}
    changed = next(e for e in answer["changes"] if e["kind"] == "changed")
    assert (changed["id"], changed["changes"]) == ("baai/bge-m3", {"context": {"before": 8192, "after": 8194}})
    listed = data(app, EMBEDDINGS, auth_headers)["models"]
    assert len(listed) == 34 and sum(row["first_seen_at"] == AUGUST for row in listed) == 13
    # New by OpenRouter's own date (created): only voyage-code-4, listed 2026-08-13.
    assert ids(data(app, EMBEDDINGS + "?new=true", auth_headers)["models"]) == ["voyageai/voyage-code-4"]
    assert data(app, EMBEDDINGS + "?new=false", auth_headers)["total"] == 33


def test_change_feed_etag_and_304(embeddings_app, auth_headers):
    app, _, _ = embeddings_app
    path = f"/api/models/changes?since={DECEMBER}"
    first = get(app, path, auth_headers)
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = get(app, path, {**auth_headers, "If-None-Match": first.headers["ETag"]}, status=304)
    assert again.get_data() == b""
    zipped = get(app, path, {**auth_headers, "Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and zipped.headers["ETag"] != first.headers["ETag"]


def test_change_feed_errors(embeddings_app, auth_headers):
    app, _, _ = embeddings_app
    gone = get(app, "/api/models/changes?since=2025-12-01T00:00:00Z", auth_headers, status=410).get_json()
    assert gone["error"]["code"] == "gone" and gone["error"]["oldest"] == DECEMBER
    for query, parameter in (("", "since"), ("?since=2025-12-14", "since"),
                             (f"?since={DECEMBER}&source=nowhere", "source")):  # fmt: skip
        error = get(app, "/api/models/changes" + query, auth_headers, status=400).get_json()["error"]
        assert error["parameter"] == parameter
    assert get(app, f"/api/models/changes?since={DECEMBER}", {}, status=401).get_json()["success"] is False
    # Catalogs with no live data yet have no history: they neither answer entries nor 410.
    empty = data(app, "/api/models/changes?since=2000-01-01T00:00:00Z&source=ollama", auth_headers)
    assert empty == {"changes": [], "total": 0, "history_from": None}


def test_a_failed_poll_redates_is_new_and_keeps_the_fetch_time(embeddings_app, auth_headers, requests_mock):
    app, clock, refresher = embeddings_app
    requests_mock.get(f"{OR_BASE}/embeddings/models", status_code=503)
    clock.now = utc("2026-08-27T16:01:52Z")  # voyage-code-4's fortnight is over
    assert refresher.run("embeddings", force=True).outcome == "failed"
    assert data(app, EMBEDDINGS + "?new=true", auth_headers)["models"] == []
    status = data(app, "/api/models/status", auth_headers)["catalogs"]["embeddings"]
    assert status["fetched_at"] == "2026-08-18T12:00:00+00:00" and status["source"] == "api"


# --- OpenRouter LLMs: deprecated by expiration_date ----------------------------------------


def test_deprecated_from_thirty_days_before_expiry(requests_mock, make_settings, auth_headers):
    app = create_app(make_settings(openrouter_api_key=OPENROUTER_KEY, openrouter_base_url=OR_BASE))
    clock = Clock(utc(AUGUST))
    refresher = frozen_refresher(app, clock)
    requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    assert refresher.run("openrouter").outcome == "published"
    deprecated = data(app, "/api/models/openrouter?deprecated=true", auth_headers)["models"]
    assert [(row["id"], row["expires_on"]) for row in deprecated] == [
        ("nvidia/nemotron-nano-12b-v2-vl:free", "2026-08-24")
    ]
    assert data(app, "/api/models/openrouter?deprecated=false", auth_headers)["total"] == 413
    # The baseline's rows are new only by OpenRouter's date: 16 listed in the last 14 days.
    assert data(app, "/api/models/openrouter?new=true", auth_headers)["total"] == 16
    # glm-4.5 expires 2026-12-31: its warning begins 2026-12-01, seen even while polls fail.
    requests_mock.get(f"{OR_BASE}/models", status_code=500)
    clock.now = utc("2026-12-01T00:00:00Z")
    assert refresher.run("openrouter", force=True).outcome == "failed"
    deprecated = data(app, "/api/models/openrouter?deprecated=true", auth_headers)["models"]
    assert ids(deprecated) == ["nvidia/nemotron-nano-12b-v2-vl:free", "z-ai/glm-4.5"]
    assert data(app, "/api/models/openrouter?new=true", auth_headers)["total"] == 0


# --- Ollama: tags_4 (2025-08) then tags_1 (2026-01), cloud models ---------------------------

T4, T1 = "2025-08-06T12:00:00Z", "2026-01-31T12:00:00Z"
CLOUD = ["deepseek-v3.1:671b-cloud", "glm-4.7:cloud", "gpt-oss:120b-cloud"]


def replay_ollama(app):
    clock = Clock(utc(T4))
    refresher = frozen_refresher(app, clock)
    assert refresher.run("ollama").outcome == "published"
    clock.now = utc(T1)
    return clock, refresher


@pytest.fixture
def ollama_app(requests_mock, make_settings):
    requests_mock.post(f"{OLLAMA_BASE}/api/show", status_code=404)  # names and families decide
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_4.json"))
    app = create_app(make_settings(ollama_base_url=OLLAMA_BASE))
    _, refresher = replay_ollama(app)
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_1.json"))
    assert refresher.run("ollama", force=True).outcome == "published"
    return app


def test_ollama_replay_counts_tombstones_and_new_models(ollama_app, auth_headers):
    app = ollama_app
    answer = data(app, f"/api/models/changes?since={T4}&source=ollama", auth_headers)
    assert answer["total"] == 38 and answer["history_from"] == T4
    by_catalog = {name: kinds(e for e in answer["changes"] if e["catalog"] == name)
                  for name in ("ollama", "ollama_embeddings")}  # fmt: skip
    assert by_catalog == {"ollama": {"added": 21, "removed": 16}, "ollama_embeddings": {"added": 1}}
    assert all(entry["source"] == "ollama" for entry in answer["changes"])
    assert data(app, f"/api/models/changes?since={T4}&source=ollama_embeddings", auth_headers)["total"] == 1
    listed = data(app, "/api/models/ollama", auth_headers)
    assert listed["total"] == 21 and all(row["is_new"] for row in listed["models"])
    with_removed = data(app, "/api/models/ollama?include_removed=true", auth_headers)
    removed = [row for row in with_removed["models"] if "removed_at" in row]
    assert with_removed["total"] == 37 and len(removed) == 16
    assert {row["removed_at"] for row in removed} == {T1} and not any(row["is_new"] for row in removed)
    assert ids(data(app, "/api/models/ollama/embeddings?new=true", auth_headers)["models"]) == [
        "nomic-embed-text:latest"
    ]


def test_ollama_cloud_models_are_remote_and_local_leaves_them_out(ollama_app, auth_headers):
    app = ollama_app
    rows = data(app, "/api/models/ollama", auth_headers)["models"]
    assert ids(row for row in rows if row["remote"]) == CLOUD
    local = data(app, "/api/models/ollama?local=true", auth_headers)["models"]
    assert len(local) == 18 and not any(row["remote"] for row in local)
    assert ids(data(app, "/api/models/ollama?local=false", auth_headers)["models"]) == CLOUD
    assert data(app, "/api/models/ollama/embeddings?local=true", auth_headers)["total"] == 1
    # Hosted rows have no `remote`: local=true keeps them all.
    assert data(app, "/api/models/openrouter?local=true", auth_headers)["models"] == data(
        app, "/api/models/openrouter", auth_headers)["models"]  # fmt: skip


@pytest.mark.parametrize("query", ["new=yes", "deprecated=1", "include_removed=", "local=TRUE"])
def test_lifecycle_filters_take_true_or_false(client, auth_headers, query):
    response = client.get(f"/api/models/ollama?{query}", headers=auth_headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["parameter"] == query.split("=")[0]


# --- Embedding compatibility ---------------------------------------------------------------

COMPATIBILITY = "/api/models/embeddings/compatibility"


@pytest.fixture
def embedding_app(requests_mock, make_settings):
    requests_mock.get(f"{OR_BASE}/embeddings/models", content=fixture_bytes("openrouter/embeddings_models.json"))
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_2.json"))
    requests_mock.post(f"{OLLAMA_BASE}/api/show", status_code=404)
    app = create_app(make_settings(openrouter_api_key=OPENROUTER_KEY, openrouter_base_url=OR_BASE,
                                   ollama_base_url=OLLAMA_BASE))  # fmt: skip
    service = app.extensions["catalog_service"]
    assert service.refresher.run("embeddings").outcome == service.refresher.run("ollama").outcome == "published"
    return app


def verdict_of(app, headers, current, candidate, status=200):
    return get(app, f"{COMPATIBILITY}?current={current}&candidate={candidate}", headers, status).get_json()


@pytest.mark.parametrize(
    ("current", "candidate", "reason"),
    [
        # The same weights, served by OpenRouter and by the local Ollama: same vectors.
        ("openrouter:baai/bge-m3", "ollama:bge-m3:latest", None),
        ("embeddings:openai/text-embedding-3-large", "openrouter:openai/text-embedding-3-large:batch", None),
        # 1024 both, other weights: never.
        ("openrouter:baai/bge-large-en-v1.5", "ollama_embeddings:bge-m3:latest", "different_model"),
        ("openrouter:openai/text-embedding-3-small", "openrouter:openai/text-embedding-3-large", "different_model"),
        # A local derivative of bge-m3: its weights are not known.
        ("ollama:bge-m3:latest", "ollama:bge-m3-unified:latest", "unknown_model"),
    ],
)
def test_compatibility_verdicts(embedding_app, auth_headers, current, candidate, reason):
    answer = verdict_of(embedding_app, auth_headers, current, candidate)["data"]
    assert answer["reason"] == reason and answer["compatible"] is (reason is None)


def test_compatibility_answer_names_what_it_compared(embedding_app, auth_headers):
    answer = verdict_of(embedding_app, auth_headers, "openrouter:baai/bge-m3", "ollama:bge-m3:latest")["data"]
    assert answer["current"] == {"catalog": "embeddings", "id": "baai/bge-m3", "model_key": "BAAI/bge-m3",
                                 "dimensions": 1024}  # fmt: skip
    assert answer["candidate"] == {"catalog": "ollama_embeddings", "id": "bge-m3:latest", "model_key": "BAAI/bge-m3",
                                   "dimensions": 1024}  # fmt: skip
    assert answer["reindex_required"] is False


def test_compatibility_errors(embedding_app, auth_headers):
    missing = verdict_of(embedding_app, auth_headers, "openrouter:baai/bge-m3", "ollama:nomic-embed-text:latest", 404)
    assert missing["error"]["parameter"] == "candidate" and "nomic-embed-text:latest" in missing["error"]["message"]
    for current, parameter in (("nowhere:x", "current"), ("baai/bge-m3", "current"),
                               ("openrouter:", "current")):  # fmt: skip
        error = verdict_of(embedding_app, auth_headers, current, "ollama:bge-m3:latest", 400)["error"]
        assert error["parameter"] == parameter
    # A chat catalog is not an embedding catalog.
    assert verdict_of(embedding_app, auth_headers, "ollama:bge-m3:latest", "openrouter_llms:x", 400)
    assert get(embedding_app, f"{COMPATIBILITY}?current=ollama:bge-m3:latest", auth_headers, 400)


def test_a_removed_model_can_still_be_compared(embedding_app, auth_headers, requests_mock):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_3.json"))  # no bge-m3 any more
    service = embedding_app.extensions["catalog_service"]
    assert service.refresher.run("ollama", force=True).outcome == "published"
    answer = verdict_of(embedding_app, auth_headers, "ollama:bge-m3:latest", "openrouter:baai/bge-m3")["data"]
    assert answer["compatible"] is True and "removed_at" in answer["current"]


def test_compatibility_on_curated_rows(client, auth_headers):
    response = client.get(f"{COMPATIBILITY}?current=openrouter:openai/text-embedding-3-small"
                          "&candidate=embeddings:openai/text-embedding-3-small", headers=auth_headers)  # fmt: skip
    assert response.get_json()["data"]["compatible"] is True


# --- Redis: the history lives with the snapshots -----------------------------------------------


def test_history_survives_a_restart_with_redis(requests_mock, redis_url, make_settings, auth_headers):
    requests_mock.post(f"{OLLAMA_BASE}/api/show", status_code=404)
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_4.json"))
    settings = make_settings(ollama_base_url=OLLAMA_BASE, redis_url=redis_url)
    first = create_app(settings)
    clock, refresher = replay_ollama(first)
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_1.json"))
    assert refresher.run("ollama", force=True).outcome == "published"
    path = f"/api/models/changes?since={T4}"
    before = get(first, path, auth_headers).get_data()

    restarted = create_app(settings)  # a new process: nothing but Redis in common
    assert get(restarted, path, auth_headers).get_data() == before
    assert json.loads(before)["data"]["total"] == 38
    assert data(restarted, "/api/models/ollama?include_removed=true", auth_headers)["total"] == 37
    # The next poll of the same list records nothing and keeps every first sighting.
    clock.now = utc(T1) + 600
    assert frozen_refresher(restarted, clock).run("ollama", force=True).outcome == "published"
    assert data(restarted, path, auth_headers)["total"] == 38
    rows = data(restarted, "/api/models/ollama", auth_headers)["models"]
    assert {row["first_seen_at"] for row in rows} == {T1}


def history_updates() -> list[tuple[str, HistoryUpdate]]:
    """Three publishes of one catalog, 100 days apart, the last ones with entries to trim."""
    updates = []
    state = None
    for at, rows in ((1_000_000, ["a", "b"]), (1_000_000 + 100 * 86_400, ["b", "c", "d"]),
                     (1_000_000 + 101 * 86_400, ["e"])):  # fmt: skip
        state, entries = advance(state, [{"id": i, "name": i} for i in rows], at, "cat", "src", 30)
        updates.append(("cat", HistoryUpdate(state, tuple(entries), at - 90 * 86_400, 4)))
    return updates


def redis_store_for(url: str):
    return redis_store(Settings(jwt_secret_key=JWT_SECRET, redis_url=url), check_seconds=0.05)


def test_redis_and_process_stores_keep_the_same_bounded_history(redis_url):
    stores = [ProcessStore(), redis_store_for(redis_url)]
    for store in stores:
        for name, update in history_updates():
            lock = store.acquire_lock("src", 10)
            assert store.publish(lock, {}, RefreshStatus("src"), {name: update})
            store.release_lock(lock)
    process, shared = (store.read_changes(("cat",), 0) for store in stores)
    assert process == shared
    # The third publish: 4 entries (b, c, d removed; e added); the second's 3 were cut to keep
    # at most 4, so the history is complete only from the second publish on.
    assert process["cat"].history_from == 1_000_000 + 100 * 86_400
    assert [json.loads(item)["kind"] for _, item in process["cat"].entries] == ["added"] + ["removed"] * 3
    for store in stores:
        assert store.read_histories(("cat",))["cat"] == history_updates()[-1][1].state


def test_a_publish_after_the_lock_expired_writes_no_history(redis_url):
    store = redis_store_for(redis_url)
    lock = store.acquire_lock("src", 0.05)
    time.sleep(0.1)  # the TTL is the behaviour under test
    other = store.acquire_lock("src", 10)
    assert other is not None
    name, update = history_updates()[0]
    assert store.publish(lock, {}, RefreshStatus("src"), {name: update}) is False
    assert store.read_histories(("cat",)) == {"cat": None}
    assert store.read_changes(("cat",), 0)["cat"].history_from is None
    assert store.publish(other, {}, RefreshStatus("src"), {name: update}) is True
    assert isinstance(store.read_histories(("cat",))["cat"], CatalogHistory)


def test_an_unreachable_poll_in_between_is_not_everything_removed(requests_mock, make_settings, auth_headers):
    requests_mock.post(f"{OLLAMA_BASE}/api/show", status_code=404)
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_4.json"))
    app = create_app(make_settings(ollama_base_url=OLLAMA_BASE))
    clock, refresher = replay_ollama(app)
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", status_code=500)
    assert refresher.run("ollama", force=True).outcome == "failed"
    assert data(app, "/api/models/ollama?include_removed=true", auth_headers)["source"] == "ollama_unreachable"
    clock.now += 60
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_4.json"))
    assert refresher.run("ollama", force=True).outcome == "published"
    assert data(app, f"/api/models/changes?since={T4}", auth_headers)["changes"] == []
    assert data(app, "/api/models/ollama?include_removed=true", auth_headers)["total"] == 16
