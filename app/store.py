"""The snapshot store: a process tier always, a Redis tier when REDIS_URL is set.

The request path only reads; the refresher writes. Writes are fenced by a per-source lock,
so a refresher that lost its lock (it ran past the TTL) cannot publish over a newer run.
Snapshots are stored by catalog name; locks, statuses and refresh requests by source name.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Callable

import redis

from .history import CatalogHistory, ChangeLog, HistoryUpdate, trim
from .snapshot import Snapshot
from .status import RefreshStatus

log = logging.getLogger(__name__)


class StoreUnavailable(RuntimeError):
    """The shared store cannot be reached; the caller decides what that means."""


@dataclasses.dataclass(frozen=True)
class RefreshLock:
    """Proof that this process may refresh one source until `expires_at` (monotonic)."""

    name: str
    token: str
    expires_at: float


class ProcessStore:
    """The process tier alone: the embedded default, one process, nothing to install."""

    def __init__(self) -> None:
        self._snapshots: dict[str, Snapshot] = {}
        self._statuses: dict[str, RefreshStatus] = {}
        self._locks: dict[str, RefreshLock] = {}
        self._refresh_requests: dict[str, float] = {}
        self._due: dict[str, bool] = {}
        # The catalogs' histories (app/history.py): state, kept entries, and from when complete.
        self._histories: dict[str, CatalogHistory] = {}
        self._changes: dict[str, list[tuple[int, str]]] = {}
        self._history_from: dict[str, int] = {}
        self._mutex = threading.Lock()
        # Called with the operation's name whenever the shared tier fails (metrics count them).
        self.on_shared_error: Callable[[str], None] = lambda operation: None

    @property
    def shared(self) -> bool:
        """Whether other processes see what this store holds."""
        return False

    def read(self, name: str) -> Snapshot | None:
        """The newest snapshot of a catalog this process knows of."""
        return self._snapshots.get(name)

    def read_current(self, name: str) -> Snapshot | None:
        """The newest snapshot of a catalog, for the refresher: asks the shared tier every time
        and raises StoreUnavailable rather than guessing from the process tier."""
        return self._snapshots.get(name)

    def read_status(self, name: str) -> RefreshStatus | None:
        """The refresh status of a source, as its last run wrote it."""
        return self._statuses.get(name)

    def read_statuses(self, names: tuple[str, ...]) -> dict[str, RefreshStatus | None]:
        """Several statuses at once, for the request path: never waits long, never raises."""
        return {name: self._statuses.get(name) for name in names}

    def acquire_lock(self, name: str, ttl_seconds: float) -> RefreshLock | None:
        """Take the refresh lock of a source, or None when another run holds it."""
        with self._mutex:
            held = self._locks.get(name)
            if held is not None and held.expires_at > time.monotonic():
                return None
            lock = _new_lock(name, ttl_seconds)
            self._locks[name] = lock
            return lock

    def release_lock(self, lock: RefreshLock) -> None:
        """Give the lock back, if it is still ours."""
        with self._mutex:
            if self._locks.get(lock.name) == lock:
                del self._locks[lock.name]

    def publish(
        self,
        lock: RefreshLock,
        snapshots: dict[str, Snapshot],
        status: RefreshStatus,
        histories: dict[str, HistoryUpdate] | None = None,
    ) -> bool:
        """Store new snapshots by name (none: status only), the status of the lock's source and
        the history updates of its catalogs, all in one step; False, and nothing stored, when
        the lock was lost."""
        with self._mutex:
            if not self._holds(lock):
                return False
            self._remember(lock.name, snapshots, status)
            for name, update in (histories or {}).items():
                self._record_history(name, update)
            return True

    def read_histories(self, names: tuple[str, ...]) -> dict[str, CatalogHistory | None]:
        """The history state of each catalog, for the refresher (holding the source's lock)."""
        return {name: self._histories.get(name) for name in names}

    def read_changes(self, names: tuple[str, ...], since: float) -> dict[str, ChangeLog]:
        """Each catalog's kept entries newer than `since`, for the change feed."""
        with self._mutex:
            return {
                name: ChangeLog(
                    self._history_from.get(name),
                    # Ordered as Redis orders a sorted set: by time, then by the entry's text.
                    sorted((at, item) for at, item in self._changes.get(name, ()) if at > since),
                )
                for name in names
            }

    def _record_history(self, name: str, update: HistoryUpdate) -> None:
        entries = self._changes.get(name, []) + [(entry.at, entry.to_json()) for entry in update.entries]
        kept, dropped_through = trim(entries, update.keep_after, update.max_entries)
        self._changes[name] = kept
        self._histories[name] = update.state
        self._history_from[name] = max(
            self._history_from.get(name, update.state.baseline_at), update.state.baseline_at, dropped_through or 0
        )

    def claim_refresh_requests(self, names: list[str], seconds: float) -> float:
        """Take the right to queue a refresh of every one of `names` for `seconds`, all or none:
        0 when taken, else how long until all can be (a request here or in any process took one)."""
        with self._mutex:
            now = time.monotonic()
            wait = max((self._refresh_requests.get(name, 0.0) - now for name in names), default=0.0)
            if wait > 0:
                return wait
            for name in names:
                self._refresh_requests[name] = now + seconds
            return 0.0

    def mark_due(self, names: list[str], accept_shrink: bool = False) -> None:
        """Ask whoever runs the refresh jobs to refresh these sources now."""
        with self._mutex:
            for name in names:
                self._due[name] = self._due.get(name, False) or accept_shrink

    def take_due(self) -> list[tuple[str, bool]]:
        """The sources asked for since the last call, each with whether a shrink was accepted
        (each handed out once)."""
        with self._mutex:
            due, self._due = sorted(self._due.items()), {}
            return due

    def _holds(self, lock: RefreshLock) -> bool:
        return self._locks.get(lock.name) == lock and lock.expires_at > time.monotonic()

    def _remember(self, name: str, snapshots: dict[str, Snapshot], status: RefreshStatus) -> None:
        self._snapshots.update(snapshots)
        self._statuses[name] = status

    def ping(self) -> bool:
        """Whether the shared tier answers; the process tier always does."""
        return True


class RedisStore(ProcessStore):
    """Redis, shared by every worker and replica, in front of the process tier."""

    def __init__(
        self,
        fast: redis.Redis,
        patient: redis.Redis,
        key_prefix: str = "catalog:",
        check_seconds: float = 0.5,
        error_backoff_seconds: float = 2.0,
    ) -> None:
        """`fast` serves the request path (fails fast), `patient` the refresher; see redis_clients.py."""
        super().__init__()
        self._prefix = key_prefix
        self._check_seconds = check_seconds
        self._error_backoff_seconds = error_backoff_seconds
        self._next_check: dict[str, float] = {}
        # After a failure the request path leaves Redis alone for a while: one slow request
        # per back-off, not one per request.
        self._redis_down_until = 0.0
        self._failing = False
        self._fast = fast
        self._patient = patient
        self._publish_script = self._patient.register_script(_PUBLISH_LUA)
        self._release_script = self._patient.register_script(_RELEASE_LUA)
        self._claim_script = self._fast.register_script(_CLAIM_LUA)

    @property
    def shared(self) -> bool:
        return True

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}{kind}:{name}"

    def read(self, name: str) -> Snapshot | None:
        local = self._snapshots.get(name)
        now = time.monotonic()
        if now < self._redis_down_until:
            return local
        # With a copy in hand, ask Redis at most every check_seconds; without one, ask now:
        # a worker must not serve curated data while Redis holds a live snapshot.
        if local is not None and now < self._next_check.get(name, 0.0):
            return local
        # Claim the check before doing it, so concurrent requests serve the local copy.
        self._next_check[name] = now + self._check_seconds
        key = self._key("snapshot", name)
        try:
            etag = self._fast.hget(key, "etag")
            if etag is None or (local is not None and _text(etag) == local.etag):
                self._mark_healthy()
                return local
            fields = self._fast.hgetall(key)
        except redis.RedisError as exc:
            self._mark_failing("read", exc)
            return local
        self._mark_healthy()
        snapshot = _snapshot_from_fields(fields)  # type: ignore[arg-type]  # bytes: no decode_responses
        if snapshot is None:
            return local
        self._snapshots[name] = snapshot
        return snapshot

    def read_current(self, name: str) -> Snapshot | None:
        try:
            fields = self._patient.hgetall(self._key("snapshot", name))
        except redis.RedisError as exc:
            self.on_shared_error("read")
            raise StoreUnavailable(_redis_problem(exc)) from None
        return _snapshot_from_fields(fields) if fields else None  # type: ignore[arg-type]  # bytes

    def read_status(self, name: str) -> RefreshStatus | None:
        try:
            raw = self._patient.get(self._key("status", name))
        except redis.RedisError as exc:
            self.on_shared_error("read_status")
            raise StoreUnavailable(_redis_problem(exc)) from None
        return RefreshStatus.from_json(raw, name)

    def claim_refresh_requests(self, names: list[str], seconds: float) -> float:
        keys = [self._key("refresh-request", name) for name in names]
        try:
            # One script: every window is taken, or none is.
            wait_ms = self._claim_script(keys=keys, args=[int(seconds * 1000)], client=self._fast)
        except redis.RedisError as exc:
            self._mark_failing("refresh_request", exc)
            return super().claim_refresh_requests(names, seconds)
        return max(int(wait_ms), 0) / 1000

    def mark_due(self, names: list[str], accept_shrink: bool = False) -> None:
        try:
            with self._fast.pipeline(transaction=True) as pipe:
                if accept_shrink:
                    pipe.sadd(self._key("refresh-due", "accept-shrink"), *names)
                pipe.sadd(self._key("refresh-due", "sources"), *names)
                pipe.execute()
        except redis.RedisError as exc:
            self._mark_failing("refresh_request", exc)
            raise StoreUnavailable(_redis_problem(exc)) from None

    def take_due(self) -> list[tuple[str, bool]]:
        try:
            # Both sets popped in one transaction: each request is handed out once, with its flag.
            with self._patient.pipeline(transaction=True) as pipe:
                pipe.spop(self._key("refresh-due", "sources"), 1000)
                pipe.spop(self._key("refresh-due", "accept-shrink"), 1000)
                taken, accepted = pipe.execute()
        except redis.RedisError as exc:
            self.on_shared_error("refresh_request")
            raise StoreUnavailable(_redis_problem(exc)) from None
        accepting = {name.decode() for name in accepted or ()}
        return sorted((name.decode(), name.decode() in accepting) for name in taken or ())

    def read_statuses(self, names: tuple[str, ...]) -> dict[str, RefreshStatus | None]:
        try:
            raws = self._fast.mget([self._key("status", name) for name in names])
        except redis.RedisError as exc:
            self._mark_failing("read_status", exc)
            return super().read_statuses(names)
        self._mark_healthy()
        return {name: RefreshStatus.from_json(raw, name) for name, raw in zip(names, raws, strict=True)}

    def acquire_lock(self, name: str, ttl_seconds: float) -> RefreshLock | None:
        lock = _new_lock(name, ttl_seconds)
        try:
            taken = self._patient.set(self._key("lock", name), lock.token, nx=True, px=int(ttl_seconds * 1000))
        except redis.RedisError as exc:
            self.on_shared_error("lock")
            raise StoreUnavailable(_redis_problem(exc)) from None
        return lock if taken else None

    def release_lock(self, lock: RefreshLock) -> None:
        try:
            self._release_script(keys=[self._key("lock", lock.name)], args=[lock.token])
        except redis.RedisError as exc:
            # The TTL frees it anyway.
            log.warning("could not release the %s refresh lock: %s", lock.name, _redis_problem(exc))

    def publish(
        self,
        lock: RefreshLock,
        snapshots: dict[str, Snapshot],
        status: RefreshStatus,
        histories: dict[str, HistoryUpdate] | None = None,
    ) -> bool:
        keys = [self._key("lock", lock.name), self._key("status", lock.name)]
        args: list = [lock.token, status.to_json(), len(snapshots)]
        for name, snapshot in snapshots.items():
            fields = _snapshot_fields(snapshot)
            keys.append(self._key("snapshot", name))
            args += [len(fields), *fields]
        for name, update in (histories or {}).items():
            keys += [self._key("history-state", name), self._key("history", name), self._key("history-from", name)]
            args += [update.state.to_json(), update.state.baseline_at, update.keep_after, update.max_entries,
                     len(update.entries)]  # fmt: skip
            for entry in update.entries:
                args += [entry.at, entry.to_json()]
        try:
            # One script: the lock check, the snapshots, the histories and the status land
            # together or not at all.
            done = self._publish_script(keys=keys, args=args)
        except redis.RedisError as exc:
            self.on_shared_error("publish")
            raise StoreUnavailable(_redis_problem(exc)) from None
        if done:
            with self._mutex:
                self._remember(lock.name, snapshots, status)
        return bool(done)

    def read_histories(self, names: tuple[str, ...]) -> dict[str, CatalogHistory | None]:
        try:
            raws = self._patient.mget([self._key("history-state", name) for name in names])
        except redis.RedisError as exc:
            self.on_shared_error("read_history")
            raise StoreUnavailable(_redis_problem(exc)) from None
        return {name: CatalogHistory.from_json(raw) for name, raw in zip(names, raws, strict=True)}

    def read_changes(self, names: tuple[str, ...], since: float) -> dict[str, ChangeLog]:
        try:
            pipe = self._fast.pipeline(transaction=False)
            for name in names:
                pipe.zrangebyscore(self._key("history", name), f"({since!r}", "+inf", withscores=True)
                pipe.get(self._key("history-from", name))
            answers = pipe.execute()
        except redis.RedisError as exc:
            self._mark_failing("read_changes", exc)
            raise StoreUnavailable(_redis_problem(exc)) from None
        self._mark_healthy()
        logs = {}
        for index, name in enumerate(names):
            entries, history_from = answers[2 * index], answers[2 * index + 1]
            logs[name] = ChangeLog(
                int(float(history_from)) if history_from is not None else None,
                [(int(score), item.decode()) for item, score in entries],
            )
        return logs

    def ping(self) -> bool:
        try:
            return bool(self._fast.ping())
        except redis.RedisError:
            self.on_shared_error("ping")
            return False

    def _mark_failing(self, operation: str, exc: Exception) -> None:
        self.on_shared_error(operation)
        self._redis_down_until = time.monotonic() + self._error_backoff_seconds
        if not self._failing:
            self._failing = True
            log.warning("Redis is not answering, serving the process tier: %s", _redis_problem(exc))

    def _mark_healthy(self) -> None:
        if self._failing:
            self._failing = False
            log.info("Redis answers again")


