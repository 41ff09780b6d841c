"""Embedding-model facts (output size, model_key) from curated/embedding_models.yaml, by source id."""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .curated import CuratedDataError, read_models_list

EMBEDDING_MODELS_FILE = "embedding_models.yaml"

SOURCE_KINDS = ("openrouter", "openai", "gemini", "mistral", "ollama", "huggingface")
# Local servers name models after Hugging Face repos or GGUF files, so they share its rules.
LOCAL_SERVER_KINDS = MappingProxyType({"lmstudio": "huggingface", "llamacpp": "huggingface", "vllm": "huggingface"})

# OpenRouter routing variants serve the same weights; an unknown suffix is not assumed to.
_OPENROUTER_VARIANTS = frozenset({"free", "batch", "beta", "extended", "nitro", "floor", "online", "exacto"})
# Precision/quantisation markers at the end of a file, repo or tag name: the weights stay the same.
_QUANT_SUFFIX = re.compile(r"[-._](?:i?q[1-8](?:_[0-9a-z]+)*|f16|f32|bf16|fp16|fp32|fp8|int8|int4)$")
_OLLAMA_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*(?::[a-z0-9][a-z0-9._-]*)?$")
_REPO_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$")
_PLAIN_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_LM_STUDIO_PREFIX = "text-embedding-"
# Marks a repo name that two makers use: a bare name like that says nothing about the weights.
_AMBIGUOUS = object()


def table_kind(source_kind: str) -> str:
    """The kind of ids to look a source's models up by: its own where the table lists them,
    else Hugging Face repo names (what OpenAI-compatible servers usually serve)."""
    return source_kind if source_kind in SOURCE_KINDS or source_kind in LOCAL_SERVER_KINDS else "huggingface"


@dataclasses.dataclass(frozen=True, eq=False)
class EmbeddingModel:
    """One set of embedding weights: its model_key, default output size and where it is served."""

    key: str
    dimensions: int | None
    supported_dimensions: tuple[int, ...]
    ids: Mapping[str, tuple[str, ...]]
    sources: tuple[str, ...]


class EmbeddingModels:
    """The loaded table, immutable, with lookups by (source kind, id as that source spells it)."""

    __slots__ = ("_exact", "_hf_names", "_models", "_ollama_names")

    def __init__(self, models: tuple[EmbeddingModel, ...], exact, ollama_names, hf_names):
        self._models = models
        self._exact = MappingProxyType({kind: MappingProxyType(index) for kind, index in exact.items()})
        self._ollama_names = MappingProxyType(dict(ollama_names))
        self._hf_names = MappingProxyType(dict(hf_names))

    def __iter__(self) -> Iterator[EmbeddingModel]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def find(self, source_kind: str, model_id: str) -> EmbeddingModel | None:
        """The entry serving these weights, or None when the id is unknown or could be other weights."""
        kind = LOCAL_SERVER_KINDS.get(source_kind, source_kind)
        if kind not in SOURCE_KINDS:
            known = ", ".join(SOURCE_KINDS + tuple(LOCAL_SERVER_KINDS))
            raise ValueError(f"unknown source kind {source_kind!r} (known: {known})")
        if not isinstance(model_id, str) or not model_id.strip():
            return None
        if kind == "ollama":
            return self._find_ollama(model_id)
        if kind == "huggingface":
            return self._find_huggingface(model_id)
        normal = _normal_id(kind, model_id)
        return self._exact[kind].get(normal) if normal else None

    def _find_ollama(self, model_id: str) -> EmbeddingModel | None:
        text = model_id.strip().lower()
        for prefix in ("hf.co/", "huggingface.co/"):
            # Ollama pulls GGUF repos straight from Hugging Face under this name.
            if text.startswith(prefix):
                # The tag there names a quantisation of the repo, not other weights.
                return self._find_huggingface(text[len(prefix) :].partition(":")[0])
        name, _, tag = text.partition(":")
        tag = tag or "latest"
        index = self._exact["ollama"]
        for candidate in _ollama_tag_candidates(tag):
            found = index.get(f"{name}:{candidate}")
            if found is not None:
                return found
        return self._ollama_names.get(name)

    def _find_huggingface(self, model_id: str) -> EmbeddingModel | None:
        normal = _normal_hf(model_id, lookup=True)
        if not normal:
            return None
        found = self._exact["huggingface"].get(normal)
        if found is not None:
            return found
        owner, _, name = normal.rpartition("/")
        if owner and not _was_gguf_repo(model_id):
            # Another owner's repo of the same name may hold fine-tuned weights; only GGUF
            # conversion repos are taken to be the named model.
            return None
        candidates = [name]
        if name.startswith(_LM_STUDIO_PREFIX):
            # LM Studio prefixes its ids of embedding models with this; OpenAI names stay unmatched.
            candidates.append(name[len(_LM_STUDIO_PREFIX) :])
        for candidate in candidates:
            found = self._hf_names.get(candidate)
            if found is not None:
                return None if found is _AMBIGUOUS else found
        return None


