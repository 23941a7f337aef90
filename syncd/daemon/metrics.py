"""Prometheus metrics and ``/healthz``, served over HTTP (127.0.0.1 by default).

Counters of what the cycles did (records read, written and rejected per system and
object, conflicts by rule, failed cycles), cycle durations, how long changes took to
cross (``syncd_propagation_seconds`` by direction), and gauges read when
Prometheus scrapes: open dead letters, API answers by system and status code, seconds
since each object's last good cycle, the lease, whether the last configuration
reload failed, and the extra calls batch splitting made per system (``syncd.sync.split``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from syncd.daemon.pacing import Pacer
from syncd.sync.cycle import CycleReport

log = logging.getLogger("syncd.metrics")
Health = Callable[[], tuple[bool, str]]


class Metrics:
    """Every metric syncd exports, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.read = Counter("syncd_records_read", "Records read", ["system", "object"], registry=r)
        self.written = Counter(
            "syncd_records_written", "Records written", ["system", "object", "op"], registry=r
        )
        self.rejected = Counter(
            "syncd_records_rejected", "Writes refused", ["system", "object"], registry=r
        )
        self.conflicts = Counter(
            "syncd_conflicts", "Conflicts by deciding rule", ["object", "rule"], registry=r
        )
        self.gated = Counter(
            "syncd_gate_held_back",
            "Marketing people the gate kept out of the CRM, each time a cycle read them",
            ["object"],
            registry=r,
        )
        self.failures = Counter(
            "syncd_cycle_failures", "Cycles that failed", ["object"], registry=r
        )
        self.duration = Histogram(
            "syncd_cycle_duration_seconds",
            "Cycle duration",
            ["object"],
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.propagation = Histogram(
            "syncd_propagation_seconds",
            "Seconds from a change in one system to its write landing in the other",
            ["direction"],
            buckets=(1, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600, 1800, 3600, 86400),
            registry=r,
        )
        self.lease = Gauge("syncd_lease_held", "1 while this daemon holds the lease", registry=r)
        self.reload_failed = Gauge(
            "syncd_config_reload_failed", "1 when the last reload was refused", registry=r
        )
        self.budget = Gauge(
            "syncd_api_budget_remaining", "API calls left today", ["system"], registry=r
        )
        self.split_calls = Gauge(
            "syncd_batch_split_calls",
            "Extra calls since start splitting batches refused as a whole",
            ["system"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "syncd_dead_letters_open", "Dead letters not resolved", ["system"], registry=r
        )
        self._last_good: dict[str, float] = {}

    def observe(self, obj: str, report: CycleReport | None, seconds: float) -> None:
        """One cycle of ``obj`` (None: it failed)."""
        self.duration.labels(obj).observe(seconds)
        if report is None:
            self.failures.labels(obj).inc()
            return
        self._last_good[obj] = time.time()
        for system, count in report.read.items():
            self.read.labels(system, obj).inc(count)
        for op, counts in (("create", report.created), ("update", report.updated)):
            for system, count in counts.items():
                self.written.labels(system, obj, op).inc(count)
        for system, count in report.rejected.items():
            self.rejected.labels(system, obj).inc(count)
        if report.gated:
            self.gated.labels(obj).inc(report.gated)
        for rule, count in report.conflict_rules.items():
            self.conflicts.labels(obj, rule).inc(count)
        for way, took in report.propagation.items():
            for value in took:
                self.propagation.labels(way).observe(value)

    def watch_pacing(self, pacers: Callable[[], Mapping[str, Pacer | None]]) -> None:
        """Read each system's pacing (``syncd.daemon.pacing``) at each scrape."""
        self.registry.register(_Pacing(pacers))

    def watch(self, api: Callable[[], Mapping[str, Mapping[int, int]]]) -> None:
        """Read the API answers (by system, by status) and the freshness at each scrape."""
        self.registry.register(_Scraped(api, self._last_good))


class _Scraped(Collector):
    def __init__(
        self, api: Callable[[], Mapping[str, Mapping[int, int]]], last_good: Mapping[str, float]
    ) -> None:
        self.api, self.last_good = api, last_good

    def collect(self) -> Iterator[Any]:
        calls = CounterMetricFamily(
            "syncd_api_calls", "API answers by system and HTTP status", labels=["system", "status"]
        )
        for system, statuses in self.api().items():
            for status, count in statuses.items():
                calls.add_metric([system, str(status)], count)
        yield calls
        lag = GaugeMetricFamily(
            "syncd_seconds_since_last_cycle",
            "Seconds since the object's last good cycle (how stale the sync can be)",
            labels=["object"],
        )
        now = time.time()
        for obj, at in self.last_good.items():
            lag.add_metric([obj], now - at)
        yield lag


class _Pacing(Collector):
    """The pacers' counters and windows, read when Prometheus scrapes."""

    def __init__(self, pacers: Callable[[], Mapping[str, Pacer | None]]) -> None:
        self.pacers = pacers

    def collect(self) -> Iterator[Any]:
        waits = CounterMetricFamily(
            "syncd_api_pacing_waits",
            "Calls that waited for a slot, by the limit waited on",
            labels=["system", "limit"],
        )
        waited = CounterMetricFamily(
            "syncd_api_pacing_wait_seconds", "Seconds calls waited for a slot", labels=["system"]
        )
        refused = CounterMetricFamily(
            "syncd_api_rate_limited",
            "Answers 429 (Salesforce: REQUEST_LIMIT_EXCEEDED for calls in flight): a defect",
            labels=["system"],
        )
        window = GaugeMetricFamily(
            "syncd_api_window_calls",
            "Calls in the current window of each rate, and the rate's limit",
            labels=["system", "limit", "of"],
        )
        for system, pacer in self.pacers().items():
            if pacer is None:
                continue
            state = pacer.stats
            for waited_on, count in state.by_limit.items():
                waits.add_metric([system, waited_on], count)
            waited.add_metric([system], state.wait_seconds)
            refused.add_metric([system], state.http_429)
            in_window = pacer.in_window()
            for name, rate in pacer.limits.items():
                window.add_metric([system, name, rate.text()], in_window[name])
        yield from (waits, waited, refused, window)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not events
        pass


def serve(metrics: Metrics, address: str, health: Health) -> WSGIServer:
    """Serve ``/metrics`` and ``/healthz`` at ``HOST:PORT`` (port 0: any free one)."""
    host, _, port = address.rpartition(":")
    scrape = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            ok, detail = health()
            start("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [f"{'ok' if ok else 'unhealthy'}: {detail}\n".encode()]
        return scrape(environ, start)

    server = make_server(host or "127.0.0.1", int(port), app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics at http://%s:%s/metrics", server.server_address[0], server.server_port)
    return server
