"""Settings from the environment: the deployment contract's names, clear errors, no secret in messages."""

from __future__ import annotations

import pytest

from app import create_app
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


def test_redis_beyond_one_server_is_off_by_default():
    settings = Settings.from_env({"JWT_SECRET_KEY": SECRET, "REDIS_URL": "redis://cache:6379/0"})
    assert settings.redis_ca_file is None
    assert settings.redis_sentinels == ()
    assert settings.redis_sentinel_master == "mymaster"
    assert (settings.redis_sentinel_username, settings.redis_sentinel_password) == (None, None)


def test_tls_and_sentinel_variables_are_read(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings.from_env({
        "JWT_SECRET_KEY": SECRET,
        "REDIS_URL": "rediss://app:pw@mymaster/2",
        "REDIS_CA_FILE": str(ca),
        "REDIS_SENTINELS": "10.0.0.1:26379, sentinel-2:26380,[::1]:26381",
        "REDIS_SENTINEL_MASTER": "catalog",
        "REDIS_SENTINEL_USERNAME": "watcher",
        "REDIS_SENTINEL_PASSWORD": "sentinel-secret",
    })  # fmt: skip
    assert settings.redis_ca_file == ca
    assert settings.redis_sentinels == (("10.0.0.1", 26379), ("sentinel-2", 26380), ("::1", 26381))
    assert settings.redis_sentinel_master == "catalog"
    assert settings.redis_sentinel_username == "watcher"
    assert settings.redis_sentinel_password == "sentinel-secret"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_SENTINELS": "sentinel-1"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "sentinel-1:26379,sentinel-2:port"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": "sentinel-1:0"}, "REDIS_SENTINELS"),
        ({"REDIS_SENTINELS": ":26379"}, "REDIS_SENTINELS"),
        ({"REDIS_CA_FILE": "/nonexistent/ca.crt", "REDIS_URL": "rediss://r/0"}, "REDIS_CA_FILE"),
        ({"REDIS_CA_FILE": "/", "REDIS_URL": "rediss://r/0"}, "REDIS_CA_FILE"),
        ({"REDIS_CA_FILE": __file__, "REDIS_URL": "redis://r/0"}, "REDIS_CA_FILE"),
        ({"REDIS_SENTINELS": "s:26379"}, "REDIS_SENTINELS needs REDIS_URL"),
        ({"REDIS_SENTINELS": "s:26379", "REDIS_URL": "unix:///run/redis.sock"}, "REDIS_SENTINELS needs REDIS_URL"),
        ({"REDIS_SENTINEL_MASTER": "catalog", "REDIS_URL": "redis://r/0"}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINEL_PASSWORD": "x"}, "REDIS_SENTINEL_PASSWORD"),
    ],
)
def test_bad_redis_topologies_stop_start_up_named(env, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env({"JWT_SECRET_KEY": SECRET, **env})


def test_redis_passwords_are_secrets_and_stay_out_of_repr_and_errors():
    url = "redis://app:p%40ss-hunter2@mymaster/0"
    settings = Settings.from_env(
        {
            "JWT_SECRET_KEY": SECRET,
            "REDIS_URL": url,
            "REDIS_SENTINELS": "s:26379",
            "REDIS_SENTINEL_PASSWORD": "s3cr3t-s",
        }
    )
    # Masked in logs as written in the URL and as decoded.
    assert {"p%40ss-hunter2", "p@ss-hunter2", "s3cr3t-s"} <= set(settings.secrets)
    assert "hunter2" not in repr(settings) and "s3cr3t-s" not in repr(settings)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {"JWT_SECRET_KEY": SECRET, "REDIS_URL": url.replace("redis:", "unix:"), "REDIS_SENTINELS": "s:1"}
        )
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://app:hunter2@r:6379/0?no_such_option=1", "no_such_option"),
        ("rediss://app:hunter2@r:6379/0?ssl_cert_reqs=sometimes", "Invalid SSL Certificate Requirements"),
        ("redis://app:hunter2@r:6379/0?socket_timeout=30", "socket_timeout: the service sets timeouts"),
        ("redis://r:6379/zero?db=x", "Invalid value for 'db'"),
        ("redis://app:hunter2@r:6379/zero?db=x", "percent-encode"),
        ("redis://app:s3cr#et@r:6379/0", "percent-encode"),
    ],
)
def test_redis_url_options_redis_py_cannot_use_stop_start_up(make_settings, url, message):
    with pytest.raises(ConfigError, match=message) as caught:
        create_app(make_settings(redis_url=url))
    assert "hunter2" not in str(caught.value)
