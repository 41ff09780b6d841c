"""Benchmark of the catalog hot path against two baselines, on this machine, over loopback.

    .venv/bin/python bench/run.py [--rounds 3] [--duration 8] [--connections 64]

Starts a Redis and a loopback upstream replaying the recorded OpenRouter catalog, publishes it
with the refresh command, starts the service under the shipped gunicorn.conf.py, and the
baselines A (Flask returning the same bytes) and B (A behind flask-jwt-extended) with the same
gunicorn settings; then runs wrk against each in alternating rounds and prints req/s, p50 and
p99 (medians over the rounds) with the ratios to A and B. Also measured: a conditional GET,
gzip, the service while its upstream hangs and refreshes run every second, how long a new
snapshot takes to reach every worker, CPU time of one refresh, and memory per worker.
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jwt as pyjwt  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402

from harness.fake_upstream import FakeUpstream  # noqa: E402
from harness.processes import (  # noqa: E402
    catalog_env,
    serve_recordings,
    spawn,
    start_gunicorn,
    stop,
    wait_for_http,
)
from harness.redis_server import RedisServer, free_port  # noqa: E402

PATH = "/api/models/openrouter"
# The benchmark's own secrets: it starts every process it measures, so nothing outside sees them.
JWT_SECRET = "bench-jwt-secret-0123456789abcdef0123456789abcdef"
OPENROUTER_KEY = "sk-or-bench-key"


def bench_env(upstream, redis_url: str, interval: float, **extra: str) -> dict:
    """The service's environment for a benchmark run."""
    return catalog_env(upstream, redis_url, interval, jwt_secret=JWT_SECRET, openrouter_key=OPENROUTER_KEY, **extra)


