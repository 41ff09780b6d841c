"""LM Studio: every downloaded model, loaded or not, from its native REST API.

LM Studio 0.4 serves GET /api/v1/models ({"models": [...]}: key, display_name, type llm or
embedding, publisher, quantization {name}, max_context_length, loaded_instances[{config
{context_length}}], capabilities {vision, trained_for_tool_use, reasoning}). 0.3.6 and later
serve GET /api/v0/models ({"data": [...]}: id, type llm, vlm or embeddings, publisher,
quantization, state loaded or not-loaded, max_context_length, loaded_context_length,
capabilities ["tool_use"] on newer versions). The native root is base_url without its /v1: v1 is
asked first, v0 when v1 answers 404, then the OpenAI-compatible {base_url}/models (ids only).
Each answer is read by its shape, so an OpenAI-style list on /api/v1/models (FastFlowLM answers
one there) is read as what it is.
"""

from __future__ import annotations

import re
from typing import Any

from config import Settings

from .base import Source, SourceContext
from .http import UpstreamNotFound
from .openai_compatible import (
    CHAT,
    EMBEDDING,
    OTHER,
    ListedModel,
    LocalServerSource,
    maker_from_id,
    read_openai_model,
)
from .rows import BadRow, InvalidDocument, maker_name, positive_int, text

# v1 `type` (llm, embedding) and v0 `type` (llm, vlm, embeddings); other types cannot chat.
NATIVE_ROLES = {"llm": CHAT, "vlm": CHAT, "embedding": EMBEDDING, "embeddings": EMBEDDING}
# A second loaded instance of a model is listed as "<id>:2"; requests for <id> already reach it.
_INSTANCE_SUFFIX = re.compile(r"^(?P<base>.+):(?P<number>\d+)$")


def read_lmstudio(document: Any) -> tuple[list[ListedModel], int]:
    """An answer of /api/v1/models, /api/v0/models or /v1/models, told apart by its shape."""
    if isinstance(document, dict) and isinstance(document.get("models"), list):
        return _read_entries(document["models"], _v1_model)
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        entries = document["data"]
        models, skipped = _read_entries(entries, _v0_or_openai_model)
        return _without_second_instances(models), skipped
    raise InvalidDocument('expected a JSON object with a "models" or a "data" list')


def _read_entries(entries: list, read) -> tuple[list[ListedModel], int]:
    models, skipped = [], 0
    for entry in entries:
        try:
            models.append(read(entry))
        except BadRow:
            skipped += 1
    return models, skipped


def _v1_model(entry: Any) -> ListedModel:
    """One model of /api/v1/models."""
    if not isinstance(entry, dict):
        raise BadRow
    key = entry.get("key")
    if not isinstance(key, str) or not key.strip():
        raise BadRow
    instances = entry.get("loaded_instances")
    instances = [item for item in instances if isinstance(item, dict)] if isinstance(instances, list) else None
    # The smallest loaded context is what any request to this key can count on.
    loaded_contexts = [size for size in map(_instance_context, instances or ()) if size]
    capabilities = entry["capabilities"] if isinstance(entry.get("capabilities"), dict) else {}
    found = set()
    if capabilities.get("vision") is True:
        found.add("vision")
    if capabilities.get("trained_for_tool_use") is True:
        found.add("tools")
    if isinstance(capabilities.get("reasoning"), dict):
        found.add("reasoning")
    return ListedModel(
        id=key,
        name=text(entry.get("display_name")).strip() or key,
        provider=_publisher(entry, key),
        role=_native_role(entry.get("type")),
        context=min(loaded_contexts) if loaded_contexts else positive_int(entry.get("max_context_length")),
        capabilities=tuple(found),
        loaded=bool(instances) if instances is not None else None,
        quantization=_quantization_name(entry.get("quantization")),
    )


def _instance_context(instance: dict) -> int | None:
    config = instance.get("config")
    return positive_int(config.get("context_length")) if isinstance(config, dict) else None


def _quantization_name(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("name")
    return text(value).strip() or None


def _v0_or_openai_model(entry: Any) -> ListedModel:
    """One model of /api/v0/models (it has a `type`), or of an OpenAI-style list (it has not)."""
    model = read_openai_model(entry)
    if "type" not in entry and "state" not in entry:
        return model  # /v1/models, or another server's list: ids, owned_by at most
    model.role = _native_role(entry.get("type"))
    model.provider = _publisher(entry, model.id)
    state = entry.get("state")
    if state in ("loaded", "not-loaded"):
        model.loaded = state == "loaded"
    loaded_context = positive_int(entry.get("loaded_context_length"))
    maximum = positive_int(entry.get("max_context_length"))
    model.context = loaded_context if model.loaded and loaded_context else maximum
    found = set()
    if entry.get("type") == "vlm":
        found.add("vision")
    reported = entry.get("capabilities")
    if isinstance(reported, list) and "tool_use" in reported:
        found.add("tools")
    model.capabilities = tuple(found)
    model.quantization = _quantization_name(entry.get("quantization"))
    return model


def _native_role(kind: Any) -> str | None:
    if not isinstance(kind, str):
        return None
    return NATIVE_ROLES.get(kind.lower(), OTHER)


def _publisher(entry: dict, model_id: str) -> str | None:
    publisher = text(entry.get("publisher")).strip()
    return maker_name(publisher) if publisher else maker_from_id(model_id)


def _without_second_instances(models: list[ListedModel]) -> list[ListedModel]:
    ids = {model.id for model in models}
    kept = []
    for model in models:
        match = _INSTANCE_SUFFIX.match(model.id)
        if match and match["base"] in ids:
            continue
        kept.append(model)
    return kept


class LMStudioSource(LocalServerSource):
    """One LM Studio server: its native list, downloaded and loaded models alike."""

    upstream = "LM Studio"
    # v1, then v0 on a 404, then /v1/models on a second 404.
    calls_per_poll = 3

    def list_models(self) -> tuple[list[ListedModel], int]:
        root = self.native_root
        try:
            document = self.get(f"{root}/api/v1/models")
        except UpstreamNotFound:
            try:
                document = self.get(f"{root}/api/v0/models")
            except UpstreamNotFound:
                document = self.get(f"{self.base_url}/models")
        return read_lmstudio(document)


def sources(settings: Settings, context: SourceContext) -> list[Source]:
    """One source per lmstudio server of SOURCES_FILE."""
    return [LMStudioSource(server, settings, context) for server in settings.local_servers if server.kind == "lmstudio"]
