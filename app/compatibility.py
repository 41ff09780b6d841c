"""Embedding compatibility: can one embedding model replace another without re-indexing?

Only when both are the same weights (the same `model_key`) giving vectors of the same size.
Equal sizes of different models never are (their vector spaces differ), and a model whose
weights are not known (no model_key) never is.

A model is named `<catalog>:<id>`: the catalog is an embedding catalog's name (`embeddings`,
`ollama_embeddings`) or the provider segment of its path (`openrouter` for
/api/models/openrouter/embeddings, `ollama`, ...); the id is the row's id, colons and all.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .embedding_models import table_kind
from .filters import InvalidParameter
from .sources.base import API_PREFIX

if TYPE_CHECKING:
    from werkzeug.datastructures import MultiDict

    from .service import CatalogService

MAX_REFERENCE = 400

REASON_MESSAGES = {
    None: "The candidate gives the same vectors: no re-index is needed.",
    "unknown_model": "The weights behind {which} are not known (no model_key): re-index to be safe.",
    "different_model": "Different models give vectors in different spaces, whatever their size: re-index.",
    "unknown_dimensions": "The vector size of {which} is not known: re-index to be safe.",
    "different_dimensions": "The same model, but vectors of another size ({current} → {candidate}): re-index.",
}


class UnknownModel(LookupError):
    """No row with that id in the catalog named (nor among its recently removed models)."""

    def __init__(self, parameter: str, catalog: str, model_id: str) -> None:
        super().__init__(f"{parameter}: no model {model_id!r} in the {catalog} catalog")
        self.parameter = parameter


@dataclasses.dataclass(frozen=True)
class EmbeddingSide:
    """One side of the question, as the catalogs describe it."""

    catalog: str
    id: str
    model_key: str | None
    dimensions: int | None
    removed_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        side: dict[str, Any] = {"catalog": self.catalog, "id": self.id, "model_key": self.model_key,
                                "dimensions": self.dimensions}  # fmt: skip
        if self.removed_at is not None:
            side["removed_at"] = self.removed_at
        return side


def verdict(current: EmbeddingSide, candidate: EmbeddingSide) -> dict[str, Any]:
    """Whether `candidate` can replace `current` without re-indexing, and why not."""
    reason, which = None, ""
    unknown = [name for name, side in (("current", current), ("candidate", candidate)) if side.model_key is None]
    if unknown:
        reason, which = "unknown_model", " and ".join(unknown)
    elif current.model_key != candidate.model_key:
        reason = "different_model"
    else:
        unsized = [name for name, side in (("current", current), ("candidate", candidate)) if side.dimensions is None]
        if unsized:
            reason, which = "unknown_dimensions", " and ".join(unsized)
        elif current.dimensions != candidate.dimensions:
            reason = "different_dimensions"
    message = REASON_MESSAGES[reason].format(which=which, current=current.dimensions, candidate=candidate.dimensions)
    return {
        "compatible": reason is None,
        "reindex_required": reason is not None,
        "reason": reason,
        "message": message,
        "current": current.as_dict(),
        "candidate": candidate.as_dict(),
    }


def compatibility_answer(service: CatalogService, args: MultiDict) -> dict[str, Any]:
    """The verdict for `current` and `candidate`; raises InvalidParameter or UnknownModel."""
    current = _side(service, "current", args.get("current"))
    candidate = _side(service, "candidate", args.get("candidate"))
    return verdict(current, candidate)


def _side(service: CatalogService, parameter: str, value: str | None) -> EmbeddingSide:
    catalog, model_id = _reference(service, parameter, value)
    snapshot = service.snapshot(catalog)
    row = next((row for row in snapshot.data["models"] if row.get("id") == model_id), None)
    if row is None:
        row = next((row for row in snapshot.removed_rows if row.get("id") == model_id), None)
    if row is None:
        raise UnknownModel(parameter, catalog, model_id)
    model_key = row.get("model_key")
    known = None
    if model_key is None and service.embedding_models is not None:
        try:
            known = service.embedding_models.find(table_kind(service.registry.source_of(catalog).kind), model_id)
        except ValueError:  # a kind of source the facts do not cover
            known = None
        model_key = known.key if known else None
    dimensions = row.get("dimensions")
    if dimensions is None and model_key is not None and service.embedding_models is not None:
        known = known or next((model for model in service.embedding_models if model.key == model_key), None)
        dimensions = known.dimensions if known else None
    return EmbeddingSide(catalog, model_id, model_key, dimensions, row.get("removed_at"))


def _reference(service: CatalogService, parameter: str, value: str | None) -> tuple[str, str]:
    example = f"{parameter}=ollama:nomic-embed-text:latest"
    if not value or len(value) > MAX_REFERENCE:
        raise InvalidParameter(parameter, f"{parameter} is required: <catalog>:<model id>, such as {example}")
    name, colon, model_id = value.partition(":")
    if not colon or not name or not model_id:
        raise InvalidParameter(parameter, f"{parameter} must be <catalog>:<model id>, such as {example}")
    registry = service.registry
    embedding = [catalog for catalog in registry.catalogs.values() if catalog.kind == "embedding"]
    # A catalog's own name first, then the provider segment of its path.
    for catalog in embedding:
        if name == catalog.name:
            return catalog.name, model_id
    for catalog in embedding:
        if catalog.path == f"{API_PREFIX}/{name}/embeddings":
            return catalog.name, model_id
    choices = ", ".join(dict.fromkeys([c.name for c in embedding] + [c.path.split("/")[-2] for c in embedding]))
    raise InvalidParameter(parameter, f"{parameter} names no embedding catalog {name!r}: use one of {choices}")
