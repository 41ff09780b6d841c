"""CORS for the configured origins (CORS_ORIGINS), so a browser frontend on another origin can
call the API with a Bearer header.

A WSGI layer rather than flask-cors: flask-cors works through Flask's after_request, which the
catalog fast path (CatalogFastPath, in front of Flask) never reaches. Here, outside both, every
answer gets the same headers by construction: 200s, 304s, 401s and errors alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Flask
from werkzeug.exceptions import HTTPException

ALLOWED_HEADERS = "Authorization, If-None-Match, Content-Type"
# What a script may read of an answer: the ETag for conditional requests, and what errors say.
EXPOSED_HEADERS = "ETag, Retry-After, WWW-Authenticate, Location"
PREFLIGHT_MAX_AGE_SECONDS = "600"


class CorsMiddleware:
    """Answers preflights and adds Access-Control-* headers for allowed origins."""

    def __init__(self, wsgi_app, origins: Iterable[str], allowed_methods: Callable[[str], list[str] | None]) -> None:
        self.wsgi_app = wsgi_app
        origins = tuple(origins)
        self._any_origin = origins == ("*",)
        self._origins = frozenset(origins)
        self._allowed_methods = allowed_methods

    def _allowed(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for this request, None when not allowed."""
        if not origin:
            return None
        if self._any_origin:
            return "*"  # never with credentials: none are ever allowed
        return origin if origin in self._origins else None

    def __call__(self, environ, start_response):
        origin = environ.get("HTTP_ORIGIN")
        allowed = self._allowed(origin)
        if environ.get("REQUEST_METHOD") == "OPTIONS" and origin and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            methods = self._allowed_methods(environ.get("PATH_INFO", ""))
            if methods is not None:
                return self._preflight(start_response, allowed, methods)

        def start_with_cors(status, headers, exc_info=None):
            headers = list(headers)
            if allowed:
                headers.append(("Access-Control-Allow-Origin", allowed))
                headers.append(("Access-Control-Expose-Headers", EXPOSED_HEADERS))
            if not self._any_origin:
                _add_vary(headers, "Origin")  # the answer differs by Origin: caches must know
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start_with_cors)

    def _preflight(self, start_response, allowed: str | None, methods: list[str]):
        headers = [("Content-Length", "0")]
        if not self._any_origin:
            headers.append(("Vary", "Origin"))
        if allowed:
            headers += [
                ("Access-Control-Allow-Origin", allowed),
                ("Access-Control-Allow-Methods", ", ".join(methods)),
                ("Access-Control-Allow-Headers", ALLOWED_HEADERS),
                ("Access-Control-Max-Age", PREFLIGHT_MAX_AGE_SECONDS),
            ]
        start_response("204 No Content", headers)
        return [b""]


def _add_vary(headers: list[tuple[str, str]], value: str) -> None:
    for index, (name, existing) in enumerate(headers):
        if name.lower() == "vary":
            if value.lower() not in existing.lower():
                headers[index] = (name, f"{existing}, {value}")
            return
    headers.append(("Vary", value))


def route_methods(app: Flask) -> Callable[[str], list[str] | None]:
    """The methods a path answers (from the app's routes), None for a path it does not have."""
    known: dict[str, list[str] | None] = {}
    adapter = app.url_map.bind("localhost")

    def methods(path: str) -> list[str] | None:
        if path in known:
            return known[path]
        try:
            found = sorted(set(adapter.allowed_methods(path)) - {"OPTIONS"}) or None
        except HTTPException:
            found = None
        if found is not None:
            known[path] = found  # only real routes: a bounded table
        return found

    return methods


def init_app(app: Flask, origins: tuple[str, ...]) -> None:
    """Put CORS in front of the fast path and Flask when origins are configured."""
    if origins:
        app.wsgi_app = CorsMiddleware(app.wsgi_app, origins, route_methods(app))  # type: ignore[method-assign]
