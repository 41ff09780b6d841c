"""Local servers end to end: the app polls loopback servers replaying the recordings, and serves them.

Each test runs create_app, the refresher and HTTP GETs with the test client against one
FakeUpstream per server (each on its own port, as real servers are). Local servers do not page,
so there is no page loop to fault; the faults are a hang, a refused key, a 429 with Retry-After,
a bad answer and a server that goes away.
"""

from __future__ import annotations

import json
import threading

import pytest

from app import create_app
from config import Settings
from harness.fake_upstream import FakeUpstream, fixture_bytes
from local_servers import LocalServer
from tests.support.secrets import JWT_SECRET, LOCAL_SERVER_KEY

# What each kind asks for its list, below its base_url's root (base_url is <root>/v1).
LIST_PATHS = {"lmstudio": "/api/v1/models", "vllm": "/v1/models", "llamacpp": "/v1/models",
              "openai_compatible": "/v1/models"}  # fmt: skip

# Per recording: the kind that reads it, the path it is served on, chat rows, embedding rows,
# embedding rows with dimensions.
RECORDINGS = [
    ("lmstudio_api-v1-models_1.json", "lmstudio", "/api/v1/models", 3, 1, 1),
    ("lmstudio_api-v0-models_1.json", "lmstudio", "/api/v0/models", 3, 1, 1),
    ("lmstudio_api-v0-models_2.json", "lmstudio", "/api/v0/models", 5, 1, 1),
    ("lmstudio_api-v0-models_5.json", "lmstudio", "/api/v0/models", 1, 0, 0),
    ("lmstudio_api-v0-models_6.json", "lmstudio", "/api/v0/models", 0, 0, 0),
    ("lmstudio_v1-models_1.json", "lmstudio", "/v1/models", 3, 1, 1),
    # FastFlowLM answers an OpenAI-style list where LM Studio's native API lives.
    ("fastflowlm_api-v1-models_1.json", "lmstudio", "/api/v1/models", 3, 0, 0),
    ("vllm_v1-models_1.json", "vllm", "/v1/models", 1, 0, 0),
    ("vllm_v1-models_2.json", "vllm", "/v1/models", 1, 0, 0),
    ("llamacpp_v1-models_1.json", "llamacpp", "/v1/models", 1, 0, 0),
    # The README's router example, served where a router answers it too.
    ("llamacpp_models_1.json", "llamacpp", "/v1/models", 0, 0, 0),
    ("localai_v1-models_1.json", "openai_compatible", "/v1/models", 28, 0, 0),
    ("rapidmlx_v1-models_1.json", "openai_compatible", "/v1/models", 1, 0, 0),
    ("fastflowlm_api-v1-models_1.json", "openai_compatible", "/v1/models", 3, 0, 0),
    ("groq_openai-v1-models_1.json", "openai_compatible", "/v1/models", 13, 0, 0),
    ("ollama_v1-models_1.json", "openai_compatible", "/v1/models", 1, 0, 0),
]


@pytest.fixture
def servers():
    """Starts FakeUpstreams on demand; stops every one at the end."""
    started: list[FakeUpstream] = []

    def start() -> FakeUpstream:
        server = FakeUpstream().start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def local(name: str, kind: str, upstream: FakeUpstream, **fields) -> LocalServer:
    return LocalServer(name, kind, f"{upstream.url}/v1", **fields)


def app_with(make_settings, *local_servers: LocalServer, **overrides):
    return create_app(make_settings(local_servers=local_servers, **overrides))


def service_of(app):
    return app.extensions["catalog_service"]


def served(app, path: str, headers: dict) -> dict:
    response = app.test_client().get(path, headers=headers)
    assert response.status_code == 200
    return response.get_json()["data"]


@pytest.mark.parametrize(
    ("recording", "kind", "path", "chat", "embedding", "with_dimensions"),
    RECORDINGS,
    ids=[f"{r[0]}-{r[1]}" for r in RECORDINGS],
)
def test_every_recording_is_served(
    servers, make_settings, auth_headers, recording, kind, path, chat, embedding, with_dimensions
):
    upstream = servers()
    upstream.set(path, fixture_bytes(f"providers/{recording}"))
    app = app_with(make_settings, local("box", kind, upstream))
    result = service_of(app).refresher.run("box")
    assert (result.outcome, result.rows) == ("published", chat)
    chat_data = served(app, "/api/models/box", auth_headers)
    embedding_data = served(app, "/api/models/box/embeddings", auth_headers)
    assert (chat_data["source"], chat_data["total"], len(chat_data["models"])) == ("api", chat, chat)
    assert (embedding_data["source"], embedding_data["total"]) == ("api", embedding)
    assert sum(row["dimensions"] is not None for row in embedding_data["models"]) == with_dimensions
    # Nothing is both: a model is in one list or the other, or in neither.
    assert not {row["id"] for row in chat_data["models"]} & {row["id"] for row in embedding_data["models"]}


