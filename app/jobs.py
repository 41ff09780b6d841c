"""The refresh jobs in APScheduler: one job per enabled source, and the pick-up of refreshes
asked for over the API. Started only on purpose (gunicorn's hook, `models scheduler`,
`python -m app`), never by an import."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .refresh import Refresher
from .store import StoreUnavailable

log = logging.getLogger(__name__)

# How often the process that runs the jobs looks for refreshes asked for over the API.
DUE_CHECK_SECONDS = 1.0


class RefreshJobs:
    """The one way to run the refresh jobs: start() in the background or run() in the
    foreground, stop() on shutdown (a run in progress then publishes nothing)."""

    def __init__(self, refresher: Refresher) -> None:
        self.refresher = refresher
        self.scheduler: BaseScheduler | None = None

    def build(self, blocking: bool = False) -> BaseScheduler:
        """A scheduler with one job per enabled source, the first run due at once."""
        sources = self.refresher.registry.sources.values()
        # A thread per job and a spare: one source hanging never holds up another.
        executor = ThreadPoolExecutor(max_workers=len(sources) + 2)
        scheduler_class = BlockingScheduler if blocking else BackgroundScheduler
        scheduler = scheduler_class(timezone=UTC, executors={"default": executor})
        now = datetime.now(UTC)
        for source in sources:
            if not source.enabled:
                log.info("not scheduling %s: %s", source.name, source.disabled_reason)
                continue
            tick = self.refresher.tick(source)
            scheduler.add_job(
                self.refresher.run,
                IntervalTrigger(seconds=tick),
                args=[source.name],
                id=source.name,
                name=f"refresh {source.name}",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, int(tick)),
                next_run_time=now,
            )
        if self.refresher.store.shared:
            scheduler.add_job(
                self._run_requested, IntervalTrigger(seconds=DUE_CHECK_SECONDS), id="requested",
                name="refreshes asked for over the API", max_instances=1, coalesce=True,
            )  # fmt: skip
        self.scheduler = scheduler
        return scheduler

    def start(self) -> None:
        """Run the jobs on background threads of this process."""
        self.build().start()

    def run(self) -> None:
        """Run the jobs in the foreground until stop() is called (from a signal handler)."""
        self.build(blocking=True).start()

    def stop(self) -> None:
        """Stop scheduling; a run in progress publishes nothing, its lock expires by its TTL."""
        self.refresher.stopping.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def _run_requested(self) -> None:
        """Hand each source asked for to its own one-off job, so that none waits for another."""
        try:
            names = self.refresher.store.take_due()
        except StoreUnavailable as exc:
            log.debug("cannot read the requested refreshes: %s", exc)
            return
        for name, accept_shrink in names:
            if name in self.refresher.registry.sources and self.scheduler is not None:
                self.scheduler.add_job(
                    self.refresher.run,
                    args=[name],
                    kwargs={"force": True, "accept_shrink": accept_shrink},
                    name=f"requested refresh {name}",
                )
