"""Redis beyond one server, against real processes: ACL users, Sentinel failover, TLS."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest
import redis
import requests

from app.redis_clients import redis_store
from app.status import RefreshStatus
from app.store import StoreUnavailable
from config import Settings
from harness.processes import output_of, serve_recordings, start_gunicorn, start_refresher, stop, wait_until
from harness.redis_cluster import (
    MASTER_NAME,
    Credentials,
    SentinelCluster,
    make_certificates,
    tls_redis_binary,
    tls_redis_node,
)
from harness.redis_server import free_port
from tests.support.processes import catalog_env
from tests.support.secrets import JWT_SECRET, make_token
from tests.support.snapshots import llm_snapshot

pytestmark = pytest.mark.system

ROWS = [{"id": "openai/gpt-x", "name": "GPT X", "provider": "OpenAI", "context": 1000}]
# Characters that must be percent-encoded in a URL: proves the password is decoded, not mangled.
APP_PASSWORD = "app-pass/sentinel:7f3@e9%1"
CREDENTIALS = Credentials(
    admin_password="admin-pass-sentinel-5c2d",
    app_user="catalog-app",
    app_password=APP_PASSWORD,
    app_keys="catalog:*",
    sentinel_password="sentinel-pass-sentinel-8a4b",
)
PASSWORDS = (APP_PASSWORD, quote(APP_PASSWORD, safe=""), CREDENTIALS.admin_password, CREDENTIALS.sentinel_password)


def settings_from(**env: str) -> Settings:
    return Settings.from_env({"JWT_SECRET_KEY": JWT_SECRET, **env})


# The catalog the store tests publish, and the sources the refresher runs in the failover test.
SOURCES = ("openrouter", "embeddings", "ollama")


def publish(store, catalog, snapshot) -> bool:
    lock = store.acquire_lock(catalog, 10)
    assert lock is not None
    try:
        return store.publish(lock, {catalog: snapshot}, RefreshStatus(catalog, outcome="ok", rows=snapshot.rows))
    finally:
        store.release_lock(lock)


def assert_no_password(text: str) -> None:
    leaked = [password for password in PASSWORDS if password in text]
    assert leaked == [], f"a password was printed: {len(leaked)} of them"


# ACL user and password in REDIS_URL


@pytest.fixture
def acl_user(redis_server, redis_url):
    """An ACL user on the suite's Redis that may touch only catalog:* keys; removed afterwards."""
    admin = redis_server.client()
    admin.acl_setuser(
        CREDENTIALS.app_user, enabled=True, passwords=[f"+{APP_PASSWORD}"], keys=["catalog:*"], commands=["+@all"]
    )
    yield redis_server
    admin.acl_deluser(CREDENTIALS.app_user)


def acl_url(port: int, password: str) -> str:
    return f"redis://{CREDENTIALS.app_user}:{quote(password, safe='')}@127.0.0.1:{port}/0"


def test_acl_user_and_password_from_the_url_read_and_write(acl_user):
    settings = settings_from(REDIS_URL=acl_url(acl_user.port, APP_PASSWORD), SNAPSHOT_CHECK_SECONDS="0.05")
    writer, reader = redis_store(settings), redis_store(settings)
    snapshot = llm_snapshot(ROWS, "api", fetched_at=1.0)
    assert publish(writer, "openrouter", snapshot)
    assert reader.read("openrouter") == snapshot
    assert reader.ping() is True
    # The store logged in as this user, not as the (unrestricted) default one: other keys are refused.
    elsewhere = redis_store(settings, key_prefix="elsewhere:")
    with pytest.raises(StoreUnavailable, match="NoPermissionError"):
        elsewhere.acquire_lock("openrouter", 10)
    # The password, as written and decoded, is masked in logs.
    assert APP_PASSWORD in settings.secrets and quote(APP_PASSWORD, safe="") in settings.secrets


