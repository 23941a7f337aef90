"""``syncd bench``: backfill, echo, steady-state, lookback and idle rounds against
emulators in other processes.

Each size runs in a fresh Python process (``python -m syncd.harness.bench --child N``) so that
peak RSS is that run's own; the emulators run in processes of their own, so that their
memory is not counted. API calls are read from the emulators' own counters.

The extra calls of batch splitting (``syncd.sync.split``: a batch refused as a whole is split
until the refused record stands alone) are read from the connectors: 0 in the backfill
and the steady state, where nothing is refused; then one more round edits a batch of
100 leads, one of them with a lead source HubSpot refuses, and reports what that one
record cost (at most 2 x ceil(log2 100) = 14 calls).

By default the emulators enforce the published limits (``registry.emulator_limits``:
HubSpot 190 calls per 10 s, search 5 per second, 1,000,000 a day; Salesforce 25 requests
in flight, its daily allocation); ``--unthrottled`` lifts all but Salesforce's daily
allocation. Each run then reports the answers refused for a limit (``http_429``), the
least wall time those limits allow for the backfill's work at its floor
(``rate_limit_bound_s``), the backfill's ``wall_s`` and syncd's ``cpu_ms_per_record``,
the store's size and its write-ahead log's peak, and the bound and wall projected
linearly to 1,000,000 people.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from syncd import registry
from syncd.config.load import load_config
from syncd.harness import sandbox
from syncd.state.store import Store, log_bound
from syncd.state.tables import links
from syncd.sync.cycle import CycleReport
from syncd.sync.engine import Engine

PAGE = {"hubspot": 200, "salesforce": 2000}
BATCH = {"hubspot": 100, "salesforce": 200}


def _control(url: str, method: str, path: str, body: Any = None, ca: str | None = None) -> Any:
    import ssl

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    context = ssl.create_default_context(cafile=ca) if ca else None
    with urllib.request.urlopen(request, timeout=120, context=context) as answer:
        text = answer.read()
    return json.loads(text) if text else None


@contextmanager
def _emulators(
    people: int, companies: int, deals: int, archived: int = 0, throttled: bool = False
) -> Iterator[dict[str, Any]]:
    processes = []
    endpoints: dict[str, Any] = {}
    try:
        commands = registry.emulator_commands(
            people, companies, deals, archived, throttled=throttled
        )
        for name, command in commands.items():
            process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            processes.append(process)
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            ca = my_domain = None
            if name == "salesforce":
                ca, my_domain = (process.stdout.readline().strip() for _ in range(2))
            endpoints[name] = SimpleNamespace(
                url=url,
                my_domain_url=my_domain,
                ca_pem_path=ca,
                token="emulator-token",
                client_id="syncd",
                client_secret="emulator-secret",
                refresh_token="emulator-refresh-token",  # HubSpot's OAuth app (auth: oauth)
            )
        yield endpoints
        endpoints["_cpu_s"] = {
            name: _cpu_seconds(process.pid)
            for name, process in zip(registry.emulator_commands(0), processes, strict=True)
        }
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def _cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a live process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


def _limit_answers(endpoints: dict[str, Any]) -> dict[str, int]:
    """Answers refusing a call for a limit, so far: HubSpot's 429s; Salesforce's 429s and
    403 REQUEST_LIMIT_EXCEEDED (daily allocation, requests in flight)."""
    hs, sf = endpoints["hubspot"], endpoints["salesforce"]
    hubspot = _control(hs.url, "GET", "/_emulator/statuses")
    salesforce = _control(sf.url, "GET", "/_emulator/statuses", ca=sf.ca_pem_path)
    refusals = _control(sf.url, "GET", "/_emulator/limit_refusals", ca=sf.ca_pem_path)
    return {
        "hubspot": hubspot.get("429", 0),
        "salesforce": salesforce.get("429", 0) + sum(refusals.values()),
    }


class _WalWatch:
    """Samples the size of a SQLite store's write-ahead log in a background thread."""

    def __init__(self, database: str | None, every: float = 0.05) -> None:
        self.wal = Path(database + "-wal") if database else None
        self.peak = 0
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _WalWatch:
        if self.wal is not None:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._sample()

    def _sample(self) -> None:
        if self.wal is not None:
            with suppress(FileNotFoundError):
                self.peak = max(self.peak, self.wal.stat().st_size)

    def _watch(self) -> None:
        while not self._stop.wait(self._every):
            self._sample()


