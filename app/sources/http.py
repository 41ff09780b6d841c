"""What every upstream call shares: one session, a total deadline, a byte cap, no redirects.

Every failure is an UpstreamError whose text is short and safe to log and to show: it names
the upstream and what went wrong, never a URL's credentials, a key or a response body. Keys go
only to the configured host: redirects are never followed.
"""

from __future__ import annotations

import email.utils
import json
import socket
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.util import Timeout

USER_AGENT = "model-catalog/1.0"
_READ_SIZE = 64 * 1024


class UpstreamError(Exception):
    """An upstream call failed; the message is fit for logs, status and responses."""


class UpstreamRateLimited(UpstreamError):
    """The upstream answered 429; `retry_after` is in seconds when it said how long."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamKeyRejected(UpstreamError):
    """The upstream refused the key (401 or 403): retrying sooner than the interval cannot help."""


class UpstreamNotFound(UpstreamError):
    """The upstream answered 404: a server without that endpoint (an older version) may have another."""


def display_host(url: str) -> str:
    """host:port of a URL, without any user:password part."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.hostname}{port}"


class HttpClient:
    """One configured requests session; every call has a deadline and a byte cap."""

    def __init__(self, timeout_seconds: float, max_bytes: int) -> None:
        self.timeout_seconds = timeout_seconds
        self.max_bytes = max_bytes
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})

    def request_json(
        self,
        method: str,
        url: str,
        label: str,
        *,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        timeout_seconds: float | None = None,
    ) -> Any:
        """Send one request and return its JSON document, or raise UpstreamError."""
        budget = self.timeout_seconds if timeout_seconds is None else timeout_seconds
        deadline = time.monotonic() + budget
        try:
            response = self.session.request(
                method,
                url,
                headers=headers,
                json=json_body,
                # total: the connect and the wait for headers share one budget.
                timeout=Timeout(total=budget),  # type: ignore[arg-type]  # urllib3's Timeout: requests passes it on
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout:
            raise UpstreamError(f"{label} did not answer within {budget:g} s") from None
        except requests.RequestException as exc:
            raise UpstreamError(f"cannot connect to {label} ({_connection_problem(exc)})") from None

        with response:
            _check_status(response, label)
            body = self._read_body(response, label, deadline, budget)
        content_type = response.headers.get("Content-Type", "no content type")
        try:
            return json.loads(body)
        except ValueError:
            raise UpstreamError(
                f"{label} sent a response that is not JSON ({content_type}, {len(body)} bytes)"
            ) from None

    def _read_body(self, response: requests.Response, label: str, deadline: float, budget: float) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise UpstreamError(f"{label} sent more than {self.max_bytes} bytes")
        raw = response.raw
        sock = _socket_of(raw)
        chunks: list[bytes] = []
        size = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UpstreamError(f"{label} did not send its answer within {budget:g} s")
            if sock is not None:
                # A read timeout alone would let a body that trickles in run forever.
                sock.settimeout(remaining)
            try:
                # read1 returns what has arrived, so the deadline is checked between pieces;
                # decoding happens here, so the cap counts decoded (decompressed) bytes.
                chunk = raw.read1(_READ_SIZE, decode_content=True)
            except Exception as exc:  # urllib3 and socket errors of many kinds
                if _is_timeout(exc):
                    raise UpstreamError(f"{label} did not send its answer within {budget:g} s") from None
                raise UpstreamError(f"{label} broke off its answer ({_connection_problem(exc)})") from None
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise UpstreamError(f"{label} sent more than {self.max_bytes} bytes")
            chunks.append(chunk)


def _check_status(response: requests.Response, label: str) -> None:
    status = response.status_code
    if 300 <= status < 400:
        raise UpstreamError(f"{label} answered a redirect (HTTP {status}), which is not followed")
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise UpstreamRateLimited(f"{label} is rate limiting (HTTP 429)", retry_after)
    if status in (401, 403):
        raise UpstreamKeyRejected(f"{label}: key rejected ({status})")
    if status == 404:
        raise UpstreamNotFound(f"{label} answered HTTP 404")
    if status >= 400:
        raise UpstreamError(f"{label} answered HTTP {status}")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP-date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


def _socket_of(raw: Any) -> socket.socket | None:
    connection = getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _is_timeout(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (TimeoutError, socket.timeout, requests.Timeout)):
            return True
        if "timed out" in str(seen).lower():
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _connection_problem(exc: BaseException) -> str:
    """A few words on why a connection failed, without URLs or credentials."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, ConnectionResetError):
            return "connection reset"
        if isinstance(seen, socket.gaierror):
            return "host name not resolved"
        if isinstance(seen, TimeoutError):
            return "timed out"
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    for marker, words in (
        ("refused", "connection refused"),
        ("name or service not known", "host name not resolved"),
        ("nodename nor servname", "host name not resolved"),
        ("failed to resolve", "host name not resolved"),
        ("reset", "connection reset"),
        ("incomplete", "answer cut short"),
        ("ssl", "TLS error"),
    ):
        if marker in text:
            return words
    return "network error"
