"""Soak: steady load on all three endpoints while the upstream flaps and Redis restarts twice.

About two minutes, loopback only. Run it alone with `pytest -m soak`; SOAK_SECONDS shortens it.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import threading
import time

import pytest
import requests

from harness.processes import (
    serve_recordings,
    start_gunicorn,
    start_refresher,
    stop,
)
from harness.redis_server import free_port
from tests.support.processes import assert_once_per_interval, call_gaps, catalog_env
from tests.support.secrets import make_token

INTERVAL = 3.0
FLAP_SECONDS = 5.0  # how long the upstream stays in each mode
ENDPOINTS = ("/api/models/openrouter", "/api/models/openrouter/embeddings", "/api/models/ollama")
UPSTREAM_PATHS = ("/api/v1/models", "/api/v1/embeddings/models", "/api/tags")


@dataclasses.dataclass(frozen=True)
class Answer:
    """One request of the load: when it started, what it asked, what came back."""

    at: float  # monotonic seconds
    endpoint: str
    status: int  # 0: no HTTP answer at all
    source: str | None  # data.source, or None when the body has none
    seconds: float
    problem: str | None = None  # why there is no status or source


def ask(session: requests.Session, url: str, headers: dict, endpoint: str) -> Answer:
    """One request, recorded whatever comes back: an error status, a body without data, no answer."""
    started = time.monotonic()
    try:
        response = session.get(url, headers=headers, timeout=5)
    except requests.RequestException as exc:
        return Answer(started, endpoint, 0, None, time.monotonic() - started, type(exc).__name__)
    seconds = time.monotonic() - started
    try:
        source = response.json()["data"]["source"]
    except (ValueError, KeyError, TypeError) as exc:
        return Answer(started, endpoint, response.status_code, None, seconds, f"no data.source: {exc!r}")
    return Answer(started, endpoint, response.status_code, source, seconds)


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
    answers: list[Answer] = []
    crashed: list[str] = []  # load threads that died: their answers would be missing
    done = threading.Event()

    def load() -> None:
        session = requests.Session()
        try:
            while not done.is_set():
                for endpoint in ENDPOINTS:
                    answers.append(ask(session, base + endpoint, headers, endpoint))
                    time.sleep(0.02)
        except Exception as exc:  # recorded, and the test fails on it below
            crashed.append(repr(exc))
            raise

    def flap() -> None:
        modes = [("ok", 200), ("hang", 200), ("ok", 200), ("ok", 503)]
        step = 0
        while not done.wait(FLAP_SECONDS):
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
        elapsed = time.monotonic() - started  # the load's length, without the shutdown below
        for thread in threads:
            thread.join(timeout=10)
        stop(web)
        stop(refresher)

    calls = {path: upstream.count(path) for path in UPSTREAM_PATHS}
    statuses = collections.Counter(answer.status for answer in answers)
    sources = collections.Counter(answer.source for answer in answers)
    seconds = sorted(answer.seconds for answer in answers)
    # Latency is bench/'s business (bench/run.py measures the service while its upstream hangs);
    # here it is printed, not judged.
    print(
        f"\nsoak: {len(answers)} requests in {elapsed:.0f}s, p99 {seconds[len(seconds) * 99 // 100] * 1000:.0f} ms, "
        f"slowest {seconds[-1] * 1000:.0f} ms, statuses {dict(statuses)}, sources {dict(sources)}, "
        f"upstream calls {calls} (interval {INTERVAL:g}s)"
    )
    assert crashed == []
    # Every answer of the whole run was a 2xx with a source: no error, no body without data.
    failures = [answer for answer in answers if not 200 <= answer.status < 300 or answer.source is None]
    assert failures == [], failures[:5]
    # The load ran throughout: every endpoint was asked in every flap step (ok, hang, ok, 503),
    # including those around the Redis restarts.
    for step in range(int(elapsed // FLAP_SECONDS)):
        window = (started + step * FLAP_SECONDS, started + (step + 1) * FLAP_SECONDS)
        asked = {answer.endpoint for answer in answers if window[0] <= answer.at < window[1]}
        assert asked == set(ENDPOINTS), (step, asked)
    # Once live data was served, an OpenRouter endpoint never fell back to curated data.
    for endpoint in ENDPOINTS[:2]:
        served = [
            answer.source for answer in sorted(answers, key=lambda answer: answer.at) if answer.endpoint == endpoint
        ]
        assert "api" in served
        assert "curated_fallback" not in served[served.index("api") :], endpoint
    assert "ollama" in sources
    # One upstream call per catalog per interval, flapping or not.
    for path in UPSTREAM_PATHS:
        assert_once_per_interval(call_gaps(upstream.times(path)), INTERVAL)
