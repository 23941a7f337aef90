"""What a configuration costs idle, and how fast a change crosses, before it runs.

**Idle cost.** Each object's cycle runs every ``cadence_seconds`` whether anything changed
or not, so a quiet day costs, per system and object::

    86,400 / cadence  x  calls per idle cycle

where the calls per idle cycle come from one function, ``registry.idle_calls_per_cycle``
(the scan: one search or query per native kind; plus the sweeps' budget where the system
is swept). The sum per system is compared with what syncd may spend there a day: the
system's ``daily_budget`` when it is a number of calls, or its share (``"50%"``) of the
daily limit, else the daily limit itself (``daily_limit``, default the published one,
``registry.DAILY_LIMITS``). Above ``IDLE_SHARE`` of it, ``syncd validate`` warns.

Why a tenth: both limits are shared (HubSpot's per account, Salesforce's per org, with
every other integration), and the idle cost is paid every day before any change is
synced; a tenth leaves nine tenths for the work and the others. The issue's target (at
most one call per object and cycle) at a cadence giving a p95 under a minute costs about
6-9% of Salesforce's 100,000 base: the share is where a cadence is too short for the org.

**Propagation.** A change made at ``t`` in the source system is read by the first scan
at or after ``t + settle`` (HubSpot's search shows a write only after a while, so its
scan stops ``search_settle_seconds`` before now; Salesforce reads up to now) and lands
in the other system when that cycle writes, at most ``CYCLE_SECONDS`` later. Scans come
every ``cadence`` seconds, so the wait after the settle time is uniform on
``[0, cadence)``::

    mean  = settle + cadence / 2    + cycle
    p95   = settle + 0.95 x cadence + cycle
    worst = settle + cadence        + cycle

A change the system shows later than that (a search index slower than the settle time,
a long Salesforce transaction committing rows stamped with its start) is found when the
scan window is read again ``overlap_minutes`` later::

    late  = overlap + cadence + cycle

HubSpot -> Salesforce can therefore never be faster than HubSpot's settle time. What it
really took is measured as each write lands (``syncd.sync.cycle.propagated``): the
``syncd_propagation_seconds`` histogram and the last cycle's p50/p95 in ``syncd status``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from syncd import registry
from syncd.config.checks import on_this_machine
from syncd.config.settings import OBJECTS, Config
from syncd.daemon import budget
from syncd.errors import ConfigProblem
from syncd.sync.cycle import direction

DAY_SECONDS = 86_400
IDLE_SHARE = 0.10
"""Above this share of what syncd may spend a day on a system, idle cycles are warned of."""
CYCLE_SECONDS = 10.0
"""The allowance for one object's cycle at steady state, from its scan to its writes
landing (a search or query, a sweep slice, a write batch a side: each a round trip of
about a second on the real APIs). ``syncd status`` shows the propagation really measured."""
TARGET_P95_SECONDS = 60.0
"""The propagation p95 the shipped settings are chosen to stay under (issue 11)."""


@dataclass(frozen=True, slots=True)
class ObjectCost:
    """One object's idle cost on one system."""

    object: str
    cadence_s: int
    cycles_per_day: float
    calls_per_cycle: float
    calls_per_day: float


@dataclass(frozen=True, slots=True)
class SystemCost:
    """One system's idle cost a day against what syncd may spend there."""

    system: str
    objects: tuple[ObjectCost, ...]
    calls_per_day: float
    daily_limit: int
    limit_from: str
    """``systems.<name>.daily_limit``, or the published default."""
    allowance: int
    """What syncd may spend a day: the absolute ``daily_budget``, its share of the limit,
    or the limit."""
    share: float
    """``calls_per_day / allowance``."""


@dataclass(frozen=True, slots=True)
class Propagation:
    """The projected time a change of one object takes from one system to the other."""

    object: str
    direction: str
    """``<source>_to_<target>`` (the label of ``syncd_propagation_seconds``)."""
    settle_s: float
    cadence_s: int
    cycle_s: float
    mean_s: float
    p95_s: float
    worst_s: float
    late_s: float
    """The bound for a change the source shows late (found by the overlap re-read)."""


