"""What every source's normaliser shares: the row shapes' vocabulary and the checks on values.

A normaliser raises InvalidDocument when an answer as a whole has the wrong shape, and skips
(and counts) single rows it cannot use, so that one odd model never costs the whole catalog.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..embedding_models import EmbeddingModel

# Display names of model makers, by the author part of an id; anything else is title-cased.
PROVIDER_NAMES = {
    "ai21": "AI21",
    "aion-labs": "Aion Labs",
    "allenai": "AllenAI",
    "amazon": "Amazon",
    "anthropic": "Anthropic",
    "arcee-ai": "Arcee AI",
    "baai": "BAAI",
    "baidu": "Baidu",
    "bytedance": "ByteDance",
    "bytedance-seed": "ByteDance Seed",
    "cohere": "Cohere",
    "deepseek": "DeepSeek",
    "google": "Google",
    "ibm-granite": "IBM Granite",
    "inclusionai": "inclusionAI",
    "intfloat": "Intfloat",
    "lmstudio-community": "LM Studio Community",
    "meta": "Meta",
    "meta-llama": "Meta",
    "microsoft": "Microsoft",
    "minimax": "MiniMax",
    "mistralai": "Mistral",
    "mlx-community": "MLX Community",
    "moonshotai": "MoonshotAI",
    "nomic-ai": "Nomic AI",
    "nousresearch": "Nous Research",
    "nvidia": "NVIDIA",
    "openai": "OpenAI",
    "openrouter": "OpenRouter",
    "perplexity": "Perplexity",
    "quantfactory": "QuantFactory",
    "qwen": "Qwen",
    "sentence-transformers": "Sentence Transformers",
    "stepfun": "StepFun",
    "thenlper": "Thenlper",
    "voyageai": "Voyage AI",
    "x-ai": "xAI",
    "xiaomi": "Xiaomi",
    "z-ai": "Z.ai",
}

# The capability names chat rows carry (the `supports` filter takes the same names).
CAPABILITIES = ("reasoning", "structured_outputs", "tools", "vision", "web_search")


class InvalidDocument(ValueError):
    """The upstream answer as a whole is not of the expected shape."""


class BadRow(ValueError):
    """One upstream row cannot be used; it is skipped and counted."""


@dataclasses.dataclass(frozen=True)
class Normalised:
    """Rows ready to serve, and how many upstream rows had to be skipped."""

    rows: list[dict]
    skipped: int = 0


def maker_name(author: str) -> str:
    """The display name of a model maker from the author part of an id (`~` alias ids too)."""
    author = author.lstrip("~")
    known = PROVIDER_NAMES.get(author.lower())
    return known or author.replace("-", " ").replace("_", " ").title()


def cost_per_million(prompt_price: Any) -> str | None:
    """USD per token as a string → "$0.02" per million; None when unknown or variable."""
    amount = decimal(prompt_price)
    if amount is None:
        return None
    per_million = (amount * 1_000_000).normalize()
    if per_million.as_tuple().exponent > -2:  # type: ignore[operator]
        per_million = per_million.quantize(Decimal("0.01"))
    return f"${per_million:f}"


def is_zero(value: Any) -> bool:
    """Whether a price string is exactly zero."""
    amount = decimal(value)
    return amount is not None and amount == 0


def iso_date(value: Any) -> str | None:
    """A YYYY-MM-DD string, or None."""
    if isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-" and value.replace("-", "").isdigit():
        return value
    return None


def decimal(value: Any) -> Decimal | None:
    """A non-negative finite price string as a Decimal, else None."""
    if not isinstance(value, str):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def positive_int(value: Any) -> int | None:
    """An int above zero (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def text(value: Any) -> str:
    """A string value, or "" for anything else."""
    return value if isinstance(value, str) else ""


def deduplicated(rows: list[dict], skipped: int) -> Normalised:
    """Rows with unique ids (later duplicates skipped), sorted by provider, name and id."""
    unique: dict[str, dict] = {}
    for row in rows:
        if row["id"] in unique:
            skipped += 1
            continue
        unique[row["id"]] = row
    ordered = sorted(
        # A null provider (a local server's model of unknown maker) sorts first, not as "None".
        unique.values(),
        key=lambda row: (str(row.get("provider") or "").casefold(), row["name"].casefold(), row["id"]),
    )
    return Normalised(ordered, skipped)


def released_at(value: Any) -> str | None:
    """The upstream's release date of a model (Unix seconds, or an RFC 3339 string) as the
    `released_at` of a row, RFC 3339 in UTC (2026-08-14T09:30:00Z); None when it has none."""
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str) and "T" in value:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                return None  # a time without its zone could be any of 26 hours
            moment = moment.astimezone(UTC)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def embedding_facts(known: EmbeddingModel | None) -> dict:
    """The `model_key` of an embedding row (None when the weights are not known) and its
    `supported_dimensions` where the maker documents reduced sizes (left out otherwise)."""
    if known is None:
        return {"model_key": None}
    facts: dict[str, Any] = {"model_key": known.key}
    if known.supported_dimensions:
        facts["supported_dimensions"] = list(known.supported_dimensions)
    return facts
