"""Real service processes for tests: gunicorn and the refresher, on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import requests

from config import PROJECT_ROOT
from harness.fake_upstream import fixture_bytes


def serve_recordings(upstream) -> None:
    """OpenRouter and Ollama (a server whose tags list capabilities) from recorded answers."""
    upstream.set("/api/v1/models", fixture_bytes("openrouter/models.json"))
    upstream.set("/api/v1/embeddings/models", fixture_bytes("openrouter/embeddings_models.json"))
    upstream.set("/api/tags", fixture_bytes("ollama/tags_3.json"))


def catalog_env(
    upstream, redis_url: str, interval: float, *, jwt_secret: str, openrouter_key: str, **extra: str
) -> dict:
    """The environment of a service process using `upstream`, one Redis and short intervals."""
    variables = {
        "JWT_SECRET_KEY": jwt_secret,
        "REDIS_URL": redis_url,
        "OPENROUTER_API_KEY": openrouter_key,
        "OPENROUTER_BASE_URL": f"{upstream.url}/api/v1",
        "OLLAMA_BASE_URL": upstream.url,
        "OPENROUTER_REFRESH_SECONDS": str(interval),
        "OLLAMA_REFRESH_SECONDS": str(interval),
        "UPSTREAM_TIMEOUT_SECONDS": "5",
        "SNAPSHOT_CHECK_SECONDS": "0.2",
    }
    return service_env(**{**variables, **extra})


def service_env(**variables: str) -> dict:
    """The test process's environment without any catalog settings, plus `variables`."""
    prefixes = ("FLASK_", "REDIS_", "OPENROUTER_", "OLLAMA_", "JWT_", "SCHEDULER_", "PROMETHEUS_", "UPSTREAM_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env.update(variables)
    return env


def start_gunicorn(port: int, env: dict, *flags: str) -> subprocess.Popen:
    """gunicorn with the project's gunicorn.conf.py, bound to loopback, answering /healthz."""
    process = spawn([sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}", *flags], env)
    wait_for_http(f"http://127.0.0.1:{port}/healthz", process)
    return process


def start_refresher(env: dict) -> subprocess.Popen:
    """`flask --app wsgi models scheduler`: the refresher process."""
    return spawn([sys.executable, "-m", "flask", "--app", "wsgi", "models", "scheduler"], env)


def spawn(command: list[str], env: dict) -> subprocess.Popen:
    """Start a project process whose output goes to a temporary file (see output_of)."""
    # Output goes to a file: a pipe nobody reads would fill up and block the server.
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - kept open with the process, read by output_of
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    process.log_file = log  # type: ignore[attr-defined]
    return process


def output_of(process: subprocess.Popen) -> str:
    """Everything the process has printed so far."""
    process.log_file.seek(0)
    return process.log_file.read()


def wait_for_http(url: str, process: subprocess.Popen, timeout: float = 20.0, expect_status: int | None = 200) -> None:
    """Wait until `url` answers (with `expect_status`, or anything when None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited early:\n{output_of(process)}")
        try:
            status = requests.get(url, timeout=1).status_code
            if expect_status is None or status == expect_status:
                return
        except requests.RequestException:  # not listening yet, or still loading the app
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def stop(process: subprocess.Popen, timeout: float = 15.0) -> str:
    """SIGTERM, wait, and return what the process printed."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return output_of(process)


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
