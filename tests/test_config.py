"""Settings from the environment: the deployment contract's names, clear errors, no secret in messages."""

from __future__ import annotations

import pytest

from config import DEV_JWT_SECRET, ConfigError, Settings

SECRET = "s" * 32


def test_defaults_are_the_designs():
    settings = Settings.from_env({"JWT_SECRET_KEY": SECRET})
    assert settings.redis_url is None
    assert settings.openrouter_api_key is None
    assert settings.openrouter_base_url == "https://openrouter.ai/api/v1"
    assert settings.ollama_base_url == "http://localhost:11434"
    assert settings.openrouter_refresh_seconds == 900
    assert settings.ollama_refresh_seconds == 30
    assert settings.upstream_timeout_seconds == 10
    assert settings.scheduler_enabled is None
    assert settings.port == 8000


def test_every_design_variable_is_read():
    env = {
        "JWT_SECRET_KEY": SECRET,
        "REDIS_URL": "redis://cache:6379/1",
        "OPENROUTER_API_KEY": "k",
        "OPENROUTER_BASE_URL": "http://or.test/api/v1/",
        "OLLAMA_BASE_URL": "http://ollama:11434",
        "OPENROUTER_REFRESH_SECONDS": "60",
        "OLLAMA_REFRESH_SECONDS": "5",
        "UPSTREAM_TIMEOUT_SECONDS": "2.5",
        "SCHEDULER_ENABLED": "true",
    }
    settings = Settings.from_env(env)
    assert settings.redis_url == "redis://cache:6379/1"
    assert settings.openrouter_api_key == "k"
    assert settings.openrouter_base_url == "http://or.test/api/v1"
    assert settings.ollama_base_url == "http://ollama:11434"
    assert (settings.openrouter_refresh_seconds, settings.ollama_refresh_seconds) == (60, 5)
    assert settings.upstream_timeout_seconds == 2.5
    assert settings.scheduler_enabled is True


def test_missing_secret_stops_production_start_up():
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY is not set"):
        Settings.from_env({})


def test_short_secret_stops_production_start_up():
    with pytest.raises(ConfigError, match="shorter than 32 bytes") as caught:
        Settings.from_env({"JWT_SECRET_KEY": "short-secret-value"})
    assert "short-secret-value" not in str(caught.value)


def test_development_run_gets_a_default_secret():
    settings = Settings.from_env({"APP_ENV": "development"})
    assert settings.jwt_secret_key == DEV_JWT_SECRET
    assert Settings.from_env({"APP_ENV": "development", "JWT_SECRET_KEY": "short"}).jwt_secret_key == "short"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OLLAMA_REFRESH_SECONDS", "soon"),
        ("UPSTREAM_TIMEOUT_SECONDS", "0"),
        ("SCHEDULER_ENABLED", "maybe"),
        ("OPENROUTER_BASE_URL", "ftp://x"),
        ("REDIS_URL", "http://x"),
        ("PORT", "99999"),
        ("APP_ENV", "staging"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"JWT_SECRET_KEY": SECRET, name: value})


def test_url_errors_do_not_echo_credentials():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"JWT_SECRET_KEY": SECRET, "OLLAMA_BASE_URL": "gopher://user:hunter2@x"})
    assert "hunter2" not in str(caught.value)


def test_settings_repr_hides_secrets():
    settings = Settings.from_env({"JWT_SECRET_KEY": SECRET, "OPENROUTER_API_KEY": "sk-or-secret"})
    assert SECRET not in repr(settings)
    assert "sk-or-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "embedded", "expected"),
    [
        ({}, True, True),  # the embedded run refreshes for itself
        ({}, False, True),  # gunicorn without Redis: nobody else could refresh this process's tier
        ({"REDIS_URL": "redis://r:6379/0"}, False, False),  # web workers with Redis: the refresher does it
        ({"REDIS_URL": "redis://r:6379/0", "SCHEDULER_ENABLED": "1"}, False, True),
        ({"SCHEDULER_ENABLED": "false"}, True, False),
    ],
)
def test_who_runs_the_scheduler(env, embedded, expected):
    settings = Settings.from_env({"JWT_SECRET_KEY": SECRET, **env})
    assert settings.runs_scheduler(embedded=embedded) is expected
