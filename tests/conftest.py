"""Shared fixtures: settings, the app, a test client and CLI runner, tokens, a real Redis."""

from __future__ import annotations

import dataclasses
import gzip
import logging
import time

import jwt as pyjwt
import pytest
from flask.testing import FlaskClient

from app import create_app
from config import Settings
from tests.support.fake_upstream import FakeUpstream
from tests.support.redis_server import RedisServer, free_port

# Sentinels: tests check that these never show up in a response or a log line.
JWT_SECRET = "test-jwt-secret-sentinel-6f1d2c3b4a5e6f708192a3b4c5d6e7f8-0011223344556677"
OPENROUTER_KEY = "sk-or-test-key-sentinel-0123456789abcdef"


# Upstream addresses that requests-mock answers for (nothing listens there).
OR_BASE = "http://openrouter.test/api/v1"
OLLAMA_BASE = "http://ollama.test:11434"

# The base64 of '{"alg"': how every JWT starts. No log line or response may carry one.
TOKEN_PREFIX = "eyJhbGci"


def leaked_sentinels(text: str) -> list[str]:
    """Which sentinels appear in `text`."""
    sentinels = {"JWT secret": JWT_SECRET, "OpenRouter key": OPENROUTER_KEY, "token": TOKEN_PREFIX}
    return [name for name, value in sentinels.items() if value in text]


@pytest.fixture(autouse=True)
def no_secret_leaks(caplog, monkeypatch):
    """Around every test: logs at DEBUG and every test-client response are checked for secrets."""
    caplog.set_level(logging.DEBUG)
    original_open = FlaskClient.open

    def checked_open(self, *args, **kwargs):
        response = original_open(self, *args, **kwargs)
        body = response.get_data()
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        text = body.decode("utf-8", "replace") + str(response.headers)
        assert leaked_sentinels(text) == [], f"secret in a response: {leaked_sentinels(text)}"
        return response

    monkeypatch.setattr(FlaskClient, "open", checked_open)
    yield
    leaks = leaked_sentinels(caplog.text)
    assert leaks == [], f"secret in a log line: {leaks}"


@pytest.fixture
def make_settings():
    """Settings for tests: embedded store, no API key, and an Ollama address nobody answers on."""

    def make(**overrides) -> Settings:
        base = Settings(
            jwt_secret_key=JWT_SECRET,
            ollama_base_url=f"http://127.0.0.1:{free_port()}",
            openrouter_base_url=f"http://127.0.0.1:{free_port()}/api/v1",
            upstream_timeout_seconds=2.0,
        )
        return dataclasses.replace(base, **overrides)

    return make


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
def app(settings):
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def keyed_app(make_settings):
    """An app with an OpenRouter key, both upstreams at addresses requests-mock can answer."""
    return create_app(make_settings(openrouter_api_key=OPENROUTER_KEY, openrouter_base_url=OR_BASE,
                                    ollama_base_url=OLLAMA_BASE))


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def make_token(secret: str = JWT_SECRET, **claims) -> str:
    """An HS256 token as another application would issue it: sub and exp, nothing more."""
    payload = {"sub": "user-1", "exp": int(time.time()) + 600, **claims}
    payload = {key: value for key, value in payload.items() if value is not None}
    return pyjwt.encode(payload, secret, algorithm="HS256")


@pytest.fixture
def auth_headers() -> dict:
    return {"Authorization": f"Bearer {make_token()}"}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """One real redis-server for the session; tests that stop it get it restarted."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    """The URL of a running, empty Redis."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    redis_server.resume()
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture
def upstream():
    """A loopback server standing in for OpenRouter and Ollama."""
    server = FakeUpstream().start()
    yield server
    server.stop()
