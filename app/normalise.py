"""Normalisers: pure functions from an upstream JSON document to the rows the API serves.

Each raises InvalidDocument when the document as a whole has the wrong shape, and skips (and
counts) single rows it cannot use, so that one odd model never costs the whole catalog.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

# Display names for the author part of OpenRouter ids; anything else is title-cased.
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
    "meta": "Meta",
    "meta-llama": "Meta",
    "microsoft": "Microsoft",
    "minimax": "MiniMax",
    "mistralai": "Mistral",
    "moonshotai": "MoonshotAI",
    "nousresearch": "Nous Research",
    "nvidia": "NVIDIA",
    "openai": "OpenAI",
    "openrouter": "OpenRouter",
    "perplexity": "Perplexity",
    "qwen": "Qwen",
    "sentence-transformers": "Sentence Transformers",
    "stepfun": "StepFun",
    "thenlper": "Thenlper",
    "voyageai": "Voyage AI",
    "x-ai": "xAI",
    "xiaomi": "Xiaomi",
    "z-ai": "Z.ai",
}

# Ollama models that only embed, recognised by name or family when the server does not say.
EMBEDDING_NAME_PREFIXES = (
    "nomic-embed-text",
    "mxbai-embed",
    "all-minilm",
    "bge-",
    "snowflake-arctic-embed",
    "granite-embedding",
)
EMBEDDING_FAMILIES = frozenset({"bert", "nomic-bert", "nomic-bert-moe"})

# The capability names rows carry, and what in an upstream record shows each of them.
CAPABILITIES = ("reasoning", "structured_outputs", "tools", "vision", "web_search")
CAPABILITY_PARAMETERS = {
    "reasoning": {"reasoning", "include_reasoning"},
    "structured_outputs": {"structured_outputs"},
    "tools": {"tools"},
    "web_search": {"web_search_options"},
}
# Ollama's own capability names, in the same vocabulary (others, such as completion, are implied).
OLLAMA_CAPABILITIES = {"tools": "tools", "vision": "vision", "thinking": "reasoning"}


class InvalidDocument(ValueError):
    """The upstream answer as a whole is not of the expected shape."""


@dataclasses.dataclass(frozen=True)
class Normalised:
    """Rows ready to serve, and how many upstream rows had to be skipped."""

    rows: list[dict]
    skipped: int = 0


@dataclasses.dataclass(frozen=True)
class OllamaModelInfo:
    """What /api/show tells about one model, reduced to what the catalog uses."""

    capabilities: tuple[str, ...] | None = None
    context_length: int | None = None
    embedding_length: int | None = None
    has_pooling: bool = False


class _BadRow(ValueError):
    pass


def provider_name(model_id: str) -> str:
    """The display name of the author part of an OpenRouter id (`~` alias ids too)."""
    author = model_id.lstrip("~").split("/", 1)[0]
    known = PROVIDER_NAMES.get(author.lower())
    return known or author.replace("-", " ").replace("_", " ").title()


def display_name(name: str) -> str:
    """OpenRouter's name without its "Provider: " prefix."""
    _, colon, rest = name.partition(": ")
    return rest.strip() if colon and rest.strip() else name.strip()


def cost_per_million(prompt_price: Any) -> str | None:
    """USD per token as a string → "$0.02" per million; None when unknown or variable."""
    amount = _decimal(prompt_price)
    if amount is None:
        return None
    per_million = (amount * 1_000_000).normalize()
    if per_million.as_tuple().exponent > -2:
        per_million = per_million.quantize(Decimal("0.01"))
    return f"${per_million:f}"


def llm_capabilities(record: dict) -> list[str]:
    """Sorted capability names from supported_parameters and architecture.input_modalities."""
    parameters = record.get("supported_parameters")
    parameters = {p for p in parameters if isinstance(p, str)} if isinstance(parameters, list) else set()
    found = {name for name, shown_by in CAPABILITY_PARAMETERS.items() if parameters & shown_by}
    architecture = record.get("architecture")
    inputs = architecture.get("input_modalities") if isinstance(architecture, dict) else None
    if isinstance(inputs, list) and "image" in inputs:
        found.add("vision")
    return sorted(found)


def normalise_openrouter_models(document: Any) -> Normalised:
    """OpenRouter /models → LLM rows: text-output models, prefix-free names, known prices."""
    rows, skipped = [], 0
    for record in _openrouter_records(document):
        try:
            if not _outputs(record, "text"):
                continue
            row = _base_row(record)
        except _BadRow:
            skipped += 1
            continue
        pricing = _pricing(record)
        if pricing is not None:
            row["pricing"] = pricing
        row["capabilities"] = llm_capabilities(record)
        row["is_free"] = pricing is not None and _is_zero(pricing["prompt"]) and _is_zero(pricing["completion"])
        expires_on = _date(record.get("expiration_date"))
        if expires_on:
            row["expires_on"] = expires_on
        rows.append(row)
    return _deduplicated(rows, skipped)


