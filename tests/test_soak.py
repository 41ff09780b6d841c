"""Soak: steady load on all three endpoints while the upstream flaps and Redis restarts twice.

About two minutes, loopback only. Run it alone with `pytest -m soak`; SOAK_SECONDS shortens it.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import requests

from tests.support.secrets import make_token
from harness.processes import (
    serve_recordings,
    start_gunicorn,
    start_refresher,
    stop,
)
from tests.support.processes import catalog_env
from harness.redis_server import free_port

INTERVAL = 3.0
ENDPOINTS = ("/api/models/openrouter", "/api/models/openrouter/embeddings", "/api/models/ollama")
UPSTREAM_PATHS = ("/api/v1/models", "/api/v1/embeddings/models", "/api/tags")


@pytest.mark.soak
@pytest.mark.system
def test_soak(upstream, redis_url, redis_server):
    duration = float(os.environ.get("SOAK_SECONDS", "120"))
    serve_recordings(upstream)
    env = catalog_env(upstream, redis_url, INTERVAL, UPSTREAM_TIMEOUT_SECONDS="1")
    port = free_port()
    web = start_gunicorn(port, env)
    refresher = start_refresher(env)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {make_token(exp=int(time.time()) + 3600)}"}
    samples: list[tuple[float, str, int, float, str]] = []  # (at, endpoint, status, seconds, source)
    done = threading.Event()

    def load() -> None:
        session = requests.Session()
        while not done.is_set():
            for endpoint in ENDPOINTS:
                started = time.monotonic()
                try:
                    response = session.get(base + endpoint, headers=headers, timeout=5)
                    status, source = response.status_code, response.json()["data"]["source"]
                except requests.RequestException as exc:
                    status, source = 0, type(exc).__name__
                samples.append((started, endpoint, status, time.monotonic() - started, source))
                time.sleep(0.02)

    def flap() -> None:
        modes = [("ok", 200), ("hang", 200), ("ok", 200), ("ok", 503)]
        step = 0
        while not done.wait(5.0):
            mode, status = modes[step % len(modes)]
            for path in UPSTREAM_PATHS:
                route = upstream.routes[("GET", path)]
                route.mode, route.status = mode, status
            step += 1

    started = time.monotonic()
    threads = [threading.Thread(target=load) for _ in range(3)] + [threading.Thread(target=flap)]
    try:
        for thread in threads:
            thread.start()
        for restart_at in (duration / 3, 2 * duration / 3):
            time.sleep(max(0.0, started + restart_at - time.monotonic()))
            redis_server.restart_empty()
        time.sleep(max(0.0, started + duration - time.monotonic()))
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=10)
        stop(web)
        stop(refresher)
    elapsed = time.monotonic() - started

    calls = {path: upstream.count(path) for path in UPSTREAM_PATHS}
    print(f"\nsoak: {len(samples)} requests in {elapsed:.0f}s, slowest {max(s[3] for s in samples) * 1000:.0f} ms, "
          f"statuses {sorted({s[2] for s in samples})}, upstream calls {calls} (interval {INTERVAL:g}s)")
    assert len(samples) > 1000
    failures = [sample for sample in samples if not 200 <= sample[2] < 300]
    assert failures == [], failures[:5]
    slow = [sample for sample in samples if sample[3] > 0.25]
    assert slow == [], slow[:5]
    # Once live data was served, an OpenRouter endpoint never fell back to curated data.
    for endpoint in ENDPOINTS[:2]:
        sources = [sample[4] for sample in sorted(samples) if sample[1] == endpoint]
        assert "api" in sources
        assert "curated_fallback" not in sources[sources.index("api"):], endpoint
    # One upstream call per catalog per interval, flapping or not.
    for path in UPSTREAM_PATHS:
        times = upstream.times(path)
        assert len(times) <= elapsed / INTERVAL + 2, (path, len(times))
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert min(gaps) > INTERVAL * 0.5, (path, min(gaps))
