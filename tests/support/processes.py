"""Service processes for tests: the harness's, with the suite's secrets filled in; what they fetched."""

from __future__ import annotations

import itertools

from harness import processes
from tests.support.secrets import JWT_SECRET, OPENROUTER_KEY


def catalog_env(upstream, redis_url: str, interval: float, **extra: str) -> dict:
    """The environment of a service process using `upstream`, one Redis, short intervals, test secrets."""
    return processes.catalog_env(
        upstream, redis_url, interval, jwt_secret=JWT_SECRET, openrouter_key=OPENROUTER_KEY, **extra
    )


def call_gaps(times: list[float]) -> list[float]:
    """Seconds between consecutive upstream calls."""
    return [round(later - earlier, 3) for earlier, later in itertools.pairwise(times)]


def assert_once_per_interval(gaps: list[float], interval: float) -> None:
    """Calls to one upstream path came once per interval: no two together, an interval apart on average."""
    # Two calls together would be two schedulers fetching one interval. The bounds leave room
    # for a tick that a loaded machine runs late, which shortens the gap after it.
    assert gaps, "fewer than two calls"
    assert min(gaps) > interval / 4, gaps
    assert sum(gaps) / len(gaps) > interval * 3 / 4, gaps
