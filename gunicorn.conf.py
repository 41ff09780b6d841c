"""gunicorn settings, read from gunicorn's default config path: `gunicorn wsgi:app` needs no flags."""

import os
import shutil
import tempfile

from config import Settings

_settings = Settings.from_env()

# prometheus-client picks its multiprocess mode when first imported, which happens after this
# file runs (gunicorn loads the app after its config): every worker then writes its counts here.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="catalog-metrics-")

bind = f"{_settings.host or '0.0.0.0'}:{_settings.port}"

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
if _settings.log_format == "json":
    access_log_format = (
        '{"event": "access", "remote": "%(h)s", "method": "%(m)s", "path": "%(U)s", '
        '"status": %(s)s, "bytes": "%(B)s", "duration_ms": %(M)s}'
    )
else:
    access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
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