def _store_bytes(database: str | None) -> int | None:
    """The SQLite store file and its -wal, in bytes (None: not a SQLite file)."""
    if not database:
        return None
    files = (Path(database), Path(database + "-wal"))
    return sum(f.stat().st_size for f in files if f.exists())


def _calls(endpoints: dict[str, Any]) -> dict[str, int]:
    return {
        name: sum(_control(e.url, "GET", "/_emulator/calls", ca=e.ca_pem_path).values())
        for name, e in endpoints.items()
        if not name.startswith("_")
    }


SCANS = {"hubspot": {"company": 2, "person": 2, "deal": 2}}
SCANS["salesforce"] = {"company": 1, "person": 1, "deal": 1}  # Lead + Contact: one /composite
"""Calls every cycle of an object makes even when it reads nothing: HubSpot's search and
a sweep slice (at most one call a cycle on average, ``syncd.sync.sweeps``); Salesforce's
query per kind (Lead and Contact for people)."""
IDLE_CYCLES = 20
CADENCE = timedelta(seconds=60)
ASSOCIATION_READS = {
    ("hubspot", "person"): (1, 200),
    ("hubspot", "deal"): (2, 200),
    ("salesforce", "deal"): (1, 200),
}
"""Association reads per page, by system and object: (calls a page, records a page).
HubSpot: one v4 batch read per associated type per search page (a contact's companies;
a deal's companies and contacts); Salesforce: one contact-role query per 200
opportunities."""


def _floor(reports: list[CycleReport], deferred: frozenset[str] = frozenset()) -> dict[str, int]:
    """Pages and batches at the maximum sizes for what the cycles read and wrote;
    ``deferred``: the systems told a created partner's id only with their next update
    (``partner_id_write_back: with_next_update``), which cost no batch of their own."""
    floor: dict[str, int] = {}
    for system in PAGE:
        other = "salesforce" if system == "hubspot" else "hubspot"
        total = 0
        for report in reports:
            for obj, part in report.objects.items():
                read = part.read[system]
                total += max(1, math.ceil(read / PAGE[system])) + SCANS[system][obj] - 1
                calls, size = ASSOCIATION_READS.get((system, obj), (0, 1))
                total += calls * math.ceil(read / size)
                total += math.ceil(part.created[system] / BATCH[system])
                total += math.ceil(part.updated[system] / BATCH[system])
                if system not in deferred:  # partner_id_write_back: immediate
                    total += math.ceil(part.created[other] / BATCH[system])  # partner ids back
        floor[system] = total
    return floor


def _searches(report: CycleReport) -> int:
    """HubSpot searches at the floor: the pages of what was read, at least one per object."""
    return sum(
        max(1, math.ceil(part.read["hubspot"] / PAGE["hubspot"]))
        for part in report.objects.values()
    )


def _window_seconds(calls: int, rate: tuple[int, int] | None) -> float:
    """The least seconds ``calls`` take under at most ``rate[0]`` calls in any rolling
    ``rate[1]`` ms: the k-th call waits for the window of the (k - max)-th to pass."""
    if rate is None or calls <= 0:
        return 0.0
    most, interval_ms = rate
    return (calls - 1) // most * interval_ms / 1000


def _bound(calls: dict[str, int], searches: int, limits: dict[str, dict[str, Any]]) -> dict:
    """The least wall seconds the limits allow for ``calls`` per system (``searches`` of
    HubSpot's among them): HubSpot's search and general limits apply separately (a search
    does not count toward the 10-second limit, ``connectors.hubspot.emulator.gate``), the
    slower one bounds; Salesforce publishes no rate, only its daily allocation. A daily
    limit bounds only when the calls exceed it: a day for each allocation used up."""
    bound: dict[str, float] = {}
    for system, count in calls.items():
        limit = limits[system]
        seconds = 0.0
        if system == "hubspot":
            seconds = max(
                _window_seconds(searches, limit["search_rate"]),
                _window_seconds(count - searches, limit["rate"]),
            )
        daily = limit.get("daily")
        if daily and count > daily:
            seconds += (math.ceil(count / daily) - 1) * 86_400
        bound[system] = round(seconds, 2)
    bound["max"] = max(bound.values())
    return bound