def normalise_openrouter_embeddings(
    document: Any, dimensions: Mapping[str, int | None]
) -> Normalised:
    """OpenRouter /embeddings/models → embedding rows, dimensions from the curated data."""
    rows, skipped = [], 0
    for record in _openrouter_records(document):
        try:
            if not _outputs(record, "embeddings"):
                continue
            row = _base_row(record)
        except _BadRow:
            skipped += 1
            continue
        pricing = record.get("pricing")
        prompt = pricing.get("prompt") if isinstance(pricing, dict) else None
        rows.append(
            {
                "id": row["id"],
                "name": row["name"],
                "provider": row["provider"],
                "dimensions": _known_dimensions(row["id"], dimensions),
                "context": row["context"],
                "cost_per_million": cost_per_million(prompt),
                "is_free": _is_zero(prompt),
            }
        )
    return _deduplicated(rows, skipped)


def ollama_model_info(document: Any) -> OllamaModelInfo:
    """Reduce an /api/show answer to capabilities, context and embedding size."""
    if not isinstance(document, dict):
        raise InvalidDocument("an /api/show answer must be a JSON object")
    capabilities = document.get("capabilities")
    model_info = document.get("model_info")
    model_info = model_info if isinstance(model_info, dict) else {}
    # Build keys from the architecture: suffix matching would also hit keys such as
    # "qwen25vl.vision.embedding_length" (the vision tower), which are not the model's.
    arch = model_info.get("general.architecture")
    context = embedding = None
    has_pooling = False
    if isinstance(arch, str) and arch:
        context = _positive_int(model_info.get(f"{arch}.context_length"))
        embedding = _positive_int(model_info.get(f"{arch}.embedding_length"))
        has_pooling = f"{arch}.pooling_type" in model_info
    return OllamaModelInfo(
        capabilities=tuple(str(c) for c in capabilities) if isinstance(capabilities, list) else None,
        context_length=context,
        embedding_length=embedding,
        has_pooling=has_pooling,
    )


def ollama_entries(document: Any) -> list:
    """The model entries of an /api/tags answer; an empty list is a valid answer."""
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        raise InvalidDocument('expected a JSON object with a "models" list')
    return document["models"]


def needs_ollama_show(entry: Any) -> bool:
    """Whether /api/show must be asked what this entry can do (old servers' tags do not say)."""
    return isinstance(entry, dict) and not isinstance(entry.get("capabilities"), list)


def is_embedding_only(entry: dict, info: OllamaModelInfo | None = None) -> bool:
    """Whether an Ollama model only embeds, by capabilities first, then name and family."""
    capabilities = entry.get("capabilities")
    if not isinstance(capabilities, list) and info is not None:
        capabilities = info.capabilities
    if isinstance(capabilities, (list, tuple)):
        return "embedding" in capabilities and "completion" not in capabilities
    if info is not None and info.has_pooling:
        return True
    name = str(entry.get("name") or entry.get("model") or "").lower()
    base = name.split(":", 1)[0].rsplit("/", 1)[-1]
    if base.startswith(EMBEDDING_NAME_PREFIXES):
        return True
    details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
    families = {details.get("family")} | set(details.get("families") or ())
    return bool(EMBEDDING_FAMILIES & {str(f).lower() for f in families if f})


def normalise_ollama_tags(
    document: Any, infos: Mapping[str, OllamaModelInfo] | None = None
) -> Normalised:
    """Ollama /api/tags → inference-model rows; `infos` are /api/show results by model name."""
    return _ollama_rows(document, infos or {}, embedding=False)


def normalise_ollama_embedding_tags(
    document: Any, infos: Mapping[str, OllamaModelInfo] | None = None
) -> Normalised:
    """Ollama /api/tags → the embedding-only models that the inference list leaves out."""
    return _ollama_rows(document, infos or {}, embedding=True)