def test_a_wrong_password_is_a_clear_error_that_does_not_carry_it(acl_user, caplog):
    wrong = "wrong-pass-sentinel-3e1f"
    settings = settings_from(REDIS_URL=acl_url(acl_user.port, wrong))
    store = redis_store(settings)
    with pytest.raises(StoreUnavailable) as caught:
        store.acquire_lock("openrouter", 10)
    message = str(caught.value)
    assert "AuthenticationError" in message and "invalid username-password pair" in message
    assert store.read("openrouter") is None  # the request path serves the process tier instead
    assert store.ping() is False
    assert "invalid username-password pair" in caplog.text
    for text in (message, caplog.text, repr(settings)):
        assert wrong not in text
        assert_no_password(text)


# Sentinel


@pytest.fixture
def cluster(tmp_path):
    """One primary, one replica, three sentinels; passwords everywhere, an ACL user for the app."""
    cluster = SentinelCluster(tmp_path / "cluster", CREDENTIALS, down_after_ms=1000, failover_timeout_ms=5000)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def sentinel_env(cluster: SentinelCluster) -> dict[str, str]:
    """The variables that point the service at `cluster` (REDIS_URL's host is the master name: unused)."""
    return {
        "REDIS_URL": f"redis://{CREDENTIALS.app_user}:{quote(APP_PASSWORD, safe='')}@{MASTER_NAME}/0",
        "REDIS_SENTINELS": cluster.sentinel_addresses,
        "REDIS_SENTINEL_MASTER": MASTER_NAME,
        "REDIS_SENTINEL_PASSWORD": CREDENTIALS.sentinel_password,
    }


def last_success(client: redis.Redis, catalog: str) -> float:
    raw = client.get(f"catalog:status:{catalog}")
    return (json.loads(raw).get("last_success") or 0.0) if raw else 0.0


# A failover here is down-after-milliseconds (1 s) and an election (about a second; a failed one
# is retried after 2 x failover-timeout, 10 s). The refresher then needs its next tick (the 2 s
# interval) and, if the primary died while a run held a lock, that lock's TTL (3 x 2 s + 5 s).
# 30 s covers the worst of these with room for a loaded CI machine.
REPUBLISH_BOUND_SECONDS = 30.0
INTERVAL = 2.0


def test_sigkill_of_the_primary_serves_only_200s_and_the_refresher_publishes_to_the_new_one(cluster, upstream):
    serve_recordings(upstream)
    variables = sentinel_env(cluster)
    env = catalog_env(upstream, variables.pop("REDIS_URL"), INTERVAL, UPSTREAM_TIMEOUT_SECONDS="2", **variables)
    refresher = start_refresher(env)
    port = free_port()
    server = start_gunicorn(port, env)
    url = f"http://127.0.0.1:{port}/api/models/openrouter"
    headers = {"Authorization": f"Bearer {make_token()}", "Connection": "close"}
    new_primary = cluster.app_client(cluster.replica)
    try:
        assert wait_until(
            lambda: requests.get(url, headers=headers, timeout=5).json()["data"]["source"] == "api", 30
        ), output_of(refresher)
        statuses, sources = [], set()
        killed_at = republished_at = None
        deadline = time.monotonic() + 60  # the loop is bounded whatever happens
        while time.monotonic() < deadline:
            if len(statuses) == 20:
                cluster.primary.kill()
                killed_at, killed_monotonic = time.time(), time.monotonic()
            response = requests.get(url, headers=headers, timeout=5)
            statuses.append(response.status_code)
            sources.add(response.json()["data"]["source"])
            if killed_at and all(last_success(new_primary, catalog) > killed_at for catalog in SOURCES):
                republished_at = time.monotonic()
                break
            if killed_at and time.monotonic() - killed_monotonic > REPUBLISH_BOUND_SECONDS:
                break
            time.sleep(0.05)
        # A few more requests once Redis is whole again.
        for _ in range(10):
            statuses.append(requests.get(url, headers=headers, timeout=5).status_code)
    finally:
        refresher_output = stop(refresher)
        server_output = stop(server)
    assert killed_at is not None
    took = "never" if republished_at is None else f"{republished_at - killed_monotonic:.1f}s"
    print(
        f"{len(statuses)} requests; republished to the new primary {took} after the SIGKILL "
        f"(bound {REPUBLISH_BOUND_SECONDS}s)"
    )
    bad = [status for status in statuses if not 200 <= status < 300]
    assert bad == [], f"{len(bad)} non-2xx answers of {len(statuses)}"
    assert sources <= {"api", "curated_fallback"} and "api" in sources
    assert republished_at is not None, (
        f"no publish to the new primary in {REPUBLISH_BOUND_SECONDS}s:\n{refresher_output}"
    )
    assert cluster.primary_port() == cluster.replica.port
    assert_no_password(refresher_output)
    assert_no_password(server_output)


