"""``syncd run``: the long-running daemon that systemd supervises.

Start: load and validate the configuration, open (migrate) the store, listen for
/metrics (a standby on the host of the active daemon finds the port taken: it waits for
it, ``_serve_metrics``), wait until both systems answer ``check()``, run the setup
checks (``syncd.preflight``), then tell systemd READY. While a blocking setup check
fails the daemon schedules no cycle and writes nothing: it logs each problem, says so in
STATUS and /healthz, and checks again every ``daemon.preflight_retry_seconds``, so that
an admin's fix is picked up without a restart; a SIGHUP reload checks the new
configuration the same way.

Then, every ``tick``: take or renew the lease (only its holder schedules cycles; the
others wait as standbys and say so), reload the configuration after SIGHUP, and tell
systemd WATCHDOG and a STATUS line with the last cycle's result. The engine also asks
the lease before each batch of writes and in each commit (``syncd.daemon.lease``): a cycle
that finds the lease gone stops there, writing and committing nothing more, and wakes
the loop, which stops the cycles and stands by. While the store does not answer, the
daemon says so in its log, in STATUS and in /healthz (503), and withholds the watchdog
ping, so that systemd restarts a daemon cut off from its store. SIGTERM and SIGINT
stop it: the cycle in flight ends after the page or chunk it is on (committed), the
lease is released, STOPPING is sent, and it exits 0, or 1 when the cycle did not end
within ``shutdown_timeout_seconds``.

Without ``NOTIFY_SOCKET`` (a plain terminal) it runs the same and notifies nobody.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from sdnotify import SystemdNotifier

from syncd import logs, preflight, registry
from syncd.abc import Connector
from syncd.config.load import load_config
from syncd.config.settings import Config
from syncd.daemon import budget, metrics
from syncd.daemon.budget import Budgets
from syncd.daemon.lease import Lease, current_holder, lease_for
from syncd.daemon.metrics import Metrics
from syncd.daemon.pacing import pacer_of
from syncd.daemon.scheduler import Scheduler
from syncd.errors import ConfigError, LeaseLostError, StoreError, SyncdError
from syncd.state import control
from syncd.state import url as store_url
from syncd.state.store import Store
from syncd.sync import resync
from syncd.sync.cycle import counts_fields, counts_text
from syncd.sync.engine import Engine
from syncd.sync.progress import Silent, Tally

log = logging.getLogger("syncd.daemon")

Clock = Callable[[], datetime]


class Notifier:
    """The systemd notify protocol (sdnotify), also logged at debug level."""

    def __init__(self) -> None:
        self._systemd = SystemdNotifier()
        self.watchdog = _watchdog_interval()

    def __call__(self, *lines: str) -> None:
        message = "\n".join(lines)
        log.debug("notify %s", message.replace("\n", "; "))
        self._systemd.notify(message)


def _watchdog_interval() -> float | None:
    """Half of systemd's ``WatchdogSec`` (``WATCHDOG_USEC``), when it asks for pings."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


