"""End to end: the hosted providers replayed by a loopback server, and the faults that matter per provider.

Every recording is served as recorded. Where a second page is served, it is built from real
rows and says so: Anthropic's recording 3 split into two pages; Gemini's recording 4 (whose
second page was not recorded) followed by a page of three rows of Gemini's recording 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from app import create_app
from app.sources.hosted import MAX_PAGES
from config import PROJECT_ROOT
from harness.fake_upstream import FakeUpstream, fixture_bytes
from tests.support.secrets import JWT_SECRET, PROVIDER_KEYS, make_token

PROVIDERS = ("openai", "anthropic", "gemini", "mistral")
BASE_PATHS = {
    "openai": "/openai/v1",
    "anthropic": "/anthropic/v1",
    "gemini": "/gemini/v1beta",
    "mistral": "/mistral/v1",
}
# The first (or only) list call of each provider, as the upstream receives it.
FIRST_PAGE = {
    "openai": "/openai/v1/models",
    "anthropic": "/anthropic/v1/models?limit=1000",
    "gemini": "/gemini/v1beta/models?pageSize=1000",
    "mistral": "/mistral/v1/models",
}
# Where each key goes; it must be in that header of that provider's calls and nowhere else.
KEY_HEADERS = {
    "openai": "Authorization",
    "anthropic": "x-api-key",
    "gemini": "x-goog-api-key",
    "mistral": "Authorization",
}
UPSTREAM_NAMES = {"openai": "OpenAI", "anthropic": "Anthropic", "gemini": "Gemini API", "mistral": "Mistral"}
KEY_ENV = {f"{name.upper()}_{suffix}" for name in PROVIDERS for suffix in ("API_KEY", "BASE_URL")}
HEADERS = {"Authorization": f"Bearer {make_token(exp=2_000_000_000)}"}
ADMIN = {"Authorization": f"Bearer {make_token(role='admin', exp=2_000_000_000)}"}


def provider_settings(make_settings, upstream, names=PROVIDERS, **overrides):
    """Settings with these providers' keys, each at its own path of the loopback server."""
    fields = {}
    for name in names:
        fields[f"{name}_api_key"] = PROVIDER_KEYS[name]
        fields[f"{name}_base_url"] = upstream.url + BASE_PATHS[name]
    return make_settings(**fields, **overrides)


def recording(name: str) -> dict:
    return json.loads(fixture_bytes(f"providers/{name}"))


def anthropic_split_pages() -> list[tuple[str, bytes]]:
    """Recording 3's nine models on two pages (5 + 4), cursors set as the API sets them."""
    rows = recording("anthropic_v1-models_3.json")["data"]
    first, second = rows[:5], rows[5:]
    page_1 = {"data": first, "has_more": True, "first_id": first[0]["id"], "last_id": first[-1]["id"]}
    page_2 = {"data": second, "has_more": False, "first_id": second[0]["id"], "last_id": second[-1]["id"]}
    return [
        (FIRST_PAGE["anthropic"], json.dumps(page_1).encode()),
        (f"{FIRST_PAGE['anthropic']}&after_id={first[-1]['id']}", json.dumps(page_2).encode()),
    ]


def gemini_recording_4_with_a_second_page() -> list[tuple[str, bytes]]:
    """Recording 4 unchanged (with its real nextPageToken), then a page of three rows of recording 1."""
    token = recording("gemini_v1beta-models_4.json")["nextPageToken"]
    older = {row["name"]: row for row in recording("gemini_v1beta-models_1.json")["models"]}
    page_2 = [older[name] for name in ("models/gemma-3-27b-it", "models/gemma-3-4b-it", "models/text-embedding-004")]
    return [
        (FIRST_PAGE["gemini"], fixture_bytes("providers/gemini_v1beta-models_4.json")),
        (f"{FIRST_PAGE['gemini']}&pageToken={token}", json.dumps({"models": page_2}).encode()),
    ]


def single_page(provider: str, fixture: str) -> list[tuple[str, bytes]]:
    return [(FIRST_PAGE[provider], fixture_bytes(f"providers/{fixture}"))]


