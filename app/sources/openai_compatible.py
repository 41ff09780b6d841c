"""Local servers that speak the OpenAI API: GET {base_url}/models, and what every local kind shares.

A local server is declared in SOURCES_FILE (local_servers.py). Each one publishes a chat list and
an embedding list from one poll; a failed poll replaces both with `unreachable` (what is loaded
there may have changed). The LM Studio, vLLM and llama.cpp modules read their servers' own
fields on top of the OpenAI-style list read here.

How a model lands in the chat list, the embedding list or neither, first rule that decides:
1. what the server says (a kind module's type, pooling or modality field; an entry's `type`);
2. the sourced embedding table (curated/embedding_models.yaml) knows the weights by this id;
3. the id, as a last resort: "embed" in it makes an embedding model; a word such as whisper, tts,
   transcribe, moderation, guard, rerank, image or diffusion makes a model that cannot chat
   (ID_PATTERNS_DOC below); anything else is taken to chat.
"""

from __future__ import annotations

import abc
import dataclasses
import re
from typing import Any

from config import Settings
from local_servers import LocalServer

from ..embedding_models import EmbeddingModels
from ..status import RefreshStatus
from .base import Fetched, Source, SourceContext, chat_catalog, embedding_catalog
from .http import HttpClient, display_host
from .rows import (
    BadRow,
    InvalidDocument,
    Normalised,
    deduplicated,
    embedding_facts,
    maker_name,
    positive_int,
    text,
)

CHAT, EMBEDDING, OTHER = "chat", "embedding", "other"

# An entry's own `type`, where a server gives one (LM Studio, Together-style lists).
TYPE_ROLES = {
    "llm": CHAT, "vlm": CHAT, "chat": CHAT, "language": CHAT, "code": CHAT,
    "embedding": EMBEDDING, "embeddings": EMBEDDING,
    "image": OTHER, "audio": OTHER, "moderation": OTHER, "rerank": OTHER, "transcribe": OTHER, "tts": OTHER,
}  # fmt: skip

# The last resort, on ids only (ID_PATTERNS_DOC): words of an id, split at / _ . : - and spaces.
EMBEDDING_ID_PART = "embed"
NON_CHAT_ID_WORDS = frozenset({
    "whisper", "tts", "transcribe", "transcription", "moderation", "guard", "rerank", "reranker",
    "image", "dall", "diffusion",
})  # fmt: skip
ID_PATTERNS_DOC = (
    "an id containing 'embed' is an embedding model; an id with a word whisper, tts, transcribe, "
    "transcription, moderation, guard, rerank(er), image, dall or diffusion cannot chat"
)
_ID_WORDS = re.compile(r"[/_.:\s-]+")

# owned_by values that name the server, its account or nobody, not the model's maker.
SERVER_OWNERS = frozenset({
    "organization_owner", "organization-owner", "vllm", "llamacpp", "llama.cpp", "llama-cpp", "lmstudio",
    "lm-studio", "lm studio", "ollama", "library", "localai", "fastflowlm", "rapid-mlx", "mlx-lm", "mlx_lm",
    "system", "user", "owner", "local", "unknown", "none", "null",
})  # fmt: skip

# What the entries of an OpenAI-style list may say about context and output length.
CONTEXT_FIELDS = ("max_model_len", "context_length", "context_window", "max_context_length")
MAX_OUTPUT_FIELDS = ("max_completion_tokens", "max_output_tokens")


@dataclasses.dataclass
class ListedModel:
    """One model as a local server describes it, before it becomes a row."""

    id: str
    name: str
    provider: str | None = None
    role: str | None = None  # CHAT, EMBEDDING, OTHER, or None: the server does not say
    context: int | None = None
    capabilities: tuple[str, ...] = ()
    loaded: bool | None = None  # None: the server does not say
    quantization: str | None = None
    max_output: int | None = None
    dimensions: int | None = None  # only where the server says
    # Further names the weights may be known by in the sourced table (vLLM's root and parent).
    aliases: tuple[str, ...] = ()


