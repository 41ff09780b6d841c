"""Multi-process claims, proven with real gunicorn and refresher processes on one real Redis."""

from __future__ import annotations

import json
import os
import re
import signal
import time

import psutil
import pytest
import redis
import requests

from harness.fake_upstream import fixture_bytes
from harness.processes import (
    output_of,
    serve_recordings,
    start_gunicorn,
    start_refresher,
    stop,
    wait_until,
)
from harness.redis_server import free_port
from tests.support.processes import assert_once_per_interval, call_gaps, catalog_env
from tests.support.secrets import JWT_SECRET, OPENROUTER_KEY, make_token

INTERVAL = 2.0


@pytest.mark.system
def test_many_workers_and_instances_fetch_once_per_interval(upstream, redis_url):
    serve_recordings(upstream)
    env = catalog_env(upstream, redis_url, INTERVAL, SCHEDULER_ENABLED="1")
    paths = ("/api/v1/models", "/api/v1/embeddings/models", "/api/tags")
    instances = [start_gunicorn(free_port(), env, "--workers", "3") for _ in range(2)]
    try:
        # Until every catalog was fetched five times, however long a loaded machine takes.
        fetched = wait_until(lambda: all(upstream.count(path) >= 5 for path in paths), 60)
    finally:
        outputs = [stop(instance) for instance in instances]
    assert fetched
    assert all("runs the refresh scheduler" in output for output in outputs)
    # Six schedulers ran; one call per catalog per interval, whoever made it.
    for path in paths:
        gaps = call_gaps(upstream.times(path))
        print(f"{path}: {len(gaps) + 1} upstream calls, 6 schedulers, interval {INTERVAL}s, gaps {gaps}")
        assert_once_per_interval(gaps, INTERVAL)


@pytest.mark.system
def test_requests_keep_getting_200_when_a_worker_dies_and_redis_stops(upstream, redis_url, redis_server):
    serve_recordings(upstream)
    port = free_port()
    server = start_gunicorn(port, catalog_env(upstream, redis_url, INTERVAL, SCHEDULER_ENABLED="1"), "--workers", "3")
    url = f"http://127.0.0.1:{port}/api/models/openrouter"
    headers = {"Authorization": f"Bearer {make_token()}", "Connection": "close"}
    try:
        assert wait_until(lambda: requests.get(url, headers=headers, timeout=2).json()["data"]["source"] == "api", 15)
        statuses, sources = [], set()
        for i in range(150):
            if i == 30:
                workers = psutil.Process(server.pid).children()
                os.kill(workers[0].pid, signal.SIGKILL)
            if i == 80:
                redis_server.stop()
            response = requests.get(url, headers=headers, timeout=5)
            statuses.append(response.status_code)
            sources.add(response.json()["data"]["source"])
            time.sleep(0.01)
        assert statuses == [200] * 150
        # Workers that saw the live snapshot keep serving it; a replacement worker that never
        # did serves the curated list: never an error.
        assert sources <= {"api", "curated_fallback"} and "api" in sources
    finally:
        stop(server)


@pytest.mark.system
def test_sigterm_stops_the_refresher_mid_run_and_the_next_one_takes_over(upstream, redis_url):
    upstream.set("/api/tags", fixture_bytes("ollama/tags_3.json"), delay=3.0)
    env = catalog_env(upstream, redis_url, INTERVAL, OPENROUTER_API_KEY="")
    first = start_refresher(env)
    assert wait_until(lambda: upstream.count("/api/tags") == 1, 15), output_of(first)
    time.sleep(0.5)  # the fetch is in progress
    signalled = time.monotonic()
    output = stop(first)
    assert first.returncode is not None
    assert time.monotonic() - signalled < 10  # within a compose stop grace period
    assert "refresh ollama: abandoned" in output, output
    client = redis.Redis.from_url(redis_url)
    assert client.exists("catalog:snapshot:ollama") == 0  # the abandoned run published nothing

    upstream.routes[("GET", "/api/tags")].delay = 0
    second = start_refresher(env)
    try:
        # Its lock was released (or would expire by its TTL): the next refresher publishes at once.
        assert wait_until(lambda: client.exists("catalog:snapshot:ollama") == 1, 15), output_of(second)
    finally:
        stop(second)


@pytest.mark.system
def test_metrics_totals_are_summed_over_workers(upstream, redis_url):
    serve_recordings(upstream)
    port = free_port()
    server = start_gunicorn(port, catalog_env(upstream, redis_url, INTERVAL), "--workers", "3")
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {make_token()}", "Connection": "close"}
    try:
        pids = set()
        for _ in range(90):
            assert requests.get(f"{base}/api/models/ollama", headers=headers, timeout=5).status_code == 200
        for _ in range(10):
            assert requests.get(f"{base}/api/models/ollama", timeout=5).status_code == 401
        text = requests.get(f"{base}/metrics", timeout=5).text
        pids = {worker.pid for worker in psutil.Process(server.pid).children()}
    finally:
        stop(server)
    assert len(pids) == 3
    assert _sample(text, 'catalog_http_requests_total{endpoint="/api/models/ollama",status="200"}') == 90
    assert _sample(text, 'catalog_http_requests_total{endpoint="/api/models/ollama",status="401"}') == 10
    assert _sample(text, 'catalog_http_request_duration_seconds_count{endpoint="/api/models/ollama"}') == 100


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, flags=re.MULTILINE)
    assert match, name
    return float(match.group(1))


@pytest.mark.parametrize("path", ["/api/models/openrouter?token=secret-in-query", "/api/models/ollama?jwt=abc"])
@pytest.mark.system
def test_access_log_has_no_query_string_or_authorization(upstream, redis_url, path):
    port = free_port()
    server = start_gunicorn(port, catalog_env(upstream, redis_url, INTERVAL))
    token = make_token()
    try:
        requests.get(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    finally:
        output = stop(server)
    assert f'"GET {path.split("?")[0]}" 200' in output
    assert "?" not in "".join(line for line in output.splitlines() if '"GET ' in line)
    assert token not in output and JWT_SECRET not in output and OPENROUTER_KEY not in output


@pytest.mark.system
def test_json_access_log_lines_carry_time_and_level(upstream, redis_url):
    port = free_port()
    server = start_gunicorn(port, catalog_env(upstream, redis_url, INTERVAL, LOG_FORMAT="json"))
    try:
        requests.get(
            f"http://127.0.0.1:{port}/api/models/openrouter?x=1", headers={"Authorization": "Bearer nope"}, timeout=5
        )
    finally:
        output = stop(server)
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"event": "access"' in line]
    access = [line for line in lines if line["path"] == "/api/models/openrouter"]
    assert len(access) == 1, output
    line = access[0]
    assert line["level"] == "info" and line["time"].endswith("+00:00") and line["status"] == 401
    assert line["method"] == "GET" and line["duration_ms"] >= 0 and isinstance(line["bytes"], int)