# (provider, pages served, chat rows, embedding rows, embedding rows with dimensions); None: no
# embedding catalog. Recording 4 of Gemini has a nextPageToken, so it is served with a page 2.
REPLAYS = {
    "openai-2": ("openai", single_page("openai", "openai_v1-models_2.json"), 56, 3, 3),
    "anthropic-1": ("anthropic", single_page("anthropic", "anthropic_v1-models_1.json"), 9, None, None),
    "anthropic-3": ("anthropic", single_page("anthropic", "anthropic_v1-models_3.json"), 9, None, None),
    "anthropic-3-on-2-pages": ("anthropic", anthropic_split_pages(), 9, None, None),
    "gemini-1": ("gemini", single_page("gemini", "gemini_v1beta-models_1.json"), 38, 5, 4),
    "gemini-4-and-a-2nd-page": ("gemini", gemini_recording_4_with_a_second_page(), 32, 4, 4),
    "mistral-2": ("mistral", single_page("mistral", "mistral_v1-models_2.json"), 26, 2, 2),
}  # fmt: skip


def served(client, path, headers=HEADERS):
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["data"]


def keys_went_only_where_they_belong(calls) -> None:
    for call in calls:
        provider = next(name for name, base in BASE_PATHS.items() if call.path.startswith(base))
        for name, key in PROVIDER_KEYS.items():
            assert key not in call.path
            sent = {header.lower() for header, value in call.headers.items() if key in value}
            assert sent == ({KEY_HEADERS[name].lower()} if name == provider else set()), (call.path, name, sent)


@pytest.mark.parametrize(("provider", "pages", "chat", "embeddings", "sized"), REPLAYS.values(), ids=REPLAYS.keys())
def test_recordings_replayed_are_served(upstream, make_settings, provider, pages, chat, embeddings, sized):
    for path, body in pages:
        upstream.set(path, body)
    app = create_app(provider_settings(make_settings, upstream, names=(provider,)))
    service = app.extensions["catalog_service"]
    result = service.refresher.run(provider)
    assert (result.outcome, result.rows, result.skipped) == ("published", chat, 0)
    assert [call.path for call in upstream.calls] == [path for path, _ in pages]
    keys_went_only_where_they_belong(upstream.calls)

    client = app.test_client()
    data = served(client, f"/api/models/{provider}")
    assert (data["source"], data["total"], len(data["models"])) == ("api", chat, chat)
    assert "error" not in data
    # A repeated plain GET with the same token takes the fast path: the same bytes and ETag.
    again = client.get(f"/api/models/{provider}", headers=HEADERS)
    assert (
        again.get_json()["data"] == data
        and again.headers["ETag"] == client.get(f"/api/models/{provider}", headers=HEADERS).headers["ETag"]
    )

    if embeddings is None:
        assert client.get(f"/api/models/{provider}/embeddings", headers=HEADERS).status_code == 404
    else:
        rows = served(client, f"/api/models/{provider}/embeddings")["models"]
        assert (len(rows), sum(row["dimensions"] is not None for row in rows)) == (embeddings, sized)

    status = served(client, "/api/models/status")["catalogs"][provider]
    assert (status["source"], status["rows"], status["refreshed_by"], status["last_error"]) == (
        "api",
        chat,
        provider,
        None,
    )


