"""The refresh status of a source: what its last runs did, written with every publish."""

from __future__ import annotations

import dataclasses
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class RefreshStatus:
    """What the refresh job of one source last did; times are Unix seconds."""

    source: str
    outcome: str = "never_run"  # ok | failed | never_run
    last_attempt: float | None = None
    last_success: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    consecutive_failures: int = 0
    rows: int | None = None
    skipped_rows: int | None = None
    duration_seconds: float | None = None
    next_attempt_at: float | None = None
    # A main list that shrank by more than half: its row count, and since when it is held back.
    suspect_rows: int | None = None
    shrink_held_since: float | None = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes | None, source: str) -> RefreshStatus | None:
        """Parse a stored status; None when there is none or it is unreadable."""
        if not raw:
            return None
        try:
            document = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(document, dict):
            return None
        return cls.from_dict(document, source)

    @classmethod
    def from_dict(cls, document: dict[str, Any], source: str) -> RefreshStatus:
        """Keep the known fields of the right type; statuses written by older versions load too."""
        values: dict[str, Any] = {"source": source}
        for field in dataclasses.fields(cls):
            value = document.get(field.name)
            if field.name == "source" or value is None:
                continue
            if field.type in ("float | None",) and isinstance(value, (int, float)) and not isinstance(value, bool):
                values[field.name] = float(value)
            elif (field.type in ("int", "int | None") and isinstance(value, int) and not isinstance(value, bool)) or (
                field.type in ("str", "str | None") and isinstance(value, str)
            ):
                values[field.name] = value
        return cls(**values)

    def replace(self, **changes: Any) -> RefreshStatus:
        return dataclasses.replace(self, **changes)