def load_embedding_models(directory: Path) -> EmbeddingModels:
    """Read and check the table; raise CuratedDataError naming the file and the entry."""
    path = directory / EMBEDDING_MODELS_FILE
    builder = _IndexBuilder()
    for number, entry in enumerate(read_models_list(path), start=1):
        label = _entry_label(number, entry)
        try:
            builder.add(_check_entry(entry))
        except _EntryError as exc:
            raise CuratedDataError(f"{path}: {label}: {exc}") from None
    return builder.build()


class _EntryError(ValueError):
    pass


_FIELDS_REQUIRED = frozenset({"key", "dimensions", "ids", "sources"})
_FIELDS_OPTIONAL = frozenset({"supported_dimensions"})


def _check_entry(entry: Any) -> EmbeddingModel:
    if not isinstance(entry, dict):
        raise _EntryError("must be a mapping")
    missing = sorted(_FIELDS_REQUIRED - entry.keys())
    if missing:
        raise _EntryError(f"missing {', '.join(missing)}")
    unknown = sorted(map(str, entry.keys() - _FIELDS_REQUIRED - _FIELDS_OPTIONAL))
    if unknown:
        raise _EntryError(f"unknown field {', '.join(unknown)}")
    dimensions = _dimensions(entry["dimensions"])
    return EmbeddingModel(
        key=_key(entry["key"]),
        dimensions=dimensions,
        supported_dimensions=_supported(entry, dimensions),
        ids=MappingProxyType(_ids(entry["ids"])),
        sources=_sources(entry["sources"]),
    )


def _key(value: Any) -> str:
    if not isinstance(value, str) or not _REPO_ID.match(value.strip().lower()) or value != value.strip():
        raise _EntryError(f"'key' must look like maker/model, got {value!r}")
    return value


def _positive(value: Any) -> bool:
    # bool is an int subclass; "dimensions: yes" is a typo, not 1.
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _dimensions(value: Any) -> int | None:
    if value is None or _positive(value):
        return value
    raise _EntryError(f"'dimensions' must be a positive integer or null, got {value!r}")


def _supported(entry: dict, dimensions: int | None) -> tuple[int, ...]:
    if "supported_dimensions" not in entry:
        return ()
    value = entry["supported_dimensions"]
    if not isinstance(value, list) or not value or not all(_positive(size) for size in value):
        raise _EntryError(f"'supported_dimensions' must be a non-empty list of positive integers, got {value!r}")
    if any(later <= earlier for earlier, later in itertools.pairwise(value)):
        raise _EntryError(f"'supported_dimensions' must be in ascending order without repeats, got {value!r}")
    if dimensions is None:
        raise _EntryError("'supported_dimensions' needs a known 'dimensions'")
    # The default output size is always one of the sizes a model can return.
    if dimensions not in value:
        raise _EntryError(f"'supported_dimensions' must include 'dimensions' ({dimensions}), got {value!r}")
    return tuple(value)


def _ids(value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict) or not value:
        raise _EntryError("'ids' must be a non-empty mapping of source kind to a list of ids")
    unknown = sorted(map(str, value.keys() - set(SOURCE_KINDS)))
    if unknown:
        known = ", ".join(SOURCE_KINDS)
        raise _EntryError(f"unknown source kind {', '.join(unknown)} in 'ids' (known: {known})")
    ids = {}
    for kind in SOURCE_KINDS:
        if kind not in value:
            continue
        listed = value[kind]
        if not _texts(listed):
            raise _EntryError(f"'ids.{kind}' must be a non-empty list of ids, got {listed!r}")
        for item in listed:
            if not _valid_id(kind, item):
                raise _EntryError(f"'ids.{kind}' has a malformed id {item!r}")
        ids[kind] = tuple(listed)
    return ids


def _valid_id(kind: str, model_id: str) -> bool:
    # Table ids are written in their plain form: no variant suffix, no "models/" prefix.
    pattern = {"openrouter": _REPO_ID, "huggingface": _REPO_ID, "ollama": _OLLAMA_ID}.get(kind, _PLAIN_ID)
    return model_id == model_id.strip() and bool(pattern.match(model_id.lower()))


def _sources(value: Any) -> tuple[str, ...]:
    if not _texts(value):
        raise _EntryError(f"'sources' must be a non-empty list of source notes, got {value!r}")
    return tuple(value)