def test_all_four_at_once_through_the_cli_into_redis_and_a_web_process(upstream, redis_url, make_settings):
    for name in ("openai-2", "anthropic-3-on-2-pages", "gemini-4-and-a-2nd-page", "mistral-2"):
        for path, body in REPLAYS[name][1]:
            upstream.set(path, body)
    upstream.set("/api/tags", fixture_bytes("ollama/tags_3.json"))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FLASK_", "REDIS_", "OPENROUTER_", "OLLAMA_")) and key not in KEY_ENV
    }
    env.update(
        JWT_SECRET_KEY=JWT_SECRET, REDIS_URL=redis_url, OLLAMA_BASE_URL=upstream.url, UPSTREAM_TIMEOUT_SECONDS="5"
    )
    for name in PROVIDERS:
        env[f"{name.upper()}_API_KEY"] = PROVIDER_KEYS[name]
        env[f"{name.upper()}_BASE_URL"] = upstream.url + BASE_PATHS[name]
    completed = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "models", "refresh"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert [line.split(" in ")[0] for line in completed.stdout.splitlines()] == [
        "openrouter: disabled",
        "embeddings: disabled",
        "ollama: published 4 rows (0 skipped)",
        "openai: published 56 rows (0 skipped)",
        "anthropic: published 9 rows (0 skipped)",
        "gemini: published 32 rows (0 skipped)",
        "mistral: published 26 rows (0 skipped)",
    ]
    output = completed.stdout + completed.stderr
    assert not any(key in output for key in PROVIDER_KEYS.values())
    keys_went_only_where_they_belong([call for call in upstream.calls if not call.path.startswith("/api/")])

    # A web process with no scheduler serves what the refresher published.
    client = create_app(provider_settings(make_settings, upstream, redis_url=redis_url)).test_client()
    totals = {name: served(client, f"/api/models/{name}")["total"] for name in PROVIDERS}
    assert totals == {"openai": 56, "anthropic": 9, "gemini": 32, "mistral": 26}
    gemini_embeddings = served(client, "/api/models/gemini/embeddings")["models"]
    assert {row["id"]: row["dimensions"] for row in gemini_embeddings} == {
        "gemini-embedding-001": 3072, "gemini-embedding-2": 3072, "gemini-embedding-2-preview": 3072,
        "text-embedding-004": 768,
    }  # fmt: skip
    filtered = served(client, "/api/models/mistral?supports=vision&min_context=200000")["models"]
    assert [row["id"] for row in filtered] == [
        "labs-devstral-small-2512",
        "ministral-14b-2512",
        "ministral-8b-2512",
        "mistral-large-2512",
    ]


# --- Faults -----------------------------------------------------------------------------------


def one_provider_app(make_settings, upstream, provider, **overrides):
    app = create_app(provider_settings(make_settings, upstream, names=(provider,), **overrides))
    return app, app.extensions["catalog_service"]


def good_answer(upstream, provider, **options) -> None:
    """The provider's recording on its first page (one page: no second page is asked for)."""
    fixture = {
        "openai": "openai_v1-models_2.json", "anthropic": "anthropic_v1-models_3.json",
        "gemini": "gemini_v1beta-models_1.json", "mistral": "mistral_v1-models_2.json",
    }[provider]  # fmt: skip
    upstream.set(FIRST_PAGE[provider], fixture_bytes(f"providers/{fixture}"), **options)


def at(upstream) -> str:
    return f"127.0.0.1:{upstream.url.rsplit(':', 1)[1]}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_hanging_provider_fails_at_the_deadline_and_says_so(upstream, make_settings, provider):
    upstream.set(FIRST_PAGE[provider], mode="hang")
    app, service = one_provider_app(make_settings, upstream, provider, upstream_timeout_seconds=1.0)
    result = service.refresher.run(provider)
    message = f"{UPSTREAM_NAMES[provider]} at {at(upstream)} did not answer within 1 s"
    assert (result.outcome, result.message) == ("failed", message)
    # Never any live data: the catalog says why it has none.
    data = served(app.test_client(), f"/api/models/{provider}")
    assert (data["source"], data["models"], data["total"], data["error"]) == ("unreachable", [], 0, message)


