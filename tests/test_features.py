"""Beyond the spec: capabilities, filters, local embedding models, refresh on demand, OpenAPI."""

from __future__ import annotations

import json
import threading
import time

import pytest

from app import create_app
from app.jobs import RefreshJobs
from app.sources.ollama import normalise_ollama_embedding_tags, normalise_ollama_tags, ollama_model_info
from app.sources.openrouter import llm_capabilities
from harness.fake_upstream import fixture_bytes
from harness.processes import wait_until
from tests.support.secrets import OLLAMA_BASE, OPENROUTER_KEY, OR_BASE, make_token


def load(relative: str):
    return json.loads(fixture_bytes(relative))


def records() -> dict:
    return {record["id"]: record for record in load("openrouter/models.json")["data"]}


@pytest.fixture
def live_app(requests_mock, make_settings):
    """An app that fetched the recorded OpenRouter and Ollama answers."""
    requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    requests_mock.get(f"{OR_BASE}/embeddings/models", content=fixture_bytes("openrouter/embeddings_models.json"))
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_3.json"))
    app = create_app(
        make_settings(openrouter_api_key=OPENROUTER_KEY, openrouter_base_url=OR_BASE, ollama_base_url=OLLAMA_BASE)
    )
    for result in app.extensions["catalog_service"].refresher.run_all():
        assert result.outcome == "published"
    return app


def get(app, path, **headers):
    return app.test_client().get(path, headers={"Authorization": f"Bearer {make_token()}", **headers})


# --- capabilities ------------------------------------------------------------------------


def test_capabilities_of_recorded_models():
    by_id = records()
    # A tools and reasoning model with structured outputs, text only.
    assert llm_capabilities(by_id["deepseek/deepseek-v4-pro"]) == ["reasoning", "structured_outputs", "tools"]
    # A vision model: image among the input modalities.
    assert "vision" in llm_capabilities(by_id["qwen/qwen3.8-27b"])
    # Native web search is a supported parameter of few models.
    web = [model_id for model_id, record in by_id.items() if "web_search" in llm_capabilities(record)]
    assert web and all("web_search_options" in by_id[model_id]["supported_parameters"] for model_id in web)
    assert llm_capabilities({"id": "a/b"}) == []


def test_live_rows_carry_capabilities_is_free_and_expiry(live_app):
    rows = {row["id"]: row for row in get(live_app, "/api/models/openrouter").get_json()["data"]["models"]}
    expiring_free_vision = rows["nvidia/nemotron-nano-12b-v2-vl:free"]
    assert expiring_free_vision["expires_on"] == "2026-08-24"
    assert expiring_free_vision["is_free"] is True
    assert "vision" in expiring_free_vision["capabilities"]
    assert rows["openai/gpt-5.5"]["is_free"] is False
    assert "expires_on" not in rows["openai/gpt-5.5"]
    assert rows["openrouter/auto"]["is_free"] is False  # variable price: not known to be free
    assert all(row["capabilities"] == sorted(row["capabilities"]) for row in rows.values())


def test_curated_rows_carry_capabilities_and_is_free(client, auth_headers):
    rows = client.get("/api/models/openrouter", headers=auth_headers).get_json()["data"]["models"]
    by_id = records()
    for row in rows:
        assert row["capabilities"] == llm_capabilities(by_id[row["id"]]), row["id"]
        assert row["is_free"] is False


def test_ollama_rows_gain_capabilities_and_context():
    tags = load("ollama/tags_3.json")
    rows = {row["name"]: row for row in normalise_ollama_tags(tags).rows}
    assert rows["llama3.2:3b"]["capabilities"] == ["tools"]
    assert rows["TinyLlama:latest"]["capabilities"] == []
    assert rows["llama3.2:3b"]["context"] == tags["models"][1]["details"]["context_length"]
    # An old server: capabilities and context come from /api/show.
    old = load("ollama/tags_4.json")
    info = ollama_model_info(load("ollama/show_qwen3_1.7b.json"))
    rows = {row["name"]: row for row in normalise_ollama_tags(old, {"qwen3:1.7b": info}).rows}
    assert rows["qwen3:1.7b"]["capabilities"] == ["reasoning", "tools"]
    assert rows["qwen3:1.7b"]["context"] == 40960
    assert "capabilities" not in rows["gemma3:4b"] and "context" not in rows["gemma3:4b"]


