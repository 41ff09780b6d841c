"""The snapshot store against a real Redis server that the suite starts itself."""

from __future__ import annotations

import dataclasses
import time

import pytest

from app import create_app
from app.redis_clients import redis_store
from app.status import RefreshStatus
from app.store import RedisStore, StoreUnavailable
from config import Settings
from tests.support.secrets import JWT_SECRET, OPENROUTER_KEY
from tests.support.snapshots import llm_snapshot, ollama_snapshot

ROWS = [{"id": "openai/gpt-x", "name": "GPT X", "provider": "OpenAI", "context": 1000}]


def make_store(url: str, timeout_seconds: float = 0.25, **options) -> RedisStore:
    settings = Settings(jwt_secret_key=JWT_SECRET, redis_url=url, redis_timeout_seconds=timeout_seconds)
    return redis_store(settings, check_seconds=options.pop("check_seconds", 0.05), **options)


def publish(store, catalog, snapshot, status=None) -> bool:
    lock = store.acquire_lock(catalog, 10)
    assert lock is not None
    try:
        return store.publish(
            lock, {catalog: snapshot}, status or RefreshStatus(catalog, outcome="ok", rows=snapshot.rows)
        )
    finally:
        store.release_lock(lock)


def test_publish_is_seen_by_another_process(redis_url):
    writer, reader = make_store(redis_url), make_store(redis_url)
    assert reader.read("openrouter") is None
    snapshot = llm_snapshot(ROWS, "api", fetched_at=1234.5)
    assert publish(writer, "openrouter", snapshot)
    time.sleep(0.06)
    assert reader.read("openrouter") == snapshot
    assert reader.read_status("openrouter") == RefreshStatus("openrouter", outcome="ok", rows=1)


def test_within_the_check_interval_a_reader_answers_from_the_process_tier(redis_url):
    writer, reader = make_store(redis_url), make_store(redis_url, check_seconds=3600)
    first = llm_snapshot(ROWS, "api", 1.0)
    publish(writer, "openrouter", first)
    assert reader.read("openrouter") == first
    publish(writer, "openrouter", llm_snapshot([dict(ROWS[0], context=2000)], "api", 2.0))
    assert reader.read("openrouter") == first  # Redis is not asked again before the interval ends


def test_after_the_check_interval_a_reader_sees_the_new_snapshot(redis_url):
    writer, reader = make_store(redis_url), make_store(redis_url, check_seconds=0.2)
    publish(writer, "openrouter", llm_snapshot(ROWS, "api", 1.0))
    reader.read("openrouter")
    second = llm_snapshot([dict(ROWS[0], context=2000)], "api", 2.0)
    publish(writer, "openrouter", second)
    time.sleep(0.25)  # past the interval; a slower machine only sleeps longer
    assert reader.read("openrouter") == second


def test_lock_is_exclusive_and_released_only_by_its_owner(redis_url):
    a, b = make_store(redis_url), make_store(redis_url)
    lock = a.acquire_lock("openrouter", 10)
    assert lock is not None
    assert b.acquire_lock("openrouter", 10) is None
    # Releasing someone else's lock does nothing.
    b.release_lock(dataclasses.replace(lock, token="not-the-owner"))
    assert b.acquire_lock("openrouter", 10) is None
    a.release_lock(lock)
    assert b.acquire_lock("openrouter", 10) is not None


def test_publish_after_losing_the_lock_is_refused(redis_url):
    a, b = make_store(redis_url), make_store(redis_url)
    slow = a.acquire_lock("openrouter", 0.1)
    time.sleep(0.2)  # the TTL ran out: the lock is free for someone else
    fast = b.acquire_lock("openrouter", 10)
    assert fast is not None
    newer = llm_snapshot(ROWS, "api", 2.0)
    assert b.publish(fast, {"openrouter": newer}, RefreshStatus("openrouter", outcome="ok", last_error="by b"))
    late = llm_snapshot([dict(ROWS[0], name="stale")], "api", 1.0)
    assert a.publish(slow, {"openrouter": late}, RefreshStatus("openrouter", outcome="ok", last_error="by a")) is False
    reader = make_store(redis_url)
    assert reader.read("openrouter") == newer
    assert reader.read_status("openrouter").last_error == "by b"


