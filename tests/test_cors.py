"""CORS for configured origins: preflights, and the headers on every answer, fast path included."""

from __future__ import annotations

import pytest

from app import create_app
from config import ConfigError, Settings
from tests.support.secrets import JWT_SECRET, make_token

FRONTEND = "http://localhost:5173"
PATH = "/api/models/openrouter"


@pytest.fixture
def cors_client(make_settings):
    return create_app(make_settings(cors_origins=(FRONTEND, "https://app.example.com"))).test_client()


def preflight(client, path, method="GET", origin=FRONTEND):
    return client.options(path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, if-none-match",
    })  # fmt: skip


def test_a_preflight_allows_the_bearer_header_and_the_paths_methods(cors_client):
    response = preflight(cors_client, PATH)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert response.headers["Access-Control-Allow-Methods"] == "GET, HEAD"
    allowed = {name.strip().lower() for name in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "if-none-match"} <= allowed
    assert "Origin" in response.headers["Vary"]
    refresh = preflight(cors_client, "/api/models/refresh", method="POST")
    assert refresh.headers["Access-Control-Allow-Methods"] == "POST"


def test_a_preflight_from_another_origin_gets_no_permission(cors_client):
    response = preflight(cors_client, PATH, origin="https://evil.example")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_preflight_of_an_unknown_path_is_a_json_404(cors_client):
    response = preflight(cors_client, "/api/models/nope")
    assert response.status_code == 404 and response.mimetype == "application/json"


@pytest.mark.parametrize("kind", ["401", "200 via Flask", "200 via the fast path", "304"])
def test_every_answer_to_an_allowed_origin_carries_cors_headers(cors_client, kind):
    token = make_token(sub=f"cors-{kind}")
    headers = {"Origin": FRONTEND}
    if kind != "401":
        headers["Authorization"] = f"Bearer {token}"
    if kind in ("200 via the fast path", "304"):
        first = cors_client.get(PATH, headers=headers)  # verifies the token: the next GET takes the fast path
        if kind == "304":
            headers["If-None-Match"] = first.headers["ETag"]
    response = cors_client.get(PATH, headers=headers)
    assert response.status_code == int(kind[:3])
    assert response.headers["Access-Control-Allow-Origin"] == FRONTEND
    assert "ETag" in response.headers["Access-Control-Expose-Headers"]
    assert "Origin" in response.headers["Vary"]
    if kind.startswith("200"):
        assert "Accept-Encoding" in response.headers["Vary"]


def test_an_answer_to_another_origin_has_no_permission(cors_client):
    response = cors_client.get(
        PATH, headers={"Origin": "https://evil.example", "Authorization": f"Bearer {make_token()}"}
    )
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_any_origin(make_settings):
    client = create_app(make_settings(cors_origins=("*",))).test_client()
    response = client.get(
        PATH, headers={"Origin": "https://anything.example", "Authorization": f"Bearer {make_token()}"}
    )
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_without_cors_origins_no_cors_headers_are_sent(client):
    response = client.get(PATH, headers={"Origin": FRONTEND, "Authorization": f"Bearer {make_token()}"})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert preflight(client, PATH).headers.get("Access-Control-Allow-Origin") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", ()),
        ("http://localhost:5173", ("http://localhost:5173",)),
        ("https://a.example, http://localhost:5173/", ("https://a.example", "http://localhost:5173")),
        ("*", ("*",)),
    ],
)
def test_cors_origins_setting(value, expected):
    assert Settings.from_env({"JWT_SECRET_KEY": JWT_SECRET, "CORS_ORIGINS": value}).cors_origins == expected


@pytest.mark.parametrize("value", ["*, https://a.example", "a.example", "https://a.example/path", "ftp://a.example"])
def test_bad_cors_origins_stop_start_up_naming_the_variable(value):
    with pytest.raises(ConfigError, match="CORS_ORIGINS"):
        Settings.from_env({"JWT_SECRET_KEY": JWT_SECRET, "CORS_ORIGINS": value})
