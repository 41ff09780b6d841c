"""SOURCES_FILE: the local servers it declares, and the start-up errors of a bad entry."""

from __future__ import annotations

import pytest

from app.registry import RESERVED_PATHS
from app.sources.base import API_PREFIX
from config import PROJECT_ROOT, ConfigError, Settings
from local_servers import RESERVED_NAMES, LocalServer
from tests.support.secrets import LOCAL_SERVER_KEY

SECRET = "s" * 32

GOOD = """\
servers:
  - name: studio
    kind: lmstudio
    base_url: http://localhost:1234/v1/
    api_key_env: STUDIO_KEY
  - name: gpu-box
    kind: vllm
    base_url: https://gpu.example:8000/v1
    refresh_seconds: 10
  - name: llama
    kind: llamacpp
    base_url: http://127.0.0.1:8080/v1
  - name: other
    kind: openai_compatible
    base_url: http://localhost:8081/v1
"""


def settings_from(tmp_path, text: str, **env) -> Settings:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    return Settings.from_env({"JWT_SECRET_KEY": SECRET, "SOURCES_FILE": str(path), **env})


def start_up_error(tmp_path, text: str, **env) -> str:
    with pytest.raises(ConfigError) as caught:
        settings_from(tmp_path, text, **env)
    return str(caught.value)


def test_without_sources_file_there_are_no_local_servers():
    settings = Settings.from_env({"JWT_SECRET_KEY": SECRET})
    assert (settings.sources_file, settings.local_servers, settings.local_refresh_seconds) == (None, (), 30)


def test_every_entry_is_read_with_its_key(tmp_path):
    settings = settings_from(tmp_path, GOOD, STUDIO_KEY=LOCAL_SERVER_KEY, LOCAL_REFRESH_SECONDS="12")
    assert settings.sources_file == tmp_path / "sources.yaml"
    assert settings.local_refresh_seconds == 12
    assert settings.local_servers == (
        LocalServer(
            "studio", "lmstudio", "http://localhost:1234/v1", api_key=LOCAL_SERVER_KEY, api_key_env="STUDIO_KEY"
        ),
        LocalServer("gpu-box", "vllm", "https://gpu.example:8000/v1", refresh_seconds=10.0),
        LocalServer("llama", "llamacpp", "http://127.0.0.1:8080/v1"),
        LocalServer("other", "openai_compatible", "http://localhost:8081/v1"),
    )
    # The key is a secret: masked in messages, never in a repr.
    assert LOCAL_SERVER_KEY in settings.secrets
    assert LOCAL_SERVER_KEY not in repr(settings) and LOCAL_SERVER_KEY not in repr(settings.local_servers[0])


