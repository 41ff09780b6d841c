"""Redis clients from the settings: one server by URL, or the primary that Sentinel names.

REDIS_URL gives the scheme (rediss:// for TLS), the ACL user and password, the database and
redis-py's query options (ssl_cert_reqs, ssl_certfile, ...); REDIS_CA_FILE the CA to trust. With
REDIS_SENTINELS the sentinels say where the primary is, and the URL's host and port are unused.
Every store gets two clients: a fast one for the request path and a patient one for the refresher.
"""

from __future__ import annotations

import dataclasses

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.connection import Connection, SSLConnection, UnixDomainSocketConnection, parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel

from config import ConfigError, Settings

from .store import RedisStore

# The service sets how long a client waits and how often it retries; a URL must not undo that.
SERVICE_OWNED_OPTIONS = frozenset({"socket_timeout", "socket_connect_timeout", "retry_on_timeout", "retry_on_error"})


@dataclasses.dataclass(frozen=True)
class Patience:
    """How long one client waits for Redis (or a sentinel) and how often it tries again."""

    connect_timeout: float
    timeout: float
    retries: int

    def retry(self) -> Retry:
        if self.retries == 0:
            return Retry(NoBackoff(), 0)
        return Retry(ExponentialBackoff(cap=1, base=0.1), self.retries)


# The refresher may wait a little for Redis: it runs in the background.
PATIENT = Patience(connect_timeout=2, timeout=5, retries=2)


def fast(settings: Settings) -> Patience:
    """The request path's: one try, REDIS_TIMEOUT_SECONDS. redis-py's defaults (5 s timeouts,
    retries with backoff) could hold a request for a minute."""
    return Patience(settings.redis_timeout_seconds, settings.redis_timeout_seconds, 0)


def redis_store(settings: Settings, **options) -> RedisStore:
    """The Redis store for REDIS_URL (and REDIS_SENTINELS); connects to nothing yet."""
    options = {"key_prefix": settings.redis_key_prefix, "check_seconds": settings.snapshot_check_seconds, **options}
    return RedisStore(make_client(settings, fast(settings)), make_client(settings, PATIENT), **options)


def make_client(settings: Settings, patience: Patience) -> redis.Redis:
    """A client of the primary: the URL's server, or the one the sentinels name at each connect."""
    options = _url_options(settings)
    options.update(
        socket_connect_timeout=patience.connect_timeout,
        socket_timeout=patience.timeout,
        retry=patience.retry(),
    )
    if not settings.redis_sentinels:
        return redis.Redis(connection_pool=redis.ConnectionPool(**options))
    tls = options.pop("connection_class") is SSLConnection
    for unused in ("host", "port"):
        options.pop(unused, None)
    sentinel_options = _sentinel_options(settings, patience, options, tls)
    sentinel = Sentinel([], sentinel_kwargs=sentinel_options)
    sentinel.sentinels = [SentinelClient(host, port, **sentinel_options) for host, port in settings.redis_sentinels]
    # The pool asks the sentinels for the primary's address at each new connection, and drops a
    # connection whose server answers READONLY (a demoted primary): the next one finds the new.
    return sentinel.master_for(settings.redis_sentinel_master, ssl=tls, **options)


class SentinelClient(redis.Redis):
    """A client of one sentinel, named by its address in errors ("No master found for ...")
    instead of a page of connection settings."""

    def __repr__(self) -> str:
        kwargs = self.get_connection_kwargs()
        return f"sentinel {kwargs.get('host')}:{kwargs.get('port')}"


def _url_options(settings: Settings) -> dict:
    try:
        options = parse_url(settings.redis_url or "")
    except ValueError as exc:
        # redis-py's message can quote a piece of the URL: with a password in it, a piece of the
        # password (an unescaped # or / cuts it short), so then only the form is named.
        if "@" not in (settings.redis_url or ""):
            raise ConfigError(f"REDIS_URL: {exc}") from None
        raise ConfigError(
            "REDIS_URL cannot be parsed: check its form (redis://user:password@host:port/db) and "
            "percent-encode @ : / ? # % in the user name and password"
        ) from None
    owned = SERVICE_OWNED_OPTIONS.intersection(options)
    if owned:
        raise ConfigError(
            f"REDIS_URL sets {', '.join(sorted(owned))}: the service sets timeouts and retries itself "
            "(REDIS_TIMEOUT_SECONDS for the request path)"
        )
    options.setdefault("connection_class", Connection)
    if settings.redis_ca_file:
        options["ssl_ca_certs"] = str(settings.redis_ca_file)
    _check_known(options)
    return options


def _check_known(options: dict) -> None:
    """Stop at start-up on an option redis-py does not know: else every command would fail."""
    connection_class = options["connection_class"]
    kwargs = {key: value for key, value in options.items() if key not in ("connection_class", "max_connections")}
    if connection_class is UnixDomainSocketConnection:
        kwargs.pop("host", None)
    try:
        connection_class(**kwargs)  # builds the object only; nothing connects
    except (TypeError, redis.RedisError) as exc:
        raise ConfigError(f"REDIS_URL has an option redis-py cannot use: {exc}") from None


def _sentinel_options(settings: Settings, patience: Patience, options: dict, tls: bool) -> dict:
    """How to reach the sentinels: the client's timeouts (so the fast client stays fast while it
    looks for the primary), their own credentials, and TLS when the URL says so."""
    sentinel: dict = {
        "socket_connect_timeout": patience.connect_timeout,
        "socket_timeout": patience.timeout,
        # One try per sentinel: the lookup already asks each in turn, and the client's own
        # retries repeat the whole lookup.
        "retry": Retry(NoBackoff(), 0),
    }
    if settings.redis_sentinel_username:
        sentinel["username"] = settings.redis_sentinel_username
    if settings.redis_sentinel_password:
        sentinel["password"] = settings.redis_sentinel_password
    if tls:
        sentinel["ssl"] = True
        sentinel.update({key: value for key, value in options.items() if key.startswith("ssl_")})
    return sentinel
