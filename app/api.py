"""The blueprint: the catalog endpoints, which only ever send a snapshot's bytes.

A repeated request (same token, already verified) is answered by CatalogFastPath before Flask
routes it; every other request goes through the views below. Both build the answer with
catalog_answer(), so they send the same status, headers and bytes.
"""

from __future__ import annotations

import json
import math
import time

import yaml
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.http import parse_accept_header, parse_etags

from config import PROJECT_ROOT

from .auth import bearer_token, token_required
from .catalog import Catalog, get_catalog
from .errors import error_response
from .filters import CatalogFilter, InvalidParameter
from .refresh import REFRESH_SOURCES
from .snapshot import EMBEDDINGS, LLMS, OLLAMA, OLLAMA_EMBEDDINGS, Snapshot

bp = Blueprint("models", __name__, url_prefix="/api/models")

CATALOG_PATHS = {
    "/api/models/openrouter": LLMS,
    "/api/models/openrouter/embeddings": EMBEDDINGS,
    "/api/models/ollama": OLLAMA,
    "/api/models/ollama/embeddings": OLLAMA_EMBEDDINGS,
}
OPENAPI_FILE = PROJECT_ROOT / "openapi.yaml"

# Browsers may keep the body but must ask again each time; auth makes it per-user.
CACHE_CONTROL = "private, no-cache"


@bp.get("/openrouter")
@token_required
def openrouter_models() -> Response:
    """LLMs: live OpenRouter rows, or the curated list."""
    return _send(LLMS)


@bp.get("/openrouter/embeddings")
@token_required
def openrouter_embeddings() -> Response:
    """Embedding models: live OpenRouter rows, or the curated list."""
    return _send(EMBEDDINGS)


@bp.get("/ollama")
@token_required
def ollama_models() -> Response:
    """Inference models pulled into the local Ollama, or why it could not be reached."""
    return _send(OLLAMA)


@bp.get("/ollama/embeddings")
@token_required
def ollama_embeddings() -> Response:
    """Embedding-only models pulled into the local Ollama, for the Create Notebook dialog."""
    return _send(OLLAMA_EMBEDDINGS)


@bp.get("/status")
@token_required
def refresh_status() -> Response:
    """Per catalog: source served, fetched_at, age, last error, failures in a row, next run."""
    return jsonify({"success": True, "data": {"catalogs": get_catalog().status_report()}})


@bp.post("/refresh")
@token_required
def request_refresh() -> Response:
    """Queue a refresh (admin tokens only) and answer at once; /status shows how it went."""
    catalog = get_catalog()
    settings = catalog.settings
    if not _is_admin(request.environ["catalog.token_claims"], settings.admin_claim, settings.admin_claim_value):
        return error_response(403, "forbidden", f"Refreshing needs a token whose {settings.admin_claim!r} claim "
                                                f"is {settings.admin_claim_value!r}")
    body = request.get_json(silent=True)
    source = body.get("source") if isinstance(body, dict) else None
    if source not in REFRESH_SOURCES:
        raise InvalidParameter("source", f"send a JSON body {{\"source\": ...}} with one of {', '.join(REFRESH_SOURCES)}")
    jobs = REFRESH_SOURCES[source]
    # One queued refresh per job per window, across every process when Redis is there.
    waits = [catalog.store.claim_refresh_request(job, settings.refresh_request_seconds) for job in jobs]
    if any(waits):
        retry_after = math.ceil(max(waits))
        return error_response(429, "too_many_requests", f"A refresh of {source} was queued recently; "
                                                        f"try again in {retry_after} s",
                              {"Retry-After": str(retry_after)})
    queued = [job for job in jobs if catalog.refresher.enabled(job)]
    for job in queued:
        catalog.refresh_queue.submit(job)
    response = jsonify({"success": True, "data": {
        "queued": queued,
        "not_configured": [job for job in jobs if job not in queued],
        "status": "/api/models/status",
    }})  # fmt: skip
    response.status_code = 202
    response.headers["Location"] = "/api/models/status"
    return response


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI description of this service (no token needed)."""
    return Response(current_app.extensions["openapi"], mimetype="application/json")


def _is_admin(claims: dict, name: str, value: str) -> bool:
    claim = claims.get(name)
    return claim == value or (isinstance(claim, list) and value in claim)


def _send(catalog: str) -> Response:
    snapshot = get_catalog().snapshot(catalog)
    wanted = CatalogFilter.from_args(request.args)
    if wanted is not None:
        snapshot = get_catalog().filtered.get(snapshot, wanted)
    status, headers, body = catalog_answer(snapshot, request.environ)
    return Response(body, status=status, headers=headers)


def catalog_answer(snapshot: Snapshot, environ: dict) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, headers and body for one snapshot: gzip when the client takes it, 304 when it has it."""
    gzipped = _accepts_gzip(environ.get("HTTP_ACCEPT_ENCODING", ""))
    headers = [
        ("ETag", snapshot.gzip_etag if gzipped else snapshot.etag),
        ("Cache-Control", CACHE_CONTROL),
        ("Vary", "Accept-Encoding"),
    ]
    if _not_modified(environ.get("HTTP_IF_NONE_MATCH"), snapshot):
        return "304 NOT MODIFIED", headers, b""
    body = snapshot.gzip_body if gzipped else snapshot.body
    headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    return "200 OK", headers, body


def _accepts_gzip(header: str) -> bool:
    # Parse only when gzip is named at all; "gzip;q=0" means no.
    return "gzip" in header and parse_accept_header(header)["gzip"] > 0


def _not_modified(header: str | None, snapshot: Snapshot) -> bool:
    if not header:
        return False
    if header in (snapshot.etag, snapshot.gzip_etag):  # the common case, without parsing
        return True
    tags = parse_etags(header)
    return any(tags.contains_weak(etag[1:-1]) for etag in (snapshot.etag, snapshot.gzip_etag))


class CatalogFastPath:
    """WSGI middleware: a plain GET of a catalog whose bearer token was already verified
    (and has not expired) gets the snapshot's bytes at once, without Flask's routing and
    request context. Anything else (no token, a new token, a query string, another method or
    path) goes to Flask, which verifies in full and answers errors."""

    def __init__(self, wsgi_app, catalog: Catalog, tokens) -> None:
        self.wsgi_app = wsgi_app
        self._catalog = catalog
        self._tokens = tokens

    def __call__(self, environ, start_response):
        name = CATALOG_PATHS.get(environ.get("PATH_INFO", ""))
        if name is not None and environ.get("REQUEST_METHOD") == "GET" and not environ.get("QUERY_STRING"):
            token = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
            if token and self._tokens.get(token, time.time()) is not None:
                status, headers, body = catalog_answer(self._catalog.snapshot(name), environ)
                start_response(status, headers)
                return [body]
        return self.wsgi_app(environ, start_response)


def _invalid_parameter(exc: InvalidParameter) -> Response:
    return error_response(400, "invalid_parameter", str(exc), parameter=exc.parameter)


def init_app(app: Flask) -> None:
    """Register the blueprint, load the OpenAPI document, put the fast path in front of Flask."""
    app.extensions["openapi"] = json.dumps(yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))).encode()
    app.register_error_handler(InvalidParameter, _invalid_parameter)
    app.register_blueprint(bp)
    app.wsgi_app = CatalogFastPath(app.wsgi_app, app.extensions["catalog"], app.extensions["verified_tokens"])