def test_four_kinds_side_by_side_each_on_its_own_paths(servers, make_settings, auth_headers):
    studio, gpu, llama, other = servers(), servers(), servers(), servers()
    studio.set("/api/v1/models", fixture_bytes("providers/lmstudio_api-v1-models_1.json"))
    gpu.set("/v1/models", fixture_bytes("providers/vllm_v1-models_1.json"))
    llama.set("/v1/models", fixture_bytes("providers/llamacpp_v1-models_1.json"))
    llama.set("/props", fixture_bytes("providers/llamacpp_props_1.json"))
    other.set("/v1/models", fixture_bytes("providers/groq_openai-v1-models_1.json"))
    app = app_with(
        make_settings,
        local("studio", "lmstudio", studio, api_key=LOCAL_SERVER_KEY, api_key_env="STUDIO_KEY"),
        local("gpu", "vllm", gpu, refresh_seconds=5.0),
        local("llama", "llamacpp", llama),
        local("other", "openai_compatible", other),
    )
    service = service_of(app)
    assert service.registry.refresh_choices[-5:] == ("studio", "gpu", "llama", "other", "all")
    assert [service.registry.sources[name].interval_seconds for name in ("studio", "gpu")] == [30, 5]
    results = service.refresher.run_all()
    assert {result.source: (result.outcome, result.rows) for result in results[-4:]} == {
        "studio": ("published", 3), "gpu": ("published", 1), "llama": ("published", 1), "other": ("published", 13),
    }  # fmt: skip

    llama_rows = served(app, "/api/models/llama", auth_headers)["models"]
    # /props of a one-model server gives the context a request gets, vision and tools.
    assert (llama_rows[0]["context"], llama_rows[0]["capabilities"]) == (262144, ["tools", "vision"])
    assert [row["id"] for row in served(app, "/api/models/studio/embeddings", auth_headers)["models"]] == [
        "text-embedding-nomic-embed-text-v1.5"
    ]
    # A repeated request (the fast path) sends the same bytes.
    client = app.test_client()
    first, second = (client.get("/api/models/gpu", headers=auth_headers) for _ in range(2))
    assert first.get_data() == second.get_data() and b'"max_model_len"' not in first.get_data()

    # The key goes to its own server only, as a Bearer token.
    assert {call.headers.get("Authorization") for call in studio.calls} == {f"Bearer {LOCAL_SERVER_KEY}"}
    for upstream in (gpu, llama, other):
        assert all("Authorization" not in call.headers for call in upstream.calls)

    status = service.status_report()
    names = ("studio", "studio_embeddings", "llama")
    assert {name: (status[name]["source"], status[name]["rows"]) for name in names} == {
        "studio": ("api", 3), "studio_embeddings": ("api", 1), "llama": ("api", 1),
    }  # fmt: skip


def test_a_server_not_polled_yet_says_so(servers, make_settings, auth_headers):
    app = app_with(make_settings, local("studio", "lmstudio", servers()))
    data = served(app, "/api/models/studio/embeddings", auth_headers)
    assert data == {"models": [], "source": "unreachable", "total": 0, "error": "LM Studio has not been polled yet"}


def test_lmstudio_asks_v0_after_a_404_from_v1_then_the_openai_list(servers, make_settings, auth_headers):
    old = servers()
    old.set("/api/v0/models", fixture_bytes("providers/lmstudio_api-v0-models_2.json"))
    app = app_with(make_settings, local("old", "lmstudio", old))
    assert service_of(app).refresher.run("old").rows == 5
    assert [call.path for call in old.calls] == ["/api/v1/models", "/api/v0/models"]
    assert served(app, "/api/models/old", auth_headers)["models"][2] == {
        "id": "qwen3-0.6b-mlx", "name": "qwen3-0.6b-mlx", "provider": "LM Studio Community", "context": 4096,
        "capabilities": ["tools"], "is_free": True, "loaded": True, "quantization": "4bit",
        "first_seen_at": None, "is_new": False, "deprecated": False,  # the lifecycle: a first snapshot
    }  # fmt: skip

    bare = servers()
    bare.set("/v1/models", fixture_bytes("providers/lmstudio_v1-models_1.json"))
    app = app_with(make_settings, local("bare", "lmstudio", bare))
    assert service_of(app).refresher.run("bare").rows == 3
    assert [call.path for call in bare.calls] == ["/api/v1/models", "/api/v0/models", "/v1/models"]


