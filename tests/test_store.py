"""The store's fencing, the same in both tiers: a run that lost its lock publishes nothing."""

from __future__ import annotations

import time

import pytest

from app.redis_clients import redis_store
from app.status import RefreshStatus
from app.store import ProcessStore
from config import Settings
from tests.support.secrets import JWT_SECRET
from tests.support.snapshots import llm_snapshot

ROWS = [{"id": "openai/gpt-x", "name": "GPT X", "provider": "OpenAI", "context": 1000}]
STALE_ROWS = [{"id": "openai/gpt-x", "name": "stale", "provider": "OpenAI", "context": 1000}]


@pytest.fixture(params=["process", "redis"])
def store(request) -> ProcessStore:
    """The process tier alone, or the Redis tier on the suite's real Redis."""
    if request.param == "process":
        return ProcessStore()
    settings = Settings(jwt_secret_key=JWT_SECRET, redis_url=request.getfixturevalue("redis_url"))
    return redis_store(settings, check_seconds=0.05)


def outlived_lock(store: ProcessStore):
    """A lock whose TTL has run out, as a run that took too long holds it."""
    lock = store.acquire_lock("openrouter", 0.05)
    assert lock is not None
    time.sleep(0.1)  # past the TTL; sleeping longer only makes it more expired
    return lock


def test_a_late_publish_after_another_run_took_the_lock_is_refused(store):
    late = outlived_lock(store)
    current = store.acquire_lock("openrouter", 10)
    assert current is not None  # the expired lock was free to take
    newer = llm_snapshot(ROWS, "api", 2.0)
    assert store.publish(current, {"openrouter": newer}, RefreshStatus("openrouter", last_error="by current")) is True
    assert (
        store.publish(
            late,
            {"openrouter": llm_snapshot(STALE_ROWS, "api", 1.0)},
            RefreshStatus("openrouter", last_error="by late"),
        )
        is False
    )
    assert store.read("openrouter") == newer
    assert store.read_status("openrouter") == RefreshStatus("openrouter", last_error="by current")


def test_a_publish_after_the_lock_expired_is_refused_even_when_nobody_took_it(store):
    late = outlived_lock(store)
    assert (
        store.publish(
            late, {"openrouter": llm_snapshot(ROWS, "api", 1.0)}, RefreshStatus("openrouter", last_error="by late")
        )
        is False
    )
    assert store.read("openrouter") is None
    assert store.read_status("openrouter") is None


def test_a_publish_with_a_released_lock_is_refused(store):
    lock = store.acquire_lock("openrouter", 10)
    store.release_lock(lock)
    assert (
        store.publish(
            lock, {"openrouter": llm_snapshot(ROWS, "api", 1.0)}, RefreshStatus("openrouter", last_error="by released")
        )
        is False
    )
    assert store.read("openrouter") is None
    assert store.read_status("openrouter") is None
