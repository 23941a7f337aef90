"""The kill sweep: ``syncd once`` killed (SIGKILL) at chosen points, then run again.

Each trial starts both emulators in this process (so they outlive the kill), seeds the
sample people, companies and deal, and opens a fresh store: a new SQLite file, or a new
schema of a PostgreSQL database. The SLA write-back is on, with an SLA so short
(``SLA_HOURS``) that Ada's hand-off, made in the first cycle, is past it by that cycle's
SLA pass: the sweep also kills between the SLA task or flag landing and its commit.
A child ``syncd once`` runs with ``SYNCD_KILL_AT`` naming the point
(``syncd.sync.killpoints``) and dies there; two cycles here finish the job.
Then, against what an unkilled run leaves (the reference), a trial is clean when the
store opens, neither system holds a record more (duplicates, an SLA task written twice
among them) or a record not linked or fewer (missing, an SLA task or flag not written
among them), and every link has a journal entry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, select, text

from syncd import registry
from syncd.config.load import load_config
from syncd.errors import SyncdError
from syncd.harness import sandbox
from syncd.model import Cursor
from syncd.retry import RetryPolicy
from syncd.state.store import Store
from syncd.state.tables import journal, links
from syncd.sync import killpoints
from syncd.sync.engine import Engine

POINTS = (
    *(f"migrate.sql#{n}" for n in (2, 6, 12, 20, 30)),
    *(f"migrate.step#{n}" for n in (1, 2, 3)),
    *(f"pull.page#{n}" for n in (1, 3, 5)),
    *(f"{point}#{n}" for point in ("write.landed", "write.before_commit") for n in (1, 2, 3)),
    *(f"commit.done#{n}" for n in (1, 2, 3)),
    "touch.page#1",
    "sla.tasks_written#1",
    "sla.flags_written#1",
)
"""Twenty-three kill points: in the first migration, reading, between the remote writes
and the commit (before and after the partner ids), after commits, after a page of sales
activities, and between the SLA's task or flag landing and its commit."""
DEEP = (
    *(f"migrate.sql#{n}" for n in range(1, 40)),
    *(f"migrate.step#{n}" for n in (1, 2, 3)),
    *(f"pull.page#{n}" for n in range(1, 7)),
    *(f"{point}#{n}" for point in ("write.landed", "write.before_commit") for n in (1, 2, 3, 4)),
    *(f"commit.done#{n}" for n in range(1, 6)),
    "touch.page#1",
    "sla.tasks_written#1",
    "sla.flags_written#1",
)
"""Every SQL statement of the first migration and every later point the sample passes
(a point past the last one syncd reaches counts as "not killed")."""
_MIGRATING = threading.Lock()
CHILD = ("-c", "from syncd.cli.app import main; main()")
SLA_HOURS = 1e-6
"""The sweep's SLA (3.6 ms): a hand-off is past it by the SLA pass of its own cycle."""
SLA = {"crm_task": {"enabled": True}, "marketing_property": {"enabled": True}}
REPORT = {"handoff_stage": "mql", "speed_to_lead_sla_hours": SLA_HOURS, "touches": True}


@dataclass(frozen=True, slots=True)
class Trial:
    """What one kill left, after syncd ran again."""

    point: str | None
    killed: bool
    opens: bool
    counts: dict[str, int]
    """Records per ``system:object`` in the emulators."""
    links: int
    duplicates: int = 0
    missing: int = 0
    unjournaled: int = 0
    error: str | None = None

    @property
    def clean(self) -> bool:
        failed = self.duplicates or self.missing or self.unjournaled or self.error
        return self.opens and not failed


@dataclass(frozen=True, slots=True)
class Sweep:
    """The trials of one store."""

    store: str
    trials: list[Trial]

    def totals(self) -> dict[str, int]:
        return {
            "trials": len(self.trials),
            "clean": sum(t.clean for t in self.trials),
            "not killed": sum(not t.killed for t in self.trials),
            "duplicates": sum(t.duplicates for t in self.trials),
            "missing": sum(t.missing for t in self.trials),
            "unjournaled": sum(t.unjournaled for t in self.trials),
            "not opened": sum(not t.opens for t in self.trials),
        }


def sweep(
    store: str, points: Sequence[str] = POINTS, *, workdir: Path | None = None, workers: int = 2
) -> Sweep:
    """Run one trial per point on ``store`` ("sqlite" or a PostgreSQL URL); ``SyncdError``
    when the run with no kill is not clean itself (nothing to compare the trials with)."""
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        reference = trial(store, None, Path(scratch) / "reference")
        if reference.error or reference.missing or reference.unjournaled:
            raise SyncdError(f"the kill sweep's unkilled run is not clean: {reference}")
        with ThreadPoolExecutor(max_workers=workers) as pool:
            runs = pool.map(
                lambda n_point: trial(
                    store, n_point[1], Path(scratch) / str(n_point[0]), reference
                ),
                enumerate(points),
            )
            return Sweep(store, list(runs))


