"""What one cycle did: counts per system and object, for the CLI, the logs and the tests."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncd.model import Outcome
from syncd.sync.gate import PREFIX as GATE_PREFIX
from syncd.sync.latency import Latencies
from syncd.sync.reconcile import PairPlan


@dataclass
class CycleReport:
    """What one cycle did, for the CLI, the logs and the tests."""

    cycle_id: str
    dry_run: bool = False
    read: Counter[str] = field(default_factory=Counter)
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    """Records kept out of the inbox (``syncd.sync.intake``), by the system they were read from."""
    conflicts: int = 0
    conflict_rules: Counter[str] = field(default_factory=Counter)
    """Conflicts by the rule that decided them."""
    unchanged: int = 0
    skipped: int = 0
    duplicates: int = 0
    converted: int = 0
    gated: int = 0
    """Marketing people the gate held back from the CRM (``syncd.sync.gate``)."""
    plans: list[PairPlan] = field(default_factory=list)
    propagation: dict[str, Latencies] = field(default_factory=dict)
    """Per direction (``hubspot_to_salesforce``), the seconds each change written took
    from its source record's modified date to its write landing (``propagated``): 4 bytes
    a change, shared with the sum of a cycle's objects (``syncd.sync.latency``; a list of
    floats took 32 bytes, twice over: 64 MB at a million people)."""
    objects: dict[str, CycleReport] = field(default_factory=dict)
    """The same counts per object, when the cycle ran several."""
    pruned: int = 0
    """Journal entries past their retention deleted after the cycle."""
    activities: int = 0
    """Sales activities read (``syncd.sync.touches``)."""
    touches: int = 0
    """First touches kept (or made earlier) from them."""
    sla_breaches: int = 0
    """Hand-offs found past their SLA untouched (``syncd.sync.sla``)."""
    sla_tasks: int = 0
    """SLA tasks written in the CRM for their owners."""
    sla_flags: int = 0
    """SLA flags set on marketing contacts."""
    sla_cleared: int = 0
    """SLA flags cleared because the first touch came."""

    def add(self, obj: str, part: CycleReport) -> None:
        """Fold one object's report into this one."""
        self.objects[obj] = part
        for name in ("read", "created", "updated", "rejected", "refused", "conflict_rules"):
            getattr(self, name).update(getattr(part, name))
        for name in (
            "conflicts",
            "unchanged",
            "skipped",
            "duplicates",
            "converted",
            "gated",
            "activities",
            "touches",
            *SLA_COUNTS,
        ):
            setattr(self, name, getattr(self, name) + getattr(part, name))
        self.plans.extend(part.plans)
        for way, seconds in part.propagation.items():
            self.propagation.setdefault(way, Latencies()).join(seconds)

    def as_dict(self) -> dict[str, Any]:
        result = self._counts()
        if self.objects:
            result["objects"] = {obj: part._counts() for obj, part in self.objects.items()}
        return result

    def _counts(self) -> dict[str, Any]:
        touches = {"activities": self.activities, "touches": self.touches}
        sla = {name: getattr(self, name) for name in SLA_COUNTS}
        return {
            "cycle_id": self.cycle_id,
            "dry_run": self.dry_run,
            "read": dict(self.read),
            "created": dict(self.created),
            "updated": dict(self.updated),
            "rejected": dict(self.rejected),
            "refused": dict(self.refused),
            "conflicts": self.conflicts,
            "conflicts_by_rule": dict(self.conflict_rules),
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "converted": self.converted,
            "gated": self.gated,
            "propagation": {
                way: summary(seconds) for way, seconds in sorted(self.propagation.items())
            },
            **({k: v for k, v in touches.items()} if self.activities else {}),
            **({k: v for k, v in sla.items()} if any(sla.values()) else {}),
        }


SLA_COUNTS = ("sla_breaches", "sla_tasks", "sla_flags", "sla_cleared")
"""What a cycle's SLA pass did (``syncd.sync.sla.SlaRun``), in the cycle's counts when any."""


