"""The blueprint: the catalog endpoints, which only ever send a snapshot's bytes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from flask_jwt_extended import jwt_required

from .catalog import get_catalog
from .snapshot import EMBEDDINGS, LLMS, OLLAMA

bp = Blueprint("models", __name__, url_prefix="/api/models")

# Browsers may keep the body but must ask again each time; auth makes it per-user.
CACHE_CONTROL = "private, no-cache"


@bp.get("/openrouter")
@jwt_required()
def openrouter_models() -> Response:
    """LLMs: live OpenRouter rows, or the curated list."""
    return _send(LLMS)


@bp.get("/openrouter/embeddings")
@jwt_required()
def openrouter_embeddings() -> Response:
    """Embedding models: live OpenRouter rows, or the curated list."""
    return _send(EMBEDDINGS)


@bp.get("/ollama")
@jwt_required()
def ollama_models() -> Response:
    """Inference models pulled into the local Ollama, or why it could not be reached."""
    return _send(OLLAMA)


@bp.get("/status")
@jwt_required()
def refresh_status() -> Response:
    """Per catalog: source served, fetched_at, age, last error, failures in a row, next run."""
    return jsonify({"success": True, "data": {"catalogs": get_catalog().status_report()}})


def _send(catalog: str) -> Response:
    snapshot = get_catalog().snapshot(catalog)
    if request.if_none_match.contains_weak(snapshot.etag[1:-1]):
        response = Response(status=304)
    else:
        response = Response(snapshot.body, mimetype="application/json")
    response.headers["ETag"] = snapshot.etag
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response
