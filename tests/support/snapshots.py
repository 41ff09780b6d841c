"""Snapshots as the refresher would publish them, for tests that put one in a store by hand."""

from __future__ import annotations

from app.snapshot import Snapshot, curated_snapshot, live_snapshot, unreachable_snapshot
from app.sources.base import chat_catalog

OPENROUTER = chat_catalog("openrouter", "openrouter", live_label="api")
OLLAMA = chat_catalog("ollama", "ollama", live_label="ollama", unreachable_label="ollama_unreachable")


def llm_snapshot(rows: list[dict], source: str, fetched_at: float | None = None) -> Snapshot:
    """An OpenRouter list: live ("api", with `total`) or curated/curated_fallback (without)."""
    if source == "api":
        return live_snapshot(OPENROUTER, rows, fetched_at or 0.0)
    return curated_snapshot(
        chat_catalog("openrouter", "openrouter", live_label="api", curated_rows=tuple(rows)), source
    )


def ollama_snapshot(rows: list[dict], fetched_at: float) -> Snapshot:
    """What a successful Ollama poll publishes."""
    return live_snapshot(OLLAMA, rows, fetched_at)


def ollama_unreachable_snapshot(error: str, fetched_at: float | None = None) -> Snapshot:
    """What a failed Ollama poll publishes."""
    return unreachable_snapshot(OLLAMA, error, fetched_at)
