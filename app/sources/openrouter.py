"""OpenRouter: the LLM catalog (GET /models) and the embedding catalog (GET /embeddings/models).

Two sources, one per endpoint, each with its own job and interval setting; both need
OPENROUTER_API_KEY, and without it both catalogs answer the curated lists.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from config import Settings

from ..status import RefreshStatus
from .base import CatalogSpec, Fetched, RejectedCatalog, Source, SourceContext, chat_catalog, embedding_catalog
from .http import HttpClient, display_host
from .rows import (
    BadRow,
    InvalidDocument,
    Normalised,
    cost_per_million,
    decimal,
    deduplicated,
    embedding_facts,
    is_zero,
    iso_date,
    maker_name,
    positive_int,
    released_at,
)

if TYPE_CHECKING:
    from ..embedding_models import EmbeddingModels

# What in an OpenRouter record shows each capability (vision comes from input_modalities).
CAPABILITY_PARAMETERS = {
    "reasoning": {"reasoning", "include_reasoning"},
    "structured_outputs": {"structured_outputs"},
    "tools": {"tools"},
    "web_search": {"web_search_options"},
}


def provider_name(model_id: str) -> str:
    """The display name of the author part of an OpenRouter id (`~` alias ids too)."""
    return maker_name(model_id.lstrip("~").split("/", 1)[0])


def display_name(name: str) -> str:
    """OpenRouter's name without its "Provider: " prefix."""
    _, colon, rest = name.partition(": ")
    return rest.strip() if colon and rest.strip() else name.strip()


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
    for record in openrouter_records(document):
        try:
            if not outputs(record, "text"):
                continue
            row = base_row(record)
        except BadRow:
            skipped += 1
            continue
        pricing = pricing_of(record)
        if pricing is not None:
            row["pricing"] = pricing
        row["capabilities"] = llm_capabilities(record)
        row["is_free"] = pricing is not None and is_zero(pricing["prompt"]) and is_zero(pricing["completion"])
        _dates(record, row)
        rows.append(row)
    return deduplicated(rows, skipped)


def normalise_openrouter_embeddings(
    document: Any, dimensions: Mapping[str, int | None], embedding_models: EmbeddingModels | None = None
) -> Normalised:
    """OpenRouter /embeddings/models → embedding rows; dimensions, model_key and supported sizes
    from the embedding-model facts, dimensions otherwise from the curated list."""
    rows, skipped = [], 0
    for record in openrouter_records(document):
        try:
            if not outputs(record, "embeddings"):
                continue
            row = base_row(record)
        except BadRow:
            skipped += 1
            continue
        pricing = record.get("pricing")
        prompt = pricing.get("prompt") if isinstance(pricing, dict) else None
        known = embedding_models.find("openrouter", row["id"]) if embedding_models is not None else None
        embedding_row = {
            "id": row["id"],
            "name": row["name"],
            "provider": row["provider"],
            "dimensions": (known and known.dimensions) or known_dimensions(row["id"], dimensions),
            "context": row["context"],
            "cost_per_million": cost_per_million(prompt),
            "is_free": is_zero(prompt),
        }
        if embedding_models is not None:
            embedding_row.update(embedding_facts(known))
        _dates(record, embedding_row)
        rows.append(embedding_row)
    return deduplicated(rows, skipped)


def _dates(record: dict, row: dict) -> None:
    """released_at from `created` (when OpenRouter listed the model), expires_on from expiration_date."""
    released = released_at(record.get("created"))
    if released:
        row["released_at"] = released
    expires_on = iso_date(record.get("expiration_date"))
    if expires_on:
        row["expires_on"] = expires_on


def with_embedding_facts(row: dict, embedding_models: EmbeddingModels) -> dict:
    """A curated OpenRouter embedding row with the facts a live one carries."""
    known = embedding_models.find("openrouter", row["id"])
    return {**row, "dimensions": (known and known.dimensions) or row["dimensions"], **embedding_facts(known)}


def openrouter_records(document: Any) -> list:
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise InvalidDocument('expected a JSON object with a "data" list')
    return document["data"]


def base_row(record: Any) -> dict:
    if not isinstance(record, dict):
        raise BadRow
    model_id, name = record.get("id"), record.get("name")
    if not isinstance(model_id, str) or "/" not in model_id or not isinstance(name, str):
        raise BadRow
    context = positive_int(record.get("context_length"))
    if context is None:
        top = record.get("top_provider")
        context = positive_int(top.get("context_length")) if isinstance(top, dict) else None
    if context is None:
        raise BadRow
    return {
        "id": model_id,
        "name": display_name(name) or model_id,
        "provider": provider_name(model_id),
        "context": context,
    }


