"""Logging: one line per event, JSON when LOG_FORMAT=json, secrets masked on the way out."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from config import Settings

# Fields that a log call may add with `extra=` and that the JSON line carries.
EVENT_FIELDS = ("event", "source", "outcome", "duration_ms", "rows", "skipped", "kind", "error")
MASK = "***"


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in EVENT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class SecretMaskingFilter(logging.Filter):
    """Replaces configured secrets in a record's final text, whatever put them there."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(secret in text for secret in self._secrets):
            record.msg, record.args = mask_secrets(text, self._secrets), None
        if record.exc_info and not record.exc_text:
            # A traceback can quote a secret too (an exception's message, a local's repr): format
            # it here, masked, so that handlers print this text instead of formatting it again.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and any(secret in record.exc_text for secret in self._secrets):
            record.exc_text = mask_secrets(record.exc_text, self._secrets)
        return True


def mask_secrets(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def configure_logging(settings: Settings) -> None:
    """Send the root logger to stderr in the configured format (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMaskingFilter(settings.secrets))
    root = logging.getLogger()
    for existing in [h for h in root.handlers if getattr(h, "_catalog_handler", False)]:
        root.removeHandler(existing)
    handler._catalog_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # APScheduler logs every job start and end at INFO: that is our refresh line's job.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
