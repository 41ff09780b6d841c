"""APScheduler wiring: one job per catalog, started only on purpose, never by an import."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .refresh import Refresher
from .snapshot import CATALOGS

log = logging.getLogger(__name__)


def build_scheduler(refresher: Refresher, blocking: bool = False) -> BaseScheduler:
    """A scheduler with one job per enabled catalog, the first run due at once."""
    scheduler_class = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = scheduler_class(timezone=timezone.utc)
    now = datetime.now(timezone.utc)
    for catalog in CATALOGS:
        if not refresher.enabled(catalog):
            log.info("not scheduling %s: OPENROUTER_API_KEY is not set", catalog)
            continue
        tick = refresher.tick(catalog)
        scheduler.add_job(
            refresher.run,
            IntervalTrigger(seconds=tick),
            args=[catalog],
            id=catalog,
            name=f"refresh {catalog}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(tick)),
            next_run_time=now,
        )
    return scheduler
