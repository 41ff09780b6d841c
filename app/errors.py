"""Every error is JSON: {"success": false, "error": {"code", "message"}}."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, headers: dict | None = None, **fields) -> Response:
    """The error envelope with a status, optional headers and extra error fields."""
    response = jsonify({"success": False, "error": {"code": code, "message": message, **fields}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _http_error(exc: HTTPException) -> Response:
    code = (exc.name or "error").lower().replace(" ", "_")
    response = error_response(exc.code or 500, code, exc.description or exc.name)
    # Keep what werkzeug sets for this error, such as Allow on a 405.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error")
    return error_response(500, "internal_server_error", InternalServerError.description)


def init_app(app: Flask) -> None:
    """Register the JSON error handlers."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