def _texts(value: Any) -> bool:
    if not isinstance(value, list) or not value:
        return False
    return all(isinstance(item, str) and item.strip() for item in value)


class _IndexBuilder:
    """Collects entries and refuses an id that two entries both claim."""

    def __init__(self):
        self.models: list[EmbeddingModel] = []
        self.keys: set[str] = set()
        self.exact: dict[str, dict[str, EmbeddingModel]] = {kind: {} for kind in SOURCE_KINDS}
        self.ollama_names: dict[str, EmbeddingModel] = {}
        self.ollama_tagged_names: dict[str, EmbeddingModel] = {}
        self.hf_names: dict[str, object] = {}

    def add(self, model: EmbeddingModel) -> None:
        if model.key.lower() in self.keys:
            raise _EntryError(f"duplicate key {model.key!r}")
        self.keys.add(model.key.lower())
        for kind, listed in model.ids.items():
            for model_id in listed:
                if kind == "ollama":
                    self._add_ollama(model, model_id)
                    continue
                normal = _normal_id(kind, model_id)
                self._claim(self.exact[kind], normal, model, f"ids.{kind} {model_id!r}")
                if kind == "huggingface":
                    name = normal.rpartition("/")[2]
                    if self.hf_names.get(name, model) is not model:
                        self.hf_names[name] = _AMBIGUOUS
                    else:
                        self.hf_names[name] = model
        self.models.append(model)

    def _add_ollama(self, model: EmbeddingModel, model_id: str) -> None:
        text = model_id.strip().lower()
        name, _, tag = text.partition(":")
        label = f"ids.ollama {model_id!r}"
        if tag:
            self._claim(self.exact["ollama"], text, model, label)
            other = self.ollama_names.get(name)
            if other is not None and other is not model:
                raise _EntryError(f"{label}: {name!r} already names every tag of {other.key}")
            self.ollama_tagged_names.setdefault(name, model)
            return
        self._claim(self.ollama_names, name, model, label)
        other = self.ollama_tagged_names.get(name)
        if other is not None and other is not model:
            raise _EntryError(f"{label}: a tag of {name!r} already belongs to {other.key}")

    @staticmethod
    def _claim(index: dict, normal: str, model: EmbeddingModel, label: str) -> None:
        other = index.get(normal)
        if other is not None:
            raise _EntryError(f"{label} is already an id of {other.key}")
        index[normal] = model

    def build(self) -> EmbeddingModels:
        return EmbeddingModels(tuple(self.models), self.exact, self.ollama_names, self.hf_names)


def _normal_id(kind: str, model_id: str) -> str:
    text = model_id.strip().lower()
    if kind == "openrouter":
        base, _, variant = text.partition(":")
        return base if not variant or variant in _OPENROUTER_VARIANTS else ""
    if kind == "gemini":
        # "models/gemini-embedding-001" as the API lists it; Vertex paths end the same way.
        return text.rpartition("models/")[2] if "models/" in text else text
    if kind == "huggingface":
        return _normal_hf(text, lookup=False)
    return text


def _normal_hf(model_id: str, lookup: bool) -> str:
    text = model_id.strip().lower()
    for prefix in ("https://huggingface.co/", "http://huggingface.co/", "huggingface.co/", "hf.co/"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    if lookup:
        # LM Studio variants ("@q4_k_m") and second loaded instances (":2") are the same weights.
        text = text.partition("@")[0]
        text = re.sub(r":\d+$", "", text)
        is_path = text.startswith(("/", "./", "~")) or text.count("/") > 1
        if is_path or text.endswith((".gguf", ".bin", ".safetensors")):
            # llama.cpp and vLLM may report a file or directory path: the last part names the model.
            text = text.rstrip("/").rpartition("/")[2]
        for extension in (".gguf", ".bin", ".safetensors"):
            text = text.removesuffix(extension)
    owner, slash, name = text.rpartition("/")
    name = name.removesuffix("-gguf")
    while True:
        stripped = _QUANT_SUFFIX.sub("", name)
        if stripped == name or not stripped:
            break
        name = stripped
    return f"{owner}{slash}{name}"


def _was_gguf_repo(model_id: str) -> bool:
    return model_id.strip().lower().partition("@")[0].rstrip("/").endswith("-gguf")


def _ollama_tag_candidates(tag: str) -> Iterator[str]:
    yield tag
    while True:
        stripped = _QUANT_SUFFIX.sub("", tag)
        if stripped == tag or not stripped:
            return
        tag = stripped
        yield tag


def _entry_label(number: int, entry: Any) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("key"), str):
        return f"entry {number} ({entry['key']})"
    return f"entry {number}"
