"""The test suite's secrets and upstream addresses: sentinels that no log line or response may carry."""

from __future__ import annotations

import time

import jwt as pyjwt

JWT_SECRET = "test-jwt-secret-sentinel-6f1d2c3b4a5e6f708192a3b4c5d6e7f8-0011223344556677"
OPENROUTER_KEY = "sk-or-test-key-sentinel-0123456789abcdef"
# The key of a local server of SOURCES_FILE (api_key_env names the variable holding it).
LOCAL_SERVER_KEY = "sk-local-test-key-sentinel-fedcba9876543210"

# The hosted providers' keys (app/sources/openai.py, anthropic.py, gemini.py, mistral.py).
PROVIDER_KEYS = {
    "openai": "sk-openai-test-key-sentinel-1f2e3d4c5b6a",
    "anthropic": "sk-ant-test-key-sentinel-7a8b9c0d1e2f",
    "gemini": "AIza-gemini-test-key-sentinel-3c4d5e6f7a8b",
    "mistral": "mistral-test-key-sentinel-9d0e1f2a3b4c",
}

# Upstream addresses that requests-mock answers for (nothing listens there).
OR_BASE = "http://openrouter.test/api/v1"
OLLAMA_BASE = "http://ollama.test:11434"

# The base64 of '{"alg"': how every JWT starts. No log line or response may carry one.
TOKEN_PREFIX = "eyJhbGci"


def leaked_sentinels(text: str) -> list[str]:
    """Which sentinels appear in `text`."""
    sentinels = {
        "JWT secret": JWT_SECRET, "OpenRouter key": OPENROUTER_KEY, "local server key": LOCAL_SERVER_KEY,
        "token": TOKEN_PREFIX,
    }  # fmt: skip
    sentinels.update({f"{name} key": key for name, key in PROVIDER_KEYS.items()})
    return [name for name, value in sentinels.items() if value in text]


def make_token(secret: str = JWT_SECRET, **claims) -> str:
    """An HS256 token as another application would issue it: sub and exp, nothing more."""
    payload = {"sub": "user-1", "exp": int(time.time()) + 600, **claims}
    payload = {key: value for key, value in payload.items() if value is not None}
    return pyjwt.encode(payload, secret, algorithm="HS256")
