"""`flask --app wsgi models ...`: tokens, the cron-style warmup, status and the refresher process."""

from __future__ import annotations

import json
import signal
import sys
import time

import click
from flask import Flask
from flask.cli import AppGroup

from .auth import issue_token
from .catalog import get_catalog
from .scheduler import build_scheduler
from .snapshot import CATALOGS
from .store import StoreUnavailable

models_cli = AppGroup("models", help="Model catalog commands.")

SOURCE_CHOICES = {"openrouter": ("openrouter",), "embeddings": ("embeddings",), "ollama": ("ollama",), "all": CATALOGS}


@models_cli.command("token")
@click.argument("identity")
@click.option("--expires", type=click.IntRange(min=1), default=3600, show_default=True, help="Lifetime in seconds.")
def token_command(identity: str, expires: int) -> None:
    """Print an access token for IDENTITY, signed with JWT_SECRET_KEY."""
    click.echo(issue_token(identity, expires))


@models_cli.command("refresh")
@click.option("--source", type=click.Choice(sorted(SOURCE_CHOICES)), default="all", show_default=True)
@click.option("--force", is_flag=True, help="Refresh even when the snapshot is fresh (the lock still applies).")
def refresh_command(source: str, force: bool) -> None:
    """Refresh catalogs once, one line per catalog; exit 1 when one failed."""
    refresher = get_catalog().refresher
    results = refresher.run_all(SOURCE_CHOICES[source], force=force)
    for result in results:
        click.echo(result.describe())
    if any(result.failed for result in results):
        sys.exit(1)


@models_cli.command("status")
def status_command() -> None:
    """Print each catalog's refresh status as JSON lines."""
    store = get_catalog().store
    now = time.time()
    for catalog in CATALOGS:
        try:
            status = store.read_status(catalog)
        except StoreUnavailable as exc:
            raise click.ClickException(f"cannot read the status: {exc}") from None
        line = {"catalog": catalog, **(status or {"outcome": "never_run"})}
        if isinstance(line.get("last_success"), (int, float)):
            line["age_seconds"] = round(max(0.0, now - line["last_success"]), 1)
        click.echo(json.dumps(line, sort_keys=True))


@models_cli.command("scheduler")
def scheduler_command() -> None:
    """Run the refresh jobs in the foreground until SIGTERM or Ctrl-C: the refresher process."""
    scheduler = build_scheduler(get_catalog().refresher, blocking=True)

    def stop(signum, _frame):
        click.echo(f"received signal {signum}, stopping the scheduler", err=True)
        # wait=False: a run in progress is abandoned; its lock expires by its TTL.
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    click.echo("refresher running; Ctrl-C or SIGTERM stops it", err=True)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass


def init_app(app: Flask) -> None:
    """Register the command group."""
    app.cli.add_command(models_cli)
