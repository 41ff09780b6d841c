"""The blueprint: one route per registered catalog, each sending a snapshot's bytes.

A repeated request (same token, already verified) is answered by CatalogFastPath before Flask
routes it; every other request goes through the views below. Both call catalog_response(), so
they take the same decisions and send the same status, headers and bytes.
"""

from __future__ import annotations

import json
import math

import yaml
from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.http import parse_accept_header, parse_etags
from werkzeug.wrappers import Request as WerkzeugRequest

from config import PROJECT_ROOT

from .auth import cached_claims, token_required
from .changes import HistoryGone, changes_answer
from .compatibility import UnknownModel, compatibility_answer
from .errors import error_response
from .filters import CatalogFilter, InvalidParameter
from .service import CatalogService, get_service
from .snapshot import Snapshot
from .store import StoreUnavailable

bp = Blueprint("models", __name__, url_prefix="/api/models")

OPENAPI_FILE = PROJECT_ROOT / "openapi.yaml"

# Browsers may keep the body but must ask again each time; auth makes it per-user.
CACHE_CONTROL = "private, no-cache"

Answer = tuple[str, list[tuple[str, str]], bytes]


@bp.get("")
@token_required
def configured_sources() -> Response:
    """Every configured source: name, kind, its catalogs' paths, `source`, totals and ages, last error."""
    return jsonify({"success": True, "data": {"sources": get_service().sources_report()}})


@bp.get("/embeddings")
@token_required
def all_embeddings() -> Response:
    """Every embedding model of every source, each row naming its source."""
    service = get_service()
    status, headers, body = answer_snapshot(
        service, service.all_embeddings(), request.environ, CatalogFilter.from_args(request.args)
    )
    return Response(body, status=status, headers=headers)


@bp.get("/status")
@token_required
def refresh_status() -> Response:
    """Per catalog: source served, fetched_at, age, last error, failures in a row, next run."""
    return jsonify({"success": True, "data": {"catalogs": get_service().status_report()}})


@bp.post("/refresh")
@token_required
def request_refresh() -> Response:
    """Queue a refresh (admin tokens only) and answer at once; /status shows how it went."""
    service = get_service()
    settings = service.settings
    if not _is_admin(request.environ["catalog.token_claims"], settings.admin_claim, settings.admin_claim_value):
        return error_response(
            403,
            "forbidden",
            f"Refreshing needs a token whose {settings.admin_claim!r} claim is {settings.admin_claim_value!r}",
        )
    body = request.get_json(silent=True)
    body = body if isinstance(body, dict) else {}
    choice = body.get("source")
    choices = service.registry.refresh_choices
    if choice not in choices:
        raise InvalidParameter("source", f'send a JSON body {{"source": ...}} with one of {", ".join(choices)}')
    accept_shrink = body.get("accept_shrink", False)
    if not isinstance(accept_shrink, bool):
        raise InvalidParameter("accept_shrink", "accept_shrink must be true or false")
    sources = service.registry.chosen(choice)
    queued = [source.name for source in sources if source.enabled]
    try:
        wait = service.refresh_requests.ask(queued, accept_shrink) if queued else 0.0
    except StoreUnavailable:
        return error_response(
            503,
            "unavailable",
            "The refresh could not be queued: the shared store is not answering",
            {"Retry-After": "5"},
        )
    if wait:
        retry_after = math.ceil(wait)
        return error_response(
            429,
            "too_many_requests",
            f"A refresh of {choice} was queued recently; try again in {retry_after} s",
            {"Retry-After": str(retry_after)},
        )
    response = jsonify({"success": True, "data": {
        "queued": queued,
        "not_configured": [source.name for source in sources if not source.enabled],
        "status": "/api/models/status",
    }})  # fmt: skip
    response.status_code = 202
    response.headers["Location"] = "/api/models/status"
    return response


@bp.get("/changes")
@token_required
def model_changes() -> Response:
    """Models added, removed and changed since a time, oldest first (docs/lifecycle.md)."""
    service = get_service()
    try:
        answer = changes_answer(service.store, service.registry, request.args)
    except HistoryGone as exc:
        return error_response(410, "gone", str(exc), oldest=exc.oldest)
    except StoreUnavailable:
        return error_response(
            503,
            "unavailable",
            "The change history could not be read: the shared store is not answering",
            {"Retry-After": "5"},
        )
    status, headers, body = snapshot_response(answer, request.environ)
    return Response(body, status=status, headers=headers)


