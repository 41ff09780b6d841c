"""`flask --app wsgi models ...`: tokens, the cron-style warmup, status and the refresher process."""

from __future__ import annotations

import dataclasses
import json
import signal
import sys
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from prometheus_client import start_http_server

from .auth import issue_token
from .jobs import RefreshJobs
from .registry import ALL_SOURCES
from .service import get_service
from .status import RefreshStatus
from .store import StoreUnavailable

models_cli = AppGroup("models", help="Model catalog commands.")


@models_cli.command("token")
@click.argument("identity")
@click.option("--expires", type=click.IntRange(min=1), default=3600, show_default=True, help="Lifetime in seconds.")
@click.option("--claim", "claims", multiple=True, metavar="NAME=VALUE", help="An extra claim, e.g. role=admin.")
def token_command(identity: str, expires: int, claims: tuple[str, ...]) -> None:
    """Print an access token for IDENTITY, signed with JWT_SECRET_KEY."""
    extra = {}
    for claim in claims:
        name, equals, value = claim.partition("=")
        if not equals or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {claim!r}", param_hint="--claim")
        extra[name] = value
    click.echo(issue_token(identity, expires, extra))


@models_cli.command("refresh")
@click.option("--source", default=ALL_SOURCES, show_default=True, help="A source name (see `models status`) or all.")
@click.option("--force", is_flag=True, help="Refresh even when the snapshot is fresh (the lock still applies).")
def refresh_command(source: str, force: bool) -> None:
    """Refresh sources once, one line per source; exit 1 when one failed."""
    service = get_service()
    # The choices are the configured sources, known once the app is loaded.
    choices = service.registry.refresh_choices
    if source not in choices:
        raise click.BadParameter(f"{source!r} is not one of {', '.join(choices)}", param_hint="--source")
    results = service.refresher.run_all(service.registry.chosen(source), force=force)
    for result in results:
        click.echo(result.describe())
    if any(result.failed for result in results):
        sys.exit(1)


@models_cli.command("status")
def status_command() -> None:
    """Print each source's refresh status as JSON lines."""
    service = get_service()
    now = time.time()
    for name in service.registry.sources:
        try:
            status = service.store.read_status(name) or RefreshStatus(name)
        except StoreUnavailable as exc:
            raise click.ClickException(f"cannot read the status: {exc}") from None
        line = dataclasses.asdict(status)
        if status.last_success is not None:
            line["age_seconds"] = round(max(0.0, now - status.last_success), 1)
        click.echo(json.dumps(line, sort_keys=True))


@models_cli.command("scheduler")
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Also serve this process's refresh metrics on this port.",
)
def scheduler_command(metrics_port: int | None) -> None:
    """Run the refresh jobs in the foreground until SIGTERM or Ctrl-C: the refresher process."""
    jobs = RefreshJobs(get_service().refresher)
    if metrics_port:
        start_http_server(metrics_port, registry=current_app.extensions["metrics"].registry)

    def stop(signum, _frame):
        click.echo(f"received signal {signum}, stopping the scheduler", err=True)
        jobs.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo("refresher running; Ctrl-C or SIGTERM stops it", err=True)
    jobs.run()


def init_app(app: Flask) -> None:
    """Register the command group."""
    app.cli.add_command(models_cli)
