"""vLLM: the models one vLLM server serves, from GET {base_url}/models.

Beyond the OpenAI fields each entry has `max_model_len` (the context the server accepts),
`root` (the Hugging Face repo or the local path the weights came from) and `parent` (set on a
LoRA adapter: the base model's id; adapters have no max_model_len of their own). owned_by is
always "vllm", so the maker comes from an "org/model" id or root. vLLM does not say whether a
model embeds: the sourced table (by id, then root) decides, then the id patterns of
openai_compatible.py.
"""

from __future__ import annotations

from typing import Any

from config import Settings

from .base import Source, SourceContext
from .openai_compatible import (
    ListedModel,
    LocalServerSource,
    maker_from_id,
    openai_entries,
    read_openai_model,
)
from .rows import BadRow, text


def read_vllm(document: Any) -> tuple[list[ListedModel], int]:
    """The models of a vLLM /v1/models answer, and how many entries were skipped."""
    models, skipped = [], 0
    parents: dict[str, str] = {}
    for entry in openai_entries(document):
        try:
            model = read_openai_model(entry)
        except BadRow:
            skipped += 1
            continue
        root, parent = text(entry.get("root")).strip(), text(entry.get("parent")).strip()
        model.aliases = tuple(name for name in (root, parent) if name and name != model.id)
        if model.provider is None:
            model.provider = maker_from_id(root) or maker_from_id(parent)
        if parent:
            parents[model.id] = parent
        models.append(model)
    contexts = {model.id: model.context for model in models}
    for model in models:
        # An adapter runs within its base model's context.
        if model.context is None and model.id in parents:
            model.context = contexts.get(parents[model.id])
    return models, skipped


class VLLMSource(LocalServerSource):
    """One vLLM server: its served models and adapters."""

    upstream = "vLLM"

    def list_models(self) -> tuple[list[ListedModel], int]:
        return read_vllm(self.get(f"{self.base_url}/models"))


def sources(settings: Settings, context: SourceContext) -> list[Source]:
    """One source per vllm server of SOURCES_FILE."""
    return [VLLMSource(server, settings, context) for server in settings.local_servers if server.kind == "vllm"]