@bp.get("/embeddings/compatibility")
@token_required
def embedding_compatibility() -> Response:
    """Whether one embedding model can replace another without re-indexing."""
    try:
        answer = compatibility_answer(get_service(), request.args)
    except UnknownModel as exc:
        return error_response(404, "not_found", str(exc), parameter=exc.parameter)
    return jsonify({"success": True, "data": answer})


@bp.get("/openapi.json")
def openapi_document() -> Response:
    """The OpenAPI description of this service (no token needed)."""
    return Response(current_app.extensions["openapi"], mimetype="application/json")


def _is_admin(claims: dict, name: str, value: str) -> bool:
    claim = claims.get(name)
    return claim == value or (isinstance(claim, list) and value in claim)


def catalog_view(name: str):
    """The Flask view of one catalog: full auth, filters, then catalog_response()."""

    @token_required
    def view() -> Response:
        service = get_service()
        status, headers, body = catalog_response(service, name, request.environ, CatalogFilter.from_args(request.args))
        return Response(body, status=status, headers=headers)

    view.__doc__ = f"The {name} catalog."
    return view


def catalog_response(service: CatalogService, name: str, environ: dict, wanted: CatalogFilter | None = None) -> Answer:
    """Status, headers and body of an authenticated GET of one catalog."""
    return answer_snapshot(service, service.snapshot(name), environ, wanted)


def answer_snapshot(service: CatalogService, snapshot: Snapshot, environ: dict, wanted: CatalogFilter | None) -> Answer:
    """A snapshot as an answer: filtered when asked, gzip when the client takes it, 304 when it has it."""
    if wanted is not None:
        snapshot = service.filtered.get(snapshot, wanted)
    return snapshot_response(snapshot, environ)


def snapshot_response(snapshot: Snapshot, environ: dict) -> Answer:
    """Status, headers and body of an encoded answer: gzip when the client takes it, 304 when it has it."""
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
    """WSGI middleware: a GET of a catalog whose bearer token was already verified (and has
    not expired), with valid filters or none, gets catalog_response() at once, without Flask's
    routing and request context. Anything else (no token, a new token, an invalid filter,
    another method or path) goes to Flask, which verifies in full and answers errors."""

    def __init__(self, wsgi_app, service: CatalogService, tokens) -> None:
        self.wsgi_app = wsgi_app
        self._service = service
        self._tokens = tokens
        self._names = {path: catalog.name for path, catalog in service.registry.by_path.items()}

    def __call__(self, environ, start_response):
        name = self._names.get(environ.get("PATH_INFO", ""))
        if (
            name is not None
            and environ.get("REQUEST_METHOD") == "GET"
            and cached_claims(environ, self._tokens) is not None
        ):
            wanted = None
            if environ.get("QUERY_STRING"):
                try:
                    # Parsed as Flask parses request.args, so both paths read the same filter.
                    wanted = CatalogFilter.from_args(WerkzeugRequest(environ).args)
                except InvalidParameter:
                    return self.wsgi_app(environ, start_response)  # Flask answers the 400
            status, headers, body = catalog_response(self._service, name, environ, wanted)
            start_response(status, headers)
            return [body]
        return self.wsgi_app(environ, start_response)


def _invalid_parameter(exc: InvalidParameter) -> Response:
    return error_response(400, "invalid_parameter", str(exc), parameter=exc.parameter)


def init_app(app: Flask) -> None:
    """Register a route per catalog and the blueprint, load the OpenAPI document, put the fast
    path in front of Flask."""
    service: CatalogService = app.extensions["catalog_service"]
    # "//api/models/x" is not a path of ours: a JSON 404, not werkzeug's redirect to the merged path.
    app.url_map.merge_slashes = False
    app.extensions["openapi"] = json.dumps(yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))).encode()
    app.register_error_handler(InvalidParameter, _invalid_parameter)
    app.register_blueprint(bp)
    # The catalogs' routes differ from app to app (the sources configured): a blueprint each.
    catalogs = Blueprint("catalogs", __name__)
    for catalog in service.registry.catalogs.values():
        catalogs.add_url_rule(
            catalog.path, endpoint=catalog.name, view_func=catalog_view(catalog.name), methods=["GET"]
        )
    app.register_blueprint(catalogs)
    app.wsgi_app = CatalogFastPath(app.wsgi_app, service, app.extensions["verified_tokens"])  # type: ignore[method-assign]  # Flask's documented way to add middleware
