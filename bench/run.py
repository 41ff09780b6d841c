"""Benchmark of the catalog hot path, as shipped, against bare Flask baselines, on this machine, over loopback.

    .venv/bin/python bench/run.py [--rounds 3] [--duration 8] [--connections 64] [--burst 10000]

Starts a Redis and a loopback upstream replaying the recorded OpenRouter catalog, publishes it
with the refresh command and starts the service under the shipped gunicorn.conf.py (access log
and metrics on). Beside it, under gunicorn's defaults (no config file: no access log, no
metrics) with the shipped worker class, count and threads, and serving the same bytes: baseline
A (a bare Flask view) and B (A behind flask-jwt-extended). wrk hits every target in alternating
rounds; the table gives req/s, p50 and p99 (medians over the rounds), the ratios to A and B, and
whether the goals are met. Then a burst of distinct filters (the CPU per request and resident
memory of the service's workers), how long a new snapshot takes to reach every worker, the CPU
time of one refresh, and memory per worker.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jwt as pyjwt
import psutil
import requests

from app.filters import MAX_CACHED_BYTES
from harness.fake_upstream import FakeUpstream
from harness.processes import (
    catalog_env,
    serve_recordings,
    spawn,
    start_gunicorn,
    stop,
    wait_for_http,
)
from harness.redis_server import RedisServer, free_port

PATH = "/api/models/openrouter"
FILTERED_QUERY = "?provider=OpenAI&supports=tools"
# The benchmark's own secrets: it starts every process it measures, so nothing outside sees them.
JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123456789abcdef"
OPENROUTER_KEY = "sk-or-bench-key"

BASELINE_A = "A: Flask, constant bytes"
BASELINE_B = "B: A + @jwt_required()"
SERVICE = "service"
NOT_MODIFIED = "service, If-None-Match (304)"
GZIP = "service, Accept-Encoding: gzip"
FILTERED = "service, filtered, repeated"
HANGING = "service, upstream hanging"
# The goals: req/s of each target at least this many times A's, medians of one run.
GOALS = {SERVICE: 0.9, NOT_MODIFIED: 1.2, FILTERED: 0.8}


def bench_env(upstream, redis_url: str, interval: float, **extra: str) -> dict:
    """The service's environment for a benchmark run."""
    return catalog_env(upstream, redis_url, interval, jwt_secret=JWT_SECRET, openrouter_key=OPENROUTER_KEY, **extra)


def shipped_worker_flags(env: dict, workdir: Path) -> list[str]:
    """gunicorn flags for the worker class, count and threads gunicorn.conf.py sets in `env`."""
    # Read in a child process: the file reads the environment (workers depend on REDIS_URL) and
    # sets variables of its own, neither of which belongs in this process.
    script = (
        "import json, runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(json.dumps({k: c[k] for k in ('worker_class', 'workers', 'threads')}))"
    )
    child_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(workdir)}
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=child_env, capture_output=True, text=True, check=True
    ).stdout
    shipped = json.loads(output)
    return ["-k", shipped["worker_class"], "-w", str(shipped["workers"]), "--threads", str(shipped["threads"])]


def start_baseline(port: int, env: dict, target: str, defaults_file: Path, flags: list[str]):
    """A baseline under gunicorn's defaults (an empty config file, so not gunicorn.conf.py) plus `flags`."""
    command = [sys.executable, "-m", "gunicorn", "-c", str(defaults_file), target, "--bind", f"127.0.0.1:{port}"]
    process = spawn([*command, *flags], env)
    wait_for_http(f"http://127.0.0.1:{port}{PATH}", process, expect_status=None)
    return process


