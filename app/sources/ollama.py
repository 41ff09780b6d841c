"""Ollama: the models pulled into a local server (GET /api/tags, POST /api/show).

One poll publishes two lists: the inference models and the embedding-only ones. A failed poll
replaces both with `ollama_unreachable`: what is pulled there may have changed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from config import Settings

from ..status import RefreshStatus
from .base import Fetched, Source, SourceContext, chat_catalog, embedding_catalog
from .http import HttpClient, UpstreamError, display_host
from .rows import BadRow, InvalidDocument, Normalised, embedding_facts, positive_int, text

if TYPE_CHECKING:
    from ..embedding_models import EmbeddingModels

log = logging.getLogger(__name__)

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

# Ollama's own capability names, in the same vocabulary (others, such as completion, are implied).
OLLAMA_CAPABILITIES = {"tools": "tools", "vision": "vision", "thinking": "reasoning"}


@dataclasses.dataclass(frozen=True)
class OllamaModelInfo:
    """What /api/show tells about one model, reduced to what the catalog uses."""

    capabilities: tuple[str, ...] | None = None
    context_length: int | None = None
    embedding_length: int | None = None
    has_pooling: bool = False


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
        context = positive_int(model_info.get(f"{arch}.context_length"))
        embedding = positive_int(model_info.get(f"{arch}.embedding_length"))
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
    details = entry["details"] if isinstance(entry.get("details"), dict) else {}
    families = {details.get("family")} | set(details.get("families") or ())
    return bool(EMBEDDING_FAMILIES & {str(f).lower() for f in families if f})


def normalise_ollama_tags(document: Any, infos: Mapping[str, OllamaModelInfo] | None = None) -> Normalised:
    """Ollama /api/tags → inference-model rows; `infos` are /api/show results by model name."""
    return _ollama_rows(document, infos or {}, embedding=False)


def normalise_ollama_embedding_tags(
    document: Any,
    infos: Mapping[str, OllamaModelInfo] | None = None,
    embedding_models: EmbeddingModels | None = None,
) -> Normalised:
    """Ollama /api/tags → the embedding-only models that the inference list leaves out; with the
    embedding-model facts, their model_key and supported sizes."""
    return _ollama_rows(document, infos or {}, embedding=True, embedding_models=embedding_models)


def _ollama_rows(
    document: Any,
    infos: Mapping[str, OllamaModelInfo],
    embedding: bool,
    embedding_models: EmbeddingModels | None = None,
) -> Normalised:
    rows, skipped = [], 0
    for entry in ollama_entries(document):
        try:
            row = _ollama_row(entry)
        except BadRow:
            skipped += 1
            continue
        info = infos.get(row["name"])
        if is_embedding_only(entry, info) != embedding:
            continue
        details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
        context = info.context_length if info and info.context_length else positive_int(details.get("context_length"))
        if embedding:
            size = (
                info.embedding_length
                if info and info.embedding_length
                else positive_int(details.get("embedding_length"))
            )
            known = embedding_models.find("ollama", row["id"]) if embedding_models is not None else None
            row = {
                "id": row["id"], "name": row["name"], "family": row["family"],
                "parameter_size": row["parameter_size"], "quantization": row["quantization"],
                "size_mb": row["size_mb"], "dimensions": size or (known and known.dimensions) or None,
                "context": context, "remote": row["remote"],
            }  # fmt: skip
            if embedding_models is not None:
                row.update(embedding_facts(known))
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
        raise BadRow
    name = entry.get("name") or entry.get("model")
    size = entry.get("size")
    if not isinstance(name, str) or not name.strip():
        raise BadRow
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRow
    details = entry.get("details")
    details = details if isinstance(details, dict) else {}
    return {
        "id": name,
        "name": name,
        "parameter_size": text(details.get("parameter_size")),
        "quantization": text(details.get("quantization_level")),
        "family": text(details.get("family")),
        # Decimal megabytes, rounded half up, as Ollama itself prints sizes.
        "size_mb": (size + 500_000) // 1_000_000,
        # A cloud model: listed by this server, run by another (ollama.com).
        "remote": bool(entry.get("remote_model") or entry.get("remote_host")),
    }


class OllamaClient:
    """The two Ollama endpoints the catalog needs."""

    def __init__(self, http: HttpClient, base_url: str) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self.label = f"Ollama at {display_host(base_url)}"

    def tags(self) -> Any:
        """GET /api/tags: the models pulled into this server."""
        return self._http.request_json("GET", self._base_url + "/api/tags", self.label)

    def show(self, model: str, timeout_seconds: float | None = None) -> Any:
        """POST /api/show: one model's details, capabilities and model_info."""
        return self._http.request_json(
            "POST",
            self._base_url + "/api/show",
            self.label,
            json_body={"model": model},
            timeout_seconds=timeout_seconds,
        )


class OllamaSource(Source):
    """One Ollama server: inference and embedding-only models from one poll."""

    kind = "ollama"
    upstream = "Ollama"
    # A poll is a tags call and a bounded round of show calls.
    calls_per_poll = 2

    def __init__(self, settings: Settings, http: HttpClient, embedding_models: EmbeddingModels | None = None) -> None:
        self.name = "ollama"
        self.interval_seconds = settings.ollama_refresh_seconds
        self.catalogs = (
            chat_catalog("ollama", "ollama", live_label="ollama", unreachable_label="ollama_unreachable",
                         failure_replaces_rows=True),
            embedding_catalog("ollama_embeddings", "ollama", live_label="ollama",
                              unreachable_label="ollama_unreachable", failure_replaces_rows=True),
        )  # fmt: skip
        self._client = OllamaClient(http, settings.ollama_base_url)
        self.label = self._client.label
        self._deadline_seconds = settings.upstream_timeout_seconds
        # /api/show answers by digest: a model's capabilities change only with its digest.
        self._show_cache: dict[str, OllamaModelInfo] = {}
        self._embedding_models = embedding_models

    def fetch(self, previous: RefreshStatus) -> Fetched:
        document = self._client.tags()
        infos = self._infos(ollama_entries(document))
        chat = normalise_ollama_tags(document, infos)
        embedding = normalise_ollama_embedding_tags(document, infos, self._embedding_models)
        return Fetched({"ollama": chat.rows, "ollama_embeddings": embedding.rows}, chat.skipped)

    def _infos(self, entries: list) -> dict[str, OllamaModelInfo]:
        """/api/show results for entries whose tags do not list capabilities, cached by digest."""
        infos: dict[str, OllamaModelInfo] = {}
        digests: set[str] = set()
        deadline = time.monotonic() + self._deadline_seconds
        for entry in entries:
            if not needs_ollama_show(entry) or not isinstance(entry.get("name"), str):
                continue
            name, digest = entry["name"], str(entry.get("digest") or entry["name"])
            digests.add(digest)
            if digest in self._show_cache:
                infos[name] = self._show_cache[digest]
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                continue  # Names and families decide for the rest; show is asked next poll.
            try:
                info = ollama_model_info(self._client.show(name, timeout_seconds=remaining))
            except (UpstreamError, InvalidDocument) as exc:
                log.info("no /api/show answer for %s: %s", name, exc)
                continue
            self._show_cache[digest] = infos[name] = info
        for stale in self._show_cache.keys() - digests:
            del self._show_cache[stale]
        return infos


def sources(settings: Settings, context: SourceContext) -> list[Source]:
    """The local Ollama of the contract: always declared (unreachable when nobody answers)."""
    return [OllamaSource(settings, context.http, context.embedding_models)]
