"""Shared fixtures: settings, the app, a test client and CLI runner, tokens, a real Redis."""

from __future__ import annotations

import dataclasses
import gzip
import logging

import pytest
from flask.testing import FlaskClient

from app import create_app
from config import Settings
from harness.fake_upstream import FakeUpstream
from harness.redis_server import RedisServer, free_port
from tests.support.log_records import RecordKeeper
from tests.support.secrets import JWT_SECRET, OLLAMA_BASE, OPENROUTER_KEY, OR_BASE, leaked_sentinels, make_token


@pytest.fixture(autouse=True)
def no_secret_leaks(monkeypatch):
    """Around every test: no secret in any log record it emits or any test-client response."""
    # Every record: all loggers at DEBUG, any thread, from the test's first fixture to its last
    # teardown. So a handler of our own sits on the root logger for the whole test: caplog's
    # handlers change with each phase, and caplog.text at teardown holds the teardown's alone.
    keeper = RecordKeeper()
    root = logging.getLogger()
    level = root.level
    root.addHandler(keeper)
    root.setLevel(logging.DEBUG)
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
    try:
        yield
    finally:
        root.removeHandler(keeper)
        root.setLevel(level)
    leaks = sorted({name for _, text in keeper.texts for name in leaked_sentinels(text)})
    loggers = sorted({logger for logger, text in keeper.texts if leaked_sentinels(text)})
    assert leaks == [], f"secret in a log line: {leaks} (logged by {', '.join(loggers)})"


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
    return create_app(
        make_settings(openrouter_api_key=OPENROUTER_KEY, openrouter_base_url=OR_BASE, ollama_base_url=OLLAMA_BASE)
    )


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


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


def pytest_collection_modifyitems(items):
    """Tests that use the real Redis server are system tests too (see the marker in pytest.ini)."""
    for item in items:
        if {"redis_server", "redis_url"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.system)