def wrk(url: str, headers: dict, duration: float, connections: int, threads: int) -> dict:
    """One wrk run: req/s, p50 and p99 in ms, and non-2xx/3xx answers."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": _latency_ms(output, "50%"),
        "p99": _latency_ms(output, "99%"),
        "errors": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0,
    }


def _latency_ms(output: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def filter_burst(url: str, headers: dict, master_pid: int, count: int, time_limit: float, clients: int = 4) -> dict:
    """`count` GETs with distinct filters (min_context=1..count): CPU per request and resident memory of the workers."""
    workers = psutil.Process(master_pid).children()
    cpu_before = sum(_cpu_seconds(worker) for worker in workers)
    rss_before = [_rss_mb(worker) for worker in workers]
    peaks = list(rss_before)
    done = threading.Event()

    def sample_memory() -> None:
        while not done.wait(0.05):
            for index, worker in enumerate(workers):
                try:
                    peaks[index] = max(peaks[index], _rss_mb(worker))
                except psutil.NoSuchProcess:  # reported once the burst is over
                    return

    def client(first: int) -> tuple[int, int]:
        sent = failed = 0
        with requests.Session() as session:
            for n in range(first, count + 1, clients):
                if time.monotonic() > deadline:  # bounded time, whatever the service does
                    break
                status = session.get(f"{url}?min_context={n}", headers=headers, timeout=10).status_code
                sent, failed = sent + 1, failed + (status != 200)
        return sent, failed

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    started = time.monotonic()
    deadline = started + time_limit
    with ThreadPoolExecutor(clients) as pool:
        answers = list(pool.map(client, range(1, clients + 1)))
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    if not all(worker.is_running() for worker in workers):
        raise RuntimeError("a service worker exited during the burst of distinct filters")
    sent = sum(sent for sent, _ in answers)
    return {
        "sent": sent,
        "failed": sum(failed for _, failed in answers),
        "seconds": elapsed,
        "cpu_ms_per_request": (sum(_cpu_seconds(worker) for worker in workers) - cpu_before) * 1000 / max(sent, 1),
        "rss_before": rss_before,
        "rss_after": [_rss_mb(worker) for worker in workers],
        "rss_max": peaks,
    }


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 1e6


def refresh_cpu_ms(upstream_url: str, runs: int = 5) -> float:
    """CPU time of one refresh of the recorded 1 MB OpenRouter document, in this process."""
    from app import create_app
    from config import Settings

    settings = Settings(
        jwt_secret_key="b" * 40, openrouter_api_key="bench", openrouter_base_url=f"{upstream_url}/api/v1"
    )
    refresher = create_app(settings).extensions["catalog_service"].refresher
    times = []
    for _ in range(runs):
        started = time.process_time()
        assert refresher.run("openrouter", force=True).outcome == "published"
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)


def snapshot_reach_seconds(base: str, headers: dict, upstream, env: dict) -> float:
    """Publish a changed catalog and time until every worker serves it (20 answers in a row)."""
    before = requests.get(base + PATH, headers=headers, timeout=5).headers["ETag"]
    route = upstream.routes[("GET", "/api/v1/models")]
    document = json.loads(route.body)
    document["data"] = document["data"][1:]
    route.body = json.dumps(document).encode()
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "models", "refresh", "--source", "openrouter", "--force"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    published = time.monotonic()
    in_a_row = 0
    while in_a_row < 20:
        etag = requests.get(base + PATH, headers={**headers, "Connection": "close"}, timeout=5).headers["ETag"]
        in_a_row = in_a_row + 1 if etag != before else 0
        if time.monotonic() - published > 30:
            return float("inf")
    return time.monotonic() - published


def set_upstream_mode(upstream, mode: str) -> None:
    """Every recorded upstream route answers (`ok`) or hangs (`hang`)."""
    for path in ("/api/v1/models", "/api/v1/embeddings/models", "/api/tags"):
        upstream.routes[("GET", path)].mode = mode


def _medians(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in ("rps", "p50", "p99")}


def report_table(results: dict, args, body_bytes: int, gzip_bytes: int) -> None:
    """The wrk table: medians, spread, ratios to A and B, errors, and each goal met or missed."""
    medians = {name: _medians(runs) for name, runs in results.items()}
    a, b = medians[BASELINE_A], medians[BASELINE_B]
    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, {args.rounds} alternating rounds, "
        f"medians; body {body_bytes:,} bytes ({gzip_bytes:,} gzipped); {os.cpu_count()} cores"
    )
    print(
        f"{'target':<34}{'req/s':>9}{'spread':>8}{'p50 ms':>9}{'p99 ms':>9}{'vs A':>8}{'vs B':>8}"
        f"{'p99 vs A':>10}{'errors':>8}  goal"
    )
    for name, m in medians.items():
        rates = [run["rps"] for run in results[name]]
        spread = (max(rates) - min(rates)) / m["rps"]  # how far rounds disagree: the noise floor
        errors = sum(run["errors"] for run in results[name])
        ratio = m["rps"] / a["rps"]
        goal = f"≥{GOALS[name]:.2f}x {'met' if ratio >= GOALS[name] else 'MISSED'}" if name in GOALS else ""
        print(
            f"{name:<34}{m['rps']:>9,.0f}{spread:>8.0%}{m['p50']:>9.2f}{m['p99']:>9.2f}{ratio:>7.2f}x"
            f"{m['rps'] / b['rps']:>7.2f}x{m['p99'] / a['p99']:>9.2f}x{errors:>8}  {goal}"
        )


def report_burst(burst: dict) -> None:
    """What the burst of distinct filters cost the service's workers."""

    def megabytes(values: list[float]) -> str:
        return ", ".join(f"{value:.0f}" for value in values) + " MB"

    print(
        f"\nburst of {burst['sent']:,} distinct filters (min_context=1..n, 4 clients) in {burst['seconds']:.1f} s, "
        f"{burst['failed']} not 200: {burst['cpu_ms_per_request']:.2f} ms worker CPU per request"
    )
    print(
        f"  resident memory per worker: before {megabytes(burst['rss_before'])}, after "
        f"{megabytes(burst['rss_after'])}, max {megabytes(burst['rss_max'])} "
        f"(filter cache bound: {MAX_CACHED_BYTES / 1e6:.1f} MB per worker)"
    )


