"""The OpenAPI document describes exactly what the service answers.

Real answers of every endpoint, live and curated, successes and errors, are validated against
it; then schemathesis generates requests from it (valid and invalid ones) and checks that the
service never answers 5xx, conforms to the document, rejects what the document forbids, and
does not ignore authentication.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re

import hypothesis
import pytest
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.core.parameters import ParameterLocation
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
from harness.fake_upstream import fixture_bytes
from tests.support.secrets import OLLAMA_BASE, OPENROUTER_KEY, OR_BASE, PROVIDER_KEYS, make_token

ADMIN = {"Authorization": f"Bearer {make_token(role='admin', exp=2_000_000_000)}"}


@pytest.fixture
def live_app(requests_mock, make_settings):
    requests_mock.get(f"{OR_BASE}/models", content=fixture_bytes("openrouter/models.json"))
    requests_mock.get(f"{OR_BASE}/embeddings/models", content=fixture_bytes("openrouter/embeddings_models.json"))
    requests_mock.get(f"{OLLAMA_BASE}/api/tags", content=fixture_bytes("ollama/tags_1.json"))
    requests_mock.post(f"{OLLAMA_BASE}/api/show", content=fixture_bytes("ollama/show_qwen3_1.7b.json"))
    app = create_app(
        make_settings(openrouter_api_key=OPENROUTER_KEY, openrouter_base_url=OR_BASE, ollama_base_url=OLLAMA_BASE)
    )
    app.extensions["catalog_service"].refresher.run_all()
    return app


# The configured sources' catalogs, described once each by a path template.
SOURCE_TEMPLATES = ("/api/models/{name}", "/api/models/{name}/embeddings")
# What the template's name excludes: segments under /api/models with paths of their own.
NOT_SOURCE_NAMES = ("openrouter", "ollama", "status", "refresh", "embeddings", "changes", "openapi.json")


@pytest.fixture
def hosted_app(upstream, make_settings):
    """An app with live OpenAI, Anthropic and Gemini catalogs, and Mistral refusing its key."""
    upstream.set("/openai/v1/models", fixture_bytes("providers/openai_v1-models_2.json"))
    upstream.set("/anthropic/v1/models?limit=1000", fixture_bytes("providers/anthropic_v1-models_3.json"))
    upstream.set("/gemini/v1beta/models?pageSize=1000", fixture_bytes("providers/gemini_v1beta-models_1.json"))
    upstream.set("/mistral/v1/models", b'{"message": "Unauthorized"}', status=401)
    paths = {"openai": "/openai/v1", "anthropic": "/anthropic/v1", "gemini": "/gemini/v1beta", "mistral": "/mistral/v1"}
    fields = {}
    for name, path in paths.items():
        fields[f"{name}_api_key"] = PROVIDER_KEYS[name]
        fields[f"{name}_base_url"] = upstream.url + path
    app = create_app(make_settings(**fields))
    refresher = app.extensions["catalog_service"].refresher
    assert [refresher.run(name).outcome for name in paths] == ["published", "published", "published", "failed"]
    return app


def test_document_is_served_without_a_token(client):
    response = client.get("/api/models/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    paths = set(document["paths"])
    rules = {rule.rule for rule in client.application.url_map.iter_rules()}
    # Every endpoint is described, and nothing else; the configured sources' catalogs by a template.
    assert paths - set(SOURCE_TEMPLATES) == rules
    assert set(SOURCE_TEMPLATES) <= paths


def test_every_configured_sources_catalog_is_described_by_its_template(hosted_app):
    document = hosted_app.test_client().get("/api/models/openapi.json").get_json()
    name = re.compile(document["components"]["parameters"]["sourceName"]["schema"]["pattern"])
    rules = {rule.rule for rule in hosted_app.url_map.iter_rules()} - set(document["paths"])
    assert rules == {"/api/models/openai", "/api/models/openai/embeddings", "/api/models/anthropic",
                     "/api/models/gemini", "/api/models/gemini/embeddings", "/api/models/mistral",
                     "/api/models/mistral/embeddings"}  # fmt: skip
    for rule in rules:
        assert name.search(rule.split("/")[3]) and _template_of(document["paths"], rule) in SOURCE_TEMPLATES
    # The words that are not sources do not fit the name, so no concrete path has two descriptions.
    for taken in NOT_SOURCE_NAMES:
        assert not name.search(taken)


def _template_of(paths, path: str) -> str:
    """The described path that `path` falls under: itself, or a source template."""
    if path in paths:
        return path
    segments = path.split("/")
    for template in SOURCE_TEMPLATES:
        parts = template.split("/")
        if len(parts) == len(segments) and all(p == s or p == "{name}" for p, s in zip(parts, segments, strict=True)):
            return template
    raise AssertionError(f"{path} is not described")


DOCUMENT = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
CATALOG_PATHS = [
    "/api/models/openrouter",
    "/api/models/openrouter/embeddings",
    "/api/models/ollama",
    "/api/models/ollama/embeddings",
    "/api/models/embeddings",
]


def _documented_answers(templates: bool = False) -> set[tuple[str, str, int]]:
    """Every (method, path, status) the document lists: of the configured sources' templates, or of the rest."""
    return {
        (method.upper(), path, int(status))
        for path, item in DOCUMENT["paths"].items()
        if (path in SOURCE_TEMPLATES) == templates
        for method, operation in item.items()
        for status in operation["responses"]
    }