def outputs(record: Any, modality: str) -> bool:
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


def pricing_of(record: dict) -> dict | None:
    pricing = record.get("pricing")
    if not isinstance(pricing, dict):
        return None
    prompt, completion = pricing.get("prompt"), pricing.get("completion")
    # Variable-priced routers say "-1": the price is unknown, not negative.
    if decimal(prompt) is None or decimal(completion) is None:
        return None
    return {"prompt": prompt, "completion": completion}


def known_dimensions(model_id: str, dimensions: Mapping[str, int | None]) -> int | None:
    if model_id in dimensions:
        return dimensions[model_id]
    # ":batch" or ":free" is the same model served another way: same vectors.
    return dimensions.get(model_id.split(":", 1)[0])


def check_rows(normalised: Normalised) -> None:
    """Acceptance before publish: some rows (a collapse by half is the shrink guard's to judge)."""
    if not normalised.rows:
        raise RejectedCatalog(f"the answer had no usable models ({normalised.skipped} malformed)")


class OpenRouterClient:
    """The two OpenRouter catalog endpoints; the key goes only to the configured host."""

    def __init__(self, http: HttpClient, base_url: str, api_key: str | None) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.label = f"OpenRouter at {display_host(base_url)}"

    def _get(self, path: str) -> Any:
        # No redirects are followed, so the key cannot reach another host.
        headers = {"Authorization": f"Bearer {self._api_key}"}
        return self._http.request_json("GET", self._base_url + path, self.label, headers=headers)

    def models(self) -> Any:
        """GET /models: the LLM catalog (text-output models)."""
        return self._get("/models")

    def embedding_models(self) -> Any:
        """GET /embeddings/models: the embedding catalog."""
        return self._get("/embeddings/models")


class OpenRouterSource(Source):
    """One OpenRouter catalog endpoint: its own job, the shrink guard on its answers."""

    kind = "openrouter"
    upstream = "OpenRouter"
    shrink_guard = True

    def __init__(self, name: str, catalog: CatalogSpec, settings: Settings, client: OpenRouterClient) -> None:
        self.name = name
        self.catalogs = (catalog,)
        self.label = client.label
        self.interval_seconds = settings.openrouter_refresh_seconds
        self.disabled_reason = None if settings.openrouter_api_key else "OPENROUTER_API_KEY is not set"
        self._client = client

    @abc.abstractmethod
    def normalise(self) -> Normalised:
        """Fetch the endpoint's document and turn it into rows."""

    def fetch(self, previous: RefreshStatus) -> Fetched:
        normalised = self.normalise()
        check_rows(normalised)
        return Fetched({self.catalogs[0].name: normalised.rows}, normalised.skipped)


class OpenRouterModels(OpenRouterSource):
    """GET /models: the LLM catalog (text-output models)."""

    def normalise(self) -> Normalised:
        return normalise_openrouter_models(self._client.models())


class OpenRouterEmbeddings(OpenRouterSource):
    """GET /embeddings/models: the embedding catalog, dimensions from the curated data."""

    def __init__(
        self, *args, dimensions: Mapping[str, int | None], embedding_models: EmbeddingModels, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self._dimensions = dimensions
        self._embedding_models = embedding_models

    def normalise(self) -> Normalised:
        document = self._client.embedding_models()
        return normalise_openrouter_embeddings(document, self._dimensions, self._embedding_models)


def sources(settings: Settings, context: SourceContext) -> list[Source]:
    """The two OpenRouter catalogs of the contract; always declared (curated without a key)."""
    curated = context.curated
    client = OpenRouterClient(context.http, settings.openrouter_base_url, settings.openrouter_api_key)
    llms = chat_catalog("openrouter", "openrouter", live_label="api", curated_rows=curated.llms)
    table = context.embedding_models
    curated_embeddings = tuple(with_embedding_facts(row, table) for row in curated.embeddings)
    embeddings = embedding_catalog("embeddings", "openrouter", live_label="api", curated_rows=curated_embeddings)
    return [
        OpenRouterModels("openrouter", llms, settings, client),
        OpenRouterEmbeddings(
            "embeddings",
            embeddings,
            settings,
            client,
            dimensions=curated.embedding_dimensions(),
            embedding_models=table,
        ),
    ]