def test_an_empty_server_list_is_allowed(tmp_path):
    assert settings_from(tmp_path, "servers: []\n").local_servers == ()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{name: studio, kind: ollama, base_url: 'http://h/v1'}",
            "entry 1 (studio): 'kind' must be one of lmstudio, vllm, llamacpp, openai_compatible, got 'ollama'",
        ),
        ("{name: Studio, kind: vllm, base_url: 'http://h/v1'}", "entry 1 (Studio): 'name' must be a URL segment"),
        ("{name: 'a/b', kind: vllm, base_url: 'http://h/v1'}", "entry 1 (a/b): 'name' must be a URL segment"),
        ("{name: my_box, kind: vllm, base_url: 'http://h/v1'}", "entry 1 (my_box): 'name' must be a URL segment"),
        ("{name: 7, kind: vllm, base_url: 'http://h/v1'}", "entry 1: 'name' must be a URL segment"),
        (
            "{name: ollama, kind: vllm, base_url: 'http://h/v1'}",
            "entry 1 (ollama): 'name' 'ollama' is taken by the service",
        ),
        (
            "{name: openai, kind: vllm, base_url: 'http://h/v1'}",
            "entry 1 (openai): 'name' 'openai' is taken by the service",
        ),
        (
            "{name: status, kind: vllm, base_url: 'http://h/v1'}",
            "entry 1 (status): 'name' 'status' is taken by the service",
        ),
        (
            "{name: box, kind: vllm, base_url: 'ftp://h/v1'}",
            "entry 1 (box): 'base_url' must be an http(s) URL with a host",
        ),
        ("{name: box, kind: vllm, base_url: 'localhost:8000'}", "entry 1 (box): 'base_url' must be an http(s) URL"),
        ("{name: box, kind: vllm, base_url: 'http://h/v1?x=1'}", "entry 1 (box): 'base_url' must not have a query"),
        ("{name: box, kind: vllm}", "entry 1 (box): missing 'base_url'"),
        ("{name: box, kind: vllm, base_url: 'http://h/v1', apikey: X}", "entry 1 (box): unknown field 'apikey'"),
        (
            "{name: box, kind: vllm, base_url: 'http://h/v1', api_key_env: NOT_SET_ANYWHERE}",
            "entry 1 (box): 'api_key_env': the variable NOT_SET_ANYWHERE is not set",
        ),
        (
            "{name: box, kind: vllm, base_url: 'http://h/v1', api_key_env: 'no spaces'}",
            "entry 1 (box): 'api_key_env' must be the name of an environment variable",
        ),
        (
            "{name: box, kind: vllm, base_url: 'http://h/v1', refresh_seconds: 0}",
            "entry 1 (box): 'refresh_seconds' must be a number greater than 0",
        ),
        (
            "{name: box, kind: vllm, base_url: 'http://h/v1', refresh_seconds: yes}",
            "entry 1 (box): 'refresh_seconds' must be a number greater than 0",
        ),
        ("just-a-string", "entry 1: must be a mapping"),
    ],
)
def test_a_bad_entry_stops_start_up_naming_file_entry_and_field(tmp_path, entry, message):
    error = start_up_error(tmp_path, f"servers:\n  - {entry}\n")
    assert error.startswith(f"SOURCES_FILE {tmp_path / 'sources.yaml'}: ")
    assert message in error


def test_a_name_taken_by_another_entry(tmp_path):
    text = "servers:\n  - {name: box, kind: vllm, base_url: 'http://a/v1'}\n  - {name: box, kind: llamacpp, base_url: 'http://b/v1'}\n"
    assert "entry 2 (box): 'name' 'box' is taken by entry 1" in start_up_error(tmp_path, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("servers: {name: box}\n", "must be a mapping with a 'servers' list"),
        ("- a\n- b\n", "must be a mapping with a 'servers' list"),
        ("servers: []\nextra: 1\n", "unknown top-level field extra"),
        ("servers: [\n", "not valid YAML"),
    ],
)
def test_a_bad_file_stops_start_up(tmp_path, text, message):
    assert message in start_up_error(tmp_path, text)


def test_a_missing_file_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match=r"SOURCES_FILE .*nowhere.yaml: cannot be read"):
        Settings.from_env({"JWT_SECRET_KEY": SECRET, "SOURCES_FILE": str(tmp_path / "nowhere.yaml")})


def test_errors_never_echo_a_url_or_a_key(tmp_path):
    text = "servers:\n  - {name: box, kind: vllm, base_url: 'gopher://user:hunter2@h/v1'}\n"
    assert "hunter2" not in start_up_error(tmp_path, text)
    text = "servers:\n  - {name: box, kind: nope, base_url: 'http://h/v1', api_key_env: BOX_KEY}\n"
    assert LOCAL_SERVER_KEY not in start_up_error(tmp_path, text, BOX_KEY=LOCAL_SERVER_KEY)


def test_reserved_names_cover_every_reserved_path_and_the_contract_sources():
    segments = {path.removeprefix(API_PREFIX + "/") for path in RESERVED_PATHS}
    assert segments <= RESERVED_NAMES
    assert {"openrouter", "embeddings", "ollama", "openai", "anthropic", "gemini", "mistral", "all"} <= RESERVED_NAMES


def test_the_shipped_example_file_is_valid(tmp_path):
    example = (PROJECT_ROOT / "sources.example.yaml").read_text()
    keys = {"STUDIO_KEY": LOCAL_SERVER_KEY}
    settings = settings_from(tmp_path, example, **keys)
    assert [(server.name, server.kind) for server in settings.local_servers] == [
        ("studio", "lmstudio"),
        ("llama", "llamacpp"),
    ]
    assert settings.local_servers[0].base_url == "http://localhost:1234/v1"
    assert settings.local_servers[0].api_key == LOCAL_SERVER_KEY