class Daemon:
    """One ``syncd run`` process."""

    def __init__(
        self, config_path: Path, *, notify: Notifier | None = None, log_level: str | None = None
    ) -> None:
        self.config_path = config_path
        self.log_level = log_level
        """``--log-level``: overrides ``log_level`` of syncd.yaml, also after a reload."""
        self.config: Config = load_config(config_path)
        self.notify = notify or Notifier()
        self.stop = threading.Event()
        self.hup = threading.Event()
        self._wake = threading.Event()
        """Ends the tick's wait early: a signal, or a cycle that found the lease gone."""
        self.store_trouble = ""
        """Why the store did not answer the last lease check ("": it answered)."""
        self.store: Store | None = None
        self.engine: Engine | None = None
        self.scheduler: Scheduler | None = None
        self.lease: Lease | None = None
        self.active = False
        self.last: dict[str, Any] = {}
        self.reload_failed = False
        self._connectors: list[Connector] = []
        self._standby_logged = False
        self.metrics = Metrics()
        self.metrics.watch(self._api_statuses)
        self.metrics.watch_pacing(lambda: {c.system: pacer_of(c) for c in list(self._connectors)})
        self._server: WSGIServer | None = None
        self._metrics_waiting: str | None = None
        """The metrics address a standby could not have yet (``_serve_metrics``)."""
        self._metrics_missing_logged = False
        self._ticked = time.monotonic()
        self._last_run: dict[str, float] = {}
        self.budget_note = ""
        self._checked_at = 0.0

    # -- the process -------------------------------------------------------------------

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self._set(self.stop))
        signal.signal(signal.SIGINT, lambda *_: self._set(self.stop))
        signal.signal(signal.SIGHUP, lambda *_: self._set(self.hup))

    def _set(self, event: threading.Event) -> None:
        event.set()
        self._wake.set()

    def run(self) -> int:
        settings = self.config.syncd.daemon
        logs.setup(
            json=settings.log_json,
            level=logs.level_of(self.log_level or self.config.syncd.log_level),
            secrets=self._credentials(),
        )
        self.store = Store.open(self.config.store_url)
        log.info(
            "store %s (named in %s) ready at schema %s",
            store_url.shown(self.config.store_url),
            self.config.store_source,
            self.store.schema_version()[0],
        )
        if settings.metrics:
            self._serve_metrics(settings.metrics)
        self.budgets = Budgets.for_config(self.store, self.config)
        if not self._connect():
            return self._finish(0)
        self.check_setup()
        self.lease = lease_for(self.store, timedelta(seconds=settings.lease_seconds))
        self.notify("READY=1", f"STATUS=started; lease {self.lease.holder}")
        log.info("ready as %s", self.lease.holder)
        tick = min(settings.lease_seconds / 3, self.notify.watchdog or 5.0, 5.0)
        while not self.stop.is_set():
            store_answered = self._hold_lease()
            self._retry_metrics()
            if self.hup.is_set():
                self.hup.clear()
                self.reload()
            elif self.blocked and self._setup_check_due():
                self.check_setup()
            if store_answered:  # an unreachable store withholds the ping: systemd restarts
                self.notify("WATCHDOG=1", f"STATUS={self.status_line()}")
                self._ticked = time.monotonic()
            else:
                self.notify(f"STATUS={self.status_line()}")
            self._wake.wait(tick)
            self._wake.clear()
        return self._shutdown()

    def _serve_metrics(self, address: str) -> None:
        """Listen for /metrics and /healthz. An address that cannot be had is a
        configuration error of ``daemon.metrics`` (exit 2), not a traceback, unless its
        port is taken while another daemon holds this store's lease: then this one is a
        standby on the same host, serves no metrics, and tries again at every tick, so
        that it serves them once the active daemon is gone (``_retry_metrics``)."""
        try:
            self._server = metrics.serve(self.metrics, address, self.health)
        except (OSError, OverflowError, UnicodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            if getattr(error, "errno", None) == errno.EADDRINUSE and self._lease_held_elsewhere():
                log.warning(
                    "metrics: %s (daemon.metrics) is in use, by the daemon that holds the"
                    " lease on this host?; no metrics until this daemon can listen there"
                    " (tried again every few seconds, and as it takes the lease)",
                    address,
                )
                self._metrics_waiting = address
                return
            problem = self.config.problem(
                ["daemon", "metrics"],
                f"cannot listen on {address}: {reason} (another process on that port?"
                " choose a free HOST:PORT, or empty to turn the metrics off)",
            )
            raise ConfigError([problem]) from None

    def _lease_held_elsewhere(self) -> bool:
        assert self.store is not None
        holder = current_holder(self.store)
        return holder is not None and bool(holder["live"])

    def _retry_metrics(self) -> None:
        """A standby's metrics: listen once the port is free (said once, when active)."""
        address = self._metrics_waiting
        if address is None:
            return
        try:
            self._server = metrics.serve(self.metrics, address, self.health)
        except OSError as error:
            if self.active and not self._metrics_missing_logged:
                log.error(
                    "active without metrics: %s (daemon.metrics) is still in use (%s);"
                    " trying again every few seconds",
                    address,
                    error.strerror or error,
                )
                self._metrics_missing_logged = True
            return
        self._metrics_waiting = None

    def _credentials(self) -> set[str]:
        """The configured tokens and secrets (not the ids), for the logs to hide."""
        names = {
            str(value)
            for system in self.config.syncd.systems.values()
            for key, value in system.options().items()
            if key.endswith("_env") and any(w in key for w in ("token", "secret", "password"))
        }
        return {self.config.secret(n) or "" for n in names} - {""}

    def _connect(self) -> bool:
        """Build the connectors and wait until both systems answer (or a stop)."""
        assert self.store is not None
        while not self.stop.is_set():
            try:
                self._build(self.config)
                for connector in self._connectors:
                    connector.check()
                return True
            except ConfigError:  # an unset credential: waiting will not set it
                self._close_connectors()
                raise
            except SyncdError as error:
                log.error("not ready, trying again in 10 s: %s", error)
                self.notify(f"STATUS=waiting for the systems: {str(error).splitlines()[0]}")
                self._close_connectors()
                self.stop.wait(10)
        return False

    def _build(self, config: Config) -> None:
        assert self.store is not None
        marketing = registry.connector(config, config.syncd.marketing)
        crm = registry.connector(config, config.syncd.crm)
        self._connectors = [marketing, crm]
        self.engine = Engine.for_config(config, self.store, marketing, crm)

    def _hold_lease(self) -> bool:
        """Take, keep or lose the lease; False when the store did not answer."""
        assert self.lease is not None
        try:
            held = self.lease.acquire()
        except Exception as error:  # StoreError (or worse): nobody can say who holds it
            trouble = str(error)
            if not isinstance(error, StoreError):
                trouble = f"the store does not answer: {trouble}"
            if not self.store_trouble:
                log.error("%s; no cycles and no watchdog ping until it answers", trouble)
            self.store_trouble = trouble
            held = False
        else:
            if self.store_trouble:
                log.info("the store answers again")
            self.store_trouble = ""
        self.metrics.lease.set(1 if held else 0)
        if held and not self.active and self.blocked:
            pass  # no cycles while a setup check fails; check_setup runs again
        elif held and not self.active:
            log.info("active: this daemon holds the lease and schedules the cycles")
            self._start_scheduler()
            self.active, self._standby_logged = True, False
        elif not held and self.active:
            log.error("lease lost: stopping the cycles")
            self._stop_scheduler()
            self.active = False
        elif not held and not self._standby_logged and not self.store_trouble:
            log.info("standby: another daemon holds the lease; waiting to take over")
            self._standby_logged = True
        return not self.store_trouble

    # -- setup checks -----------------------------------------------------------------

    @property
    def blocked(self) -> tuple[str, ...]:
        """The blocking setup problems found by the last check (none: writes allowed)."""
        return self.engine.blocked if self.engine is not None else ()

    def _setup_check_due(self) -> bool:
        retry = self.config.syncd.daemon.preflight_retry_seconds
        return time.monotonic() - self._checked_at >= retry

    def check_setup(self) -> bool:
        """Run the setup checks (``syncd.preflight``) and log every problem; True when
        none blocks. The engine refuses writes until they pass."""
        assert self.engine is not None
        result = preflight.gate(self.config, self.engine)
        self._checked_at = time.monotonic()
        for problem in result.problems:
            level = logging.ERROR if problem.blocking else logging.WARNING
            log.log(level, "setup check: %s", problem)
        if result.blocking:
            retry = self.config.syncd.daemon.preflight_retry_seconds
            log.error(
                "writes blocked by %d setup problem(s); checking again in %.0f s",
                len(result.blocking),
                retry,
            )
            self.notify(f"STATUS={self.status_line()}")
        else:
            log.info("setup checks passed: %s", ", ".join(result.checked))
        return not result.blocking

    # -- cycles ------------------------------------------------------------------------

    def _start_scheduler(self) -> None:
        assert self.engine is not None
        settings = self.config.syncd
        self.engine.stopping.clear()
        self.engine.fence = self.lease
        self.scheduler = Scheduler(misfire_grace_seconds=settings.daemon.misfire_grace_seconds)
        jobs = {
            f"cycle:{obj}": (float(settings.cadence_seconds.get(obj, 60)), self._job(obj))
            for obj in self.engine.rules
        }
        jobs["resync"] = (settings.daemon.resync_poll_seconds, self.resyncs)
        self.scheduler.plan(jobs)
        self.scheduler.start()

    def _stop_scheduler(self) -> bool:
        """Stop scheduling; wait for the cycle in flight. False if it outlived the timeout."""
        if self.scheduler is None:
            return True
        if self.engine is not None:
            self.engine.stopping.set()
        scheduler, self.scheduler = self.scheduler, None
        ender = threading.Thread(target=scheduler.shutdown, name="shutdown", daemon=True)
        ender.start()
        ender.join(self.config.syncd.daemon.shutdown_timeout_seconds)
        return not ender.is_alive()

    def _job(self, obj: str) -> Callable[[], None]:
        return lambda: self.cycle(obj)

    def cycle(self, obj: str) -> None:
        """One cycle of ``obj``, unless it or a system is paused or a budget is spent;
        its result is kept."""
        assert self.store is not None and self.engine is not None
        paused = control.paused(self.store)
        scopes = [f"system:{self.config.syncd.marketing}", f"system:{self.config.syncd.crm}"]
        reasons = [s for s in (*scopes, f"object:{obj}") if s in paused]
        if reasons:
            log.info("cycle of %s skipped: %s paused", obj, ", ".join(reasons))
            return
        if not self._within_budget(obj):
            return
        started = datetime.now(UTC)
        clock = time.monotonic()
        self._last_run[obj] = clock
        try:
            with self._metered(), self._progress_lines(obj):
                report = self.engine.run_once(obj)
        except LeaseLostError as error:  # another daemon may be writing now: stand by
            log.error("lease lost during the cycle of %s: %s; it writes nothing more", obj, error)
            self._wake.set()
            return
        except Exception as error:  # a cycle fails; the daemon goes on and says so
            log.exception("cycle of %s failed", obj)
            self.metrics.observe(obj, None, time.monotonic() - clock)
            result: dict[str, Any] = {"error": str(error)}
            ok, cycle_id = False, "-"
        else:
            self.metrics.observe(obj, report, time.monotonic() - clock)
            result, ok, cycle_id = report.as_dict(), True, report.cycle_id
            log.info(
                "cycle of %s: %s",
                obj,
                counts_text(result),
                extra={"cycle_id": cycle_id, "object": obj, **counts_fields(result)},
            )
        finished = datetime.now(UTC)
        control.record_cycle(self.store, obj, cycle_id, started, finished, ok, result)
        self.last = {"object": obj, "ok": ok, "at": finished, "result": result}
        open_letters = self.store.open_letters_by_system()
        for system in (self.config.syncd.marketing, self.config.syncd.crm):
            self.metrics.dead_letters.labels(system).set(open_letters.get(system, 0))
        for connector in list(self._connectors):
            self.metrics.split_calls.labels(connector.system).set(connector.split_calls())

    @contextmanager
    def _progress_lines(self, obj: str) -> Iterator[None]:
        """While the block runs, log how far the cycle of ``obj`` got every
        ``daemon.progress_log_seconds``."""
        assert self.engine is not None
        tally = Tally()
        every = self.config.syncd.daemon.progress_log_seconds
        done = threading.Event()

        def report() -> None:
            while not done.wait(every):
                snapshot = tally.snapshot()
                log.info(
                    "cycle in progress: %s",
                    tally.line(obj),
                    extra={
                        "object": obj,
                        "phase": tally.phases.get(obj, "starting"),
                        "seconds": round(tally.elapsed(obj), 1),
                        "read": {s: c.read for (_, s), c in snapshot.items() if c.read},
                        "written": {s: c.written for (_, s), c in snapshot.items() if c.written},
                    },
                )

        reporter = threading.Thread(target=report, name=f"progress:{obj}", daemon=True)
        self.engine.progress = tally
        reporter.start()
        try:
            yield
        finally:
            done.set()
            reporter.join()
            self.engine.progress = Silent()

    def _api_statuses(self) -> dict[str, Mapping[int, int]]:
        return {c.system: c.api_statuses() for c in list(self._connectors)}

    def health(self) -> tuple[bool, str]:
        """Healthy: the store answers, the main loop ticks, and the last cycle (if any)
        went well."""
        if self.store_trouble:  # its first line: the rest is the driver's advice
            return False, f"{self.store_trouble.splitlines()[0]} ({self.status_line()})"
        quiet = time.monotonic() - self._ticked
        if quiet > 3 * 5.0 + 10:
            return False, f"no healthy loop for {quiet:.0f} s (the store does not answer?)"
        if self.blocked or (self.last and not self.last["ok"]):
            return False, self.status_line()
        return True, self.status_line()

    def _within_budget(self, obj: str) -> bool:
        """False when a system's budget is spent, or near and this cycle is early."""
        now = datetime.now(UTC)
        allowances = [self.budgets.allowance(c, now) for c in self._connectors]
        for allowance in allowances:
            if allowance.remaining is not None:
                self.metrics.budget.labels(allowance.system).set(max(allowance.remaining, 0))
        spent = [a for a in allowances if a.spent]
        if spent:
            log.warning(
                "cycle of %s skipped: API budget spent (%s); calls resume at %s",
                obj,
                "; ".join(a.text() for a in spent),
                budget.next_day(now).isoformat(),
            )
            self.budget_note = "budget spent: " + "; ".join(a.text() for a in spent)
            return False
        near = [a for a in allowances if a.near]
        cadence = float(self.config.syncd.cadence_seconds.get(obj, 60))
        last = self._last_run.get(obj)
        if near and last is not None and time.monotonic() - last < 2 * cadence:
            log.info("cycle of %s at half pace: %s", obj, "; ".join(a.text() for a in near))
            self.budget_note = "near budget: " + "; ".join(a.text() for a in near)
            return False
        self.budget_note = ""
        return True

    def _metered(self) -> AbstractContextManager[None]:
        """Count the API calls made inside, per system and day, against the budgets."""
        return self.budgets.metered(list(self._connectors))

    def resyncs(self) -> None:
        """Drain the manual resync requests (a frequent job between the cycles)."""
        assert self.engine is not None
        try:
            with self._metered():
                resync.drain(self.engine)
        except LeaseLostError as error:
            log.error("lease lost while resyncing: %s; it writes nothing more", error)
            self._wake.set()
        except Exception:  # the queue is tried again at the next run of the job
            log.exception("draining resync requests failed")

    def status_line(self) -> str:
        role = "active" if self.active else "blocked" if self.blocked else "standby"
        if self.store_trouble:
            role += "; the store does not answer"
        if self.reload_failed:
            role += "; configuration reload FAILED, old one running"
        if self.budget_note:
            role += f"; {self.budget_note}"
        if self.blocked:
            role += f"; writes blocked by {len(self.blocked)} setup problem(s): {self.blocked[0]}"
        if not self.last:
            return role
        last = self.last
        if not last["ok"]:
            error = str(last["result"]["error"]).splitlines()[0]  # STATUS= holds one line
            return f"{role}; last cycle of {last['object']} failed: {error}"
        counts = last["result"]
        written = sum(counts["created"].values()) + sum(counts["updated"].values())
        return (
            f"{role}; last cycle of {last['object']} at {last['at']:%H:%M:%S}: "
            f"read {sum(counts['read'].values())}, wrote {written}, "
            f"rejected {sum(counts['rejected'].values())}"
        )

    # -- reload and stop ---------------------------------------------------------------

    def reload(self) -> bool:
        """Load the YAML again; keep the running configuration unless it validates."""
        try:
            config = load_config(self.config_path)
        except ConfigError as error:
            for problem in error.problems:
                log.error("configuration not reloaded: %s", problem)
            self.reload_failed = True
            self.metrics.reload_failed.set(1)
            return False
        if config.store_url != self.config.store_url:
            log.warning("the store cannot change while running: restart syncd to move it")
        was_active = self.active
        if was_active and not self._stop_scheduler():
            log.error("reload waited too long for the cycle in flight")
        assert self.store is not None
        self._close_connectors()
        self.config = config
        if self.log_level is None:  # --log-level holds over the file's log_level
            logging.getLogger().setLevel(logs.level_of(config.syncd.log_level))
        self.budgets = Budgets.for_config(self.store, config)
        self._build(config)
        if self.check_setup() and was_active:
            self._start_scheduler()
        else:
            self.active = False  # the lease check starts the cycles once the checks pass
        self.reload_failed = False
        self.metrics.reload_failed.set(0)
        log.info("configuration reloaded from %s", self.config_path)
        return True

    def _shutdown(self) -> int:
        self.notify("STOPPING=1", "STATUS=stopping: finishing the batch in flight")
        log.info("stopping: finishing the batch in flight")
        finished = self._stop_scheduler()
        if not finished:
            log.error(
                "the cycle in flight did not end within %s s",
                self.config.syncd.daemon.shutdown_timeout_seconds,
            )
        if self.lease is not None and finished:
            self.lease.release()
        return self._finish(0 if finished else 1)

    def _finish(self, code: int) -> int:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._close_connectors()
        if self.store is not None:
            self.store.close()
        log.info("stopped")
        return code

    def _close_connectors(self) -> None:
        for connector in self._connectors:
            connector.close()
        self._connectors = []
