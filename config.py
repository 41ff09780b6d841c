"""Settings read from the environment: the one place the service looks at os.environ."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from local_servers import LocalServer, SourcesFileError, load_local_servers

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent

# Only ever used by the embedded development run, which says so in a warning.
DEV_JWT_SECRET = "dev-only-secret-not-for-production-use-0123456789"  # noqa: S105 - the dev run says so
MIN_JWT_SECRET_BYTES = 32


class ConfigError(ValueError):
    """A setting is missing or malformed; start-up must stop."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the service can be told, with its defaults (the README lists them)."""

    jwt_secret_key: str = dataclasses.field(repr=False)
    app_env: str = "production"
    redis_url: str | None = dataclasses.field(default=None, repr=False)  # may carry a password
    redis_key_prefix: str = "catalog:"
    openrouter_api_key: str | None = dataclasses.field(default=None, repr=False)
    openrouter_base_url: str = dataclasses.field(default="https://openrouter.ai/api/v1", repr=False)
    ollama_base_url: str = dataclasses.field(default="http://localhost:11434", repr=False)
    openrouter_refresh_seconds: float = 900.0
    ollama_refresh_seconds: float = 30.0
    # Hosted providers: each is polled only when its key is set.
    openai_api_key: str | None = dataclasses.field(default=None, repr=False)
    openai_base_url: str = dataclasses.field(default="https://api.openai.com/v1", repr=False)
    anthropic_api_key: str | None = dataclasses.field(default=None, repr=False)
    anthropic_base_url: str = dataclasses.field(default="https://api.anthropic.com/v1", repr=False)
    gemini_api_key: str | None = dataclasses.field(default=None, repr=False)
    gemini_base_url: str = dataclasses.field(default="https://generativelanguage.googleapis.com/v1beta", repr=False)
    mistral_api_key: str | None = dataclasses.field(default=None, repr=False)
    mistral_base_url: str = dataclasses.field(default="https://api.mistral.ai/v1", repr=False)
    provider_refresh_seconds: float = 900.0
    upstream_timeout_seconds: float = 10.0
    upstream_max_bytes: int = 16 * 1024 * 1024
    scheduler_enabled: bool | None = None  # None: not said, see runs_scheduler()
    snapshot_check_seconds: float = 0.5
    redis_timeout_seconds: float = 0.25
    curated_dir: Path = PROJECT_ROOT / "curated"
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    host: str | None = None  # None: each entry point's own default
    port: int = 8000
    log_format: str = "text"
    log_level: str = "INFO"
    admin_claim: str = "role"
    admin_claim_value: str = "admin"
    refresh_request_seconds: float = 30.0
    redis_ca_file: Path | None = None
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str = "mymaster"
    redis_sentinel_username: str | None = None
    redis_sentinel_password: str | None = dataclasses.field(default=None, repr=False)
    # Origins a browser frontend may call the API from; ("*",) for any, () for none.
    cors_origins: tuple[str, ...] = ()
    sources_file: Path | None = None  # None: no local servers
    local_refresh_seconds: float = 30.0
    local_servers: tuple[LocalServer, ...] = ()
    # Catalog lifecycle (docs/lifecycle.md): the change history, "new" and "going away".
    history_days: float = 90.0
    history_max_entries: int = 10_000
    new_model_days: float = 14.0
    deprecation_warning_days: float = 30.0
    tombstone_days: float = 30.0

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line, a response or an error."""
        values = (
            self.jwt_secret_key,
            self.openrouter_api_key,
            self.openai_api_key,
            self.anthropic_api_key,
            self.gemini_api_key,
            self.mistral_api_key,
            self.redis_sentinel_password,
            *_url_passwords(self.redis_url),
            *(server.api_key for server in self.local_servers),
        )
        return tuple(value for value in values if value)

    def runs_scheduler(self, embedded: bool) -> bool:
        """Whether this web process runs the refresh jobs: as SCHEDULER_ENABLED says, else
        when nothing else would (the embedded run, or no Redis to share snapshots through)."""
        if self.scheduler_enabled is not None:
            return self.scheduler_enabled
        return embedded or not self.redis_url

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and check every variable; raise ConfigError naming the bad one."""
        env = os.environ if environ is None else environ
        app_env = _choice(env, "APP_ENV", ("production", "development"), "production")
        development = app_env == "development"

        secret = env.get("JWT_SECRET_KEY", "")
        if not secret:
            if not development:
                raise ConfigError(
                    "JWT_SECRET_KEY is not set: set it to the HS256 secret shared with the "
                    "application that issues tokens (at least 32 bytes)"
                )
            log.warning("JWT_SECRET_KEY is not set: using the built-in development secret")
            secret = DEV_JWT_SECRET
        elif len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            message = f"JWT_SECRET_KEY is shorter than {MIN_JWT_SECRET_BYTES} bytes"
            if not development:
                raise ConfigError(message)
            log.warning("%s: accepted only because APP_ENV=development", message)

        # Read here, once: the file names the variables that hold the servers' keys.
        sources_file = Path(env["SOURCES_FILE"].strip()) if env.get("SOURCES_FILE", "").strip() else None

        settings = cls(
            jwt_secret_key=secret,
            app_env=app_env,
            redis_url=env.get("REDIS_URL") or None,
            redis_key_prefix=env.get("REDIS_KEY_PREFIX", "catalog:"),
            openrouter_api_key=env.get("OPENROUTER_API_KEY") or None,
            openrouter_base_url=_url(env, "OPENROUTER_BASE_URL", cls.openrouter_base_url),
            ollama_base_url=_url(env, "OLLAMA_BASE_URL", cls.ollama_base_url),
            openrouter_refresh_seconds=_positive(env, "OPENROUTER_REFRESH_SECONDS", 900),
            ollama_refresh_seconds=_positive(env, "OLLAMA_REFRESH_SECONDS", 30),
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=_url(env, "OPENAI_BASE_URL", cls.openai_base_url),
            anthropic_api_key=env.get("ANTHROPIC_API_KEY") or None,
            anthropic_base_url=_url(env, "ANTHROPIC_BASE_URL", cls.anthropic_base_url),
            gemini_api_key=env.get("GEMINI_API_KEY") or None,
            gemini_base_url=_url(env, "GEMINI_BASE_URL", cls.gemini_base_url),
            mistral_api_key=env.get("MISTRAL_API_KEY") or None,
            mistral_base_url=_url(env, "MISTRAL_BASE_URL", cls.mistral_base_url),
            provider_refresh_seconds=_positive(env, "PROVIDER_REFRESH_SECONDS", 900),
            upstream_timeout_seconds=_positive(env, "UPSTREAM_TIMEOUT_SECONDS", 10),
            upstream_max_bytes=int(_positive(env, "UPSTREAM_MAX_BYTES", 16 * 1024 * 1024)),
            scheduler_enabled=_flag(env, "SCHEDULER_ENABLED"),
            snapshot_check_seconds=_positive(env, "SNAPSHOT_CHECK_SECONDS", 0.5),
            redis_timeout_seconds=_positive(env, "REDIS_TIMEOUT_SECONDS", 0.25),
            curated_dir=Path(env.get("CURATED_DIR") or PROJECT_ROOT / "curated"),
            jwt_audience=env.get("JWT_AUDIENCE") or None,
            jwt_issuer=env.get("JWT_ISSUER") or None,
            host=env.get("HOST") or None,
            port=_port(env, "PORT", 8000),
            log_format=_choice(env, "LOG_FORMAT", ("text", "json"), "text"),
            log_level=_choice(env, "LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper(),
            admin_claim=env.get("ADMIN_CLAIM") or "role",
            admin_claim_value=env.get("ADMIN_CLAIM_VALUE") or "admin",
            refresh_request_seconds=_positive(env, "REFRESH_REQUEST_SECONDS", 30),
            redis_ca_file=_readable_file(env, "REDIS_CA_FILE"),
            redis_sentinels=_sentinels(env, "REDIS_SENTINELS"),
            redis_sentinel_master=env.get("REDIS_SENTINEL_MASTER", "").strip() or "mymaster",
            redis_sentinel_username=env.get("REDIS_SENTINEL_USERNAME") or None,
            redis_sentinel_password=env.get("REDIS_SENTINEL_PASSWORD") or None,
            cors_origins=_origins(env, "CORS_ORIGINS"),
            sources_file=sources_file,
            local_refresh_seconds=_positive(env, "LOCAL_REFRESH_SECONDS", 30),
            local_servers=_local_servers(sources_file, env),
            history_days=_positive(env, "HISTORY_DAYS", 90),
            history_max_entries=int(_positive(env, "HISTORY_MAX_ENTRIES", 10_000)),
            new_model_days=_positive(env, "NEW_MODEL_DAYS", 14),
            deprecation_warning_days=_positive(env, "DEPRECATION_WARNING_DAYS", 30),
            tombstone_days=_positive(env, "TOMBSTONE_DAYS", 30),
        )
        if settings.redis_url:
            _check_redis_url(settings.redis_url)
        _check_redis_topology(settings, env)
        return settings


def _origins(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma list of origins (scheme://host[:port]), or * alone for any origin."""
    values = tuple(part.strip().rstrip("/") for part in env.get(name, "").split(",") if part.strip())
    if "*" in values:
        if values != ("*",):
            raise ConfigError(f"{name}: * stands alone (any origin), not in a list")
        return values
    for value in values:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query:
            raise ConfigError(
                f"{name}: {value!r} is not an origin like https://app.example.com or http://localhost:5173"
            )
    return values


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be greater than 0, got {raw!r}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigError(f"{name} must be a port number, got {raw!r}")
    return int(raw)


def _flag(env: Mapping[str, str], name: str) -> bool | None:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # The value may carry credentials: name the variable, not the value.
        raise ConfigError(f"{name} must be an http(s) URL with a host")
    return value


def _local_servers(path: Path | None, env: Mapping[str, str]) -> tuple[LocalServer, ...]:
    if path is None:
        return ()
    try:
        return load_local_servers(path, env)
    except SourcesFileError as exc:
        raise ConfigError(str(exc)) from None


def _check_redis_url(url: str) -> None:
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError("REDIS_URL must start with redis://, rediss:// or unix://")


def _url_passwords(url: str | None) -> tuple[str, ...]:
    """The password of a URL as written and as decoded: either may end up in a message."""
    password = urlsplit(url).password if url else None
    return (password, unquote(password)) if password else ()


def _readable_file(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"{name} must name a readable file, got {raw!r}")
    return path


def _sentinels(env: Mapping[str, str], name: str) -> tuple[tuple[str, int], ...]:
    raw = env.get(name, "").strip()
    if not raw:
        return ()
    sentinels = []
    for item in (part.strip() for part in raw.split(",")):
        host, _, port = item.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")  # [::1]:26379
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name} must be a comma-separated list of host:port, got {item!r}")
        sentinels.append((host, int(port)))
    return tuple(sentinels)


def _check_redis_topology(settings: Settings, env: Mapping[str, str]) -> None:
    scheme = urlsplit(settings.redis_url).scheme if settings.redis_url else None
    if settings.redis_ca_file and scheme != "rediss":
        raise ConfigError("REDIS_CA_FILE is set, but REDIS_URL does not start with rediss://")
    if settings.redis_sentinels:
        # REDIS_URL stays the switch for the Redis tier; with sentinels it gives the scheme,
        # credentials and database, and the sentinels say where the primary is.
        if scheme not in ("redis", "rediss"):
            raise ConfigError(
                "REDIS_SENTINELS needs REDIS_URL as redis:// or rediss:// (its credentials, database and "
                "scheme are used; its host and port are not), e.g. redis://user:password@mymaster/0"
            )
        return
    for name in ("REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_USERNAME", "REDIS_SENTINEL_PASSWORD"):
        if env.get(name):
            raise ConfigError(f"{name} is set, but REDIS_SENTINELS is not")