def test_the_refresher_follows_a_demoted_primary_to_the_new_one(cluster, caplog):
    """SENTINEL FAILOVER demotes a live primary, which closes its clients' connections: the
    writer's pooled ones must reconnect to the new primary, and its Lua publish land there."""
    settings = settings_from(SNAPSHOT_CHECK_SECONDS="0.05", **sentinel_env(cluster))
    writer, reader = redis_store(settings), redis_store(settings)
    first = llm_snapshot(ROWS, "api", fetched_at=1.0)
    assert publish(writer, "openrouter", first)
    assert reader.read("openrouter") == first

    cluster.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
    demoted = cluster.primary.client()
    # Sentinel turns the old primary into a replica on its next look at it (seconds, not instantly).
    assert wait_until(
        lambda: cluster.primary_port() == cluster.replica.port and demoted.info("replication")["role"] == "slave", 60
    )
    second = llm_snapshot([dict(ROWS[0], context=2000)], "api", fetched_at=2.0)
    # The writer's pooled connections still point at the demoted primary.
    assert publish(writer, "openrouter", second)
    new_primary = cluster.app_client(cluster.replica)
    assert new_primary.hget("catalog:snapshot:openrouter", "etag").decode() == second.etag
    assert wait_until(lambda: reader.read("openrouter") == second, 5)
    assert_no_password(caplog.text)


def test_a_primary_demoted_behind_the_sentinels_back_answers_readonly_and_is_left(cluster):
    """A primary turned replica while our connections stay open answers READONLY: the store must
    say it is unavailable (and drop that connection), and write again once there is a primary."""
    settings = settings_from(**sentinel_env(cluster))
    writer = redis_store(settings)
    snapshot = llm_snapshot(ROWS, "api", fetched_at=1.0)
    assert publish(writer, "openrouter", snapshot)
    primary, replica = cluster.primary.client(), cluster.replica.client()
    replica.execute_command("REPLICAOF", "NO", "ONE")
    primary.execute_command("REPLICAOF", "127.0.0.1", str(cluster.replica.port))
    assert wait_until(lambda: primary.info("replication").get("master_link_status") == "up", 30)
    with pytest.raises(StoreUnavailable, match="previous master is now a slave"):
        writer.acquire_lock("openrouter", 10)
    # Roles back before the sentinels act on it: the writer reconnects and writes again.
    primary.execute_command("REPLICAOF", "NO", "ONE")
    replica.execute_command("REPLICAOF", "127.0.0.1", str(cluster.primary.port))
    newer = llm_snapshot([dict(ROWS[0], context=2000)], "api", fetched_at=2.0)
    assert publish(writer, "openrouter", newer)
    assert cluster.app_client(cluster.primary).hget("catalog:snapshot:openrouter", "etag").decode() == newer.etag


def test_a_wrong_sentinel_password_is_a_clear_error_that_does_not_carry_it(cluster, caplog):
    wrong = "wrong-sentinel-pass-sentinel-6d0a"
    settings = settings_from(**{**sentinel_env(cluster), "REDIS_SENTINEL_PASSWORD": wrong})
    store = redis_store(settings)
    with pytest.raises(StoreUnavailable) as caught:
        store.acquire_lock("openrouter", 10)
    message = str(caught.value)
    assert f"No master found for '{MASTER_NAME}'" in message
    # Each sentinel named by its address, with what went wrong there.
    for sentinel in cluster.sentinels:
        assert f"sentinel 127.0.0.1:{sentinel.port} - auth:AuthenticationError" in message
    for text in (message, caplog.text):
        assert wrong not in text
        assert_no_password(text)


# TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The test certificates and a redis-server built with TLS; the TLS tests skip without them."""
    workdir = tmp_path_factory.mktemp("tls")
    try:
        certificates = make_certificates(workdir / "pki")
    except FileNotFoundError:
        pytest.skip("no openssl command to make test certificates with")
    binary = tls_redis_binary(workdir, certificates)
    if binary is None:
        pytest.skip(
            "no redis-server built with TLS: `apt-get install redis-server` (Debian's has it) "
            "or set TEST_REDIS_TLS_SERVER to one"
        )
    return workdir, certificates, binary


@pytest.fixture(scope="module")
def tls(pki):
    """A TLS-only redis-server that asks for client certificates."""
    workdir, certificates, binary = pki
    node = tls_redis_node(workdir, certificates, binary, client_certificates=True)
    node.start()
    yield node, certificates
    node.stop()


def tls_url(port: int, certificates, **options: str) -> str:
    query = {"ssl_certfile": str(certificates.client_cert), "ssl_keyfile": str(certificates.client_key), **options}
    return f"rediss://127.0.0.1:{port}/0?" + "&".join(f"{key}={quote(value)}" for key, value in query.items())


@pytest.mark.parametrize("ca_from", ["REDIS_CA_FILE", "url"])
def test_rediss_with_a_private_ca_and_a_client_certificate(tls, ca_from):
    node, certificates = tls
    node.client().flushall()
    if ca_from == "REDIS_CA_FILE":
        env = {"REDIS_URL": tls_url(node.port, certificates), "REDIS_CA_FILE": str(certificates.ca)}
    else:
        env = {"REDIS_URL": tls_url(node.port, certificates, ssl_ca_certs=str(certificates.ca))}
    settings = settings_from(SNAPSHOT_CHECK_SECONDS="0.05", **env)
    writer, reader = redis_store(settings), redis_store(settings)
    snapshot = llm_snapshot(ROWS, "api", fetched_at=1.0)
    assert publish(writer, "openrouter", snapshot)
    assert reader.read("openrouter") == snapshot
    assert node.client().hget("catalog:snapshot:openrouter", "etag").decode() == snapshot.etag


def test_rediss_without_the_ca_refuses_the_server(tls):
    node, certificates = tls
    store = redis_store(settings_from(REDIS_URL=tls_url(node.port, certificates)))  # system CAs only
    with pytest.raises(StoreUnavailable, match="certificate verify failed"):
        store.acquire_lock("openrouter", 10)
    assert store.read("openrouter") is None


def test_rediss_without_a_client_certificate_is_refused(tls):
    node, certificates = tls
    url = f"rediss://127.0.0.1:{node.port}/0"
    store = redis_store(settings_from(REDIS_URL=url, REDIS_CA_FILE=str(certificates.ca)))
    with pytest.raises(StoreUnavailable):
        store.acquire_lock("openrouter", 10)


def test_sentinel_over_tls_finds_the_primary_and_follows_a_failover(pki, tmp_path):
    """rediss:// with sentinels: the sentinels too are reached over TLS, with the same CA."""
    _, certificates, binary = pki
    cluster = SentinelCluster(tmp_path / "cluster", CREDENTIALS, tls=certificates, binary=binary)
    try:
        cluster.start()
        env = sentinel_env(cluster)
        env["REDIS_URL"] = env["REDIS_URL"].replace("redis://", "rediss://")
        settings = settings_from(REDIS_CA_FILE=str(certificates.ca), SNAPSHOT_CHECK_SECONDS="0.05", **env)
        writer, reader = redis_store(settings), redis_store(settings)
        first = llm_snapshot(ROWS, "api", fetched_at=1.0)
        assert publish(writer, "openrouter", first)
        assert reader.read("openrouter") == first
        cluster.primary.kill()
        second = llm_snapshot([dict(ROWS[0], context=2000)], "api", fetched_at=2.0)

        def published() -> bool:
            try:
                lock = writer.acquire_lock("openrouter", 10)
                return lock is not None and writer.publish(
                    lock, {"openrouter": second}, RefreshStatus("openrouter", outcome="ok")
                )
            except StoreUnavailable:  # until the sentinels have promoted the replica
                return False

        assert wait_until(published, REPUBLISH_BOUND_SECONDS, interval=0.5)
        assert cluster.app_client(cluster.replica).hget("catalog:snapshot:openrouter", "etag").decode() == second.etag
    finally:
        cluster.stop()