def _validate(app, requests_made) -> collections.Counter:
    """Send each request, check its answer against openapi.yaml; the answers validated, by (method, path, status)."""
    # Checked: a status the document lists for the operation (and the one expected), a
    # documented content type, and a body that conforms.
    schema = schemathesis.openapi.from_wsgi("/api/models/openapi.json", app)
    client = app.test_client()
    validated = collections.Counter()
    for method, path, kwargs, expected in requests_made:
        if kwargs.pop("redis_down", False):
            # The same app, but with a Redis nobody answers on: the request cannot be handed over.
            down = create_app(dataclasses.replace(app.config["CATALOG_SETTINGS"], redis_url="redis://127.0.0.1:1/0"))
            response = down.test_client().open(path, method=method, **kwargs)
        else:
            response = client.open(path, method=method, **kwargs)
        route, status = _template_of(DOCUMENT["paths"], path.split("?")[0]), response.status_code
        documented = DOCUMENT["paths"][route][method.lower()]["responses"]
        assert str(status) in documented, f"{method} {path} answered {status}, which openapi.yaml does not list"
        assert status == expected, f"{method} {path} answered {status}, not {expected}"
        content = documented[str(status)].get("content", {})
        if not content:
            assert response.get_data() == b"", f"{method} {path}: a body the document does not describe"
        elif response.mimetype == "application/json":
            assert response.mimetype in content, f"{method} {path}: {response.mimetype} is not documented"
            # Raises on any difference between the body (and headers) and the document.
            schema.validate_response(schema[route][method], Response.from_wsgi(response))
        else:
            # Only /metrics answers text: its schema is any string, so UTF-8 text with samples.
            assert list(content) == ["text/plain"] and response.mimetype == "text/plain", (method, path)
            assert "# TYPE " in response.get_data().decode("utf-8")
        validated[(method, route, status)] += 1
    return validated


