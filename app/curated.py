"""The curated YAML lists: loaded and validated once, at start-up."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from .sources.rows import CAPABILITIES

LLM_FILE = "openrouter_models.yaml"
EMBEDDING_FILE = "openrouter_embeddings.yaml"

_COST_PATTERN = re.compile(r"^\$\d+(\.\d+)?$")


class CuratedDataError(ValueError):
    """A curated file or one of its entries is malformed; start-up must stop."""


@dataclasses.dataclass(frozen=True)
class CuratedCatalog:
    """The curated rows, already in the shape the API serves."""

    llms: tuple[dict, ...]
    embeddings: tuple[dict, ...]

    def embedding_dimensions(self) -> dict[str, int | None]:
        """Known output dimensions by model id, for live embedding rows."""
        return {row["id"]: row["dimensions"] for row in self.embeddings}


def load_curated(directory: Path) -> CuratedCatalog:
    """Read both files and check every entry; raise CuratedDataError naming file and entry."""
    return CuratedCatalog(
        llms=tuple(_load(directory / LLM_FILE, _check_llm)),
        embeddings=tuple(_load(directory / EMBEDDING_FILE, _check_embedding)),
    )


def read_models_list(path: Path) -> list:
    """The non-empty 'models' list of a curated YAML file; CuratedDataError naming the file otherwise."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CuratedDataError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise CuratedDataError(f"{path}: not valid YAML ({_yaml_problem(exc)})") from None
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        raise CuratedDataError(f"{path}: must be a mapping with a 'models' list")
    if not document["models"]:
        raise CuratedDataError(f"{path}: the 'models' list is empty")
    return document["models"]


def _load(path: Path, check_entry) -> list[dict]:
    rows, seen = [], set()
    for index, entry in enumerate(read_models_list(path), start=1):
        label = _entry_label(index, entry)
        try:
            row = check_entry(entry)
        except _EntryError as exc:
            raise CuratedDataError(f"{path}: {label}: {exc}") from None
        if row["id"] in seen:
            raise CuratedDataError(f"{path}: {label}: duplicate id")
        seen.add(row["id"])
        rows.append(row)
    return rows


class _EntryError(ValueError):
    pass


def _entry_label(index: int, entry: Any) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("id"), str):
        return f"entry {index} ({entry['id']})"
    return f"entry {index}"


def _check_keys(entry: Any, required: set[str], optional: frozenset[str] | set[str] = frozenset()) -> dict:
    if not isinstance(entry, dict):
        raise _EntryError("must be a mapping")
    missing = sorted(required - entry.keys())
    if missing:
        raise _EntryError(f"missing {', '.join(missing)}")
    unknown = sorted(entry.keys() - required - optional)
    if unknown:
        raise _EntryError(f"unknown field {', '.join(map(str, unknown))}")
    return entry


def _text(entry: dict, key: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise _EntryError(f"'{key}' must be a non-empty string, got {value!r}")
    return value


def _model_id(entry: dict) -> str:
    value = _text(entry, "id")
    author, _, slug = value.partition("/")
    if not author or not slug or " " in value:
        raise _EntryError(f"'id' must look like author/model, got {value!r}")
    return value


def _count(entry: dict, key: str, nullable: bool = False) -> int | None:
    value = entry[key]
    if value is None and nullable:
        return None
    # bool is an int subclass; "context: yes" is a typo, not 1.
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise _EntryError(f"'{key}' must be a positive integer, got {value!r}")
    return value


def _price(pricing: dict, key: str) -> str:
    value = pricing.get(key)
    # Prices stay strings, as OpenRouter sends them, so that no float rounding creeps in.
    if not isinstance(value, str):
        raise _EntryError(f"'pricing.{key}' must be a quoted decimal string, got {value!r}")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _EntryError(f"'pricing.{key}' is not a decimal: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise _EntryError(f"'pricing.{key}' must be zero or more, got {value!r}")
    return value


def _check_llm(entry: Any) -> dict:
    entry = _check_keys(
        entry, {"id", "name", "provider", "context", "source"}, {"pricing", "capabilities", "expires_on"}
    )
    _text(entry, "source")
    row: dict[str, Any] = {
        "id": _model_id(entry),
        "name": _text(entry, "name"),
        "provider": _text(entry, "provider"),
        "context": _count(entry, "context"),
    }
    if "pricing" in entry:
        pricing = entry["pricing"]
        if not isinstance(pricing, dict) or set(pricing) != {"prompt", "completion"}:
            raise _EntryError("'pricing' must be a mapping of exactly prompt and completion")
        row["pricing"] = {"prompt": _price(pricing, "prompt"), "completion": _price(pricing, "completion")}
    if "capabilities" in entry:
        row["capabilities"] = _capabilities(entry["capabilities"])
    prices: dict[str, str] = row.get("pricing", {})
    row["is_free"] = bool(prices) and all(Decimal(value) == 0 for value in prices.values())
    if "expires_on" in entry:
        row["expires_on"] = _day(entry["expires_on"])
    return row


def _capabilities(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _EntryError(f"'capabilities' must be a list of names, got {value!r}")
    unknown = sorted(set(value) - set(CAPABILITIES))
    if unknown:
        raise _EntryError(f"unknown capability {', '.join(unknown)} (known: {', '.join(CAPABILITIES)})")
    return sorted(set(value))


def _day(value: Any) -> str:
    # YAML reads an unquoted 2026-12-31 as a date; either form is fine.
    text = value.isoformat() if hasattr(value, "isoformat") else value
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise _EntryError(f"'expires_on' must be a YYYY-MM-DD date, got {value!r}")
    return text


def _check_embedding(entry: Any) -> dict:
    entry = _check_keys(entry, {"id", "name", "provider", "dimensions", "context", "cost_per_million", "source"})
    _text(entry, "source")
    cost = _text(entry, "cost_per_million")
    if not _COST_PATTERN.match(cost):
        raise _EntryError(f"'cost_per_million' must look like \"$0.02\", got {cost!r}")
    return {
        "id": _model_id(entry),
        "name": _text(entry, "name"),
        "provider": _text(entry, "provider"),
        "dimensions": _count(entry, "dimensions", nullable=True),
        "context": _count(entry, "context"),
        "cost_per_million": cost,
        "is_free": Decimal(cost[1:]) == 0,
    }


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return problem
