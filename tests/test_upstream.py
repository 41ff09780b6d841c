"""The upstream client: deadlines, byte caps, redirects, status codes, non-JSON answers."""

from __future__ import annotations

import gzip
import time
from email.utils import formatdate

import pytest
import requests

from app.sources.http import HttpClient, UpstreamError, UpstreamKeyRejected, UpstreamRateLimited, parse_retry_after
from app.sources.ollama import OllamaClient
from app.sources.openrouter import OpenRouterClient
from harness.fake_upstream import FakeUpstream, fixture_bytes
from tests.support.secrets import OPENROUTER_KEY

BASE = "http://openrouter.test/api/v1"
# Room a loaded 2-core machine needs on top of a deadline; without the deadline, the trickle
# below would last 100 s and the hang 120 s.
DEADLINE_MARGIN = 3.0


@pytest.fixture
def http():
    return HttpClient(timeout_seconds=1.0, max_bytes=4 * 1024 * 1024)


@pytest.fixture
def openrouter(http):
    return OpenRouterClient(http, BASE, OPENROUTER_KEY)


def test_models_sends_the_key_and_parses_json(requests_mock, openrouter):
    requests_mock.get(f"{BASE}/models", content=fixture_bytes("openrouter/models.json"))
    document = openrouter.models()
    assert len(document["data"]) == 414
    assert requests_mock.last_request.headers["Authorization"] == f"Bearer {OPENROUTER_KEY}"


def test_embeddings_path(requests_mock, openrouter):
    requests_mock.get(f"{BASE}/embeddings/models", content=fixture_bytes("openrouter/embeddings_models.json"))
    assert len(openrouter.embedding_models()["data"]) == 34


def test_ollama_calls_carry_no_key(requests_mock, http):
    ollama = OllamaClient(http, "http://ollama.test:11434")
    requests_mock.get("http://ollama.test:11434/api/tags", content=fixture_bytes("ollama/tags_1.json"))
    requests_mock.post("http://ollama.test:11434/api/show", content=fixture_bytes("ollama/show_qwen3_1.7b.json"))
    assert len(ollama.tags()["models"]) == 22
    assert ollama.show("qwen3:1.7b")["capabilities"] == ["completion", "tools", "thinking"]
    assert requests_mock.last_request.json() == {"model": "qwen3:1.7b"}
    assert "Authorization" not in requests_mock.last_request.headers


@pytest.mark.parametrize("exc", [requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout])
def test_timeouts(requests_mock, openrouter, exc):
    requests_mock.get(f"{BASE}/models", exc=exc)
    with pytest.raises(UpstreamError, match="did not answer within 1 s"):
        openrouter.models()


def test_connection_refused_has_a_short_message(http):
    ollama = OllamaClient(http, "http://user:hunter2@127.0.0.1:1")
    with pytest.raises(UpstreamError) as caught:
        ollama.tags()
    assert str(caught.value) == "cannot connect to Ollama at 127.0.0.1:1 (connection refused)"


@pytest.mark.parametrize("status", [500, 502, 503, 404])
def test_error_status(requests_mock, openrouter, status):
    requests_mock.get(f"{BASE}/models", status_code=status, text="<html>secret page</html>")
    with pytest.raises(UpstreamError) as caught:
        openrouter.models()
    assert str(caught.value) == f"OpenRouter at openrouter.test answered HTTP {status}"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_says_so(requests_mock, openrouter, status):
    requests_mock.get(f"{BASE}/models", status_code=status, text="<html>secret page</html>")
    with pytest.raises(UpstreamKeyRejected) as caught:
        openrouter.models()
    assert str(caught.value) == f"OpenRouter at openrouter.test: key rejected ({status})"


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), (None, None), ("soon", None)],
)
def test_rate_limited_carries_retry_after(requests_mock, openrouter, header, expected):
    headers = {"Retry-After": header} if header else {}
    requests_mock.get(f"{BASE}/models", status_code=429, headers=headers)
    with pytest.raises(UpstreamRateLimited) as caught:
        openrouter.models()
    assert caught.value.retry_after == expected