# --- filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "check"),
    [
        ("q=CLAUDE", lambda row: "claude" in row["id"].lower() or "claude" in row["name"].lower()),
        ("provider=OpenAI&provider=anthropic", lambda row: row["provider"] in ("OpenAI", "Anthropic")),
        ("supports=tools,vision", lambda row: {"tools", "vision"} <= set(row["capabilities"])),
        ("min_context=1000000", lambda row: row["context"] >= 1_000_000),
        ("free=true", lambda row: row["is_free"]),
        ("free=false", lambda row: not row["is_free"]),
    ],
)
def test_each_filter(live_app, query, check):
    everything = get(live_app, "/api/models/openrouter").get_json()["data"]["models"]
    response = get(live_app, f"/api/models/openrouter?{query}")
    assert response.status_code == 200
    data = response.get_json()["data"]
    assert data["source"] == "api"
    assert data["total"] == len(data["models"]) > 0
    assert data["models"] == [row for row in everything if check(row)]
    assert len(data["models"]) < len(everything)


def test_filters_combine_and_unknown_parameters_are_ignored(live_app):
    data = get(live_app, "/api/models/openrouter?provider=Google&supports=vision&free=false&color=blue").get_json()[
        "data"
    ]
    assert data["models"] and all(
        row["provider"] == "Google" and "vision" in row["capabilities"] for row in data["models"]
    )
    plain = get(live_app, "/api/models/openrouter?color=blue")
    assert plain.get_json()["data"]["total"] == 414


def test_filtered_answers_have_their_own_etag_and_304(live_app):
    full = get(live_app, "/api/models/openrouter")
    filtered = get(live_app, "/api/models/openrouter?q=gpt")
    assert filtered.headers["ETag"] != full.headers["ETag"]
    again = get(live_app, "/api/models/openrouter?q=gpt", **{"If-None-Match": filtered.headers["ETag"]})
    assert again.status_code == 304


def test_filters_on_curated_and_ollama_lists(client, auth_headers, live_app):
    curated = client.get("/api/models/openrouter/embeddings?provider=BAAI", headers=auth_headers).get_json()["data"]
    assert curated["source"] == "curated" and {row["provider"] for row in curated["models"]} == {"BAAI"}
    assert "total" not in curated
    ollama = get(live_app, "/api/models/ollama?supports=tools&min_context=1").get_json()["data"]
    assert ollama["source"] == "ollama" and ollama["total"] == 3
    assert get(live_app, "/api/models/ollama?free=true").get_json()["data"]["total"] == 4  # local: all free
    assert get(live_app, "/api/models/ollama?provider=llama").get_json()["data"]["total"] == 4  # the family


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("q=", "q"),
        ("q=" + "x" * 201, "q"),
        ("provider=", "provider"),
        ("supports=tools,teleport", "supports"),
        ("supports=", "supports"),
        ("supports=tools,", "supports"),
        ("min_context=0", "min_context"),
        ("min_context=-5", "min_context"),
        ("min_context=lots", "min_context"),
        ("min_context=1.5", "min_context"),
        ("min_context=" + "9" * 5000, "min_context"),
        ("free=yes", "free"),
        ("free=TRUE", "free"),
        ("min_context=1&min_context=abc", "min_context"),
        ("q=gpt&q=claude", "q"),
        ("free=true&free=false", "free"),
    ],
)
def test_invalid_filter_values_get_400_naming_the_parameter(client, auth_headers, query, parameter):
    for path in ("/api/models/openrouter", "/api/models/ollama"):
        response = client.get(f"{path}?{query}", headers=auth_headers)
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["code"] == "invalid_parameter"
        assert error["parameter"] == parameter and parameter in error["message"]


def test_filtering_does_not_reparse_the_catalog_per_request(live_app):
    catalog = live_app.extensions["catalog_service"]
    snapshot = catalog.snapshot("openrouter")
    get(live_app, "/api/models/openrouter?q=gpt")
    assert "data" in snapshot.__dict__  # parsed once, kept on the snapshot
    parsed = snapshot.__dict__["data"]
    get(live_app, "/api/models/openrouter?q=claude")
    assert catalog.snapshot("openrouter").__dict__["data"] is parsed


def test_the_filter_cache_is_bounded_by_bytes(live_app):
    service = live_app.extensions["catalog_service"]
    service.filtered._max_bytes = 200_000  # a few filtered answers of the live catalog
    for context in range(1, 60):
        assert get(live_app, f"/api/models/openrouter?min_context={context}").status_code == 200
    assert 0 < service.filtered.cached_bytes <= 200_000


def test_a_path_with_doubled_slashes_is_a_json_404(client, auth_headers):
    response = client.get("//api/models/openrouter", headers=auth_headers)
    assert response.status_code == 404
    assert response.mimetype == "application/json"


