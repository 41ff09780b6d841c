"""What the suite's secret check reads of a log record: every part a log line could carry."""

from __future__ import annotations

import logging

# The attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def record_text(record: logging.LogRecord) -> str:
    """The message, every `extra=` field, the traceback and the stack of one record."""
    parts = [record.getMessage()]
    parts += [f"{name}={value!r}" for name, value in vars(record).items() if name not in _STANDARD_ATTRIBUTES]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


class RecordKeeper(logging.Handler):
    """Keeps the text of every record it sees."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[tuple[str, str]] = []  # (logger name, text)

    def emit(self, record: logging.LogRecord) -> None:
        # Taken now, before a later handler (the service's masking one) can rewrite the record.
        self.texts.append((record.name, record_text(record)))