def test_snapshot_and_status_land_together(redis_url, redis_server):
    store = make_store(redis_url)
    snapshot = ollama_snapshot([], fetched_at=5.0)
    publish(store, "ollama", snapshot, RefreshStatus("ollama", outcome="ok", rows=0))
    raw = redis_server.client()
    keys = sorted(key.decode() for key in raw.keys("*"))
    assert keys == ["catalog:snapshot:ollama", "catalog:status:ollama"]
    assert raw.hget("catalog:snapshot:ollama", "body") == snapshot.body


def test_key_prefix_separates_deployments(redis_url):
    one, two = make_store(redis_url, key_prefix="one:"), make_store(redis_url, key_prefix="two:")
    publish(one, "openrouter", llm_snapshot(ROWS, "api", 1.0))
    assert two.read("openrouter") is None


def test_reads_fall_back_to_the_process_tier_when_redis_stops(redis_url, redis_server):
    store = make_store(redis_url)
    snapshot = llm_snapshot(ROWS, "api", 1.0)
    publish(store, "openrouter", snapshot)
    assert store.read("openrouter") == snapshot
    redis_server.stop()
    time.sleep(0.06)
    assert store.read("openrouter") == snapshot
    assert store.ping() is False
    with pytest.raises(StoreUnavailable):
        store.acquire_lock("openrouter", 10)


def test_reads_answer_fast_while_redis_hangs(redis_url, redis_server):
    store = make_store(redis_url, timeout_seconds=0.2)
    snapshot = llm_snapshot(ROWS, "api", 1.0)
    publish(store, "openrouter", snapshot)
    redis_server.pause()
    try:
        time.sleep(0.06)
        started = time.monotonic()
        for _ in range(20):
            assert store.read("openrouter") == snapshot
        # One read pays the 0.2 s timeout; the next ones skip Redis during the 2 s back-off.
        # Reads that each waited for Redis would take 20 x 0.2 s = 4 s.
        assert time.monotonic() - started < 2.5
    finally:
        redis_server.resume()
    time.sleep(2.1)
    assert store.ping() is True


def test_redis_restarted_empty_keeps_serving_the_last_snapshot(redis_url, redis_server):
    store = make_store(redis_url)
    snapshot = llm_snapshot(ROWS, "api", 1.0)
    publish(store, "openrouter", snapshot)
    store.read("openrouter")
    redis_server.restart_empty()
    time.sleep(2.1)  # past any error back-off
    assert store.read("openrouter") == snapshot


def test_api_keeps_answering_200_while_redis_is_stopped(redis_url, redis_server, make_settings, auth_headers):
    app = create_app(make_settings(redis_url=redis_url, openrouter_api_key=OPENROUTER_KEY, snapshot_check_seconds=0.05))
    store = app.extensions["catalog_service"].store
    publish(store, "openrouter", llm_snapshot(ROWS, "api", 1.0))
    client = app.test_client()
    assert client.get("/api/models/openrouter", headers=auth_headers).get_json()["data"]["source"] == "api"
    redis_server.stop()
    for _ in range(30):
        response = client.get("/api/models/openrouter", headers=auth_headers)
        assert response.status_code == 200
        assert response.get_json()["data"]["source"] == "api"
        time.sleep(0.01)


def test_a_fresh_worker_serves_curated_fallback_while_redis_is_stopped(
    redis_url, redis_server, make_settings, auth_headers
):
    redis_server.stop()
    app = create_app(make_settings(redis_url=redis_url, openrouter_api_key=OPENROUTER_KEY))
    response = app.test_client().get("/api/models/openrouter/embeddings", headers=auth_headers)
    assert response.status_code == 200
    assert response.get_json()["data"]["source"] == "curated_fallback"
