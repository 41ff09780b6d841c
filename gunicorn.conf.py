"""gunicorn settings, read from gunicorn's default config path: `gunicorn wsgi:app` needs no flags."""

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime

from gunicorn import glogging

from config import Settings

_settings = Settings.from_env()

# prometheus-client picks its multiprocess mode when first imported, which happens after this
# file runs (gunicorn loads the app after its config): every worker then writes its counts here.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="catalog-metrics-")

# Every interface: in a container the published port reaches the server only so.
bind = f"{_settings.host or '0.0.0.0'}:{_settings.port}"  # noqa: S104

# Worker class and count: chosen with bench/run.py on a 2-core machine (the figures are in
# docs/benchmarks.md). gthread keeps connections alive and slow clients off the workers.
worker_class = "gthread"
threads = 4
# The process tier is per process: without Redis, one worker, so that one snapshot serves all.
workers = 2 if _settings.redis_url else 1

timeout = 30
graceful_timeout = 10
keepalive = 5
# No runtime control socket: unused here, and two instances on one host would share its path.
control_socket_disable = True

# Access log on stdout: method, path without the query string, status, size, time. No query
# string (a token could be pasted there) and no request headers (Authorization).
accesslog = "-"


class CatalogAccessLogger(glogging.Logger):
    """gunicorn's logger with a cheaper access line of our own shape.

    gunicorn's access() builds a dict of every request header, response header and environ
    variable per request to fill its format string; this one reads the six fields it prints.
    With LOG_FORMAT=json the line carries `time` and `level` like every other log line.
    """

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        status = resp.status.split(None, 1)[0] if isinstance(resp.status, str) else resp.status
        duration_ms = request_time.seconds * 1000 + request_time.microseconds / 1000
        sent = getattr(resp, "sent", None)
        remote = environ.get("REMOTE_ADDR", "-")
        method, path = environ.get("REQUEST_METHOD", "-"), environ.get("PATH_INFO", "")
        if _settings.log_format == "json":
            line = json.dumps({
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": "info", "logger": "gunicorn.access", "event": "access", "remote": remote,
                "method": method, "path": path, "status": int(status), "bytes": sent,
                "duration_ms": round(duration_ms, 1),
            })  # fmt: skip
        else:
            line = f'{remote} "{method} {path}" {status} {sent if sent is not None else "-"} {int(duration_ms)}ms'
        self.access_log.info(line)


logger_class = CatalogAccessLogger
errorlog = "-"


def on_starting(server):
    """Start with empty metric files: counts of a previous run must not leak into this one."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for entry in os.listdir(directory):
        path = os.path.join(directory, entry)
        shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)


def post_worker_init(worker):
    """Run the refresh jobs in this worker when it is the one to do it (see Settings.runs_scheduler)."""
    if not _settings.runs_scheduler(embedded=False):
        return
    from app.jobs import RefreshJobs

    jobs = RefreshJobs(worker.wsgi.extensions["catalog_service"].refresher)
    jobs.start()
    worker.refresh_jobs = jobs
    worker.log.info("worker %s runs the refresh scheduler", worker.pid)


def worker_exit(server, worker):
    """Stop this worker's jobs with it: a run in progress publishes nothing."""
    jobs = getattr(worker, "refresh_jobs", None)
    if jobs is not None:
        jobs.stop()


def child_exit(server, worker):
    """Let the metrics of a dead worker stop counting as live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
