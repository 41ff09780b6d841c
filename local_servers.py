"""The local servers of SOURCES_FILE: read and checked once, at start-up, for config.py.

Each entry names a server (the URL segment /api/models/<name>), its kind and the base URL an
OpenAI client would be given. A bad entry stops start-up with a message that names the file,
the entry and the field, and never a value that may carry a credential (a URL, a key).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

LOCAL_SERVER_KINDS = ("lmstudio", "vllm", "llamacpp", "openai_compatible")

# Names a local server may not take: the contract's sources and paths, the hosted providers,
# the segments app/registry.py reserves under /api/models, and the refresh choice "all".
RESERVED_NAMES = frozenset({
    "openrouter", "embeddings", "ollama",
    "openai", "anthropic", "gemini", "mistral",
    "status", "refresh", "openapi.json", "changes",
    "all",
})  # fmt: skip

# A URL segment that needs no escaping, and no "_": catalog names end in "_embeddings".
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REQUIRED = ("name", "kind", "base_url")
_OPTIONAL = ("api_key_env", "refresh_seconds")


class SourcesFileError(ValueError):
    """The sources file or one of its entries is wrong; start-up must stop."""


@dataclasses.dataclass(frozen=True)
class LocalServer:
    """One local inference server the catalog lists models of."""

    name: str  # the URL segment, the source and catalog name
    kind: str  # one of LOCAL_SERVER_KINDS
    base_url: str = dataclasses.field(repr=False)  # what an OpenAI client is given; may carry credentials
    api_key: str | None = dataclasses.field(default=None, repr=False)
    api_key_env: str | None = None  # the variable the key came from, for messages
    refresh_seconds: float | None = None  # None: LOCAL_REFRESH_SECONDS


def load_local_servers(path: Path, env: Mapping[str, str]) -> tuple[LocalServer, ...]:
    """Read and check every entry of the file; keys are looked up in `env`."""
    where = f"SOURCES_FILE {path}"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SourcesFileError(f"{where}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise SourcesFileError(f"{where}: not valid YAML ({_yaml_problem(exc)})") from None
    if not isinstance(document, dict) or not isinstance(document.get("servers"), list):
        raise SourcesFileError(f"{where}: must be a mapping with a 'servers' list")
    unknown = sorted(map(str, document.keys() - {"servers"}))
    if unknown:
        raise SourcesFileError(f"{where}: unknown top-level field {', '.join(unknown)} (known: servers)")

    servers: list[LocalServer] = []
    taken: dict[str, int] = {}
    for number, entry in enumerate(document["servers"], start=1):
        label = f"{where}: {_entry_label(number, entry)}"
        try:
            server = _check_entry(entry, env)
        except _EntryError as exc:
            raise SourcesFileError(f"{label}: {exc}") from None
        if server.name in taken:
            raise SourcesFileError(f"{label}: 'name' {server.name!r} is taken by entry {taken[server.name]}")
        taken[server.name] = number
        servers.append(server)
    return tuple(servers)


class _EntryError(ValueError):
    pass


def _check_entry(entry: Any, env: Mapping[str, str]) -> LocalServer:
    if not isinstance(entry, dict):
        raise _EntryError("must be a mapping with name, kind and base_url")
    unknown = sorted(map(str, entry.keys() - set(_REQUIRED) - set(_OPTIONAL)))
    if unknown:
        known = ", ".join(_REQUIRED + _OPTIONAL)
        raise _EntryError(f"unknown field {', '.join(repr(name) for name in unknown)} (known: {known})")
    missing = [field for field in _REQUIRED if field not in entry]
    if missing:
        raise _EntryError(f"missing {', '.join(repr(field) for field in missing)}")
    api_key_env = _variable(entry.get("api_key_env"))
    api_key = None
    if api_key_env is not None:
        api_key = env.get(api_key_env) or None
        if api_key is None:
            raise _EntryError(f"'api_key_env': the variable {api_key_env} is not set")
    return LocalServer(
        name=_name(entry["name"]),
        kind=_kind(entry["kind"]),
        base_url=_base_url(entry["base_url"]),
        api_key=api_key,
        api_key_env=api_key_env,
        refresh_seconds=_refresh_seconds(entry.get("refresh_seconds")),
    )


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise _EntryError(
            f"'name' must be a URL segment of lowercase letters, digits and '-' (at most 64), got {value!r}"
        )
    if value in RESERVED_NAMES:
        raise _EntryError(
            f"'name' {value!r} is taken by the service itself (reserved: {', '.join(sorted(RESERVED_NAMES))})"
        )
    return value


def _kind(value: Any) -> str:
    if value not in LOCAL_SERVER_KINDS:
        raise _EntryError(f"'kind' must be one of {', '.join(LOCAL_SERVER_KINDS)}, got {value!r}")
    return value


def _base_url(value: Any) -> str:
    # The value may carry credentials (user:password@host): name the field, never echo it.
    if not isinstance(value, str):
        raise _EntryError("'base_url' must be an http(s) URL with a host")
    url = value.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise _EntryError("'base_url' must be an http(s) URL with a host") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _EntryError("'base_url' must be an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise _EntryError("'base_url' must not have a query or a fragment")
    return url


def _variable(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _VARIABLE.match(value):
        # The value is not echoed: a key pasted here by mistake must not reach the logs.
        raise _EntryError("'api_key_env' must be the name of an environment variable (letters, digits, _), not the key")
    return value


def _refresh_seconds(value: Any) -> float | None:
    if value is None:
        return None
    # bool is an int subclass: "refresh_seconds: yes" is a typo, not 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
        raise _EntryError(f"'refresh_seconds' must be a number greater than 0, got {value!r}")
    return float(value)


def _entry_label(number: int, entry: Any) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        return f"entry {number} ({entry['name']})"
    return f"entry {number}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "syntax error"
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return problem
