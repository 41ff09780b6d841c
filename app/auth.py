"""Bearer-token auth: HS256 tokens signed with JWT_SECRET_KEY, every failure a JSON 401.

flask-jwt-extended answers 422 or 400 for several kinds of bad token by default; each of its
callbacks is replaced here so that none of those leaks through.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from datetime import timedelta

from flask import Flask, Response, current_app, request
from flask_jwt_extended import JWTManager, create_access_token, get_jwt, verify_jwt_in_request

from config import Settings

from .errors import error_response

log = logging.getLogger(__name__)

jwt = JWTManager()

MESSAGES = {
    "missing_token": "Send an Authorization header with a Bearer token",
    "invalid_token": "The token is malformed, has a bad signature or is not an access token",
    "token_expired": "The token has expired",
    "missing_exp": "The token has no expiry (exp claim)",
}


def unauthorized(code: str) -> Response:
    """A 401 in the error envelope, with the challenge RFC 6750 asks for."""
    # Which kind of failure goes to the log; the token itself never does.
    log.info("auth failure: %s", code, extra={"event": "auth_failure", "kind": code})
    challenge = "Bearer" if code == "missing_token" else 'Bearer error="invalid_token"'
    return error_response(401, code, MESSAGES[code], {"WWW-Authenticate": challenge})


@jwt.unauthorized_loader
def _missing(_reason: str) -> Response:
    return unauthorized("missing_token")


@jwt.invalid_token_loader
def _invalid(_reason: str) -> Response:
    # The reason may quote parts of the token: it is not passed on.
    return unauthorized("invalid_token")


@jwt.expired_token_loader
def _expired(_header: dict, _payload: dict) -> Response:
    return unauthorized("token_expired")


@jwt.token_verification_loader
def _has_expiry(_header: dict, payload: dict) -> bool:
    # Tokens from the issuing app need only sub and exp; a token that never expires is refused.
    return "exp" in payload


@jwt.token_verification_failed_loader
def _no_expiry(_header: dict, _payload: dict) -> Response:
    return unauthorized("missing_exp")


@jwt.needs_fresh_token_loader
@jwt.revoked_token_loader
@jwt.user_lookup_error_loader
def _refused(_header: dict, _payload: dict) -> Response:
    return unauthorized("invalid_token")


class VerifiedTokenCache:
    """Tokens that passed full verification, by their exact string, until their `exp`.

    A repeated token then costs a dict lookup instead of an HMAC and a JSON decode (Envoy's
    JWT filter keeps the same kind of cache). Any other string, a tampered one included,
    misses and is verified in full; an entry is never used at or past its `exp`.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: dict[str, tuple[float, dict]] = {}
        self._max_entries = max_entries
        self._mutex = threading.Lock()

    def get(self, token: str, now: float) -> dict | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry[0] <= now:
            self._entries.pop(token, None)
            return None
        return entry[1]

    def put(self, token: str, claims: dict) -> None:
        expires = claims.get("exp")
        if not isinstance(expires, (int, float)):
            return
        with self._mutex:
            if len(self._entries) >= self._max_entries:
                # Dicts keep insertion order: drop the oldest entry.
                self._entries.pop(next(iter(self._entries)), None)
            self._entries[token] = (float(expires), claims)

    def __len__(self) -> int:
        return len(self._entries)


def bearer_token(header: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, else None."""
    scheme, _, token = header.partition(" ")
    return token if scheme == "Bearer" and token and " " not in token else None


def cached_claims(environ: dict, cache: VerifiedTokenCache) -> dict | None:
    """The claims of the request's bearer token if it passed full verification before and has
    not expired; None means it must be verified in full. The one shortcut both paths take."""
    token = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
    return cache.get(token, time.time()) if token else None


def token_required(view):
    """Like flask-jwt-extended's @jwt_required(), with a cache of tokens already verified.

    The verified claims are left in the WSGI environ under "catalog.token_claims".
    """

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        environ = request.environ
        cache: VerifiedTokenCache = current_app.extensions["verified_tokens"]
        claims = cached_claims(environ, cache)
        if claims is None:
            verify_jwt_in_request()  # the full check; every failure raises into a JSON 401
            claims = get_jwt()
            token = bearer_token(environ.get("HTTP_AUTHORIZATION", ""))
            if token:
                cache.put(token, claims)
        environ["catalog.token_claims"] = claims
        return view(*args, **kwargs)

    return wrapper


def init_app(app: Flask, settings: Settings) -> None:
    """Configure flask-jwt-extended for header-only HS256 tokens."""
    app.config.update(
        JWT_SECRET_KEY=settings.jwt_secret_key,
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        # Only the header: a token in a query string would end up in access logs.
        JWT_TOKEN_LOCATION=["headers"],
        JWT_DECODE_AUDIENCE=settings.jwt_audience,
        JWT_ENCODE_AUDIENCE=settings.jwt_audience,
        JWT_DECODE_ISSUER=settings.jwt_issuer,
        JWT_ENCODE_ISSUER=settings.jwt_issuer,
    )
    jwt.init_app(app)
    app.extensions["verified_tokens"] = VerifiedTokenCache()


def issue_token(identity: str, expires_seconds: int, claims: dict | None = None) -> str:
    """An access token for local use (needs an app context)."""
    return create_access_token(
        identity=identity, expires_delta=timedelta(seconds=expires_seconds), additional_claims=claims
    )