MILLION = 1_000_000


def _pace_by(path: Path, limits: dict[str, dict[str, Any]]) -> None:
    """Tell syncd's pacing (``syncd.daemon.pacing``) the limits the emulators enforce, as an
    operator sets a portal's: on loopback nothing is paced unless set."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe", pure=True)
    settings = yaml.load(path.read_text("utf-8"))
    hubspot = settings["systems"]["hubspot"]
    for key, name in (("rate_limit", "rate"), ("search_rate_limit", "search_rate")):
        rate = limits["hubspot"][name]
        if rate is not None:
            hubspot[key] = {"requests": rate[0], "seconds": rate[1] / 1000}
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(settings, out)


def run_child(people: int, archived: int = 0, throttled: bool = True) -> dict[str, Any]:
    """One benchmark run; returns the figures.

    HubSpot holds ``people`` contacts, a tenth as many companies and a tenth as many
    deals (sales pipeline, random stages, each with one company and one contact), and
    ``archived`` contacts archived already. ``throttled``: the emulators enforce the
    published limits.
    """
    companies = deals = max(1, people // 10)
    limits = registry.emulator_limits(throttled)
    with (
        tempfile.TemporaryDirectory(prefix="syncd-bench-") as directory,
        _emulators(people, companies, deals, archived, throttled) as endpoints,
    ):
        path = sandbox.write_config(Path(directory), endpoints)
        _pace_by(path, limits)
        config = load_config(path)
        store = Store.open(config.store_url)
        database = store.engine.url.database if store.engine.dialect.name == "sqlite" else None
        database = str(Path(directory, database).resolve()) if database else None
        wal = _WalWatch(database).__enter__()
        marketing = registry.connector(config, "hubspot")
        crm = registry.connector(config, "salesforce")
        engine = Engine.for_config(config, store, marketing, crm)
        deferred = next(iter(engine.rules.values())).deferred
        marketing.check()
        crm.check()
        base_calls = _calls(endpoints)
        base_refused = _limit_answers(endpoints)
        backfill, cycle_s = [], []
        cpu_started = time.process_time()
        for _ in range(2):  # the backfill, then the cycle that reads its writes back
            started = time.perf_counter()
            backfill.append(engine.run_once())
            cycle_s.append(round(time.perf_counter() - started, 2))
        backfill_cpu_s = time.process_time() - cpu_started
        peaks = {"backfill": _peak_mb()}
        backfill_s = sum(cycle_s)
        backfill_calls = {k: v - base_calls[k] for k, v in _calls(endpoints).items()}
        backfill_refused = {k: v - base_refused[k] for k, v in _limit_answers(endpoints).items()}

        changed = max(1, people // 100)
        with store.engine.connect() as connection:
            pairs = connection.execute(
                select(links.c.marketing_id, links.c.crm_id)
                .where(links.c.object == "person")
                .order_by(links.c.id)
                .limit(2 * changed)
            ).all()
        hs, sf = endpoints["hubspot"], endpoints["salesforce"]
        for index, (marketing_id, crm_id) in enumerate(pairs):
            if index % 2 == 0:
                _control(
                    hs.url,
                    "PATCH",
                    f"/_emulator/contacts/{marketing_id}",
                    {"jobtitle": f"Title {index}"},
                )
            else:
                _control(
                    sf.url,
                    "PATCH",
                    f"/_emulator/records/Lead/{crm_id}",
                    {"Phone": f"+1 555 {index:07d}"},
                    ca=sf.ca_pem_path,
                )
        before = _calls(endpoints)
        started = time.perf_counter()
        steady = [engine.run_once()]
        steady_s = time.perf_counter() - started
        peaks["steady_state"] = _peak_mb()
        steady_calls = {k: v - before[k] for k, v in _calls(endpoints).items()}
        split_calls = _split_calls(marketing, crm)
        lookback = _lookback(engine, endpoints)
        peaks["lookback"] = _peak_mb()
        idle = _idle(engine, endpoints, archived)
        peaks["idle"] = _peak_mb()
        # after the idle rounds: the activities just logged stay in the scans' overlap
        # window for a while, which a real org's idle cycles would not see
        sales_activities = _activities(engine, store, endpoints, people)
        peaks["activities"] = _peak_mb()
        # last: its refused record is retried on later cycles, which would not be idle
        refused = _refused_round(engine, store, endpoints)
        peaks["refused_batch"] = _peak_mb()
        http_429 = _limit_answers(endpoints)
        report = _report(path)
        marketing.close()
        crm.close()
        store_bytes = _store_bytes(database)  # before close: a checkpoint would empty the log
        cut = log_bound(store.engine)
        wal_cut = {"truncated": cut.truncated, "missed": cut.missed} if cut else None
        wal.__exit__()
        store.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024
    cpu = {"syncd": round(usage.ru_utime + usage.ru_stime, 1), **endpoints.get("_cpu_s", {})}
    records = people + companies + deals
    # the work at its floor: the backfill cycle (each record read once and written once,
    # the partner ids back); the cycle reading the writes back adds nothing at the floor
    work, searches = _floor(backfill[:1], deferred), _searches(backfill[0])
    bound = _bound(work, searches, limits)
    scale = MILLION / people
    projected = _bound(
        {k: math.ceil(v * scale) for k, v in work.items()}, math.ceil(searches * scale), limits
    )
    return {
        "throttled": throttled,
        "limits": limits,
        "http_429": http_429,
        "rate_limit_bound_s": bound,
        "rate_limit_floor_calls": {**work, "hubspot_searches": searches},
        "wall_s": round(backfill_s, 2),
        "cpu_ms_per_record": round(backfill_cpu_s * 1000 / records, 3),
        "store_bytes": store_bytes,
        "wal_peak_bytes": wal.peak if database else None,
        "wal_bound_checkpoints": wal_cut,
        "projection_1m_people": {
            "projection": "linear projection from this run, not measured",
            "people": MILLION,
            "rate_limit_bound_s": projected,
            "wall_s": round(backfill_s * scale, 1),
        },
        "records": records,
        "objects": {"person": people, "company": companies, "deal": deals},
        "backfill": {
            **_phase(records, backfill_s, backfill_calls, _floor(backfill, deferred)),
            "cycle_seconds": cycle_s,
            "http_429": backfill_refused,
            "written": {
                obj: {
                    system: sum(
                        r.objects[obj].created[system] + r.objects[obj].updated[system]
                        for r in backfill
                    )
                    for system in PAGE
                }
                for obj in backfill[0].objects
            },
            "rejected": {system: sum(r.rejected[system] for r in backfill) for system in PAGE},
        },
        "steady_state": _phase(len(pairs), steady_s, steady_calls, _floor(steady, deferred)),
        "split_calls": split_calls,
        "refused_batch": refused,
        "activities": sales_activities,
        "lookback": lookback,
        "idle": idle,
        "records_per_s": round(records / backfill_s, 1),
        "api_calls": {k: backfill_calls[k] + steady_calls[k] for k in backfill_calls},
        "api_calls_floor": {
            k: _floor(backfill, deferred)[k] + _floor(steady, deferred)[k] for k in backfill_calls
        },
        "peak_rss_mb": round(peak, 1),
        "peak_rss_mb_after": peaks,
        "cpu_seconds": cpu,
        "report": report,
    }


def _peak_mb() -> float:
    """This process's peak resident memory so far, in MB (it only grows: the phase after
    which it rose is where the peak was reached)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _report(config: Path) -> dict[str, Any]:
    """``syncd report --json`` on the run's store, as the admin runs it (a process of its
    own, start-up included): its seconds, and how many people, won deals and hand-offs
    (the lead-quality section's) it counted."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "syncd", "report", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    seconds = time.perf_counter() - started
    found = json.loads(done.stdout)
    return {
        "seconds": round(seconds, 2),
        "people_in_funnel": max((step["reached"] for step in found["funnel"]), default=0),
        "deals_won": found["closed_loop"]["total"]["won"],
        "quality_handoffs": found["quality"]["total"]["handoffs"],
    }


def _split_calls(*connectors: Any) -> dict[str, int]:
    """Extra calls each connector made splitting refused batches, so far."""
    return {c.system: int(getattr(c, "split_calls", lambda: 0)()) for c in connectors}


BAD_LEAD_SOURCE = "Purchased List"
"""A Salesforce lead source HubSpot's picklist does not hold: HubSpot refuses it."""


