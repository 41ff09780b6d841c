"""llama.cpp's llama-server: GET {base_url}/models, and GET /props of a one-model server.

One model (`llama-server -m ...`): /v1/models lists it with `meta` {vocab_type, n_vocab,
n_ctx_train, n_embd, n_params, size; n_ctx on newer builds}, null while the model loads; /props
says the context each request gets (default_generation_settings.n_ctx), modalities.vision,
chat_template_caps.supports_tool_calls and is_sleeping. Router mode (`llama-server` without a
model) answers /models and /v1/models alike: every model with `status` {value loaded, loading,
unloaded, sleeping...; args, the command line it runs with; preset, its INI text}, and on newer
builds `architecture` {input_modalities, output_modalities}; a model from the Hugging Face cache
is named `<user>/<model>:<quant>`, as `-hf` takes it. /props is not asked there: without
?model= it describes the router, and with it the router may load the model.

llama.cpp says an embedding model is one by: `--embedding(s)` in a router model's args or preset
(`--rerank(ing)` makes a reranker, which is neither list); an output_modalities without "text"
(a decision model) cannot chat; a WordPiece vocabulary (meta.vocab_type 3: BERT-family encoders,
which only embed) makes an embedding model. Otherwise the sourced table and the id patterns of
openai_compatible.py decide. An embedding model's dimensions are meta.n_embd.
"""

from __future__ import annotations

import logging
from typing import Any

from config import Settings

from .base import Source, SourceContext
from .http import UpstreamError, UpstreamKeyRejected
from .openai_compatible import (
    EMBEDDING,
    OTHER,
    ListedModel,
    LocalServerSource,
    openai_entries,
    read_openai_model,
)
from .rows import BadRow, positive_int

log = logging.getLogger(__name__)

# llama_vocab_type 3, LLAMA_VOCAB_TYPE_WPM: "BERT tokenizer based on WordPiece" (llama.h).
WORDPIECE_VOCAB = 3
# Options of a router model's command line or preset, without their leading dashes.
EMBEDDING_OPTIONS = frozenset({"embedding", "embeddings"})
RERANK_OPTIONS = frozenset({"rerank", "reranking"})
# -c / --ctx-size; the README's router examples also write "-ctx".
CONTEXT_OPTIONS = frozenset({"c", "ctx-size", "ctx"})
_TRUE = frozenset({"", "1", "true", "yes", "on"})


def read_llamacpp(document: Any, props: dict | None = None) -> tuple[list[ListedModel], int]:
    """The models of a /v1/models (or router /models) answer; `props` is /props of a one-model server."""
    entries = openai_entries(document)
    props = props if is_single_model(document) else None
    models, skipped = [], 0
    for entry in entries:
        try:
            models.append(_model(entry, props))
        except BadRow:
            skipped += 1
    return models, skipped


def is_single_model(document: Any) -> bool:
    """Whether the answer is a one-model server's (not a router's): /props then describes that model."""
    entries = document.get("data") if isinstance(document, dict) else None
    return (
        isinstance(entries, list) and len(entries) == 1
        and isinstance(entries[0], dict) and "status" not in entries[0]
    )  # fmt: skip


def _model(entry: Any, props: dict | None) -> ListedModel:
    model = read_openai_model(entry)
    repo, colon, tag = model.id.rpartition(":")
    if colon and "/" in repo and tag and "/" not in tag:
        # `-hf <user>/<model>[:quant]`, as the router names cached models: the repo names the
        # weights (for the sourced table), the tag their quantization.
        model.aliases, model.quantization = (repo,), tag
    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else None
    status = entry.get("status") if isinstance(entry.get("status"), dict) else None
    options = _router_options(status) if status is not None else {}
    architecture = entry.get("architecture") if isinstance(entry.get("architecture"), dict) else {}
    inputs = _strings(architecture.get("input_modalities"))
    outputs = _strings(architecture.get("output_modalities"))
    props = props or {}

    if EMBEDDING_OPTIONS & options.keys():
        model.role = EMBEDDING
    elif RERANK_OPTIONS & options.keys() or (outputs is not None and "text" not in outputs):
        model.role = OTHER  # a reranker, or a decision model
    elif meta is not None and meta.get("vocab_type") == WORDPIECE_VOCAB:
        model.role = EMBEDDING
    model.dimensions = positive_int(meta.get("n_embd")) if meta else None

    settings = props.get("default_generation_settings")
    props_context = positive_int(settings.get("n_ctx")) if isinstance(settings, dict) else None
    model.context = (
        (positive_int(meta.get("n_ctx")) if meta else None)
        or props_context
        or _context_option(options)
        or (positive_int(meta.get("n_ctx_train")) if meta else None)
    )

    if status is not None:
        model.loaded = status.get("value") == "loaded"
    else:
        # meta is null while the model loads; a sleeping server has unloaded it until the next request.
        model.loaded = meta is not None and props.get("is_sleeping") is not True

    found = set()
    modalities = props.get("modalities")
    if (inputs is not None and "image" in inputs) or (
        isinstance(modalities, dict) and modalities.get("vision") is True
    ):
        found.add("vision")
    caps = props.get("chat_template_caps")
    if isinstance(caps, dict) and caps.get("supports_tool_calls") is True:
        found.add("tools")
    model.capabilities = tuple(found)
    return model


def _strings(value: Any) -> set[str] | None:
    return {item for item in value if isinstance(item, str)} if isinstance(value, list) else None


def _router_options(status: dict) -> dict[str, str]:
    """The options a router model runs with, from its command line and its preset's INI text."""
    options: dict[str, str] = {}
    args = status.get("args")
    if isinstance(args, list):
        words = [arg for arg in args if isinstance(arg, str)]
        for index, word in enumerate(words):
            if not word.startswith("-"):
                continue
            name, equals, value = word.lstrip("-").partition("=")
            if not equals and index + 1 < len(words) and not words[index + 1].startswith("-"):
                value = words[index + 1]
            options[name] = value
    preset = status.get("preset")
    if isinstance(preset, str):
        for line in preset.splitlines():
            name, equals, value = line.partition("=")
            name = name.strip().lstrip("-")
            if equals and name and not name.startswith((";", "#", "[")):
                value = value.strip()
                if name in EMBEDDING_OPTIONS | RERANK_OPTIONS and value.lower() not in _TRUE:
                    continue
                options.setdefault(name, value)
    return options


def _context_option(options: dict[str, str]) -> int | None:
    for name in CONTEXT_OPTIONS:
        value = options.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


class LlamaCppSource(LocalServerSource):
    """One llama-server, with one model or in router mode."""

    upstream = "llama.cpp"
    # /v1/models, then /props of a one-model server.
    calls_per_poll = 2

    def list_models(self) -> tuple[list[ListedModel], int]:
        document = self.get(f"{self.base_url}/models")
        props = self._props() if is_single_model(document) else None
        return read_llamacpp(document, props)

    def _props(self) -> dict | None:
        """GET /props; without it the list still stands (n_ctx_train for the context)."""
        try:
            document = self.get(f"{self.native_root}/props")
        except UpstreamKeyRejected:
            raise  # /v1/models takes no key, /props does: the key in SOURCES_FILE is wrong
        except UpstreamError as exc:
            log.info("no /props from %s: %s", self.label, exc)
            return None
        return document if isinstance(document, dict) else None


def sources(settings: Settings, context: SourceContext) -> list[Source]:
    """One source per llamacpp server of SOURCES_FILE."""
    return [LlamaCppSource(server, settings, context) for server in settings.local_servers if server.kind == "llamacpp"]
