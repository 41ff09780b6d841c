"""The fault matrix: each test is named after its row (f01 ... f21) and fails if the promise breaks.

"Kept" means the last good snapshot is untouched: the same bytes are served before and after.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import zlib
from email.utils import formatdate
from pathlib import Path
from xml.etree import ElementTree

import psutil
import pytest
import redis
import requests
from urllib3.exceptions import NameResolutionError

from app import create_app
from app.refresh import RATE_LIMIT_CAP_SECONDS
from app.status import RefreshStatus
from config import PROJECT_ROOT
from harness.fake_upstream import FakeUpstream, UnacceptingPort, fixture_bytes
from harness.processes import (
    output_of,
    serve_recordings,
    start_gunicorn,
    start_refresher,
    stop,
    wait_until,
)
from harness.redis_server import free_port
from tests.support.processes import catalog_env
from tests.support.secrets import OPENROUTER_KEY, make_token
from tests.support.snapshots import ollama_snapshot

TIMEOUT = 1.0
# Room a loaded 2-core machine needs on top of a deadline. Each bound below still fails by a
# wide margin when the deadline is missing: a trickle, a hang or a dropped SYN lasts minutes.
DEADLINE_MARGIN = 3.0
MODELS = "/api/v1/models"


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def make_app(make_settings, upstream_url: str, **overrides):
    settings = make_settings(
        **{
            "openrouter_api_key": OPENROUTER_KEY,
            "openrouter_base_url": f"{upstream_url}/api/v1",
            "ollama_base_url": upstream_url,
            "upstream_timeout_seconds": TIMEOUT,
            **overrides,
        }
    )
    return create_app(settings)


def served_body(app, path="/api/models/openrouter") -> bytes:
    response = app.test_client().get(path, headers={"Authorization": f"Bearer {make_token()}"})
    assert response.status_code == 200
    return response.get_data()


@pytest.fixture
def good_app(upstream, make_settings):
    """An app whose live LLM and Ollama snapshots were fetched from good upstream answers."""
    serve_recordings(upstream)
    app = make_app(make_settings, upstream.url)
    refresher = app.extensions["catalog_service"].refresher
    assert refresher.run("openrouter").outcome == "published"
    assert refresher.run("ollama").outcome == "published"
    return app


def refresh(app, catalog="openrouter", force=True):
    return app.extensions["catalog_service"].refresher.run(catalog, force=force)


# --- f01 upstream connect timeout / read timeout / trickling body ----------------------------


@pytest.mark.parametrize("fault", ["connect_timeout", "hang", "trickle"])
def test_f01_slow_upstream_ends_by_the_deadline_and_keeps_the_snapshot(good_app, upstream, make_settings, fault):
    before = served_body(good_app)
    app = good_app
    unaccepting = None
    if fault == "connect_timeout":
        unaccepting = UnacceptingPort()
        app = make_app(make_settings, unaccepting.url)
        store = app.extensions["catalog_service"].store
        lock = store.acquire_lock("openrouter", 10)
        store.publish(
            lock,
            {"openrouter": good_app.extensions["catalog_service"].store.read("openrouter")},
            RefreshStatus("openrouter", rows=414),
        )
        store.release_lock(lock)
    else:
        upstream.routes[("GET", MODELS)].mode = fault
    results, answered_during_refresh = [], 0
    runner = threading.Thread(target=lambda: results.append(refresh(app)))
    started = time.monotonic()
    runner.start()
    # Requests are unaffected while the refresh waits on the upstream: they are answered, with
    # the old bytes, while it still waits (a request that waited for it would end after it).
    while runner.is_alive():
        assert served_body(app) == before
        answered_during_refresh += runner.is_alive()
        time.sleep(0.01)
    runner.join()
    elapsed = time.monotonic() - started
    if unaccepting:
        unaccepting.close()
    assert results[0].outcome == "failed"
    assert "within 1 s" in results[0].message
    assert elapsed < TIMEOUT + DEADLINE_MARGIN  # the deadline is the behaviour here
    assert answered_during_refresh >= 3
    assert served_body(app) == before


# --- f02 5xx -----------------------------------------------------------------------------


def test_f02_5xx_keeps_the_snapshot_counts_and_backs_off(good_app, upstream):
    before = served_body(good_app)
    upstream.routes[("GET", MODELS)].status = 503
    result = refresh(good_app)
    assert result.outcome == "failed" and "HTTP 503" in result.message
    assert served_body(good_app) == before
    assert good_app.extensions["catalog_service"].store.read_status("openrouter").consecutive_failures == 1
    metrics = good_app.test_client().get("/metrics").get_data(as_text=True)
    assert 'catalog_refresh_runs_total{outcome="failed",source="openrouter"} 1.0' in metrics


def test_f02_5xx_retries_are_jittered_and_bounded_per_interval(requests_mock, make_settings):
    clock = Clock()
    settings = make_settings(openrouter_api_key=OPENROUTER_KEY, openrouter_base_url="http://or.test/api/v1")
    route = requests_mock.get("http://or.test/api/v1/models", status_code=502)
    app = create_app(settings)
    refresher = app.extensions["catalog_service"].refresher
    refresher._clock = clock
    interval, tick = (
        refresher.registry.sources["openrouter"].interval_seconds,
        refresher.tick(refresher.registry.sources["openrouter"]),
    )
    call_times = []
    for _ in range(int(10 * interval / tick)):  # the scheduler's ticks over ten intervals
        calls = route.call_count
        refresher.run("openrouter")
        if route.call_count > calls:
            call_times.append(clock.now)
        clock.now += tick
    gaps = [b - a for a, b in itertools.pairwise(call_times)]
    assert min(gaps) >= tick and max(gaps) <= interval + tick
    # Doubling from one tick to the interval, then once per interval: far fewer calls than ticks.
    assert len(call_times) <= 10 + 5
    waits = []
    for _ in range(10):
        refresher.run("openrouter", force=True)
        status = app.extensions["catalog_service"].store.read_status("openrouter")
        waits.append(status.next_attempt_at - status.last_attempt)
    assert len(set(waits)) > 1  # jittered, so replicas drift apart


# --- f03 429 with Retry-After -----------------------------------------------------------


@pytest.mark.parametrize(
    ("retry_after", "expected_wait"),
    [("120", 120.0), ("http-date", 90.0), ("garbage", None), (str(10**7), RATE_LIMIT_CAP_SECONDS)],
)
def test_f03_rate_limit_defers_without_sleeping_and_keeps(good_app, upstream, retry_after, expected_wait):
    before = served_body(good_app)
    header = formatdate(time.time() + 90, usegmt=True) if retry_after == "http-date" else retry_after
    upstream.routes[("GET", MODELS)].status = 429
    upstream.routes[("GET", MODELS)].headers = {"Retry-After": header}
    result = refresh(good_app)
    assert result.outcome == "failed" and "429" in result.message
    # No sleep inside the job: honouring Retry-After (90 s and more here) or the back-off
    # (48 s and more) by sleeping would take far longer than this.
    assert result.duration < 10
    status = good_app.extensions["catalog_service"].store.read_status("openrouter")
    wait = status.next_attempt_at - status.last_attempt
    refresher = good_app.extensions["catalog_service"].refresher
    tick = refresher.tick(refresher.registry.sources["openrouter"])
    if expected_wait is None:
        assert 0.8 * tick <= wait <= tick  # garbage: the ordinary back-off
    else:
        assert wait == pytest.approx(expected_wait, abs=2)
    assert served_body(good_app) == before


def test_f03_every_process_honours_retry_after_through_redis(upstream, redis_url, make_settings):
    upstream.set(MODELS, b"", status=429, headers={"Retry-After": "120"})
    apps = [make_app(make_settings, upstream.url, redis_url=redis_url) for _ in range(3)]
    assert refresh(apps[0], force=False).outcome == "failed"
    assert [refresh(app, force=False).outcome for app in apps[1:]] == ["fresh", "fresh"]
    assert upstream.count(MODELS) == 1


# --- f04 HTML / non-JSON / wrong top-level shape -----------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"<html><body>SECRET-BODY-MARKER maintenance</body></html>", "text/html", "not JSON"),
        (b"SECRET-BODY-MARKER {not json", "application/json", "not JSON"),
        (b'{"models": ["SECRET-BODY-MARKER"]}', "application/json", 'expected a JSON object with a "data" list'),
        (b'["SECRET-BODY-MARKER"]', "application/json", 'expected a JSON object with a "data" list'),
    ],
)
def test_f04_bad_answers_are_rejected_kept_and_logged_without_body(
    good_app, upstream, caplog, body, content_type, expected
):
    before = served_body(good_app)
    if expected == "not JSON":
        expected = f"not JSON ({content_type}, {len(body)} bytes)"
    upstream.routes[("GET", MODELS)].body = body
    upstream.routes[("GET", MODELS)].headers = {"Content-Type": content_type}
    with caplog.at_level(logging.DEBUG):
        result = refresh(good_app)
    assert result.failed and expected in result.message
    assert served_body(good_app) == before
    assert expected in caplog.text
    assert "SECRET-BODY-MARKER" not in caplog.text


# --- f05 some rows malformed: see test_refresh.py::test_malformed_rows_are_skipped_counted_and_the_rest_published


# --- f06 zero rows, or a catalog that shrank by more than half ------------------------------


def test_f06_zero_rows_are_not_published(good_app, upstream, caplog):
    before = served_body(good_app)
    upstream.routes[("GET", MODELS)].body = b'{"data": []}'
    with caplog.at_level(logging.WARNING):
        assert refresh(good_app).outcome == "rejected"
    assert served_body(good_app) == before
    assert "no usable models" in caplog.text


def test_f06_a_catalog_that_shrank_by_half_is_held_back_until_confirmed(good_app, upstream, caplog):
    clock = Clock()
    clock.now = time.time()  # where good_app's publish left the catalog: nothing due to re-date
    good_app.extensions["catalog_service"].refresher._clock = clock
    before = served_body(good_app)
    document = json.loads(fixture_bytes("openrouter/models.json"))
    document["data"] = document["data"][:150]
    upstream.routes[("GET", MODELS)].body = json.dumps(document).encode()
    with caplog.at_level(logging.WARNING):
        first = refresh(good_app)
    assert first.outcome == "rejected" and "shrank from 414 to 150" in first.message
    assert "shrank from 414 to 150" in caplog.text
    assert served_body(good_app) == before
    # The same answer a minute later is still held back: a truncated upstream answers alike.
    clock.now += 60
    assert refresh(good_app).outcome == "rejected"
    assert served_body(good_app) == before
    status = good_app.extensions["catalog_service"].status_report()["openrouter"]
    assert status["held_back"]["rows"] == 150 and status["held_back"]["since"]
    # Answers over an hour confirm it: a real shrink must not lock the catalog forever.
    clock.now += 3600
    second = refresh(good_app)
    assert (second.outcome, second.rows) == ("published", 150)
    assert served_body(good_app) != before
    assert good_app.extensions["catalog_service"].status_report()["openrouter"]["held_back"] is None


def test_f06_an_admin_accepts_a_shrink_at_once(good_app, upstream):
    document = json.loads(fixture_bytes("openrouter/models.json"))
    document["data"] = document["data"][:150]
    upstream.routes[("GET", MODELS)].body = json.dumps(document).encode()
    assert refresh(good_app).outcome == "rejected"
    client = good_app.test_client()
    admin = {"Authorization": f"Bearer {make_token(role='admin')}"}
    bad = client.post("/api/models/refresh", json={"source": "openrouter", "accept_shrink": "yes"}, headers=admin)
    assert bad.status_code == 400 and bad.get_json()["error"]["parameter"] == "accept_shrink"
    response = client.post("/api/models/refresh", json={"source": "openrouter", "accept_shrink": True}, headers=admin)
    assert response.status_code == 202
    assert wait_until(lambda: good_app.extensions["catalog_service"].snapshot("openrouter").rows == 150, timeout=10)


# --- f07 Ollama answers an empty list: see test_refresh.py::test_ollama_empty_list_is_published


# --- f08 endless body, gzip bomb ----------------------------------------------------------


def gzip_bomb(decoded_bytes: int) -> bytes:
    """A gzip body of `decoded_bytes` spaces inside brackets, which the test never holds decoded."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: the gzip container
    piece = b" " * 1_000_000
    parts = [compressor.compress(b"[")]
    parts += [compressor.compress(piece) for _ in range(decoded_bytes // len(piece))]
    parts.append(compressor.compress(b"]") + compressor.flush())
    return b"".join(parts)


def reset_peak_memory() -> int:
    """Start a new peak resident size for this process (Linux); the resident size now, in KiB."""
    Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS (VmHWM)
    return _proc_status_kib("VmHWM")


def peak_memory() -> int:
    """The peak resident size of this process since the last reset, in KiB."""
    return _proc_status_kib("VmHWM")


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


@pytest.mark.parametrize("fault", ["endless", "gzip_bomb"])
def test_f08_oversized_answers_are_aborted_at_the_byte_cap(upstream, make_settings, fault):
    serve_recordings(upstream)
    app = make_app(make_settings, upstream.url, upstream_max_bytes=2_000_000, upstream_timeout_seconds=10.0)
    assert refresh(app).outcome == "published"
    before = served_body(app)
    route = upstream.routes[("GET", MODELS)]
    if fault == "endless":
        route.mode, route.body = "endless", b'{"data": ['
    else:
        route.body = gzip_bomb(400_000_000)
        assert len(route.body) < 2_000_000  # under the cap: only decoding makes it big
        route.headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    start_kib = reset_peak_memory()
    result = refresh(app)
    peak_growth_mb = (peak_memory() - start_kib) / 1024
    assert result.outcome == "failed" and "more than 2000000 bytes" in result.message
    assert peak_growth_mb < 100, peak_growth_mb  # 400 MB decoded would show here
    assert served_body(app) == before


# --- f09 redirect to another host ---------------------------------------------------------


def test_f09_redirects_are_not_followed_and_the_key_stays_home(good_app, upstream):
    before = served_body(good_app)
    other = FakeUpstream().start()
    try:
        other.set(MODELS, fixture_bytes("openrouter/models.json"))
        upstream.routes[("GET", MODELS)].status = 302
        upstream.routes[("GET", MODELS)].headers = {"Location": f"{other.url}{MODELS}"}
        result = refresh(good_app)
        assert result.outcome == "failed" and "redirect" in result.message
        assert other.calls == []
    finally:
        other.stop()
    assert served_body(good_app) == before


# --- f10 connection refused, DNS failure, reset mid-body ------------------------------------


@pytest.mark.parametrize("fault", ["refused", "dns", "reset"])
def test_f10_network_failures(good_app, upstream, requests_mock, make_settings, fault):
    before_llms = served_body(good_app)
    if fault == "reset":
        requests_mock.real_http = True
        upstream.routes[("GET", MODELS)].mode = "reset"
        upstream.routes[("GET", "/api/tags")].mode = "reset"
        app = good_app
    else:
        base = "http://user:hunter2@127.0.0.1:1" if fault == "refused" else "http://user:hunter2@ollama.invalid:11434"
        if fault == "dns":
            cause = NameResolutionError("ollama.invalid", None, "Name or service not known")
            requests_mock.get(f"{base}/api/tags", exc=requests.exceptions.ConnectionError(cause))
            requests_mock.get(f"{base}/api/v1/models", exc=requests.exceptions.ConnectionError(cause))
        else:
            requests_mock.real_http = True
        app = make_app(make_settings, base)
        store = app.extensions["catalog_service"].store
        lock = store.acquire_lock("openrouter", 10)
        store.publish(
            lock,
            {"openrouter": good_app.extensions["catalog_service"].store.read("openrouter")},
            RefreshStatus("openrouter", rows=414),
        )
        store.release_lock(lock)
    expected = {"refused": "connection refused", "dns": "host name not resolved", "reset": "connection reset"}[fault]
    llm_result = refresh(app, "openrouter")
    assert llm_result.outcome == "failed" and expected in llm_result.message
    assert served_body(app) == before_llms
    refresh(app, "ollama")
    data = (
        app.test_client()
        .get("/api/models/ollama", headers={"Authorization": f"Bearer {make_token()}"})
        .get_json()["data"]
    )
    assert data["source"] == "ollama_unreachable" and data["models"] == []
    assert expected in data["error"]
    assert len(data["error"]) < 120 and "Traceback" not in data["error"] and "hunter2" not in data["error"]


# --- f11 Redis down at start ----------------------------------------------------------------


def test_f11_redis_down_at_start(upstream, make_settings, redis_server):
    serve_recordings(upstream)
    down = f"redis://127.0.0.1:{free_port()}/0"
    app = make_app(make_settings, upstream.url, redis_url=down)
    response = app.test_client().get("/api/models/openrouter", headers={"Authorization": f"Bearer {make_token()}"})
    assert response.status_code == 200 and response.get_json()["data"]["source"] == "curated_fallback"
    # Without the store there is no lock: the refresher waits instead of hammering upstreams.
    outcomes = {
        refresh(app, catalog, force=False).outcome
        for catalog in ("openrouter", "embeddings", "ollama")
        for _ in range(3)
    }
    assert outcomes == {"store_unavailable"}
    assert upstream.calls == []


def test_f11_a_redis_that_never_answers_costs_a_request_one_short_timeout(make_settings):
    silent = UnacceptingPort()  # connecting to it hangs: the SYN is never answered
    try:
        app = create_app(
            make_settings(redis_url=f"redis://127.0.0.1:{silent.port}/0", openrouter_api_key=OPENROUTER_KEY)
        )
        started = time.monotonic()
        response = app.test_client().get("/api/models/openrouter", headers={"Authorization": f"Bearer {make_token()}"})
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert response.status_code == 200 and response.get_json()["data"]["source"] == "curated_fallback"
    # The request path's client gives up after REDIS_TIMEOUT_SECONDS (0.25 s); one with
    # redis-py's defaults would wait for the system's connect timeout, minutes.
    assert elapsed < 0.25 + DEADLINE_MARGIN


# --- f12 Redis killed during load ---------------------------------------------------------------


@pytest.mark.system
def test_f12_redis_killed_during_load(upstream, redis_url, redis_server):
    serve_recordings(upstream)
    port = free_port()
    server = start_gunicorn(port, catalog_env(upstream, redis_url, 2.0, SCHEDULER_ENABLED="1"))
    url = f"http://127.0.0.1:{port}/api/models/openrouter"
    headers = {"Authorization": f"Bearer {make_token()}"}
    try:
        assert wait_until(lambda: requests.get(url, headers=headers, timeout=2).json()["data"]["source"] == "api", 15)
        answers, stop_load, killed = [], threading.Event(), threading.Event()  # answers: (after the kill, problem)

        def load() -> None:
            session = requests.Session()
            while not stop_load.is_set():
                after_kill = killed.is_set()
                answers.append((after_kill, _problem_of(session, url, headers)))

        threads = [threading.Thread(target=load) for _ in range(4)]
        for thread in threads:
            thread.start()
        assert wait_until(lambda: len(answers) >= 20, 30)
        redis_server.kill()
        killed.set()
        assert wait_until(lambda: sum(after for after, _ in answers) >= 100, 60)
        stop_load.set()
        for thread in threads:
            thread.join()
    finally:
        stop(server)
    assert [problem for _, problem in answers if problem] == []


def _problem_of(session: requests.Session, url: str, headers: dict) -> str | None:
    """What is wrong with one answer of a catalog served as "api" (None: nothing)."""
    try:
        response = session.get(url, headers=headers, timeout=5)
        if response.status_code != 200:
            return f"HTTP {response.status_code}"
        # The ETag is the hash of the exact bytes: a partial snapshot could not match it.
        digest = '"' + hashlib.blake2b(response.content, digest_size=16).hexdigest() + '"'
        # (requests asks for gzip and decodes it; the gzip variant's tag ends in -gzip.)
        if response.headers["ETag"].replace('-gzip"', '"') != digest:
            return "partial"
        source = response.json()["data"]["source"]
        return None if source == "api" else f"source {source}"
    except (requests.RequestException, ValueError, KeyError) as exc:
        return f"{type(exc).__name__}: {exc}"


# --- f13 Redis restarted empty -------------------------------------------------------------------


@pytest.mark.system
def test_f13_redis_restarted_empty_is_republished_within_an_interval(upstream, redis_url, redis_server):
    serve_recordings(upstream)
    interval = 2.0
    env = catalog_env(upstream, redis_url, interval)
    port = free_port()
    # One worker, so the request below reaches the worker that has seen the live snapshot.
    web, refresher = start_gunicorn(port, env, "--workers", "1"), start_refresher(env)
    url = f"http://127.0.0.1:{port}/api/models/openrouter"
    headers = {"Authorization": f"Bearer {make_token()}"}
    client = redis.Redis.from_url(redis_url)
    try:
        assert wait_until(lambda: requests.get(url, headers=headers, timeout=2).json()["data"]["source"] == "api", 15)
        redis_server.restart_empty()
        assert client.exists("catalog:snapshot:openrouter") == 0
        # Meanwhile the web worker serves what it had: stale, not curated.
        assert requests.get(url, headers=headers, timeout=2).json()["data"]["source"] == "api"
        # Within an interval; the rest is room for a loaded machine (scheduling, a fetch, a publish).
        assert wait_until(lambda: client.exists("catalog:snapshot:openrouter") == 1, interval + DEADLINE_MARGIN)
    finally:
        stop(web)
        stop(refresher)


# --- f14 Redis hung (SIGSTOP) -----------------------------------------------------------------


@pytest.mark.system
def test_f14_redis_hung_requests_answer_after_one_short_timeout(upstream, redis_url, redis_server):
    serve_recordings(upstream)
    port = free_port()
    # One worker: a worker that never saw a snapshot would rightly answer "not polled yet".
    server = start_gunicorn(port, catalog_env(upstream, redis_url, 2.0, SCHEDULER_ENABLED="1"), "--workers", "1")
    url = f"http://127.0.0.1:{port}/api/models/ollama"
    headers = {"Authorization": f"Bearer {make_token()}"}
    try:
        assert wait_until(
            lambda: requests.get(url, headers=headers, timeout=2).json()["data"]["source"] == "ollama", 15
        )
        redis_server.pause()
        slowest = 0.0
        for _ in range(40):
            started = time.monotonic()
            response = requests.get(url, headers=headers, timeout=5)
            slowest = max(slowest, time.monotonic() - started)
            assert response.status_code == 200 and response.json()["data"]["source"] == "ollama"
            time.sleep(0.05)
        # The request path's client times out after 0.25 s; the refresher's (5 s, retried) or
        # redis-py's defaults (no timeout) would hold a request far longer.
        assert slowest < 0.25 + DEADLINE_MARGIN
        redis_server.resume()
        # Recovery: a change published after SIGCONT reaches the worker.
        upstream.routes[("GET", "/api/tags")].body = b'{"models": []}'
        assert wait_until(lambda: requests.get(url, headers=headers, timeout=2).json()["data"]["total"] == 0, 10)
    finally:
        redis_server.resume()
        stop(server)


# --- f15 two refreshers; refresh longer than the lock TTL; lock holder SIGKILLed ---------------
# Two at once: see test_refresh.py::test_two_refreshers_racing_on_one_redis_make_one_upstream_call


def test_f15_a_late_publish_after_losing_the_lock_is_refused(upstream, redis_url, make_settings):
    serve_recordings(upstream)
    upstream.routes[("GET", MODELS)].delay = 1.0
    slow = make_app(make_settings, upstream.url, redis_url=redis_url, upstream_timeout_seconds=5.0)
    results = []
    runner = threading.Thread(target=lambda: results.append(refresh(slow)))
    runner.start()
    client = redis.Redis.from_url(redis_url)
    assert wait_until(lambda: client.exists("catalog:lock:openrouter") == 1, 5)
    client.delete("catalog:lock:openrouter")  # as if the run outlived its TTL
    upstream.routes[("GET", MODELS)].delay = 0
    fast = make_app(make_settings, upstream.url, redis_url=redis_url)
    assert refresh(fast).outcome == "published"
    winner = client.hget("catalog:snapshot:openrouter", "etag")
    runner.join()
    assert results[0].outcome == "lost_lock" and results[0].failed
    assert client.hget("catalog:snapshot:openrouter", "etag") == winner


@pytest.mark.system
def test_f15_a_sigkilled_lock_holder_frees_the_lock_by_its_ttl(upstream, redis_url):
    upstream.set("/api/tags", mode="hang")
    env = catalog_env(upstream, redis_url, 2.0, OPENROUTER_API_KEY="", UPSTREAM_TIMEOUT_SECONDS="1")
    holder = start_refresher(env)
    client = redis.Redis.from_url(redis_url)
    try:
        assert wait_until(lambda: upstream.count("/api/tags") == 1, 15), output_of(holder)
        holder.kill()
        holder.wait()
        ttl_ms = client.pttl("catalog:lock:ollama")
        assert 0 < ttl_ms <= (3 * 1 + 5) * 1000
        # Freed by its TTL (a lock without one would stay forever).
        assert wait_until(lambda: client.exists("catalog:lock:ollama") == 0, ttl_ms / 1000 + DEADLINE_MARGIN)
    finally:
        if holder.poll() is None:
            holder.kill()


# --- f16 clock jumps ---------------------------------------------------------------------------


# A backward jump this far is past any wait the refresher schedules (an interval, or a
# Retry-After up to RATE_LIMIT_CAP_SECONDS): it takes it for a clock jump and refreshes now.
FAR_BACK = -(RATE_LIMIT_CAP_SECONDS + 2 * 300.0)


@pytest.mark.parametrize(
    ("jump", "first_call_after"),
    [
        (+600.0, 0.0),  # forward: overdue, one refresh at once
        (-600.0, 900.0),  # back a little: the scheduled refresh comes when the clock gets there
        (FAR_BACK, 0.0),  # back past any wait scheduled: one refresh at once, not one in hours
    ],
    ids=["forward", "back_a_little", "back_past_any_wait"],
)
def test_f16_clock_jumps_cause_one_refresh_then_one_per_interval(requests_mock, make_settings, jump, first_call_after):
    clock = Clock()
    route = requests_mock.get("http://or.test/api/v1/models", content=fixture_bytes("openrouter/models.json"))
    app = create_app(
        make_settings(
            openrouter_api_key=OPENROUTER_KEY,
            openrouter_base_url="http://or.test/api/v1",
            openrouter_refresh_seconds=300,
        )
    )
    refresher = app.extensions["catalog_service"].refresher
    refresher._clock = clock
    source = refresher.registry.sources["openrouter"]
    interval, tick = source.interval_seconds, refresher.tick(source)
    assert (interval, tick) == (300.0, 60.0)
    assert refresher.run("openrouter").outcome == "published"
    clock.now += jump
    jumped_to = clock.now
    call_times = []

    def run_tick() -> None:
        calls = route.call_count
        refresher.run("openrouter")
        if route.call_count > calls:
            call_times.append(clock.now - jumped_to)

    for _ in range(20):  # twenty ticks at the instant of the jump: a storm would show here
        run_tick()
    for _ in range(int((first_call_after + 2 * interval) / tick)):
        clock.now += tick
        run_tick()
    assert call_times == [first_call_after, first_call_after + interval, first_call_after + 2 * interval]


def test_f16_ages_are_never_negative(app, auth_headers):
    store = app.extensions["catalog_service"].store
    lock = store.acquire_lock("ollama", 10)
    store.publish(
        lock,
        {"ollama": ollama_snapshot([], fetched_at=time.time() + 600)},
        RefreshStatus("ollama", last_success=time.time() + 600),
    )
    store.release_lock(lock)
    report = app.test_client().get("/api/models/status", headers=auth_headers).get_json()["data"]["catalogs"]
    assert report["ollama"]["age_seconds"] == 0
    assert app.test_client().get("/readyz").get_json()["catalogs"]["ollama"]["age_seconds"] == 0


# --- f17 bad tokens: see test_auth.py (every kind, 401 JSON, WWW-Authenticate, never logged)
# --- f18 token in the query string: test_auth.py::test_token_in_query_string_is_ignored and
#         test_processes.py::test_access_log_has_no_query_string_or_authorization


# --- f19 huge headers, long URL (real gunicorn) -------------------------------------------------


@pytest.mark.system
def test_f19_huge_headers_and_long_urls_are_refused_by_the_server_and_workers_survive(upstream, redis_url):
    port = free_port()
    server = start_gunicorn(port, catalog_env(upstream, redis_url, 2.0))
    workers = {worker.pid for worker in psutil.Process(server.pid).children()}
    try:

        def raw(request: bytes) -> int:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(request)
                return int(sock.recv(64).split(b" ")[1])

        huge_header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n"
        many_headers = (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n"
        )
        long_url = b"GET /healthz?" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        # gunicorn answers before the app with the most precise 4xx: 431 for headers, 414 for URLs.
        assert raw(huge_header) in (400, 431)
        assert raw(many_headers) in (400, 431)
        assert raw(long_url) in (400, 414)
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert {worker.pid for worker in psutil.Process(server.pid).children()} == workers
    finally:
        stop(server)


# --- f20 unknown path, wrong method: test_api.py::test_unknown_path_is_json_404,
#         test_api.py::test_wrong_method_is_json_405_with_allow
# --- f21 secrets: tests/conftest.py::no_secret_leaks runs around every test of the suite


PLANTED_LEAKS = """
import logging
import threading

import pytest

from tests.conftest import no_secret_leaks  # noqa: F401 - the suite's check, around each test below
from tests.support.secrets import JWT_SECRET, OPENROUTER_KEY, make_token

log = logging.getLogger("app.planted")


@pytest.fixture
def fixture_that_logs_the_secret():
    log.info("secret %s", JWT_SECRET)
    yield


def test_clean():
    log.debug("nothing to hide")


def test_key_in_the_body():
    log.warning("calling with %s", OPENROUTER_KEY)


def test_token_at_debug_from_another_thread():
    thread = threading.Thread(target=log.debug, args=("verified %s", make_token()))
    thread.start()
    thread.join()


def test_secret_in_a_fixture(fixture_that_logs_the_secret):
    pass


def test_key_in_an_extra_field():
    log.warning("refresh failed", extra={"error": "refused key " + OPENROUTER_KEY})


def test_secret_in_a_traceback():
    try:
        raise RuntimeError(JWT_SECRET)
    except RuntimeError:
        log.exception("failed")


def test_key_while_caplog_narrows_the_level(caplog):
    with caplog.at_level(logging.WARNING):
        log.error("key %s", OPENROUTER_KEY)
"""


def test_f21_the_suite_wide_check_fails_a_test_that_logs_a_secret(tmp_path):
    """The check in tests/conftest.py, run around planted tests: each leak fails its test."""
    (tmp_path / "test_planted.py").write_text(PLANTED_LEAKS)
    report = tmp_path / "report.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={report}", "test_planted.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = {}  # test name -> the messages of its errors (a failed teardown is one)
    for case in ElementTree.parse(report).iter("testcase"):  # noqa: S314 - our own child pytest's report
        errors[case.get("name")] = [
            problem.get("message", "") for problem in case if problem.tag in ("error", "failure")
        ]
    assert errors.pop("test_clean") == [], run.stdout
    assert {name: [_leak_named(message) for message in messages] for name, messages in errors.items()} == {
        "test_key_in_the_body": ["['OpenRouter key']"],
        "test_token_at_debug_from_another_thread": ["['token']"],
        "test_secret_in_a_fixture": ["['JWT secret']"],
        "test_key_in_an_extra_field": ["['OpenRouter key']"],
        "test_secret_in_a_traceback": ["['JWT secret']"],
        "test_key_while_caplog_narrows_the_level": ["['OpenRouter key']"],
    }, run.stdout


def _leak_named(message: str) -> str | None:
    """The sentinel list of a "secret in a log line: [...]" failure, else None."""
    found = re.search(r"secret in a log line: (\[[^]]*\])", message)
    return found.group(1) if found else None