# --- local embedding models ------------------------------------------------------------------


def test_ollama_embeddings_from_show_on_an_old_server(requests_mock, make_settings, auth_headers):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_1.json"))
    pooling_show = {
        "model_info": {
            "general.architecture": "nomic-bert",
            "nomic-bert.pooling_type": 1,
            "nomic-bert.embedding_length": 768,
            "nomic-bert.context_length": 2048,
        }
    }
    chat_show = load("ollama/show_llama3.2_latest.json")
    requests_mock.post(
        f"{OLLAMA_BASE}/api/show",
        json=lambda request, context: pooling_show if request.json()["model"].startswith("nomic") else chat_show,
    )
    app = create_app(make_settings(ollama_base_url=OLLAMA_BASE))
    assert app.extensions["catalog_service"].refresher.run("ollama").outcome == "published"
    data = app.test_client().get("/api/models/ollama/embeddings", headers=auth_headers).get_json()["data"]
    assert data == {
        "models": [
            {
                "id": "nomic-embed-text:latest",
                "name": "nomic-embed-text:latest",
                "family": "nomic-bert",
                "parameter_size": "137M",
                "quantization": "F16",
                "size_mb": 274,
                "dimensions": 768,
                "context": 2048,
                "remote": False,
                "model_key": "nomic-ai/nomic-embed-text-v1.5",
                "supported_dimensions": [64, 128, 256, 512, 768],
                "first_seen_at": None,
                "is_new": False,
                "deprecated": False,
            }
        ],
        "source": "ollama",
        "total": 1,
    }


def test_ollama_embeddings_without_capabilities_or_show(requests_mock, make_settings, auth_headers):
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_2.json"))
    requests_mock.post(f"{OLLAMA_BASE}/api/show", status_code=404)
    app = create_app(make_settings(ollama_base_url=OLLAMA_BASE))
    app.extensions["catalog_service"].refresher.run("ollama")
    data = app.test_client().get("/api/models/ollama/embeddings", headers=auth_headers).get_json()["data"]
    assert [row["name"] for row in data["models"]] == ["bge-m3-unified:latest", "bge-m3:latest"]
    assert all(row["context"] is None for row in data["models"])
    # Without a size from the server, the embedding-model facts give bge-m3's; a local
    # derivative of unknown weights stays unknown.
    sizes = {row["name"]: (row["dimensions"], row["model_key"]) for row in data["models"]}
    assert sizes == {"bge-m3-unified:latest": (None, None), "bge-m3:latest": (1024, "BAAI/bge-m3")}


def test_ollama_embedding_rows_from_new_server_tags():
    tags = {
        "models": [
            {
                "name": "mxbai-embed-large:latest",
                "size": 669_615_493,
                "capabilities": ["embedding"],
                "details": {
                    "family": "bert",
                    "parameter_size": "334M",
                    "quantization_level": "F16",
                    "embedding_length": 1024,
                    "context_length": 512,
                },
            }
        ]
    }
    rows = normalise_ollama_embedding_tags(tags).rows
    assert rows == [
        {
            "id": "mxbai-embed-large:latest",
            "name": "mxbai-embed-large:latest",
            "family": "bert",
            "parameter_size": "334M",
            "quantization": "F16",
            "size_mb": 670,
            "dimensions": 1024,
            "context": 512,
            "remote": False,
        }
    ]
    assert normalise_ollama_tags(tags).rows == []


def test_ollama_embeddings_follow_ollama_sources(client, auth_headers):
    data = client.get("/api/models/ollama/embeddings", headers=auth_headers).get_json()["data"]
    assert data["source"] == "ollama_unreachable" and data["models"] == [] and data["error"]


# --- refresh on demand -----------------------------------------------------------------------


def admin_headers(**claims) -> dict:
    return {"Authorization": f"Bearer {make_token(role='admin', **claims)}"}


