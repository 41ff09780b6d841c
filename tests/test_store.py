"""The store's fencing, the same in both tiers: a run that lost its lock publishes nothing."""

from __future__ import annotations

import time

import pytest

from app.snapshot import LLMS, llm_snapshot
from app.store import ProcessStore, RedisStore

ROWS = [{"id": "openai/gpt-x", "name": "GPT X", "provider": "OpenAI", "context": 1000}]
STALE_ROWS = [{"id": "openai/gpt-x", "name": "stale", "provider": "OpenAI", "context": 1000}]


@pytest.fixture(params=["process", "redis"])
def store(request) -> ProcessStore:
    """The process tier alone, or the Redis tier on the suite's real Redis."""
    if request.param == "process":
        return ProcessStore()
    return RedisStore(request.getfixturevalue("redis_url"), check_seconds=0.05)


def outlived_lock(store: ProcessStore):
    """A lock whose TTL has run out, as a run that took too long holds it."""
    lock = store.acquire_lock(LLMS, 0.05)
    assert lock is not None
    time.sleep(0.1)  # past the TTL; sleeping longer only makes it more expired
    return lock


def test_a_late_publish_after_another_run_took_the_lock_is_refused(store):
    late = outlived_lock(store)
    current = store.acquire_lock(LLMS, 10)
    assert current is not None  # the expired lock was free to take
    newer = llm_snapshot(ROWS, "api", 2.0)
    assert store.publish(current, {LLMS: newer}, {"by": "current"}) is True
    assert store.publish(late, {LLMS: llm_snapshot(STALE_ROWS, "api", 1.0)}, {"by": "late"}) is False
    assert store.read(LLMS) == newer
    assert store.read_status(LLMS) == {"by": "current"}


def test_a_publish_after_the_lock_expired_is_refused_even_when_nobody_took_it(store):
    late = outlived_lock(store)
    assert store.publish(late, {LLMS: llm_snapshot(ROWS, "api", 1.0)}, {"by": "late"}) is False
    assert store.read(LLMS) is None
    assert store.read_status(LLMS) is None


def test_a_publish_with_a_released_lock_is_refused(store):
    lock = store.acquire_lock(LLMS, 10)
    store.release_lock(lock)
    assert store.publish(lock, {LLMS: llm_snapshot(ROWS, "api", 1.0)}, {"by": "released"}) is False
    assert store.read(LLMS) is None
    assert store.read_status(LLMS) is None
