"""The deployment files agree with the app: compose services, commands, healthchecks, variables.

No Docker engine runs where these tests run, so the files are checked as data.
"""

from __future__ import annotations

import re
import runpy

import pytest
import yaml

from config import PROJECT_ROOT

DESIGN_VARIABLES = {
    "JWT_SECRET_KEY", "REDIS_URL", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "OLLAMA_BASE_URL",
    "OPENROUTER_REFRESH_SECONDS", "OLLAMA_REFRESH_SECONDS", "UPSTREAM_TIMEOUT_SECONDS", "SCHEDULER_ENABLED",
}  # fmt: skip


def variables_read_by_config() -> set[str]:
    source = (PROJECT_ROOT / "config.py").read_text()
    return set(re.findall(r'env(?:\.get)?\(\s*"([A-Z_]+)"', source)) | set(re.findall(r'\(env, "([A-Z_]+)"', source))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_config_reads_every_design_variable():
    assert variables_read_by_config() >= DESIGN_VARIABLES


def test_env_example_lists_every_variable_once():
    names = [
        line.split("=", 1)[0]
        for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert len(names) == len(set(names))
    assert set(names) == variables_read_by_config()


def test_compose_services(compose):
    services = compose["services"]
    assert set(services) == {"redis", "api", "refresher", "ollama"}
    assert services["ollama"]["profiles"] == ["ollama"]
    for name in ("api", "refresher"):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_compose_redis_persists_and_has_a_healthcheck(compose):
    redis = compose["services"]["redis"]
    assert "--appendonly" in redis["command"] and redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])


def test_compose_commands(compose):
    services = compose["services"]
    # The api runs the image's default command: gunicorn with gunicorn.conf.py.
    assert "command" not in services["api"]
    assert services["refresher"]["command"][:5] == ["flask", "--app", "wsgi", "models", "scheduler"]
    port = services["refresher"]["command"][services["refresher"]["command"].index("--metrics-port") + 1]
    assert port in " ".join(services["refresher"]["healthcheck"]["test"])


def test_compose_variables_are_ones_the_app_reads(compose):
    known = variables_read_by_config()
    for name in ("api", "refresher"):
        environment = compose["services"][name]["environment"]
        assert set(environment) <= known, set(environment) - known
        assert DESIGN_VARIABLES - {"SCHEDULER_ENABLED"} <= set(environment)
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert compose["services"]["api"]["environment"]["SCHEDULER_ENABLED"] == "false"


def test_dockerfile():
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE)
    assert all(image.startswith("python:3.11-slim") for image in stages)
    final = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER (?!root)\w+", final, flags=re.MULTILINE)
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert 'CMD ["gunicorn", "wsgi:app"]' in final
    assert "apt-get" not in final and "gcc" not in final
    for path in ("config.py", "wsgi.py", "gunicorn.conf.py", "openapi.yaml", "app", "curated"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", final, flags=re.MULTILINE), path


def test_gunicorn_config(monkeypatch):
    monkeypatch.setenv("JWT_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/unused-by-this-test")
    single = runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))
    assert single["bind"] == "0.0.0.0:8123"
    assert single["workers"] == 1  # the process tier is per process
    assert single["worker_class"] == "gthread"
    assert access_line(single["logger_class"]) == '127.0.0.1 "GET /api/models/openrouter" 200 512 12ms'
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    assert runpy.run_path(str(PROJECT_ROOT / "gunicorn.conf.py"))["workers"] == 2


def access_line(logger_class) -> str:
    """What the config's access logger writes for a request with a query string and a token."""
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    config = Config()
    config.set("accesslog", "-")
    logger = logger_class(config)
    written = []
    logger.access_log.info = written.append
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/models/openrouter",
        "QUERY_STRING": "token=secret",
        "RAW_URI": "/api/models/openrouter?token=secret",
        "HTTP_AUTHORIZATION": "Bearer secret-token",
    }
    response = SimpleNamespace(status="200 OK", sent=512, headers=[])
    logger.access(
        response,
        SimpleNamespace(headers=[("Authorization", "Bearer secret-token")]),
        environ,
        timedelta(milliseconds=12.4),
    )
    assert len(written) == 1
    return written[0]