def test_one_provider_hanging_delays_neither_another_refresh_nor_a_request(upstream, make_settings):
    upstream.set(FIRST_PAGE["openai"], mode="hang")
    good_answer(upstream, "mistral")
    app = create_app(
        provider_settings(make_settings, upstream, names=("openai", "mistral"), upstream_timeout_seconds=5.0)
    )
    service = app.extensions["catalog_service"]
    results = {}
    hanging = threading.Thread(target=lambda: results.update(openai=service.refresher.run("openai")))
    hanging.start()
    try:
        deadline = time.monotonic() + 5
        while not upstream.count(FIRST_PAGE["openai"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert upstream.count(FIRST_PAGE["openai"]) == 1  # the OpenAI call waits for an answer
        assert service.refresher.run("mistral").outcome == "published"
        client = app.test_client()
        assert served(client, "/api/models/mistral")["total"] == 26
        pending = served(client, "/api/models/openai")
        assert (pending["source"], pending["error"]) == ("unreachable", "OpenAI has not been polled yet")
        assert hanging.is_alive()  # all of the above happened while the OpenAI poll still waited
    finally:
        hanging.join(timeout=30)
    assert results["openai"].outcome == "failed" and results["openai"].message.endswith("did not answer within 5 s")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_rejected_key_says_so_keeps_the_rows_and_waits_for_the_interval(upstream, make_settings, provider):
    app, service = one_provider_app(make_settings, upstream, provider)
    client = app.test_client()
    good_answer(upstream, provider)
    assert service.refresher.run(provider).outcome == "published"
    before = served(client, f"/api/models/{provider}")

    upstream.set(FIRST_PAGE[provider], b'{"error": {"message": "invalid key"}}', status=401)
    result = service.refresher.run(provider, force=True)
    message = f"{UPSTREAM_NAMES[provider]} at {at(upstream)}: key rejected (401)"
    assert (result.outcome, result.message) == ("failed", message)
    # The live rows stay (a hosted list is served however old); the status says why they age.
    assert served(client, f"/api/models/{provider}") == before
    status = service.store.read_status(provider)
    assert status.last_error == message
    interval = service.registry.sources[provider].interval_seconds
    assert status.next_attempt_at - status.last_attempt == pytest.approx(interval)
    assert served(client, "/api/models/status")["catalogs"][provider]["last_error"] == message
    calls = upstream.count(FIRST_PAGE[provider])
    assert service.refresher.run(provider).outcome == "fresh" and upstream.count(FIRST_PAGE[provider]) == calls


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_rejected_key_before_any_data_is_the_catalogs_error(upstream, make_settings, provider):
    upstream.set(FIRST_PAGE[provider], b"{}", status=403)
    app, service = one_provider_app(make_settings, upstream, provider)
    assert service.refresher.run(provider).outcome == "failed"
    data = served(app.test_client(), f"/api/models/{provider}")
    assert (data["source"], data["error"]) == (
        "unreachable",
        f"{UPSTREAM_NAMES[provider]} at {at(upstream)}: key rejected (403)",
    )


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rate_limited_with_retry_after_defers_the_next_attempt(upstream, make_settings, provider):
    upstream.set(FIRST_PAGE[provider], b'{"error": "slow down"}', status=429, headers={"Retry-After": "1200"})
    _, service = one_provider_app(make_settings, upstream, provider)
    result = service.refresher.run(provider)
    assert (result.outcome, result.message) == (
        "failed",
        f"{UPSTREAM_NAMES[provider]} at {at(upstream)} is rate limiting (HTTP 429)",
    )
    status = service.store.read_status(provider)
    assert status.next_attempt_at - status.last_attempt == pytest.approx(1200)
    assert service.refresher.run(provider).outcome == "fresh"  # no call before Retry-After has passed
    assert upstream.count(FIRST_PAGE[provider]) == 1


ANTHROPIC_LOOP = [
    (
        FIRST_PAGE["anthropic"],
        {"data": [{"id": "claude-a", "display_name": "A"}], "has_more": True, "last_id": "claude-a"},
    ),
    (f"{FIRST_PAGE['anthropic']}&after_id=claude-a",
     {"data": [{"id": "claude-b", "display_name": "B"}], "has_more": True, "last_id": "claude-a"}),
]  # fmt: skip
GEMINI_LOOP = [
    (FIRST_PAGE["gemini"], {"models": [], "nextPageToken": "t1"}),
    (f"{FIRST_PAGE['gemini']}&pageToken=t1", {"models": [], "nextPageToken": "t1"}),
]
GEMINI_ENDLESS = [(FIRST_PAGE["gemini"], {"models": [], "nextPageToken": "t1"})] + [
    (f"{FIRST_PAGE['gemini']}&pageToken=t{page}", {"models": [], "nextPageToken": f"t{page + 1}"})
    for page in range(1, MAX_PAGES + 1)
]


@pytest.mark.parametrize(
    ("provider", "pages", "message", "calls"),
    [
        ("anthropic", ANTHROPIC_LOOP, "the same page cursor came back twice (a page loop)", 2),
        ("gemini", GEMINI_LOOP, "the same page cursor came back twice (a page loop)", 2),
        ("gemini", GEMINI_ENDLESS, f"the model list goes on for more than {MAX_PAGES} pages", MAX_PAGES),
    ],
    ids=["anthropic-loop", "gemini-loop", "gemini-endless"],
)
def test_a_page_loop_is_refused_and_the_last_rows_stay(upstream, make_settings, provider, pages, message, calls):
    app, service = one_provider_app(make_settings, upstream, provider)
    client = app.test_client()
    good_answer(upstream, provider)
    assert service.refresher.run(provider).outcome == "published"
    before = served(client, f"/api/models/{provider}")
    made = len(upstream.calls)

    for path, document in pages:
        upstream.set(path, json.dumps(document).encode())
    result = service.refresher.run(provider, force=True)
    assert (result.outcome, result.message) == (
        "rejected",
        f"{UPSTREAM_NAMES[provider]} sent an unexpected answer: {message}",
    )
    assert len(upstream.calls) - made == calls  # and not one more
    assert served(client, f"/api/models/{provider}") == before


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_provider_that_goes_away_keeps_its_rows_served(make_settings, provider):
    upstream = FakeUpstream().start()
    try:
        # The connection is not kept open: once stopped, the server is gone for good.
        good_answer(upstream, provider, headers={"Content-Type": "application/json", "Connection": "close"})
        app, service = one_provider_app(make_settings, upstream, provider)
        client = app.test_client()
        assert service.refresher.run(provider).outcome == "published"
        before = served(client, f"/api/models/{provider}")
    finally:
        upstream.stop()

    result = service.refresher.run(provider, force=True)
    assert (result.outcome, result.message) == (
        "failed",
        f"cannot connect to {UPSTREAM_NAMES[provider]} at {at(upstream)} (connection refused)",
    )
    assert served(client, f"/api/models/{provider}") == before
    status = served(client, "/api/models/status")["catalogs"][provider]
    assert (status["source"], status["consecutive_failures"], status["last_error"]) == ("api", 1, result.message)


@pytest.mark.parametrize(
    ("provider", "document", "message"),
    [
        ("openai", {"models": []}, 'OpenAI sent an unexpected answer: expected a JSON object with a "data" list'),
        ("openai", {"object": "list", "data": []}, "the answer had no usable models (0 malformed)"),
        ("mistral", {"data": [{"id": 3}, "x"]}, "the answer had no usable models (2 malformed)"),
        ("gemini", [], 'Gemini API sent an unexpected answer: expected a JSON object with a "models" list'),
        ("anthropic", {"data": None}, 'Anthropic sent an unexpected answer: expected a JSON object with a "data" list'),
    ],
)  # fmt: skip
def test_wrong_or_empty_answers_are_refused(upstream, make_settings, provider, document, message):
    upstream.set(FIRST_PAGE[provider], json.dumps(document).encode())
    app, service = one_provider_app(make_settings, upstream, provider)
    result = service.refresher.run(provider)
    assert (result.outcome, result.message) == ("rejected", message)
    data = served(app.test_client(), f"/api/models/{provider}")
    assert (data["source"], data["error"]) == ("unreachable", message)


def test_unconfigured_providers_have_no_catalog_no_status_and_no_refresh_choice(client, auth_headers):
    for name in PROVIDERS:
        assert client.get(f"/api/models/{name}", headers=auth_headers).status_code == 404
        assert client.get(f"/api/models/{name}/embeddings", headers=auth_headers).status_code == 404
    catalogs = served(client, "/api/models/status", auth_headers)["catalogs"]
    assert not set(catalogs) & {*PROVIDERS, *(f"{name}_embeddings" for name in PROVIDERS)}
    response = client.post("/api/models/refresh", headers=ADMIN, json={"source": "openai"})
    assert response.status_code == 400 and response.get_json()["error"]["parameter"] == "source"


def test_a_configured_provider_is_refreshed_on_request(upstream, make_settings):
    good_answer(upstream, "gemini")
    app, service = one_provider_app(make_settings, upstream, "gemini")
    response = app.test_client().post("/api/models/refresh", headers=ADMIN, json={"source": "gemini"})
    assert response.status_code == 202 and response.get_json()["data"]["queued"] == ["gemini"]
    deadline = time.monotonic() + 10
    while service.store.read("gemini") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert served(app.test_client(), "/api/models/gemini")["total"] == 38