def _refused_round(engine: Engine, store: Store, endpoints: dict[str, Any]) -> dict[str, Any]:
    """Edit one batch of leads, one with a value HubSpot refuses; one cycle; its cost."""
    with store.engine.connect() as connection:
        leads = connection.scalars(
            select(links.c.crm_id)
            .where(links.c.object == "person")
            .order_by(links.c.id)
            .limit(BATCH["hubspot"])
        ).all()
    sf = endpoints["salesforce"]
    for index, lead in enumerate(leads):
        edit = {"Title": f"Batch {index}"}
        if index == len(leads) // 2:
            edit["LeadSource"] = BAD_LEAD_SOURCE
        _control(sf.url, "PATCH", f"/_emulator/records/Lead/{lead}", edit, ca=sf.ca_pem_path)
    before = _split_calls(engine.marketing, engine.crm)
    report = engine.run_once("person")
    after = _split_calls(engine.marketing, engine.crm)
    return {
        "records": len(leads),
        "bad": 1 if leads else 0,
        "rejected": {system: report.rejected[system] for system in PAGE},
        "split_calls": {system: after[system] - before[system] for system in PAGE},
    }


def _lookback(engine: Engine, endpoints: dict[str, Any]) -> dict[str, Any]:
    """The cycle in which the lookback reads the backfill and the steady-state round a
    second time (the connectors' overlap shortened to a second, then waited out; in
    production this is the cycle ``overlap`` after them): what it costs, and that all
    of it settles without a write."""
    connectors = (engine.marketing, engine.crm)
    overlaps = [connector.overlap for connector in connectors]  # type: ignore[attr-defined]
    for connector in connectors:
        connector.overlap = timedelta(seconds=1)  # type: ignore[attr-defined]
    time.sleep(1.5)
    before = _calls(endpoints)
    report = engine.run_once()
    calls = {k: v - before[k] for k, v in _calls(endpoints).items()}
    for connector, overlap in zip(connectors, overlaps, strict=True):
        connector.overlap = overlap  # type: ignore[attr-defined]
    return {
        "read_again": dict(report.read),
        "settled": report.unchanged,
        "written": sum(report.created.values()) + sum(report.updated.values()),
        "api_calls": calls,
    }


