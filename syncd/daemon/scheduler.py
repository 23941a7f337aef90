"""The only module that imports APScheduler: sync jobs on intervals, from configuration.

Jobs are defined from configuration at start and on reload, never stored. One worker
thread runs them, so objects never sync at the same time (companies before the people
and deals that refer to them, when they fall due together); ``coalesce`` folds missed
runs into one, ``max_instances=1`` never starts a job that is still running, and a run
that could not start within ``misfire_grace_seconds`` of its time is skipped and the
next one waited for.

A run that falls due while the one before is still running (a long backfill) is
skipped by APScheduler with a warning at every slot ("maximum number of running
instances reached": every 2 s for the resync job). That skip is expected, so its
warning is dropped (``_ExpectedSkips``); syncd logs one line of its own instead, the
first time a job's run is skipped, and nothing more until that job has run again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger("syncd.scheduler")


class _ExpectedSkips(logging.Filter):
    """Drops APScheduler's warning for a run skipped because the last one still runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in str(record.msg)


_SKIPS = _ExpectedSkips()


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
            logger=_apscheduler_log(),
        )
        self._overrun: set[str] = set()
        """Jobs whose run was skipped since they last ran (logged once)."""
        self._scheduler.add_listener(
            self._event,
            EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_EXECUTED | EVENT_JOB_MAX_INSTANCES,
        )

    def overrun(self) -> set[str]:
        """Jobs due while their last run was still going, since they last ran."""
        return set(self._overrun)

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

    def _event(self, event: JobEvent) -> None:
        if event.code == EVENT_JOB_MAX_INSTANCES:
            if event.job_id not in self._overrun:
                self._overrun.add(event.job_id)
                log.info(
                    "%s is due while its last run is still running or queued behind the"
                    " cycle in flight (jobs run one at a time): its runs are skipped until"
                    " that one has ended",
                    event.job_id,
                    extra={"job": event.job_id},
                )
            return
        self._overrun.discard(event.job_id)
        if event.code == EVENT_JOB_MISSED:
            log.warning(
                "job %s missed its run at %s",
                event.job_id,
                getattr(event, "scheduled_run_time", None),
            )
        elif getattr(event, "exception", None) is not None:
            log.error("job %s failed: %s", event.job_id, getattr(event, "exception", None))


def _apscheduler_log() -> logging.Logger:
    """APScheduler's scheduler logger, without the expected skip warnings."""
    found = logging.getLogger("apscheduler.scheduler")
    if _SKIPS not in found.filters:
        found.addFilter(_SKIPS)
    return found
