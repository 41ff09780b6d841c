"""The blueprint: the catalog endpoints, which only ever send a snapshot's bytes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from .auth import token_required
from .catalog import get_catalog
from .snapshot import EMBEDDINGS, LLMS, OLLAMA

bp = Blueprint("models", __name__, url_prefix="/api/models")

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


@bp.get("/status")
@token_required
def refresh_status() -> Response:
    """Per catalog: source served, fetched_at, age, last error, failures in a row, next run."""
    return jsonify({"success": True, "data": {"catalogs": get_catalog().status_report()}})


def _send(catalog: str) -> Response:
    """A snapshot's bytes as they are: gzip-compressed ones when the client takes them."""
    snapshot = get_catalog().snapshot(catalog)
    gzipped = _accepts_gzip()
    etag = snapshot.gzip_etag if gzipped else snapshot.etag
    if _not_modified(snapshot):
        response = Response(status=304)
    else:
        response = Response(snapshot.gzip_body if gzipped else snapshot.body, mimetype="application/json")
        if gzipped:
            response.headers["Content-Encoding"] = "gzip"
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Vary"] = "Accept-Encoding"
    return response


def _accepts_gzip() -> bool:
    header = request.environ.get("HTTP_ACCEPT_ENCODING", "")
    # Parse only when gzip is named at all; "gzip;q=0" means no.
    return "gzip" in header and request.accept_encodings["gzip"] > 0


def _not_modified(snapshot) -> bool:
    header = request.environ.get("HTTP_IF_NONE_MATCH")
    if not header:
        return False
    if header in (snapshot.etag, snapshot.gzip_etag):  # the common case, without parsing
        return True
    tags = request.if_none_match
    return any(tags.contains_weak(etag[1:-1]) for etag in (snapshot.etag, snapshot.gzip_etag))
