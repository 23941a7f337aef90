"""The only module that imports APScheduler: sync jobs on intervals, from configuration.

Jobs are defined from configuration at start and on reload, never stored. One worker
thread runs them, so objects never sync at the same time (companies before the people
and deals that refer to them, when they fall due together); ``coalesce`` folds missed
runs into one, ``max_instances=1`` never starts a job that is still running, and a run
that could not start within ``misfire_grace_seconds`` of its time is skipped and the
next one waited for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger("syncd.scheduler")


class Scheduler:
    """Interval jobs by name, run one at a time in a background thread."""

    def __init__(self, *, misfire_grace_seconds: float = 30) -> None:
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, int(misfire_grace_seconds)),
            },
            timezone=UTC,
        )
        self._scheduler.add_listener(self._event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)

    def plan(self, jobs: Mapping[str, tuple[float, Callable[[], None]]]) -> None:
        """Replace every job: name -> (interval seconds, function). Each runs once now,
        in the order given (a millisecond apart: companies before people before deals)."""
        self._scheduler.remove_all_jobs()
        now = datetime.now(UTC)
        for order, (name, (seconds, function)) in enumerate(jobs.items()):
            self._scheduler.add_job(
                function,
                IntervalTrigger(seconds=max(seconds, 0.1), timezone=UTC),
                id=name,
                name=name,
                next_run_time=now + timedelta(milliseconds=order),
                replace_existing=True,
            )

    def start(self) -> None:
        if not self._scheduler.running:
            self._scheduler.start()

    def pause(self) -> None:
        """Start no new runs (a run in progress goes on)."""
        if self._scheduler.running:
            self._scheduler.pause()

    def resume(self) -> None:
        if self._scheduler.running:
            self._scheduler.resume()

    def shutdown(self) -> None:
        """Start no new runs and wait for the one in progress to end."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def _event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("job %s missed its run at %s", event.job_id, event.scheduled_run_time)
        elif event.exception is not None:
            log.error("job %s failed: %s", event.job_id, event.exception)