def openai_entries(document: Any) -> list:
    """The entries of an OpenAI-style model list; an empty list is valid (nothing loaded)."""
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise InvalidDocument('expected a JSON object with a "data" list')
    return document["data"]


def read_openai_model(entry: Any) -> ListedModel:
    """One entry of an OpenAI-style list; raises BadRow when it has no usable id."""
    if not isinstance(entry, dict):
        raise BadRow
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id.strip():
        raise BadRow
    name = text(entry.get("display_name")).strip() or text(entry.get("name")).strip() or model_id
    kind = entry.get("type")
    return ListedModel(
        id=model_id,
        name=name,
        provider=meaningful_owner(entry.get("owned_by")) or maker_from_id(model_id),
        role=TYPE_ROLES.get(kind.lower()) if isinstance(kind, str) else None,
        context=first_positive(entry, CONTEXT_FIELDS),
        max_output=first_positive(entry, MAX_OUTPUT_FIELDS),
    )


def read_openai_list(document: Any) -> tuple[list[ListedModel], int]:
    """Every usable entry of an OpenAI-style list, and how many were skipped as malformed."""
    models, skipped = [], 0
    for entry in openai_entries(document):
        try:
            model = read_openai_model(entry)
        except BadRow:
            skipped += 1
            continue
        # Groq-style lists keep deactivated models, marked so; they cannot be used.
        if isinstance(entry, dict) and entry.get("active") is False:
            continue
        models.append(model)
    return models, skipped


def first_positive(entry: dict, fields: tuple[str, ...]) -> int | None:
    """The first of `fields` that holds a positive int."""
    for field in fields:
        value = positive_int(entry.get(field))
        if value is not None:
            return value
    return None


def meaningful_owner(owned_by: Any) -> str | None:
    """owned_by when it names a maker ("Meta", "Alibaba Cloud"), not the server or an account."""
    owner = text(owned_by).strip()
    if not owner or owner.casefold() in SERVER_OWNERS or _is_path(owner):
        return None
    return owner


def maker_from_id(model_id: str) -> str | None:
    """The maker of an "org/model" id (a Hugging Face repo name); None for paths and bare names."""
    text_id = model_id.strip()
    if _is_path(text_id) or text_id.count("/") != 1:
        return None
    org = text_id.split("/", 1)[0]
    return maker_name(org) if org else None


def _is_path(value: str) -> bool:
    """A file or directory path (llama.cpp and vLLM may name a model by one), not an "org/model" id."""
    windows_drive = len(value) > 2 and value[0].isalpha() and value[1] == ":" and value[2] in "/\\"
    return value.startswith(("/", "./", "../", "~")) or "\\" in value or windows_drive


def role_by_id(*ids: str) -> str:
    """The last resort: what the ids alone suggest (ID_PATTERNS_DOC)."""
    for model_id in ids:
        lowered = model_id.lower()
        if EMBEDDING_ID_PART in lowered:
            return EMBEDDING
        if NON_CHAT_ID_WORDS & set(_ID_WORDS.split(lowered)) or "rerank" in lowered:
            return OTHER
    return CHAT


def table_lookup(table: EmbeddingModels, table_kind: str, ids: tuple[str, ...]):
    """The sourced table's entry for the first of `ids` it knows, or None."""
    for model_id in ids:
        if not model_id:
            continue
        found = table.find(table_kind, model_id)
        # An OpenAI-compatible server in front of Ollama names models "name:tag".
        if found is None and table_kind == "huggingface" and ":" in model_id and "/" not in model_id:
            found = table.find("ollama", model_id)
        if found is not None:
            return found
    return None