@dataclass(frozen=True, slots=True)
class Projection:
    """The idle cost of each system and the propagation of each object and direction."""

    systems: tuple[SystemCost, ...]
    propagation: tuple[Propagation, ...]

    def as_dict(self) -> dict[str, Any]:
        """The ``syncd validate --json`` shape."""
        return {
            "idle": {
                s.system: {
                    **{k: v for k, v in asdict(s).items() if k not in ("system", "objects")},
                    "objects": {o.object: asdict(o) for o in s.objects},
                }
                for s in self.systems
            },
            "propagation": [asdict(p) for p in self.propagation],
            "assumptions": {
                "day_s": DAY_SECONDS,
                "idle_share_warned": IDLE_SHARE,
                "cycle_s": CYCLE_SECONDS,
                "target_p95_s": TARGET_P95_SECONDS,
            },
        }


def project(config: Config) -> Projection:
    """The idle cost and the propagation of ``config``, from its settings alone."""
    settings = config.syncd
    objects = [obj for obj in OBJECTS if obj in config.fields]
    systems = []
    for name in (settings.marketing, settings.crm):
        connector = settings.systems[name].connector
        costs = []
        for obj in objects:
            cadence = settings.cadence_seconds[obj]
            cycles = DAY_SECONDS / cadence
            calls = registry.idle_calls_per_cycle(connector, obj)
            costs.append(ObjectCost(obj, cadence, cycles, calls, cycles * calls))
        limit, limit_from, allowance = _allowance(config, name)
        total = sum(c.calls_per_day for c in costs)
        systems.append(
            SystemCost(name, tuple(costs), total, limit, limit_from, allowance, total / allowance)
        )
    flows = []
    for source, target in ((settings.marketing, settings.crm), (settings.crm, settings.marketing)):
        settle, overlap = registry.scan_lags(config, source)
        for obj in objects:
            cadence = settings.cadence_seconds[obj]
            flows.append(
                Propagation(
                    obj,
                    direction(source, target),
                    settle,
                    cadence,
                    CYCLE_SECONDS,
                    mean_s=settle + cadence / 2 + CYCLE_SECONDS,
                    p95_s=settle + 0.95 * cadence + CYCLE_SECONDS,
                    worst_s=settle + cadence + CYCLE_SECONDS,
                    late_s=overlap + cadence + CYCLE_SECONDS,
                )
            )
    return Projection(tuple(systems), tuple(flows))


def _allowance(config: Config, name: str) -> tuple[int, str, int]:
    """(daily limit, where it comes from, what syncd may spend a day) of system ``name``."""
    options = config.syncd.systems[name].options()
    connector = config.syncd.systems[name].connector
    if options.get("daily_limit") is not None:
        limit, limit_from = int(options["daily_limit"]), f"systems.{name}.daily_limit"
    else:
        limit = registry.DAILY_LIMITS.get(connector, 0)
        limit_from = f"the published default; systems.{name}.daily_limit unset"
    absolute, share = budget.parse(options.get("daily_budget"))
    if absolute is not None:
        return limit, limit_from, absolute
    if share is not None:
        return limit, limit_from, max(1, int(limit * share))
    return limit, limit_from, max(1, limit)


def warnings(config: Config, projection: Projection) -> list[ConfigProblem]:
    """A system whose idle cost a day is above ``IDLE_SHARE`` of what syncd may spend
    there, located at ``cadence_seconds``; systems on this machine (the emulators) are
    not warned of, as they are not held to the floor."""
    found = []
    for cost in projection.systems:
        if on_this_machine(config.syncd.systems[cost.system]) or cost.share <= IDLE_SHARE:
            continue
        per_cycle = sum(o.calls_per_cycle for o in cost.objects)
        enough = math.ceil(DAY_SECONDS * per_cycle / (IDLE_SHARE * cost.allowance))
        found.append(
            config.problem(
                ["cadence_seconds"],
                f"{cost.system}: idle cycles alone would spend {cost.calls_per_day:,.0f}"
                f" calls a day, {cost.share:.1%} of the {cost.allowance:,} syncd may spend"
                f" there (limit from {cost.limit_from}); above {IDLE_SHARE:.0%}: a cadence"
                f" of {enough} s or more for every object stays under it, or set the"
                f" real limit in systems.{cost.system}.daily_limit",
            )
        )
    return found