def _ollama_rows(document: Any, infos: Mapping[str, OllamaModelInfo], embedding: bool) -> Normalised:
    rows, skipped = [], 0
    for entry in ollama_entries(document):
        try:
            row = _ollama_row(entry)
        except _BadRow:
            skipped += 1
            continue
        info = infos.get(row["name"])
        if is_embedding_only(entry, info) != embedding:
            continue
        details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
        context = info.context_length if info and info.context_length else _positive_int(details.get("context_length"))
        if embedding:
            size = info.embedding_length if info and info.embedding_length else _positive_int(details.get("embedding_length"))
            row = {
                "id": row["id"], "name": row["name"], "family": row["family"],
                "parameter_size": row["parameter_size"], "quantization": row["quantization"],
                "size_mb": row["size_mb"], "dimensions": size, "context": context,
            }  # fmt: skip
        else:
            capabilities = _ollama_capabilities(entry, info)
            if capabilities is not None:
                row["capabilities"] = capabilities
            if context:
                row["context"] = context
        rows.append(row)
    rows.sort(key=lambda row: (row["name"].casefold(), row["name"]))
    return Normalised(rows, skipped)


def _ollama_capabilities(entry: dict, info: OllamaModelInfo | None) -> list[str] | None:
    """The server's capabilities in the LLM rows' vocabulary; None when it does not say."""
    reported = entry.get("capabilities")
    if not isinstance(reported, list):
        reported = list(info.capabilities) if info and info.capabilities is not None else None
    if reported is None:
        return None
    return sorted({OLLAMA_CAPABILITIES[c] for c in reported if c in OLLAMA_CAPABILITIES})


def _ollama_row(entry: Any) -> dict:
    if not isinstance(entry, dict):
        raise _BadRow
    name = entry.get("name") or entry.get("model")
    size = entry.get("size")
    if not isinstance(name, str) or not name.strip():
        raise _BadRow
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _BadRow
    details = entry.get("details")
    details = details if isinstance(details, dict) else {}
    return {
        "id": name,
        "name": name,
        "parameter_size": _text(details.get("parameter_size")),
        "quantization": _text(details.get("quantization_level")),
        "family": _text(details.get("family")),
        # Decimal megabytes, rounded half up, as Ollama itself prints sizes.
        "size_mb": (size + 500_000) // 1_000_000,
    }


def _openrouter_records(document: Any) -> list:
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise InvalidDocument('expected a JSON object with a "data" list')
    return document["data"]


def _base_row(record: Any) -> dict:
    if not isinstance(record, dict):
        raise _BadRow
    model_id, name = record.get("id"), record.get("name")
    if not isinstance(model_id, str) or "/" not in model_id or not isinstance(name, str):
        raise _BadRow
    context = _positive_int(record.get("context_length"))
    if context is None:
        top = record.get("top_provider")
        context = _positive_int(top.get("context_length")) if isinstance(top, dict) else None
    if context is None:
        raise _BadRow
    return {
        "id": model_id,
        "name": display_name(name) or model_id,
        "provider": provider_name(model_id),
        "context": context,
    }


def _outputs(record: Any, modality: str) -> bool:
    architecture = record.get("architecture") if isinstance(record, dict) else None
    if not isinstance(architecture, dict):
        return True  # Each endpoint lists its own kind by default.
    outputs = architecture.get("output_modalities")
    if isinstance(outputs, list):
        return modality in outputs
    combined = architecture.get("modality")
    if isinstance(combined, str) and "->" in combined:
        return modality in combined.split("->", 1)[1].split("+")
    return True


def _pricing(record: dict) -> dict | None:
    pricing = record.get("pricing")
    if not isinstance(pricing, dict):
        return None
    prompt, completion = pricing.get("prompt"), pricing.get("completion")
    # Variable-priced routers say "-1": the price is unknown, not negative.
    if _decimal(prompt) is None or _decimal(completion) is None:
        return None
    return {"prompt": prompt, "completion": completion}


def _is_zero(value: Any) -> bool:
    amount = _decimal(value)
    return amount is not None and amount == 0


def _date(value: Any) -> str | None:
    """A YYYY-MM-DD string, or None."""
    if isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-" and value.replace("-", "").isdigit():
        return value
    return None


def _decimal(value: Any) -> Decimal | None:
    if not isinstance(value, str):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount >= 0 else None


def _known_dimensions(model_id: str, dimensions: Mapping[str, int | None]) -> int | None:
    if model_id in dimensions:
        return dimensions[model_id]
    # ":batch" or ":free" is the same model served another way: same vectors.
    return dimensions.get(model_id.split(":", 1)[0])


def _deduplicated(rows: list[dict], skipped: int) -> Normalised:
    unique: dict[str, dict] = {}
    for row in rows:
        if row["id"] in unique:
            skipped += 1
            continue
        unique[row["id"]] = row
    ordered = sorted(
        unique.values(), key=lambda row: (row["provider"].casefold(), row["name"].casefold(), row["id"])
    )
    return Normalised(ordered, skipped)


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