def percentile(values: Collection[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value at least ``share`` of them reach."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summary(seconds: Collection[float]) -> dict[str, float | int]:
    """How many changes, and their p50, p95 and longest propagation in seconds."""
    return {
        "changes": len(seconds),
        "p50_s": round(percentile(seconds, 0.50), 3),
        "p95_s": round(percentile(seconds, 0.95), 3),
        "max_s": round(max(seconds), 3),
    }


def direction(source: str, target: str) -> str:
    """The label of changes flowing from ``source`` to ``target``: ``hubspot_to_salesforce``."""
    return f"{source}_to_{target}"


def propagated(
    report: CycleReport,
    plans: Sequence[PairPlan],
    outcomes: Mapping[tuple[str, str], Outcome],
    marketing: str,
    crm: str,
    landed: datetime,
) -> None:
    """Add to ``report`` how long each change written in this chunk took to cross: from the
    modified date of the record it came from (the other side's, as that system stamped
    it) to ``landed``, when the writes were answered. Only writes that landed and came from
    a record read count (not partner ids, not the closed loop's moves); a source stamped
    after ``landed`` (clocks apart) counts as 0."""
    for plan in plans:
        for source, target, change, record in (
            (crm, marketing, plan.marketing_change, plan.crm),
            (marketing, crm, plan.crm_change, plan.marketing),
        ):
            if change is None or record is None:
                continue
            outcome = outcomes.get((target, change.key))
            if outcome is None or not outcome.ok:
                continue
            seconds = max(0.0, (landed - record.modified_at).total_seconds())
            way = direction(source, target)
            figures = report.propagation.get(way)
            if figures is None:  # not setdefault: no Latencies built for each change
                figures = report.propagation[way] = Latencies()
            figures.append(seconds)


def count(
    report: CycleReport,
    plans: list[PairPlan],
    outcomes: Mapping[tuple[str, str], Outcome],
    marketing: str,
    crm: str,
) -> None:
    for plan in plans:
        if plan.skip:
            if plan.skip.startswith("duplicate"):
                report.duplicates += 1
            elif plan.skip.startswith(GATE_PREFIX):
                report.gated += 1
            else:
                report.skipped += 1
            continue
        report.conflicts += len(plan.conflicts)
        report.conflict_rules.update(c.rule for c in plan.conflicts)
        if not plan.changes:
            report.unchanged += 1
        for system, change in ((marketing, plan.marketing_change), (crm, plan.crm_change)):
            if change is None:
                continue
            outcome = outcomes.get((system, change.key))
            if outcome is not None and not outcome.ok:
                report.rejected[system] += 1
            elif change.op == "create" and (outcome is None or outcome.created or outcome.ok):
                report.created[system] += 1
            else:
                report.updated[system] += 1


def counts_text(result: Mapping[str, Any]) -> str:
    """``read 12 (hubspot 10, salesforce 2), created 3 (salesforce 3), updated 0,
    rejected 0``: a cycle's counts (``CycleReport.as_dict``) in words."""
    parts = []
    for name in ("read", "created", "updated", "rejected"):
        by_system = result.get(name) or {}
        each = ", ".join(f"{s} {n}" for s, n in sorted(by_system.items()) if n)
        parts.append(f"{name} {sum(by_system.values())}" + (f" ({each})" if each else ""))
    if result.get("gated"):
        parts.append(f"held back by the gate: {result['gated']}")
    if result.get("activities"):
        parts.append(
            f"sales activities read {result['activities']}"
            f" (first touches {result.get('touches', 0)})"
        )
    if any(result.get(name) for name in SLA_COUNTS):
        parts.append(
            f"SLA breaches {result.get('sla_breaches', 0)}: tasks written"
            f" {result.get('sla_tasks', 0)}, flags set {result.get('sla_flags', 0)},"
            f" flags cleared {result.get('sla_cleared', 0)}"
        )
    return ", ".join(parts)


def counts_fields(result: Mapping[str, Any]) -> dict[str, Any]:
    """A cycle's counts per system as one log field, ``counts`` (``extra=``; ``created`` is
    taken by the log record itself)."""
    names = ("read", "created", "updated", "rejected")
    return {"counts": {name: dict(result.get(name) or {}) for name in names}}