def test_retry_after_http_date():
    now = time.time()
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now=now) == pytest.approx(90, abs=1)
    assert parse_retry_after(formatdate(now - 90, usegmt=True), now=now) == 0


def test_non_json_is_rejected_with_type_and_size_but_no_body(requests_mock, openrouter):
    requests_mock.get(
        f"{BASE}/models", text="<html>maintenance, key sk-xyz</html>", headers={"Content-Type": "text/html"}
    )
    with pytest.raises(UpstreamError) as caught:
        openrouter.models()
    message = str(caught.value)
    assert message == "OpenRouter at openrouter.test sent a response that is not JSON (text/html, 36 bytes)"
    assert "maintenance" not in message


def test_redirect_is_not_followed(requests_mock, openrouter):
    requests_mock.get(f"{BASE}/models", status_code=302, headers={"Location": "http://evil.test/steal"})
    stolen = requests_mock.get("http://evil.test/steal", json={"data": []})
    with pytest.raises(UpstreamError, match="redirect"):
        openrouter.models()
    assert not stolen.called


def test_oversize_body_is_refused(requests_mock):
    http = HttpClient(timeout_seconds=1.0, max_bytes=1000)
    client = OpenRouterClient(http, BASE, OPENROUTER_KEY)
    requests_mock.get(f"{BASE}/models", content=b'{"data": [' + b"1," * 2000 + b"1]}")
    with pytest.raises(UpstreamError, match="more than 1000 bytes"):
        client.models()


# --- against a real loopback server: what requests-mock cannot fake ------------------------


def test_trickling_body_ends_at_the_total_deadline(upstream):
    upstream.set("/api/tags", b'{"models": []}' + b" " * 200, mode="trickle")
    client = OllamaClient(HttpClient(timeout_seconds=1.0, max_bytes=10_000), upstream.url)
    started = time.monotonic()
    with pytest.raises(UpstreamError, match="within 1 s"):
        client.tags()
    # Each byte comes well within a read timeout; only a total deadline stops this.
    assert time.monotonic() - started < 1.0 + DEADLINE_MARGIN


def test_hanging_server_ends_at_the_deadline(upstream):
    upstream.set("/api/tags", mode="hang")
    client = OllamaClient(HttpClient(timeout_seconds=0.5, max_bytes=10_000), upstream.url)
    started = time.monotonic()
    with pytest.raises(UpstreamError, match=r"within 0\.5 s"):
        client.tags()
    assert time.monotonic() - started < 0.5 + DEADLINE_MARGIN


def test_gzip_bomb_is_capped_on_decoded_bytes(upstream):
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")
    upstream.set("/api/tags", bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    client = OllamaClient(HttpClient(timeout_seconds=5.0, max_bytes=1_000_000), upstream.url)
    assert len(bomb) < 1_000_000
    with pytest.raises(UpstreamError, match="more than 1000000 bytes"):
        client.tags()


def test_gzip_answer_is_decoded(upstream):
    upstream.set(
        "/api/tags",
        gzip.compress(fixture_bytes("ollama/tags_2.json")),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    client = OllamaClient(HttpClient(timeout_seconds=5.0, max_bytes=1_000_000), upstream.url)
    assert len(client.tags()["models"]) == 6


def test_redirect_to_another_loopback_port_never_gets_the_key(upstream):
    other = FakeUpstream().start()
    try:
        other.set("/api/v1/models", fixture_bytes("openrouter/models.json"))
        upstream.set("/api/v1/models", b"", status=307, headers={"Location": f"{other.url}/api/v1/models"})
        client = OpenRouterClient(HttpClient(1.0, 10_000_000), f"{upstream.url}/api/v1", OPENROUTER_KEY)
        with pytest.raises(UpstreamError, match="redirect"):
            client.models()
        assert other.calls == []
        assert upstream.calls[0].headers["Authorization"] == f"Bearer {OPENROUTER_KEY}"
    finally:
        other.stop()