def wrk(url: str, headers: dict, duration: float, connections: int, threads: int) -> dict:
    """One wrk run: req/s, p50 and p99 in ms, and non-2xx/3xx answers."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": _latency_ms(output, "50%"),
        "p99": _latency_ms(output, "99%"),
        "errors": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", output)) else 0,
    }


def _latency_ms(output: str, percentile: str) -> float:
    value, unit = re.search(rf"^\s+{re.escape(percentile)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def refresh_cpu_ms(upstream_url: str, runs: int = 5) -> float:
    """CPU time of one refresh of the recorded 1 MB OpenRouter document, in this process."""
    from app import create_app
    from config import Settings

    settings = Settings(jwt_secret_key="b" * 40, openrouter_api_key="bench",
                        openrouter_base_url=f"{upstream_url}/api/v1")
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
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "models", "refresh", "--source", "openrouter",
                    "--force"], cwd=ROOT, env=env, check=True, capture_output=True)
    published = time.monotonic()
    in_a_row = 0
    while in_a_row < 20:
        etag = requests.get(base + PATH, headers={**headers, "Connection": "close"}, timeout=5).headers["ETag"]
        in_a_row = in_a_row + 1 if etag != before else 0
        if time.monotonic() - published > 30:
            return float("inf")
    return time.monotonic() - published


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
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
        subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "models", "refresh"], cwd=ROOT, env=env,
                       check=True, capture_output=True)
        flags = args.gunicorn.split()
        service_port = free_port()
        service = start_gunicorn(service_port, env, *flags)
        servers.append(service)
        token = pyjwt.encode({"sub": "bench", "exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")
        auth = {"Authorization": f"Bearer {token}"}
        service_url = f"http://127.0.0.1:{service_port}{PATH}"
        first = requests.get(service_url, headers={**auth, "Accept-Encoding": "identity"}, timeout=5)
        assert first.json()["data"]["source"] == "api", "the catalog was not published"
        body_file = workdir / "body.json"
        body_file.write_bytes(first.content)
        etag = first.headers["ETag"]

        baseline_env = {**env, "BENCH_BODY_FILE": str(body_file)}
        ports = {}
        for name, target in (("A", "bench.baselines:constant_app"), ("B", "bench.baselines:jwt_app")):
            ports[name] = free_port()
            servers.append(_start_baseline(ports[name], baseline_env, target, flags))

        # The same service, its upstream hanging, every worker refreshing every second.
        for path in ("/api/v1/models", "/api/v1/embeddings/models", "/api/tags"):
            upstream.routes[("GET", path)].mode = "hang"
        hang_port = free_port()
        hang_env = bench_env(upstream, redis_server.url, 1, SCHEDULER_ENABLED="true", UPSTREAM_TIMEOUT_SECONDS="2")
        servers.append(start_gunicorn(hang_port, hang_env, *flags))

        targets = {
            "A: Flask, constant bytes": (f"http://127.0.0.1:{ports['A']}{PATH}", {}),
            "B: A + @jwt_required()": (f"http://127.0.0.1:{ports['B']}{PATH}", auth),
            "service": (service_url, auth),
            "service, If-None-Match (304)": (service_url, {**auth, "If-None-Match": etag}),
            "service, Accept-Encoding: gzip": (service_url, {**auth, "Accept-Encoding": "gzip"}),
            "service, upstream hanging": (f"http://127.0.0.1:{hang_port}{PATH}", auth),
        }
        for url, headers in targets.values():  # warm up every worker
            for _ in range(200):
                requests.get(url, headers=headers, timeout=5)
        results = {name: [] for name in targets}
        for round_number in range(1, args.rounds + 1):
            for name, (url, headers) in targets.items():
                results[name].append(wrk(url, headers, args.duration, args.connections, args.threads))
            print(f"round {round_number}/{args.rounds} done", file=sys.stderr)

        for path in ("/api/v1/models", "/api/v1/embeddings/models", "/api/tags"):
            upstream.routes[("GET", path)].mode = "ok"
        reach = snapshot_reach_seconds(f"http://127.0.0.1:{service_port}", auth, upstream, env)
        cpu_ms = refresh_cpu_ms(upstream.url)
        rss = [child.memory_info().rss / 1e6 for child in psutil.Process(service.pid).children()]
        _report(results, args, len(first.content), len(gzip.compress(first.content)), reach, cpu_ms, rss)
    finally:
        for server in servers:
            stop(server)
        upstream.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _start_baseline(port: int, env: dict, target: str, flags: list[str]):
    """A baseline under the same gunicorn.conf.py as the service, access log included."""
    process = spawn([sys.executable, "-m", "gunicorn", target, "--bind", f"127.0.0.1:{port}", *flags], env)
    wait_for_http(f"http://127.0.0.1:{port}{PATH}", process, expect_status=None)
    return process


def _report(results, args, body_bytes, gzip_bytes, reach, cpu_ms, rss) -> None:
    medians = {name: {key: statistics.median(run[key] for run in runs) for key in ("rps", "p50", "p99")}
               for name, runs in results.items()}
    errors = {name: sum(run["errors"] for run in runs) for name, runs in results.items()}
    a, b = medians["A: Flask, constant bytes"], medians["B: A + @jwt_required()"]
    print(f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, {args.rounds} alternating rounds, "
          f"medians; body {body_bytes:,} bytes ({gzip_bytes:,} gzipped); {os.cpu_count()} cores")
    print(f"{'target':<34}{'req/s':>9}{'spread':>8}{'p50 ms':>9}{'p99 ms':>9}{'vs A':>8}{'vs B':>8}"
          f"{'p99 vs A':>10}{'errors':>8}")
    for name, m in medians.items():
        rates = [run["rps"] for run in results[name]]
        spread = (max(rates) - min(rates)) / m["rps"]  # how far rounds disagree: the noise floor
        print(f"{name:<34}{m['rps']:>9,.0f}{spread:>8.0%}{m['p50']:>9.2f}{m['p99']:>9.2f}{m['rps'] / a['rps']:>7.2f}x"
              f"{m['rps'] / b['rps']:>7.2f}x{m['p99'] / a['p99']:>9.2f}x{errors[name]:>8}")
    idle, hanging = medians["service"], medians["service, upstream hanging"]
    print(f"\nupstream hanging, refresh every 1 s: {hanging['rps'] / idle['rps'] - 1:+.1%} req/s vs the idle service")
    print(f"new snapshot served by every worker: {reach:.2f} s after its publish")
    print(f"one refresh of the 1 MB OpenRouter document: {cpu_ms:.0f} ms CPU (median of 5)")
    print("resident memory per service worker: " + ", ".join(f"{value:.0f} MB" for value in rss))


if __name__ == "__main__":
    sys.exit(main())
