"""Service processes for tests: the harness's, with the suite's secrets filled in."""

from __future__ import annotations

from harness import processes
from tests.support.secrets import JWT_SECRET, OPENROUTER_KEY


def catalog_env(upstream, redis_url: str, interval: float, **extra: str) -> dict:
    """The environment of a service process using `upstream`, one Redis, short intervals, test secrets."""
    return processes.catalog_env(
        upstream, redis_url, interval, jwt_secret=JWT_SECRET, openrouter_key=OPENROUTER_KEY, **extra
    )
