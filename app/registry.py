"""The registry: every declared source and catalog, looked up by name or path.

Routes, the fast path's table, refresh jobs, /status, /readyz, metric labels, the CLI's
--source choices and POST /refresh choices are all derived from it.
"""

from __future__ import annotations

from collections.abc import Iterable

from .sources.base import API_PREFIX, CatalogSpec, Source

ALL_SOURCES = "all"
# Paths under /api/models that are not catalogs: a source may not take them.
RESERVED_PATHS = frozenset(
    f"{API_PREFIX}/{segment}" for segment in ("status", "refresh", "openapi.json", "embeddings", "changes")
)


class RegistryError(ValueError):
    """Two declarations collide; start-up must stop."""


class Registry:
    """The configured sources and their catalogs, in declaration order."""

    def __init__(self, sources: Iterable[Source]) -> None:
        self.sources: dict[str, Source] = {}
        self.catalogs: dict[str, CatalogSpec] = {}
        self.by_path: dict[str, CatalogSpec] = {}
        self._source_of: dict[str, Source] = {}
        for source in sources:
            if source.name in self.sources or source.name == ALL_SOURCES:
                raise RegistryError(f"source {source.name!r} is declared twice or takes a reserved name")
            self.sources[source.name] = source
            for catalog in source.catalogs:
                if catalog.name in self.catalogs:
                    raise RegistryError(f"catalog {catalog.name!r} is declared twice")
                if catalog.path in self.by_path or catalog.path in RESERVED_PATHS:
                    raise RegistryError(f"path {catalog.path} is declared twice or reserved")
                self.catalogs[catalog.name] = catalog
                self.by_path[catalog.path] = catalog
                self._source_of[catalog.name] = source

    def source_of(self, catalog: str) -> Source:
        """The source that publishes a catalog."""
        return self._source_of[catalog]

    @property
    def refresh_choices(self) -> tuple[str, ...]:
        """What a person may ask to refresh: each source, or all of them."""
        return (*self.sources, ALL_SOURCES)

    def chosen(self, choice: str) -> list[Source]:
        """The sources a refresh choice names."""
        if choice == ALL_SOURCES:
            return list(self.sources.values())
        return [self.sources[choice]]
