"""Query filters on the catalog lists: parsed and checked once, applied to a snapshot's rows.

Filtering reads the rows the snapshot already holds (parsed once per snapshot), never an
upstream; each distinct filtered answer is encoded once and kept in a small cache.
"""

from __future__ import annotations

import collections
import dataclasses
import threading

from werkzeug.datastructures import MultiDict

from .snapshot import Snapshot
from .sources.rows import CAPABILITIES

FILTER_PARAMETERS = (
    "q", "provider", "supports", "min_context", "free", "new", "deprecated", "include_removed", "local",
)  # fmt: skip
# Parameters that take one value: a second one is an error, not silently ignored.
SINGLE_VALUED = ("q", "min_context", "free", "new", "deprecated", "include_removed", "local")
MAX_TEXT = 200
# Filtered answers kept per process, by their bytes (body and gzip body): a bound on memory
# whatever filters clients ask for.
MAX_CACHED_BYTES = 16 * 1024 * 1024


class InvalidParameter(ValueError):
    """A query parameter's value cannot be used; names the parameter."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclasses.dataclass(frozen=True)
class CatalogFilter:
    """What a client asked for; an empty filter keeps every row."""

    q: str | None = None
    providers: tuple[str, ...] = ()
    supports: tuple[str, ...] = ()
    min_context: int | None = None
    free: bool | None = None
    # Lifecycle (docs/lifecycle.md) and where a model runs.
    new: bool | None = None
    deprecated: bool | None = None
    include_removed: bool = False
    local: bool | None = None

    @classmethod
    def from_args(cls, args: MultiDict) -> CatalogFilter | None:
        """The filter in a query string, None when it has none; unknown parameters are ignored."""
        if not any(name in args for name in FILTER_PARAMETERS):
            return None
        for name in SINGLE_VALUED:
            if len(args.getlist(name)) > 1:
                raise InvalidParameter(name, f"{name} may be given once")
        return cls(
            q=_text(args, "q"),
            providers=tuple(
                sorted({_checked_text("provider", value).casefold() for value in args.getlist("provider")})
            ),
            supports=_supports(args),
            min_context=_positive(args, "min_context"),
            free=_boolean(args, "free"),
            new=_boolean(args, "new"),
            deprecated=_boolean(args, "deprecated"),
            include_removed=bool(_boolean(args, "include_removed")),
            local=_boolean(args, "local"),
        )

    def matches(self, row: dict) -> bool:
        """Whether a row passes every condition asked for."""
        if self.q and self.q not in row["id"].casefold() and self.q not in row["name"].casefold():
            return False
        # Ollama rows have no provider: there the model family stands for it.
        if self.providers and str(row.get("provider", row.get("family", ""))).casefold() not in self.providers:
            return False
        if self.supports and not set(self.supports) <= set(row.get("capabilities", ())):
            return False
        if self.min_context is not None and (row.get("context") or 0) < self.min_context:
            return False
        if self.new is not None and bool(row.get("is_new")) != self.new:
            return False
        if self.deprecated is not None and bool(row.get("deprecated")) != self.deprecated:
            return False
        # Only a local server's rows say `remote`: models it runs elsewhere (Ollama's cloud models).
        if self.local is not None and bool(row.get("remote")) == self.local:
            return False
        # Local (Ollama) models cost nothing.
        return self.free is None or row.get("is_free", "provider" not in row) == self.free


class FilteredAnswers:
    """Filtered snapshots, built once per (snapshot, filter) and kept in an LRU cache bounded by
    entries and by bytes."""

    def __init__(self, max_entries: int = 256, max_bytes: int = MAX_CACHED_BYTES) -> None:
        self._entries: collections.OrderedDict[tuple[str, CatalogFilter], Snapshot] = collections.OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._mutex = threading.Lock()

    @property
    def cached_bytes(self) -> int:
        """The bytes the cached answers hold."""
        return self._bytes

    def get(self, snapshot: Snapshot, wanted: CatalogFilter) -> Snapshot:
        key = (snapshot.etag, wanted)
        with self._mutex:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        data = snapshot.data
        listed = [*data["models"], *snapshot.removed_rows] if wanted.include_removed else data["models"]
        rows = [row for row in listed if wanted.matches(row)]
        filtered = {**data, "models": rows}
        if "total" in data:
            filtered["total"] = len(rows)
        answer = Snapshot.from_data(filtered, snapshot.fetched_at)
        size = _size(answer)
        if size > self._max_bytes:
            return answer  # served, not kept
        with self._mutex:
            if key not in self._entries:
                self._entries[key] = answer
                self._bytes += size
            while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= _size(dropped)
        return answer


def _size(snapshot: Snapshot) -> int:
    return len(snapshot.body) + len(snapshot.gzip_body)


def _checked_text(name: str, value: str) -> str:
    if not value or len(value) > MAX_TEXT:
        raise InvalidParameter(name, f"{name} must be between 1 and {MAX_TEXT} characters")
    return value


def _text(args: MultiDict, name: str) -> str | None:
    return _checked_text(name, args[name]).casefold() if name in args else None


def _supports(args: MultiDict) -> tuple[str, ...]:
    names = {part for value in args.getlist("supports") for part in value.split(",")}
    unknown = sorted(name for name in names if name not in CAPABILITIES)
    if unknown:
        shown = ", ".join(repr(name) for name in unknown)
        raise InvalidParameter("supports", f"supports takes a comma list of {', '.join(CAPABILITIES)}; got {shown}")
    return tuple(sorted(names))


def _positive(args: MultiDict, name: str) -> int | None:
    if name not in args:
        return None
    value = args[name]
    # The length first: int() of thousands of digits raises where a 400 is due.
    if len(value) > 12 or not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise InvalidParameter(name, f"{name} must be a positive whole number")
    return int(value)


def _boolean(args: MultiDict, name: str) -> bool | None:
    if name not in args:
        return None
    value = args[name]
    if value not in ("true", "false"):
        raise InvalidParameter(name, f"{name} must be true or false")
    return value == "true"