def local_rows(
    models: list[ListedModel], skipped: int, table: EmbeddingModels, table_kind: str
) -> tuple[Normalised, Normalised]:
    """Chat rows and embedding rows of a local server, each sorted and without duplicate ids."""
    chat, embedding = [], []
    for model in models:
        ids = (model.id, *model.aliases)
        known = table_lookup(table, table_kind, ids)
        role = model.role
        if role is None:
            role = EMBEDDING if known is not None else role_by_id(*ids)
        if role == CHAT:
            chat.append(chat_row(model))
        elif role == EMBEDDING:
            dimensions = model.dimensions or (known.dimensions if known is not None else None)
            # The facts of the entry found by id or alias: the refresher's by-id lookup may miss it.
            embedding.append({**embedding_row(model, dimensions), **embedding_facts(known)})
    return deduplicated(chat, skipped), deduplicated(embedding, 0)


def chat_row(model: ListedModel) -> dict:
    """A chat row: the contract's fields, then what this server says beyond them."""
    row: dict[str, Any] = {
        "id": model.id,
        "name": model.name,
        "provider": model.provider,
        "context": model.context,
        "capabilities": sorted(set(model.capabilities)),
        "is_free": True,
    }
    _add_optional(row, model)
    if model.max_output is not None:
        row["max_output"] = model.max_output
    return row


def embedding_row(model: ListedModel, dimensions: int | None) -> dict:
    """An embedding row: dimensions from the server, else the sourced table, else null."""
    row: dict[str, Any] = {
        "id": model.id,
        "name": model.name,
        "provider": model.provider,
        "dimensions": dimensions,
        "context": model.context,
        "is_free": True,
    }
    _add_optional(row, model)
    return row


def _add_optional(row: dict, model: ListedModel) -> None:
    if model.loaded is not None:
        row["loaded"] = model.loaded
    if model.quantization:
        row["quantization"] = model.quantization


class LocalServerSource(Source):
    """One server of SOURCES_FILE: a chat list and an embedding list from one poll."""

    upstream = "OpenAI-compatible server"
    # The kind under which the sourced table looks up this server's ids.
    table_kind = "huggingface"

    def __init__(self, server: LocalServer, settings: Settings, context: SourceContext) -> None:
        self.name = server.name
        self.kind = server.kind
        self.server = server
        self.interval_seconds = server.refresh_seconds or settings.local_refresh_seconds
        self.catalogs = (
            chat_catalog(server.name, server.name, live_label="api", failure_replaces_rows=True),
            embedding_catalog(f"{server.name}_embeddings", server.name, live_label="api", failure_replaces_rows=True),
        )
        self.label = f"{self.upstream} at {display_host(server.base_url)}"
        self._http: HttpClient = context.http
        self._table = context.embedding_models
        # The key goes to this server only: the client never follows redirects.
        self._headers = {"Authorization": f"Bearer {server.api_key}"} if server.api_key else None

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def native_root(self) -> str:
        """The server's root: base_url without the trailing /v1 that OpenAI clients are given."""
        return self.server.base_url.removesuffix("/v1")

    def get(self, url: str) -> Any:
        """GET one JSON document from this server, with its key when it has one."""
        return self._http.request_json("GET", url, self.label, headers=self._headers)

    def fetch(self, previous: RefreshStatus) -> Fetched:
        models, skipped = self.list_models()
        chat, embedding = local_rows(models, skipped, self._table, self.table_kind)
        return Fetched({self.name: chat.rows, f"{self.name}_embeddings": embedding.rows}, chat.skipped)

    @abc.abstractmethod
    def list_models(self) -> tuple[list[ListedModel], int]:
        """Call the server; its models and how many entries were skipped as malformed."""


class OpenAICompatibleSource(LocalServerSource):
    """Any server with GET {base_url}/models: ids, and whatever context fields it adds."""

    def list_models(self) -> tuple[list[ListedModel], int]:
        return read_openai_list(self.get(f"{self.base_url}/models"))


def sources(settings: Settings, context: SourceContext) -> list[Source]:
    """One source per openai_compatible server of SOURCES_FILE."""
    return [
        OpenAICompatibleSource(server, settings, context)
        for server in settings.local_servers
        if server.kind == "openai_compatible"
    ]