ACTIVITIES_PER_CALL = 5000
"""Tasks seeded per control call (the emulator's bulk add)."""


def _people_crm_ids(store: Store, size: int) -> Iterator[list[str]]:
    """The linked people's CRM ids, ``size`` at a time (by link id): the harness holds
    one chunk, not a million ids, in the process whose peak memory it reports."""
    last = 0
    while True:
        with store.engine.connect() as connection:
            rows = connection.execute(
                select(links.c.id, links.c.crm_id)
                .where(links.c.object == "person", links.c.crm_id.is_not(None))
                .where(links.c.id > last)
                .order_by(links.c.id)
                .limit(size)
            ).all()
        if not rows:
            return
        last = rows[-1].id
        yield [str(row.crm_id) for row in rows]


def _activities(
    engine: Engine, store: Store, endpoints: dict[str, Any], people: int
) -> dict[str, Any]:
    """What reading sales activities costs: one completed call logged by a rep on every
    person's lead or contact (an upper case: a whole backlog of activities since the last
    cycle), then one person cycle. Its Salesforce calls, less those of a person cycle
    just before with no new activity, are the activity reads' (pages of 2,000 after the
    first, which rides in the people's composite, and the owners' names, 200 a query)."""
    sf = endpoints["salesforce"]
    users = _control(sf.url, "GET", "/_emulator/records/User", ca=sf.ca_pem_path)
    rep = next(u["Id"] for u in users if u.get("LastName") != "Integration")
    before = _calls(endpoints)
    engine.run_once("person")
    baseline = _calls(endpoints)["salesforce"] - before["salesforce"]
    started = time.perf_counter()
    logged = 0
    for chunk in _people_crm_ids(store, ACTIVITIES_PER_CALL):
        logged += len(chunk)
        tasks = [
            {
                "WhoId": who,
                "OwnerId": rep,
                "Subject": "Call",
                "TaskSubtype": "Call",
                "Status": "Completed",
            }
            for who in chunk
        ]
        _control(sf.url, "POST", "/_emulator/records/Task", tasks, ca=sf.ca_pem_path)
    seeded_s = time.perf_counter() - started
    before = _calls(endpoints)
    started = time.perf_counter()
    report = engine.run_once("person")
    seconds = time.perf_counter() - started
    spent = _calls(endpoints)["salesforce"] - before["salesforce"] - baseline
    return {
        "logged": logged,
        "read": report.activities,
        "first_touches": report.touches,
        "seeding_s": round(seeded_s, 2),
        "cycle_s": round(seconds, 2),
        "salesforce_calls": spent,
        # the pages after the first (which rides in the composite), one owner query
        "calls_floor": math.ceil(logged / PAGE["salesforce"]) - 1 + 1,
        "calls_per_1000_people": round(spent * 1000 / max(people, 1), 3),
    }


