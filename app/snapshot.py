"""Snapshots: a catalog answer encoded once, so that serving it is sending bytes."""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json

from .sources.base import CatalogSpec


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """The exact response body of one catalog answer, with its ETag."""

    body: bytes
    etag: str
    source: str  # the `source` value inside the body
    rows: int
    fetched_at: float | None = None  # Unix time of the upstream fetch; None for curated data
    gzip_body: bytes = b""  # the body gzip-compressed once, here, not per request
    # Tombstones (rows of models gone upstream, with removed_at) as a JSON list: listed only
    # under ?include_removed=true, so not in the body.
    removed: bytes = b""

    @functools.cached_property
    def data(self) -> dict:
        """The `data` member, parsed once per snapshot and process (filters read its rows)."""
        return json.loads(self.body)["data"]

    @functools.cached_property
    def removed_rows(self) -> list[dict]:
        """The tombstones, parsed once per snapshot and process."""
        return json.loads(self.removed) if self.removed else []

    @property
    def gzip_etag(self) -> str:
        """The ETag of the gzip representation: another representation, another tag."""
        return self.etag[:-1] + '-gzip"'

    @classmethod
    def from_data(cls, data: dict, fetched_at: float | None = None, removed: list[dict] | None = None) -> Snapshot:
        """Encode the `data` member of the success envelope (and the tombstones, if any)."""
        body = json.dumps({"success": True, "data": data}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        removed_bytes = json.dumps(removed, ensure_ascii=False, separators=(",", ":")).encode() if removed else b""
        # The ETag depends on the bytes alone, so an unchanged catalog keeps its ETag; the
        # tombstones are served too (filtered answers are cached by this tag), so they count.
        digest = hashlib.blake2b(body, digest_size=16)
        if removed_bytes:
            digest.update(b"\n" + removed_bytes)
        etag = '"' + digest.hexdigest() + '"'
        return cls(
            body=body,
            etag=etag,
            source=data.get("source", ""),
            # A catalog's rows; other answers (the change feed) count their entries in `total`.
            rows=len(data["models"]) if "models" in data else data.get("total", 0),
            fetched_at=fetched_at,
            gzip_body=gzip.compress(body, compresslevel=6, mtime=0),
            removed=removed_bytes,
        )


def live_snapshot(
    catalog: CatalogSpec, rows: list[dict], fetched_at: float, removed: list[dict] | None = None
) -> Snapshot:
    """Rows from a successful poll, with `total` as the contract has it for live data."""
    data = {"models": rows, "source": catalog.live_label, "total": len(rows)}
    return Snapshot.from_data(data, fetched_at, removed)


def unreachable_snapshot(catalog: CatalogSpec, error: str, fetched_at: float | None = None) -> Snapshot:
    """No rows: the source could not be polled; `error` is a short message for people."""
    data = {"models": [], "source": catalog.unreachable_label, "total": 0, "error": error}
    return Snapshot.from_data(data, fetched_at)


def curated_snapshot(catalog: CatalogSpec, label: str) -> Snapshot:
    """The catalog's curated rows, labelled `curated` or `curated_fallback` (no `total`)."""
    return Snapshot.from_data({"models": list(catalog.curated_rows or ()), "source": label})