def trial(store: str, point: str | None, folder: Path, reference: Trial | None = None) -> Trial:
    """Kill ``syncd once`` at ``point`` (None: no kill), run two cycles, check."""
    overrides = {"sla": SLA, "report": REPORT}
    with (
        _fresh_store(store, folder) as url,
        sandbox.start(folder, store=url, overrides=overrides) as box,
    ):
        sandbox.seed_sample_deals(box.emulators)
        _log_a_call(box.emulators["salesforce"])
        env = {k: v for k, v in os.environ.items() if k not in ("SYNCD_STORE_URL", killpoints.ENV)}
        if point:
            env[killpoints.ENV] = point
        child = subprocess.run(
            [sys.executable, *CHILD, "once", "-c", str(box.config_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        killed = child.returncode == -9 if point else child.returncode == 0
        try:
            return _recover_and_check(box, point, killed, reference)
        except Exception as error:  # a trial reports it, the sweep goes on
            return Trial(point, killed, False, {}, 0, error=f"{type(error).__name__}: {error}")


def _recover_and_check(
    box: sandbox.Sandbox, point: str | None, killed: bool, reference: Trial | None
) -> Trial:
    config = load_config(box.config_path)
    policy = RetryPolicy(attempts=4, initial=0.01, maximum=1)
    marketing = registry.connector(config, config.syncd.marketing, policy)
    crm = registry.connector(config, config.syncd.crm, policy)
    try:
        with _MIGRATING:  # Alembic's op and context are module globals: one at a time
            store = Store.open(config.store_url)
        with store:
            engine = Engine.for_config(config, store, marketing, crm)
            engine.run_once()
            engine.run_once()
            return _check(engine, box, point, killed, reference)
    finally:
        marketing.close()
        crm.close()


def _check(
    engine: Engine,
    box: sandbox.Sandbox,
    point: str | None,
    killed: bool,
    reference: Trial | None,
) -> Trial:
    store = engine.store
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(links.c.id, links.c.object, links.c.marketing_id, links.c.crm_id).where(
                links.c.tombstoned_at.is_(None)
            )
        ).all()
        told = set(connection.scalars(select(journal.c.link_id).distinct()))
        link_count = int(connection.scalar(select(func.count()).select_from(links)) or 0)
    linked = {(row.object, side) for row in rows for side in (row.marketing_id, row.crm_id)}
    counts: Counter[str] = Counter()
    unlinked = 0
    for obj in engine.rules:
        for connector in (engine.marketing, engine.crm):
            for kind in connector.kinds(obj):
                for page in connector.changes(kind, Cursor()):
                    for record in page.records:
                        if record.deleted:
                            continue
                        counts[f"{connector.system}:{obj}"] += 1
                        unlinked += (obj, record.ref.id) not in linked
    counts.update(_sla_writes(engine, box))
    expected = reference.counts if reference else counts
    duplicates = sum(max(0, n - expected.get(k, 0)) for k, n in counts.items())
    fewer = sum(max(0, n - counts.get(k, 0)) for k, n in expected.items())
    return Trial(
        point,
        killed,
        True,
        dict(counts),
        link_count,
        duplicates=duplicates,
        missing=unlinked + fewer,
        unjournaled=sum(row.id not in told for row in rows),
    )


def _log_a_call(salesforce: Any) -> None:
    """A call already logged on Katherine's lead, so that the first cycle keeps a page of
    sales activities (``touch.page``)."""
    lead = next(
        r["Id"]
        for r in salesforce.records("Lead", include_deleted=False)
        if str(r.get("Email")).lower() == "katherine@example.com"
    )
    sandbox.log_call(salesforce, lead, sandbox.sales_rep(salesforce)["Id"])


def _sla_writes(engine: Engine, box: sandbox.Sandbox) -> Counter[str]:
    """The SLA's writes in the emulators: its tasks and the people they are on (a task
    written twice makes the first count exceed the reference's), and the people its flag
    marks."""
    subject = engine.sla.crm_task.subject if engine.sla else None
    tasks = Counter(
        task.get("WhoId")
        for task in box.emulators["salesforce"].records("Task", include_deleted=False)
        if task.get("Subject") == subject
    )
    # by count, not by person: a trial's ids may differ from the reference's
    found: Counter[str] = Counter(
        {"salesforce:sla_task": sum(tasks.values()), "salesforce:sla_task_people": len(tasks)}
    )
    flag = engine.sla.marketing_property.property if engine.sla else None
    found["hubspot:sla_flag"] = sum(
        1
        for contact in box.emulators["hubspot"].contacts()
        if flag and contact["properties"].get(flag) == "true"
    )
    return found


@contextmanager
def _fresh_store(store: str, folder: Path) -> Iterator[str]:
    """A new SQLite file in ``folder``, or a new schema of the PostgreSQL ``store``."""
    folder.mkdir(parents=True, exist_ok=True)
    if store == "sqlite":
        yield f"sqlite:///{folder / 'syncd.db'}"
        return
    with scratch_schema(store, "killsweep_") as url:
        yield url


@contextmanager
def scratch_schema(url: str, prefix: str) -> Iterator[str]:
    """A new schema of the PostgreSQL database at ``url`` (named ``prefix`` and a random
    suffix), as a store URL searching it; dropped with its tables afterwards."""
    schema = prefix + uuid.uuid4().hex[:10]
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
