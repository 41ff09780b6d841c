"""End to end: recorded answers on a loopback server, real processes, a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from app import create_app
from app.jobs import RefreshJobs
from config import PROJECT_ROOT
from harness.fake_upstream import fixture_bytes
from harness.redis_server import free_port
from tests.support.secrets import JWT_SECRET, OPENROUTER_KEY, make_token


def serve_recordings(upstream) -> None:
    """OpenRouter and Ollama on one loopback server, answering with the recorded fixtures."""
    upstream.set("/api/v1/models", fixture_bytes("openrouter/models.json"))
    upstream.set("/api/v1/embeddings/models", fixture_bytes("openrouter/embeddings_models.json"))
    upstream.set("/api/tags", fixture_bytes("ollama/tags_2.json"))
    # An old server: /api/show without capabilities, so the bert family decides for bge-m3.
    upstream.set("/api/show", fixture_bytes("ollama/show_llama3.2_latest.json"), method="POST")


def service_env(upstream, **extra) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "REDIS_", "OPENROUTER_", "OLLAMA_"))
    }
    env.update(
        JWT_SECRET_KEY=JWT_SECRET,
        OPENROUTER_API_KEY=OPENROUTER_KEY,
        OPENROUTER_BASE_URL=f"{upstream.url}/api/v1",
        OLLAMA_BASE_URL=upstream.url,
        UPSTREAM_TIMEOUT_SECONDS="5",
        **extra,
    )
    return env


@pytest.mark.system
def test_refresh_command_publishes_into_redis_and_the_api_serves_it(upstream, redis_url, make_settings):
    serve_recordings(upstream)
    completed = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "models", "refresh"],
        cwd=PROJECT_ROOT,
        env=service_env(upstream, REDIS_URL=redis_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert [line.split(" in ")[0] for line in lines] == [
        "openrouter: published 414 rows (0 skipped)",
        "embeddings: published 34 rows (0 skipped)",
        "ollama: published 4 rows (0 skipped)",
    ]
    # The key went to the OpenRouter paths only.
    for call in upstream.calls:
        assert ("Authorization" in call.headers) == call.path.startswith("/api/v1/")
    assert OPENROUTER_KEY not in completed.stdout + completed.stderr

    # A web process with no scheduler reads what the refresher published.
    web = create_app(make_settings(redis_url=redis_url, openrouter_api_key=OPENROUTER_KEY))
    client = web.test_client()
    headers = {"Authorization": f"Bearer {make_token()}"}
    llms = client.get("/api/models/openrouter", headers=headers).get_json()["data"]
    assert (llms["source"], llms["total"], len(llms["models"])) == ("api", 414, 414)
    embeddings = client.get("/api/models/openrouter/embeddings", headers=headers).get_json()["data"]
    assert (embeddings["source"], embeddings["total"]) == ("api", 34)
    ollama = client.get("/api/models/ollama", headers=headers).get_json()["data"]
    assert ollama["source"] == "ollama"
    assert [row["name"] for row in ollama["models"]] == [
        "gemma4:e4b",
        "mistral-small:24b",
        "qwen3.6:27b",
        "qwen3.6:latest",
    ]

    status = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "models", "status"],
        cwd=PROJECT_ROOT,
        env=service_env(upstream, REDIS_URL=redis_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0
    rows = {json.loads(line)["source"]: json.loads(line)["rows"] for line in status.stdout.splitlines()}
    assert rows == {"openrouter": 414, "embeddings": 34, "ollama": 4}


@pytest.mark.system
def test_embedded_run_serves_curated_at_once_and_live_data_after_the_first_refresh(upstream):
    serve_recordings(upstream)
    upstream.routes[("GET", "/api/v1/models")].delay = 2.0  # so the first answer is curated
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app"],
        cwd=PROJECT_ROOT,
        env=service_env(upstream, PORT=str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/api/models"
    headers = {"Authorization": f"Bearer {make_token()}"}
    try:
        assert _wait_for_answer(f"{base}/ollama?access_token=pasted-by-mistake", {**headers, "Connection": "close"})
        first = _wait_for_answer(f"{base}/openrouter", headers)
        assert first["data"]["source"] == "curated_fallback"
        assert _wait_for_source(f"{base}/openrouter", headers, "api")["data"]["total"] == 414
        assert _wait_for_source(f"{base}/ollama", headers, "ollama")["data"]["total"] == 4
        assert _wait_for_source(f"{base}/openrouter/embeddings", headers, "api")["data"]["total"] == 34
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert OPENROUTER_KEY not in output and JWT_SECRET not in output
    assert '"GET /api/models/ollama" 200' in output and "pasted-by-mistake" not in output


def _wait_for_answer(url: str, headers: dict, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = requests.get(url, headers=headers, timeout=2)
            assert response.status_code == 200
            return response.json()
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _wait_for_source(url: str, headers: dict, source: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = _wait_for_answer(url, headers)
        if body["data"]["source"] == source or time.monotonic() > deadline:
            assert body["data"]["source"] == source
            return body
        time.sleep(0.1)


def test_scheduler_jobs(make_settings):
    app = create_app(make_settings(openrouter_api_key=OPENROUTER_KEY, openrouter_refresh_seconds=100))
    refresher = app.extensions["catalog_service"].refresher
    scheduler = RefreshJobs(refresher).build()
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"openrouter", "embeddings", "ollama"}
    for job in jobs.values():
        assert job.max_instances == 1 and job.coalesce is True
        assert job.next_run_time is not None  # a first run at start-up
    # Ticks cut the interval into equal steps of at most a minute.
    assert jobs["openrouter"].trigger.interval.total_seconds() == 50
    assert jobs["ollama"].trigger.interval.total_seconds() == 30


def test_scheduler_without_a_key_polls_only_ollama(app):
    jobs = RefreshJobs(app.extensions["catalog_service"].refresher).build().get_jobs()
    assert [job.id for job in jobs] == ["ollama"]


def test_creating_the_app_starts_no_scheduler(app):
    assert not any("APScheduler" in thread.name for thread in threading.enumerate())


@pytest.mark.parametrize("env", [{"JWT_SECRET_KEY": "too-short"}, {}])
@pytest.mark.system
def test_wsgi_refuses_to_start_without_a_proper_secret(env):
    clean = {key: value for key, value in os.environ.items() if key not in ("JWT_SECRET_KEY", "APP_ENV")}
    completed = subprocess.run(
        [sys.executable, "-c", "import wsgi"],
        cwd=PROJECT_ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert "JWT_SECRET_KEY" in completed.stderr
    assert "too-short" not in completed.stderr
