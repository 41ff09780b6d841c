"""Every kind of bad token gets a JSON 401 with a Bearer challenge; good tokens get in."""

from __future__ import annotations

import base64
import json
import logging
import time

import jwt as pyjwt
import pytest

from app import create_app
from tests.support.secrets import JWT_SECRET, make_token

ENDPOINTS = ["/api/models/openrouter", "/api/models/openrouter/embeddings", "/api/models/ollama"]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned_token() -> str:
    """alg: none, with an empty signature."""
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64({'sub': 'user-1', 'exp': int(time.time()) + 600})}."


BAD_TOKENS = {
    "malformed": (lambda: "not-a-jwt", "invalid_token"),
    "two_segments": (lambda: "abc.def", "invalid_token"),
    "wrong_signature": (lambda: make_token(secret="another-secret-that-is-long-enough-123456"), "invalid_token"),
    "tampered_payload": (lambda: _tamper(make_token()), "invalid_token"),
    "alg_none": (unsigned_token, "invalid_token"),
    "hs512": (
        lambda: pyjwt.encode({"sub": "u", "exp": int(time.time()) + 60}, JWT_SECRET, algorithm="HS512"),
        "invalid_token",
    ),
    "expired": (lambda: make_token(exp=int(time.time()) - 60), "token_expired"),
    "no_exp": (lambda: make_token(exp=None), "missing_exp"),
    "no_sub": (lambda: make_token(sub=None), "invalid_token"),
    "refresh_token": (lambda: make_token(type="refresh"), "invalid_token"),
    "nbf_in_future": (lambda: make_token(nbf=int(time.time()) + 600), "invalid_token"),
}


def _tamper(token: str) -> str:
    header, _payload, signature = token.split(".")
    return f"{header}.{_b64({'sub': 'admin', 'exp': int(time.time()) + 600})}.{signature}"


def assert_401(response, code: str) -> None:
    assert response.status_code == 401
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_valid_token_from_another_application_gets_in(client, endpoint):
    # Only sub and exp: no jti, type or fresh claims as flask-jwt-extended would add.
    response = client.get(endpoint, headers={"Authorization": f"Bearer {make_token()}"})
    assert response.status_code == 200
    assert response.get_json()["success"] is True


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_missing_header(client, endpoint):
    response = client.get(endpoint)
    assert_401(response, "missing_token")
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "Bearer a b"])
def test_malformed_header(client, header):
    response = client.get(ENDPOINTS[0], headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] in ("missing_token", "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_bad_token_gets_json_401(client, kind, caplog):
    make, code = BAD_TOKENS[kind]
    token = make()
    with caplog.at_level(logging.DEBUG):
        response = client.get(ENDPOINTS[0], headers={"Authorization": f"Bearer {token}"})
    assert_401(response, code)
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # Neither the token nor the secret is echoed or logged.
    assert token not in response.get_data(as_text=True)
    assert JWT_SECRET not in response.get_data(as_text=True)
    assert token not in caplog.text and JWT_SECRET not in caplog.text
    assert f"auth failure: {code}" in caplog.text


def test_token_in_query_string_is_ignored(client):
    response = client.get(f"{ENDPOINTS[0]}?jwt={make_token()}&access_token={make_token()}")
    assert_401(response, "missing_token")


def test_audience_and_issuer_are_checked_when_configured(make_settings):
    app = create_app(make_settings(jwt_audience="catalog", jwt_issuer="notebook-app"))
    client = app.test_client()
    good = make_token(aud="catalog", iss="notebook-app")
    assert client.get(ENDPOINTS[0], headers={"Authorization": f"Bearer {good}"}).status_code == 200
    for bad in (make_token(aud="other", iss="notebook-app"), make_token(aud="catalog", iss="other"), make_token()):
        assert_401(client.get(ENDPOINTS[0], headers={"Authorization": f"Bearer {bad}"}), "invalid_token")


def test_cli_token_is_accepted(runner, client):
    result = runner.invoke(args=["models", "token", "alice", "--expires", "120"])
    assert result.exit_code == 0
    token = result.output.strip()
    claims = pyjwt.decode(token, JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    assert 100 < claims["exp"] - time.time() <= 120
    assert client.get(ENDPOINTS[2], headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_cli_token_rejects_a_bad_lifetime(runner):
    result = runner.invoke(args=["models", "token", "alice", "--expires", "0"])
    assert result.exit_code != 0


def test_cli_token_with_extra_claims_can_refresh(runner, client):
    result = runner.invoke(args=["models", "token", "ops", "--claim", "role=admin"])
    assert result.exit_code == 0
    token = result.output.strip()
    assert pyjwt.decode(token, JWT_SECRET, algorithms=["HS256"])["role"] == "admin"
    response = client.post(
        "/api/models/refresh", json={"source": "ollama"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 202
    assert runner.invoke(args=["models", "token", "ops", "--claim", "role"]).exit_code != 0