def _text(value: bytes | str) -> str:
    # Our clients answer bytes (no decode_responses); a str is taken as it is.
    return value.decode() if isinstance(value, bytes) else value


def _new_lock(name: str, ttl_seconds: float) -> RefreshLock:
    return RefreshLock(name, secrets.token_hex(16), time.monotonic() + ttl_seconds)


def _snapshot_fields(snapshot: Snapshot) -> list:
    return [
        "body", snapshot.body,
        "gzip", snapshot.gzip_body,
        "etag", snapshot.etag,
        "source", snapshot.source,
        "rows", snapshot.rows,
        "fetched_at", repr(snapshot.fetched_at) if snapshot.fetched_at is not None else "",
        "removed", snapshot.removed,
    ]  # fmt: skip


def _snapshot_from_fields(fields: dict[bytes, bytes]) -> Snapshot | None:
    try:
        fetched_at = fields[b"fetched_at"].decode()
        return Snapshot(
            body=fields[b"body"],
            etag=fields[b"etag"].decode(),
            source=fields[b"source"].decode(),
            rows=int(fields[b"rows"]),
            fetched_at=float(fetched_at) if fetched_at else None,
            gzip_body=fields[b"gzip"],
            removed=fields.get(b"removed", b""),
        )
    except (KeyError, ValueError):
        log.warning("ignoring a malformed snapshot in Redis")
        return None