def _idle(engine: Engine, endpoints: dict[str, Any], archived: int) -> dict[str, Any]:
    """``IDLE_CYCLES`` cycles with nothing to read, ``CADENCE`` apart on the engine's
    clock (the sweeps' pacing), with ``archived`` archived contacts in HubSpot: the
    calls per object and system, on average and at most in one cycle."""
    now = [datetime.now(UTC)]
    clock, engine.clock = engine.clock, lambda: now[0]
    total: dict[str, dict[str, int]] = {}
    most: dict[str, dict[str, int]] = {}
    for _ in range(IDLE_CYCLES):
        now[0] += CADENCE
        for obj in engine.rules:
            before = _calls(endpoints)
            engine.run_once(obj)
            for system, count in _calls(endpoints).items():
                spent = count - before[system]
                total.setdefault(obj, {}).setdefault(system, 0)
                total[obj][system] += spent
                most.setdefault(obj, {})
                most[obj][system] = max(most[obj].get(system, 0), spent)
    engine.clock = clock
    return {
        "archived_contacts": archived,
        "cycles": IDLE_CYCLES,
        "calls_per_cycle": {
            obj: {system: round(n / IDLE_CYCLES, 2) for system, n in calls.items()}
            for obj, calls in total.items()
        },
        "most_in_a_cycle": most,
    }


def _phase(records: int, seconds: float, calls: dict[str, int], floor: dict[str, int]) -> dict:
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds, 1) if seconds else None,
        "api_calls": calls,
        "api_calls_floor": floor,
        "api_calls_per_record": round(sum(calls.values()) / max(records, 1), 4),
    }


def run(
    sizes: list[int], archived: int = 100_000, throttled: bool = True
) -> Iterator[dict[str, Any]]:
    """Each size in a fresh process; yields its figures."""
    for people in sizes:
        answer = subprocess.run(
            [
                sys.executable,
                "-m",
                "syncd.harness.bench",
                "--child",
                str(people),
                "--archived",
                str(archived),
                *([] if throttled else ["--unthrottled"]),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if answer.returncode != 0:
            raise RuntimeError(f"benchmark of {people} failed:\n{answer.stderr[-4000:]}")
        yield json.loads(answer.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int, required=True)
    parser.add_argument("--archived", type=int, default=0)
    parser.add_argument("--unthrottled", action="store_true")
    arguments = parser.parse_args()
    print(json.dumps(run_child(arguments.child, arguments.archived, not arguments.unthrottled)))
