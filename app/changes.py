"""The change feed: GET /api/models/changes?since=<RFC 3339>[&source=<source or catalog>].

Reads the entries the refresher recorded (app/history.py) for the catalogs asked for, newer
than `since`, oldest first. The answer is encoded like a snapshot, so it has an ETag and a
gzip variant, and a client that has it gets 304.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING

from werkzeug.datastructures import MultiDict

from .filters import InvalidParameter
from .history import iso_time
from .registry import Registry
from .snapshot import Snapshot

if TYPE_CHECKING:
    from .store import ProcessStore

# RFC 3339 date-time (section 5.6): a full date, T, a full time with optional fraction, and
# the offset (Z or ±hh:mm); T and Z may be lower case.
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")


class HistoryGone(Exception):
    """`since` is older than the history kept for the catalogs asked for."""

    def __init__(self, oldest: int) -> None:
        super().__init__(
            f"The change history kept starts at {iso_time(oldest)}; earlier changes are not known: "
            "reload the catalogs, then ask for changes since then"
        )
        self.oldest = iso_time(oldest)


def parse_since(value: str | None) -> float:
    """`since` as Unix seconds; InvalidParameter naming it when absent or not RFC 3339."""
    if value is None:
        raise InvalidParameter("since", "since is required: an RFC 3339 time such as 2026-08-01T00:00:00Z")
    match = _RFC3339.match(value)
    if not match:
        raise InvalidParameter("since", "since must be an RFC 3339 time with its offset, such as 2026-08-01T00:00:00Z")
    text = value.upper()
    if match.group(6) == "60":
        # A leap second: the moment just before the next minute will do.
        text = text[:17] + "59" + text[19:]
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidParameter("since", f"since is not a real time: {value[:40]!r}") from None


def chosen_catalogs(registry: Registry, choice: str | None) -> tuple[str, ...]:
    """The catalogs `source` names: every one, a source's catalogs (a source name wins where a
    catalog has the same name, as `ollama` does), or one catalog."""
    if choice is None:
        return tuple(registry.catalogs)
    if choice in registry.sources:
        return tuple(catalog.name for catalog in registry.sources[choice].catalogs)
    if choice in registry.catalogs:
        return (choice,)
    names = ", ".join(dict.fromkeys([*registry.sources, *registry.catalogs]))
    raise InvalidParameter("source", f"source must name a source or a catalog: one of {names}")


def changes_answer(store: ProcessStore, registry: Registry, args: MultiDict) -> Snapshot:
    """The feed's answer for a query string; raises InvalidParameter, HistoryGone or StoreUnavailable."""
    since = parse_since(args.get("since"))
    names = chosen_catalogs(registry, args.get("source"))
    logs = store.read_changes(names, since)
    known = [log.history_from for log in logs.values() if log.history_from is not None]
    history_from = max(known) if known else None
    if history_from is not None and since < history_from:
        raise HistoryGone(history_from)
    entries = sorted((at, item) for log in logs.values() for at, item in log.entries)
    changes = [json.loads(item) for _, item in entries]
    data = {
        "changes": changes,
        "total": len(changes),
        "history_from": iso_time(history_from) if history_from is not None else None,
    }
    return Snapshot.from_data(data)