def _redis_problem(exc: Exception) -> str:
    # redis-py messages name host and port, never the password; keep only the class and text.
    return f"{type(exc).__name__}: {exc}"


# KEYS: lock, status, one key per snapshot, then per history its state, entries (a sorted set
# scored by time) and history-from keys. ARGV: token, status JSON, the number of snapshots, per
# snapshot the number of its field/value items followed by those items, then per history: the
# state JSON, the baseline time, the oldest time kept, the most entries kept, the number of new
# entries and per entry its time and JSON. Trimming mirrors app/history.py's trim().
_PUBLISH_LUA = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local snapshots = tonumber(ARGV[3])
local position = 4
for index = 3, 2 + snapshots do
  local count = tonumber(ARGV[position])
  redis.call('DEL', KEYS[index])
  redis.call('HSET', KEYS[index], unpack(ARGV, position + 1, position + count))
  position = position + count + 1
end
for index = 3 + snapshots, #KEYS, 3 do
  local entries_key = KEYS[index + 1]
  redis.call('SET', KEYS[index], ARGV[position])
  local history_from = tonumber(ARGV[position + 1])
  local keep_after = ARGV[position + 2]
  local max_entries = tonumber(ARGV[position + 3])
  local count = tonumber(ARGV[position + 4])
  position = position + 5
  for item = 1, count do
    redis.call('ZADD', entries_key, ARGV[position], ARGV[position + 1])
    position = position + 2
  end
  local older = redis.call('ZREVRANGEBYSCORE', entries_key, '(' .. keep_after, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if #older > 0 then
    history_from = math.max(history_from, tonumber(older[2]))
    redis.call('ZREMRANGEBYSCORE', entries_key, '-inf', '(' .. keep_after)
  end
  local excess = redis.call('ZCARD', entries_key) - max_entries
  if excess > 0 then
    local newest_dropped = redis.call('ZRANGE', entries_key, excess - 1, excess - 1, 'WITHSCORES')
    history_from = math.max(history_from, tonumber(newest_dropped[2]))
    -- The rest of that publish's entries go too: a feed answer never holds part of a publish.
    redis.call('ZREMRANGEBYSCORE', entries_key, '-inf', newest_dropped[2])
  end
  local kept_from = redis.call('GET', KEYS[index + 2])
  if kept_from then history_from = math.max(history_from, tonumber(kept_from)) end
  redis.call('SET', KEYS[index + 2], string.format('%d', history_from))
end
redis.call('SET', KEYS[2], ARGV[2])
return 1
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: the refresh-request window of each source. ARGV: the window in ms. Takes every window
# when none is held, else takes none and answers the longest wait in ms.
_CLAIM_LUA = """
local wait = 0
for index = 1, #KEYS do
  local left = redis.call('PTTL', KEYS[index])
  if left > wait then wait = left end
  if left == -1 then wait = tonumber(ARGV[1]) end
end
if wait > 0 then return wait end
for index = 1, #KEYS do
  redis.call('SET', KEYS[index], '1', 'PX', ARGV[1])
end
return 0
"""