def _every_answer(app, headers: dict, live: bool) -> list:
    """(method, path, test-client arguments, expected status): every status of every endpoint."""
    changes = "/api/models/changes?since=2999-01-01T00:00:00%2B02:00&source=ollama"
    changes_etag = app.test_client().get(changes, headers=headers).headers["ETag"]
    made = []
    for path in CATALOG_PATHS:
        etag = app.test_client().get(path, headers=headers).headers["ETag"]
        made += [
            ("GET", path, {"headers": headers}, 200),
            ("GET", path + "?supports=tools&min_context=2&free=false&q=a&provider=x", {"headers": headers}, 200),
            ("GET", path, {"headers": {**headers, "If-None-Match": etag}}, 304),
            ("GET", path + "?min_context=zero", {"headers": headers}, 400),
            ("GET", path, {}, 401),
            ("GET", path, {"headers": {"Authorization": "Bearer nope"}}, 401),
            ("GET", path + "?new=false&deprecated=false&include_removed=true&local=true", {"headers": headers}, 200),
        ]
    compatibility = "/api/models/embeddings/compatibility"
    return [
        *made,
        # Live: 410 (before the baseline); curated: 200 with no entries and no history.
        ("GET", "/api/models/changes?since=2000-01-01T00:00:00Z", {"headers": headers}, 410 if live else 200),
        ("GET", changes, {"headers": headers}, 200),
        ("GET", changes, {"headers": {**headers, "If-None-Match": changes_etag}}, 304),
        ("GET", "/api/models/changes?since=yesterday", {"headers": headers}, 400),
        ("GET", "/api/models/changes?since=2000-01-01T00:00:00Z", {}, 401),
        ("GET", changes, {"headers": headers, "redis_down": True}, 503),
        (
            "GET",
            f"{compatibility}?current=openrouter:openai/text-embedding-3-large"
            "&candidate=embeddings:openai/text-embedding-3-large",
            {"headers": headers},
            200,
        ),
        (
            "GET",
            f"{compatibility}?current=openrouter:openai/text-embedding-3-large&candidate=openrouter:baai/bge-m3",
            {"headers": headers},
            200,
        ),
        (
            "GET",
            f"{compatibility}?current=openrouter:nobody/nothing&candidate=openrouter:baai/bge-m3",
            {"headers": headers},
            404,
        ),
        ("GET", f"{compatibility}?current=openrouter:baai/bge-m3", {"headers": headers}, 400),
        ("GET", f"{compatibility}?current=openrouter:baai/bge-m3&candidate=openrouter:baai/bge-m3", {}, 401),
        ("GET", "/api/models", {"headers": headers}, 200),
        ("GET", "/api/models", {}, 401),
        ("GET", "/api/models/status", {"headers": headers}, 200),
        ("GET", "/api/models/status", {}, 401),
        ("POST", "/api/models/refresh", {"headers": headers, "json": {"source": "ollama"}}, 202),
        ("POST", "/api/models/refresh", {"headers": headers, "json": {"source": "ollama"}}, 429),
        ("POST", "/api/models/refresh", {"headers": headers, "json": {"source": "x"}}, 400),
        (
            "POST",
            "/api/models/refresh",
            {"headers": {"Authorization": f"Bearer {make_token()}"}, "json": {"source": "all"}},
            403,
        ),
        ("POST", "/api/models/refresh", {"json": {"source": "all"}}, 401),
        ("GET", "/api/models/openapi.json", {}, 200),
        ("GET", "/healthz", {}, 200),
        ("GET", "/readyz", {}, 200),
        ("GET", "/metrics", {}, 200),
    ]


def test_live_answers_match_the_document(live_app):
    validated = _validate(live_app, [*_every_answer(live_app, ADMIN, live=True), _unavailable_refresh()])
    assert set(validated) == _documented_answers()  # every status of every endpoint, and no other
    assert sum(validated.values()) == 60


@pytest.mark.parametrize("openrouter_key", [None, OPENROUTER_KEY], ids=["curated", "curated_fallback"])
def test_curated_and_unreachable_answers_match_the_document(make_settings, openrouter_key):
    app = create_app(make_settings(openrouter_api_key=openrouter_key))
    validated = _validate(app, [*_every_answer(app, ADMIN, live=False), _unavailable_refresh()])
    # Without live data there is no history, so no `since` is too old: no 410.
    assert set(validated) == _documented_answers() - {("GET", "/api/models/changes", 410)}
    assert sum(validated.values()) == 60


def _unavailable_refresh():
    """A refresh asked of a deployment whose Redis does not answer: 503 (sent to the app below)."""
    return ("POST", "/api/models/refresh", {"headers": ADMIN, "json": {"source": "ollama"}, "redis_down": True}, 503)