def test_llamacpp_without_props_still_publishes_its_model(servers, make_settings, auth_headers):
    llama = servers()
    llama.set("/v1/models", fixture_bytes("providers/llamacpp_v1-models_1.json"))
    llama.set("/props", b"busy", status=503)
    app = app_with(make_settings, local("llama", "llamacpp", llama))
    assert service_of(app).refresher.run("llama").outcome == "published"
    assert served(app, "/api/models/llama", auth_headers)["models"][0]["context"] == 256  # n_ctx_train
    # A router is not asked for /props: that could load a model.
    router = servers()
    router.set("/v1/models", fixture_bytes("providers/llamacpp_models_1.json"))
    app = app_with(make_settings, local("router", "llamacpp", router))
    assert service_of(app).refresher.run("router").outcome == "published"
    assert [call.path for call in router.calls] == ["/v1/models"]


def test_llamacpp_props_refusing_the_key_fails_the_poll(servers, make_settings, auth_headers):
    llama = servers()
    llama.set("/v1/models", fixture_bytes("providers/llamacpp_v1-models_1.json"))  # public on llama-server
    llama.set("/props", b'{"error":"Invalid API Key"}', status=401)
    app = app_with(make_settings, local("llama", "llamacpp", llama, api_key=LOCAL_SERVER_KEY, api_key_env="K"))
    result = service_of(app).refresher.run("llama")
    assert (result.outcome, result.message) == (
        "failed",
        f"llama.cpp at 127.0.0.1:{llama.url.rsplit(':', 1)[1]}: key rejected (401)",
    )


# --- faults, for every kind ---------------------------------------------------------------

KINDS = list(LIST_PATHS)
GOOD_ANSWER = {"lmstudio": "lmstudio_api-v1-models_1.json", "vllm": "vllm_v1-models_1.json",
               "llamacpp": "llamacpp_v1-models_1.json",
               "openai_compatible": "groq_openai-v1-models_1.json"}  # fmt: skip
LABELS = {
    "lmstudio": "LM Studio",
    "vllm": "vLLM",
    "llamacpp": "llama.cpp",
    "openai_compatible": "OpenAI-compatible server",
}