def test_refresh_needs_the_admin_claim(client, auth_headers):
    response = client.post("/api/models/refresh", json={"source": "ollama"}, headers=auth_headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert client.post("/api/models/refresh", json={"source": "ollama"}).status_code == 401


def test_refresh_claim_name_and_value_are_configurable(make_settings):
    app = create_app(make_settings(admin_claim="groups", admin_claim_value="catalog-admins"))
    client = app.test_client()
    denied = client.post("/api/models/refresh", json={"source": "ollama"}, headers=admin_headers())
    assert denied.status_code == 403
    allowed = {"Authorization": f"Bearer {make_token(groups=['staff', 'catalog-admins'])}"}
    assert client.post("/api/models/refresh", json={"source": "ollama"}, headers=allowed).status_code == 202


def test_refresh_answers_202_before_a_hanging_upstream_and_then_429(upstream, make_settings):
    answer = threading.Event()
    upstream.set("/api/tags", fixture_bytes("ollama/tags_3.json"), hold=answer)
    app = create_app(make_settings(ollama_base_url=upstream.url, upstream_timeout_seconds=30.0))
    client = app.test_client()
    response = client.post("/api/models/refresh", json={"source": "ollama"}, headers=admin_headers())
    assert response.status_code == 202
    assert response.get_json()["data"] == {"queued": ["ollama"], "not_configured": [], "status": "/api/models/status"}
    assert response.headers["Location"] == "/api/models/status"
    # Answered while the refresh waits on the upstream (held until the test lets it answer):
    # the refresh has started, and has not finished.
    assert wait_until(lambda: upstream.count("/api/tags") == 1, 10)
    status = client.get("/api/models/status", headers=admin_headers()).get_json()["data"]["catalogs"]["ollama"]
    assert (status["source"], status["last_attempt"]) == ("ollama_unreachable", None)
    again = client.post("/api/models/refresh", json={"source": "ollama"}, headers=admin_headers())
    assert again.status_code == 429
    assert 1 <= int(again.headers["Retry-After"]) <= 30
    # The queued refresh lands in the background once the upstream answers.
    answer.set()
    assert wait_until(
        lambda: client.get("/api/models/ollama", headers=admin_headers()).get_json()["data"]["source"] == "ollama", 10
    )


def test_refresh_all_without_a_key_queues_only_ollama(client):
    response = client.post("/api/models/refresh", json={"source": "all"}, headers=admin_headers())
    assert response.status_code == 202
    assert response.get_json()["data"]["queued"] == ["ollama"]
    assert response.get_json()["data"]["not_configured"] == ["openrouter", "embeddings"]


def test_refresh_rate_limit_is_shared_through_redis(redis_url, make_settings):
    apps = [create_app(make_settings(redis_url=redis_url)) for _ in range(2)]
    first = apps[0].test_client().post("/api/models/refresh", json={"source": "ollama"}, headers=admin_headers())
    second = apps[1].test_client().post("/api/models/refresh", json={"source": "ollama"}, headers=admin_headers())
    assert (first.status_code, second.status_code) == (202, 429)


@pytest.mark.parametrize("body", [None, {}, {"source": "everything"}, ["ollama"], "ollama"])
def test_refresh_with_a_bad_body_names_source(client, body):
    kwargs = {"json": body} if body is not None else {"data": "not json"}
    response = client.post("/api/models/refresh", headers=admin_headers(), **kwargs)
    assert response.status_code == 400
    assert response.get_json()["error"]["parameter"] == "source"


@pytest.mark.parametrize("shared", [False, True], ids=["process_store", "redis"])
def test_refresh_windows_are_claimed_all_or_none(shared, request, make_settings):
    redis = {"redis_url": request.getfixturevalue("redis_url")} if shared else {}
    app = create_app(make_settings(openrouter_api_key=OPENROUTER_KEY, **redis))
    client = app.test_client()
    assert client.post("/api/models/refresh", json={"source": "ollama"}, headers=admin_headers()).status_code == 202
    refused = client.post("/api/models/refresh", json={"source": "all"}, headers=admin_headers())
    assert refused.status_code == 429
    # The refused request took none of the windows it did not get: openrouter's is still free.
    assert client.post("/api/models/refresh", json={"source": "openrouter"}, headers=admin_headers()).status_code == 202


@pytest.mark.system
def test_with_redis_a_requested_refresh_runs_in_the_refresher_not_the_web_process(upstream, redis_url, make_settings):
    upstream.set("/api/tags", fixture_bytes("ollama/tags_3.json"))
    settings = make_settings(redis_url=redis_url, ollama_base_url=upstream.url, ollama_refresh_seconds=3600)
    web = create_app(settings)
    response = web.test_client().post("/api/models/refresh", json={"source": "ollama"}, headers=admin_headers())
    assert response.status_code == 202
    time.sleep(1.5)
    assert upstream.count("/api/tags") == 0  # the web process only marked it due
    jobs = RefreshJobs(create_app(settings).extensions["catalog_service"].refresher)
    jobs.start()
    try:
        # The start-up run and the requested (forced) run: two polls, though the interval is an hour.
        assert wait_until(lambda: upstream.count("/api/tags") >= 2, timeout=15)
    finally:
        jobs.stop()
    assert web.test_client().get("/api/models/ollama", headers=admin_headers()).get_json()["data"]["source"] == "ollama"
