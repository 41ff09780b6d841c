"""The OpenAPI document describes exactly what the service answers.

Real answers of every endpoint, live and curated, successes and errors, are validated against
it; then schemathesis generates requests from it (valid and invalid ones) and checks that the
service never answers 5xx, conforms to the document, rejects what the document forbids, and
does not ignore authentication.
"""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from app.api import OPENAPI_FILE
from tests.support.secrets import OLLAMA_BASE, OPENROUTER_KEY, OR_BASE, make_token
from harness.fake_upstream import fixture_bytes

ADMIN = {"Authorization": f"Bearer {make_token(role='admin', exp=2_000_000_000)}"}


@pytest.fixture
def live_app(requests_mock, make_settings):
    requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    requests_mock.get(f"{OR_BASE}/embeddings/models", content=fixture_bytes("openrouter/embeddings_models.json"))
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_1.json"))
    requests_mock.post(f"{OLLAMA_BASE}/api/show", content=fixture_bytes("ollama/show_qwen3_1.7b.json"))
    app = create_app(make_settings(openrouter_api_key=OPENROUTER_KEY, openrouter_base_url=OR_BASE,
                                   ollama_base_url=OLLAMA_BASE))
    app.extensions["catalog_service"].refresher.run_all()
    return app


def test_document_is_served_without_a_token(client):
    response = client.get("/api/models/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    paths = set(document["paths"])
    rules = {rule.rule for rule in client.application.url_map.iter_rules()}
    assert paths == rules  # every endpoint is described, and nothing else


def _validate(app, requests_made) -> int:
    schema = schemathesis.openapi.from_wsgi("/api/models/openapi.json", app)
    client = app.test_client()
    checked = 0
    for method, path, kwargs in requests_made:
        response = getattr(client, method.lower())(path, **kwargs)
        operation = schema[path.split("?")[0]][method]
        schema.validate_response(operation, Response.from_wsgi(response))
        checked += 1
    return checked


def _every_answer(headers: dict) -> list:
    catalogs = ["/api/models/openrouter", "/api/models/openrouter/embeddings", "/api/models/ollama",
                "/api/models/ollama/embeddings"]
    made = []
    for path in catalogs:
        made += [
            ("GET", path, {"headers": headers}),
            ("GET", path + "?supports=tools&min_context=2&free=false&q=a&provider=x", {"headers": headers}),
            ("GET", path + "?min_context=zero", {"headers": headers}),
            ("GET", path + "?new=false&deprecated=false&include_removed=true&local=true", {"headers": headers}),
            ("GET", path, {}),
            ("GET", path, {"headers": {"Authorization": "Bearer nope"}}),
        ]
    compatibility = "/api/models/embeddings/compatibility"
    return made + [
        # Live: 410 (before the baseline); curated: 200 with no entries and no history.
        ("GET", "/api/models/changes?since=2000-01-01T00:00:00Z", {"headers": headers}),
        ("GET", "/api/models/changes?since=2999-01-01T00:00:00%2B02:00&source=ollama", {"headers": headers}),
        ("GET", "/api/models/changes?since=yesterday", {"headers": headers}),
        ("GET", "/api/models/changes?since=2000-01-01T00:00:00Z", {}),
        (
            "GET",
            f"{compatibility}?current=openrouter:openai/text-embedding-3-large&candidate=embeddings:openai/text-embedding-3-large",
            {"headers": headers},
        ),
        ("GET", f"{compatibility}?current=ollama:nomic-embed-text:latest&candidate=openrouter:baai/bge-m3",
         {"headers": headers}),
        ("GET", f"{compatibility}?current=nowhere:x&candidate=openrouter:baai/bge-m3", {"headers": headers}),
        ("GET", "/api/models/status", {"headers": headers}),
        ("POST", "/api/models/refresh", {"headers": headers, "json": {"source": "ollama"}}),
        ("POST", "/api/models/refresh", {"headers": headers, "json": {"source": "ollama"}}),
        ("POST", "/api/models/refresh", {"headers": headers, "json": {"source": "x"}}),
        ("POST", "/api/models/refresh", {"headers": {"Authorization": f"Bearer {make_token()}"}, "json": {"source": "all"}}),
        ("GET", "/api/models/openapi.json", {}),
        ("GET", "/healthz", {}),
        ("GET", "/readyz", {}),
        ("GET", "/metrics", {}),
    ]


def test_live_answers_match_the_document(live_app):
    assert _validate(live_app, _every_answer(ADMIN)) == 40


def test_curated_and_unreachable_answers_match_the_document(app):
    assert _validate(app, _every_answer(ADMIN)) == 40


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/api/models/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _generation_targets() -> list[tuple[str, GenerationMode]]:
    """Every operation in positive mode; those that take input in negative mode too."""
    targets = []
    for path, item in yaml.safe_load(OPENAPI_FILE.read_text())["paths"].items():
        if path == "/api/models/openapi.json":
            continue  # schemathesis leaves out the document's own address
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            targets.append((label, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                targets.append((label, GenerationMode.NEGATIVE))
    return targets


@pytest.mark.parametrize(("operation_label", "mode"), _generation_targets(), ids=lambda value: str(value))
def test_schemathesis(make_settings, operation_label, mode):
    # Driven through schemathesis' Python API with Hypothesis: its pytest plugin does not run
    # on pytest 9 yet.
    app = create_app(make_settings())
    operation = next(op for op in _operations(app) if op.label == operation_label)

    @hypothesis.settings(max_examples=15, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        # A negative case may leave the token out on purpose (every operation requires one):
        # it is then sent without, as generated, and must get a 401, not the admin's answer.
        token = ADMIN if any(name.lower() == "authorization" for name in case.headers or {}) else {}
        # identity: the checks read bodies as JSON, and this test client does not un-gzip.
        case.call_and_validate(headers={**token, "Accept-Encoding": "identity"}, checks=CHECKS)

    run()