def main() -> int:
    """Start everything, measure, print, stop everything."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--burst", type=int, default=10_000, help="requests with distinct filters")
    parser.add_argument("--burst-seconds", type=float, default=180.0, help="time limit of the burst")
    parser.add_argument("--gunicorn", default="", help='extra gunicorn flags for every server, e.g. "-k sync -w 2"')
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed: `apt-get install wrk` (Debian, Ubuntu) or `brew install wrk` (macOS)")
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    redis_server = RedisServer(workdir / "redis")
    redis_server.start()
    upstream = FakeUpstream().start()
    serve_recordings(upstream)
    servers = []
    try:
        env = bench_env(upstream, redis_server.url, 900, SCHEDULER_ENABLED="false")
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "models", "refresh"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        extra_flags = args.gunicorn.split()
        service_port = free_port()
        service = start_gunicorn(service_port, env, *extra_flags)
        servers.append(service)
        token = pyjwt.encode({"sub": "bench", "exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")
        auth = {"Authorization": f"Bearer {token}"}
        service_url = f"http://127.0.0.1:{service_port}{PATH}"
        first = requests.get(service_url, headers={**auth, "Accept-Encoding": "identity"}, timeout=5)
        assert first.json()["data"]["source"] == "api", "the catalog was not published"
        filtered = requests.get(service_url + FILTERED_QUERY, headers=auth, timeout=5)
        assert filtered.status_code == 200 and filtered.json()["data"]["models"], "the filter matched nothing"
        body_file = workdir / "body.json"
        body_file.write_bytes(first.content)
        etag = first.headers["ETag"]

        # Baselines: gunicorn's defaults, the shipped workers, no GUNICORN_CMD_ARGS to add anything.
        defaults_file = workdir / "gunicorn-defaults.py"
        defaults_file.write_text("")
        baseline_flags = shipped_worker_flags(env, workdir) + extra_flags
        baseline_env = {key: value for key, value in env.items() if key != "GUNICORN_CMD_ARGS"}
        baseline_env["BENCH_BODY_FILE"] = str(body_file)
        ports = {}
        for name, target in (("A", "bench.baselines:constant_app"), ("B", "bench.baselines:jwt_app")):
            ports[name] = free_port()
            servers.append(start_baseline(ports[name], baseline_env, target, defaults_file, baseline_flags))

        # The same service, its upstream hanging, every worker refreshing every second.
        set_upstream_mode(upstream, "hang")
        hang_port = free_port()
        hang_env = bench_env(upstream, redis_server.url, 1, SCHEDULER_ENABLED="true", UPSTREAM_TIMEOUT_SECONDS="2")
        servers.append(start_gunicorn(hang_port, hang_env, *extra_flags))

        targets = {
            BASELINE_A: (f"http://127.0.0.1:{ports['A']}{PATH}", {}),
            BASELINE_B: (f"http://127.0.0.1:{ports['B']}{PATH}", auth),
            SERVICE: (service_url, auth),
            NOT_MODIFIED: (service_url, {**auth, "If-None-Match": etag}),
            GZIP: (service_url, {**auth, "Accept-Encoding": "gzip"}),
            FILTERED: (service_url + FILTERED_QUERY, auth),
            HANGING: (f"http://127.0.0.1:{hang_port}{PATH}", auth),
        }
        for url, headers in targets.values():  # warm up every worker
            for _ in range(200):
                requests.get(url, headers=headers, timeout=5)
        results: dict[str, list[dict]] = {name: [] for name in targets}
        for round_number in range(1, args.rounds + 1):
            for name, (url, headers) in targets.items():
                results[name].append(wrk(url, headers, args.duration, args.connections, args.threads))
            print(f"round {round_number}/{args.rounds} done", file=sys.stderr)

        set_upstream_mode(upstream, "ok")
        burst = filter_burst(service_url, auth, service.pid, args.burst, args.burst_seconds)
        reach = snapshot_reach_seconds(f"http://127.0.0.1:{service_port}", auth, upstream, env)
        cpu_ms = refresh_cpu_ms(upstream.url)
        rss = [_rss_mb(child) for child in psutil.Process(service.pid).children()]
        print(
            f"\nbaselines: gunicorn's defaults plus {' '.join(baseline_flags)}; service: gunicorn.conf.py"
            + (f" plus {args.gunicorn}" if args.gunicorn else "")
        )
        report_table(results, args, len(first.content), len(gzip.compress(first.content)))
        report_burst(burst)
        hanging, idle = _medians(results[HANGING]), _medians(results[SERVICE])
        print(f"upstream hanging, refresh every 1 s: {hanging['rps'] / idle['rps'] - 1:+.1%} req/s vs the idle service")
        print(f"new snapshot served by every worker: {reach:.2f} s after its publish")
        print(f"one refresh of the 1 MB OpenRouter document: {cpu_ms:.0f} ms CPU (median of 5)")
        print("resident memory per service worker: " + ", ".join(f"{value:.0f} MB" for value in rss))
    finally:
        for server in servers:
            stop(server)
        upstream.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