def _source_answers(app, headers: dict) -> list:
    """(method, path, arguments, expected status) for the configured sources' catalogs."""
    made = []
    for path in ("/api/models/openai", "/api/models/openai/embeddings", "/api/models/anthropic",
                 "/api/models/gemini", "/api/models/gemini/embeddings", "/api/models/mistral",
                 "/api/models/mistral/embeddings"):  # fmt: skip
        etag = app.test_client().get(path, headers=headers).headers["ETag"]
        made += [
            ("GET", path, {"headers": headers}, 200),
            ("GET", path + "?supports=vision&min_context=2&free=false&q=a&provider=Google", {"headers": headers}, 200),
            ("GET", path, {"headers": {**headers, "If-None-Match": etag}}, 304),
            ("GET", path + "?supports=telepathy", {"headers": headers}, 400),
            ("GET", path, {}, 401),
        ]
    return [
        *made,
        ("GET", "/api/models/anthropic/embeddings", {"headers": headers}, 404),  # Anthropic lists none
        ("GET", "/api/models/cohere", {"headers": headers}, 404),  # not configured
        ("GET", "/api/models/cohere/embeddings", {"headers": headers}, 404),
    ]


def test_configured_sources_live_and_unreachable_answers_match_the_document(hosted_app):
    client = hosted_app.test_client()
    assert client.get("/api/models/mistral", headers=ADMIN).get_json()["data"]["error"].endswith("key rejected (401)")
    assert client.get("/api/models/openai/embeddings", headers=ADMIN).get_json()["data"]["total"] == 3
    validated = _validate(hosted_app, _source_answers(hosted_app, ADMIN))
    assert set(validated) == _documented_answers(templates=True)
    assert sum(validated.values()) == 38


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/api/models/status", 200, {"success": True, "data": {}}),
        ("/api/models/openrouter", 200, {"success": True, "data": {"models": [{"name": "no id"}], "source": "api"}}),
        ("/api/models/ollama", 200, {"success": True, "data": {"models": [], "source": "elsewhere", "total": 0}}),
        ("/api/models/openrouter", 401, {"success": False, "error": "a string, not an object"}),
    ],
)
def test_the_validation_above_rejects_a_body_that_does_not_conform(app, path, status, body):
    """The answers above are really checked: a body the document forbids is refused."""
    schema = schemathesis.openapi.from_wsgi("/api/models/openapi.json", app)
    response = app.test_client().get(path, headers=ADMIN if status == 200 else {})
    assert response.status_code == status
    schema.validate_response(schema[path]["GET"], Response.from_wsgi(response))  # the real body passes
    response.set_data(json.dumps(body))
    with pytest.raises(Failure, match="Response violates schema"):
        schema.validate_response(schema[path]["GET"], Response.from_wsgi(response))


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
def test_schemathesis(hosted_app, operation_label, mode):
    # Driven through schemathesis' Python API with Hypothesis: its pytest plugin does not run
    # on pytest 9 yet. The app has configured sources, live and unreachable, so that their
    # catalogs answer what they answer in a deployment.
    app = hosted_app
    operation = next(op for op in _operations(app) if op.label == operation_label)

    @hypothesis.settings(
        max_examples=15,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        # A name the pattern excludes, or one with a slash, addresses another endpoint, which
        # its own path describes (negative generation may produce one).
        name = case.path_parameters.get("name", "")
        hypothesis.assume(name not in NOT_SOURCE_NAMES and "/" not in name)
        # identity: the checks read bodies as JSON, and this test client does not un-gzip.
        headers = {"Accept-Encoding": "identity"}
        # A case with broken headers keeps them as generated: adding the token would undo a
        # missing-Authorization mutation and make the service seem to accept it.
        if not (case.meta and case.meta.is_negative_at(ParameterLocation.HEADER)):
            headers.update(ADMIN)
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.mark.parametrize("template", SOURCE_TEMPLATES)
@pytest.mark.parametrize("name", ["openai", "anthropic", "gemini", "mistral", "cohere"])
def test_schemathesis_checks_each_configured_source(hosted_app, template, name):
    # Generated names almost never hit a configured source; these cases name each one (live,
    # refused, without such a catalog, not configured) and run the same checks.
    operation = next(op for op in _operations(hosted_app) if op.label == f"GET {template}")
    for query in ({}, {"supports": "vision", "min_context": 1000, "q": "e"}):
        case = operation.Case(path_parameters={"name": name}, query=query)
        case.call_and_validate(headers={**ADMIN, "Accept-Encoding": "identity"}, checks=CHECKS)