def assert_unreachable(app, headers, error_part: str) -> None:
    for path in ("/api/models/box", "/api/models/box/embeddings"):
        data = served(app, path, headers)
        assert (data["models"], data["source"], data["total"]) == ([], "unreachable", 0)
        assert error_part in data["error"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_hanging_server_fails_by_the_deadline(servers, make_settings, auth_headers, kind):
    upstream = servers()
    upstream.set(LIST_PATHS[kind], mode="hang")
    app = app_with(make_settings, local("box", kind, upstream), upstream_timeout_seconds=1.0)
    result = service_of(app).refresher.run("box")
    assert result.outcome == "failed"
    assert result.message == f"{LABELS[kind]} at {upstream.url.removeprefix('http://')} did not answer within 1 s"
    assert_unreachable(app, auth_headers, "did not answer within 1 s")


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_key_says_so_and_waits_the_interval(servers, make_settings, auth_headers, kind):
    upstream = servers()
    upstream.set(LIST_PATHS[kind], b'{"error":"unauthorized"}', status=401)
    app = app_with(make_settings, local("box", kind, upstream, api_key=LOCAL_SERVER_KEY, api_key_env="BOX_KEY",
                                        refresh_seconds=45.0))  # fmt: skip
    service = service_of(app)
    assert service.refresher.run("box").outcome == "failed"
    status = service.store.read_status("box")
    assert status.last_error.endswith(": key rejected (401)")
    assert status.next_attempt_at - status.last_attempt == pytest.approx(45)
    assert_unreachable(app, auth_headers, "key rejected (401)")
    assert service.status_report()["box"]["last_error"].endswith("key rejected (401)")


@pytest.mark.parametrize("kind", KINDS)
def test_a_rate_limit_defers_the_next_poll_by_retry_after(servers, make_settings, auth_headers, kind):
    upstream = servers()
    upstream.set(
        LIST_PATHS[kind], b"{}", status=429, headers={"Content-Type": "application/json", "Retry-After": "120"}
    )
    app = app_with(make_settings, local("box", kind, upstream))
    service = service_of(app)
    assert service.refresher.run("box").outcome == "failed"
    status = service.store.read_status("box")
    assert status.next_attempt_at - status.last_attempt == pytest.approx(120)
    calls = len(upstream.calls)
    assert service.refresher.run("box").outcome == "fresh"  # not asked again before Retry-After
    assert len(upstream.calls) == calls
    assert_unreachable(app, auth_headers, "rate limiting (HTTP 429)")


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_shape_is_unreachable_with_the_reason(servers, make_settings, auth_headers, kind):
    upstream = servers()
    upstream.set(LIST_PATHS[kind], b'{"object": "list"}')
    app = app_with(make_settings, local("box", kind, upstream))
    assert service_of(app).refresher.run("box").outcome == "rejected"
    assert_unreachable(app, auth_headers, f"{LABELS[kind]} sent an unexpected answer: expected a JSON object with")


@pytest.mark.parametrize("kind", KINDS)
def test_a_server_that_goes_away_turns_unreachable(servers, make_settings, auth_headers, kind):
    upstream = servers()
    # Connection: close, so that stopping the server leaves no kept-alive connection behind.
    closing = {"Content-Type": "application/json", "Connection": "close"}
    upstream.set(LIST_PATHS[kind], fixture_bytes(f"providers/{GOOD_ANSWER[kind]}"), headers=closing)
    app = app_with(make_settings, local("box", kind, upstream))
    refresher = service_of(app).refresher
    assert refresher.run("box").outcome == "published"
    assert served(app, "/api/models/box", auth_headers)["source"] == "api"

    port = upstream.url.rsplit(":", 1)[1]
    upstream.stop()
    result = refresher.run("box", force=True)
    assert result.message == f"cannot connect to {LABELS[kind]} at 127.0.0.1:{port} (connection refused)"
    # What was loaded there may have changed: the old rows are not served any more.
    assert_unreachable(app, auth_headers, "connection refused")


def test_one_hanging_server_delays_neither_another_refresh_nor_any_request(servers, make_settings, auth_headers):
    hung, fine = servers(), servers()
    hung.set("/v1/models", mode="hang")
    fine.set("/v1/models", fixture_bytes("providers/vllm_v1-models_1.json"))
    # The deadline is the behaviour here: far longer than the other refresh and requests take.
    app = app_with(
        make_settings, local("hung", "vllm", hung), local("fine", "vllm", fine), upstream_timeout_seconds=5.0
    )
    refresher = service_of(app).refresher
    outcome: list = []
    poll = threading.Thread(target=lambda: outcome.append(refresher.run("hung")))
    poll.start()
    try:
        assert refresher.run("fine").outcome == "published"
        assert served(app, "/api/models/fine", auth_headers)["total"] == 1
        assert served(app, "/api/models/hung", auth_headers)["error"] == "vLLM has not been polled yet"
        assert poll.is_alive() and outcome == []  # all that while, the other poll was still waiting
    finally:
        poll.join(30)
    assert outcome[0].outcome == "failed" and "did not answer within 5 s" in outcome[0].message


def test_servers_from_sources_file_with_a_key_from_the_environment(servers, tmp_path, auth_headers):
    studio = servers()
    studio.set("/api/v1/models", fixture_bytes("providers/lmstudio_api-v1-models_1.json"))
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"servers:\n  - name: studio\n    kind: lmstudio\n    base_url: {studio.url}/v1\n"
                       "    api_key_env: STUDIO_KEY\n")  # fmt: skip
    settings = Settings.from_env({
        "JWT_SECRET_KEY": JWT_SECRET, "SOURCES_FILE": str(sources), "STUDIO_KEY": LOCAL_SERVER_KEY,
        "OLLAMA_BASE_URL": "http://127.0.0.1:9", "UPSTREAM_TIMEOUT_SECONDS": "2",
    })  # fmt: skip
    app = create_app(settings)
    assert service_of(app).refresher.run("studio").outcome == "published"
    assert served(app, "/api/models/studio", auth_headers)["total"] == 3
    assert studio.calls[0].headers["Authorization"] == f"Bearer {LOCAL_SERVER_KEY}"


def test_an_embedding_model_found_by_its_alias_carries_the_tables_model_key(servers, make_settings, auth_headers):
    # An OpenAI-compatible server naming the model as Ollama does: found in the sourced table by
    # that name, so the row carries the weights' model_key and the compatibility check knows it.
    server = servers()
    listing = {"object": "list", "data": [{"id": "nomic-embed-text:latest", "object": "model", "owned_by": "library"}]}
    server.set("/v1/models", json.dumps(listing).encode())
    app = app_with(make_settings, local("box", "openai_compatible", server))
    assert service_of(app).refresher.run("box").outcome == "published"
    (row,) = served(app, "/api/models/box/embeddings", auth_headers)["models"]
    assert (row["model_key"], row["dimensions"]) == ("nomic-ai/nomic-embed-text-v1.5", 768)
    verdict = app.test_client().get(
        "/api/models/embeddings/compatibility?current=box:nomic-embed-text:latest&candidate=box:nomic-embed-text:latest",
        headers=auth_headers,
    )
    assert verdict.status_code == 200 and verdict.get_json()["data"]["compatible"] is True
