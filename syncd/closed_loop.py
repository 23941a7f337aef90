"""Closed loop: a deal's outcome moves its people's stage in both systems.

When a deal enters a stage that names a person stage (``people:`` in stages.yaml: won
makes customers, lost recycles to nurture), the deal's people move there, with the
reason in the stage history. Who the deal's people are is decided by the first of the
configured attribution rules that finds anyone (``deals.attribution`` in syncd.yaml):

- ``contact_roles``: the deal's contacts (HubSpot associations, Salesforce contact roles);
- ``converted_lead``: the person whose lead was converted into the opportunity;
- ``account_contacts``: every person whose ``account`` field names the deal's company.

The journal says which rule applied; a deal attributed by another rule than its
contacts keeps the people in its base as ``attributed_people`` for the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from syncd.model import RecordRef
from syncd.reconcile import PairPlan, plan_stage_move, split_ids

if TYPE_CHECKING:
    from syncd.engine import CycleReport, Engine, _Committer

PERSON, DEAL = "person", "deal"


@dataclass(frozen=True, slots=True)
class Move:
    """One person to move because of one deal."""

    person: int
    stage: str
    at: datetime
    source: RecordRef
    reason: str


def closing(engine: Engine, plan: PairPlan) -> bool:
    """Whether a landed deal plan entered a stage that moves people."""
    vocabulary = engine.rules[DEAL].vocabulary
    if vocabulary is None or not plan.transitions:
        return False
    stage = vocabulary.stage(plan.transitions[-1].to_stage)
    return stage is not None and stage.people is not None


def apply(
    engine: Engine, plans: list[PairPlan], report: CycleReport, committer: _Committer
) -> None:
    """Move the people of the deals in ``plans`` (landed, entering a closing stage)."""
    if not plans or PERSON not in engine.rules:
        return
    deal_rules, person_rules = engine.rules[DEAL], engine.rules[PERSON]
    vocabulary = deal_rules.vocabulary
    assert vocabulary is not None
    won = [s.people for s in vocabulary.stages if s.outcome == "won" and s.people]
    keep_from = won[0] if won else None
    moves: dict[int, Move] = {}
    notes: list[dict[str, Any]] = []
    for plan in plans:
        transition = plan.transitions[-1]
        stage = vocabulary.stage(transition.to_stage)
        assert stage is not None and stage.people is not None
        people, rule = attribute(engine, plan)
        name = plan.base.get("name") or plan.key
        reason = f"deal {name!r} {stage.outcome or stage.name}"
        if stage.outcome == "lost" and plan.base.get("lost_reason"):
            reason += f": {plan.base['lost_reason']}"
        deal_id = _deal_link(engine, plan)
        notes.append({"link_id": deal_id, "rule": rule, "people": people, "reason": reason})
        if rule not in (None, "contact_roles") and deal_id is not None:
            engine.store.set_base_field(deal_id, "attributed_people", ",".join(map(str, people)))
        for person in people:
            move = Move(person, stage.people, transition.at, transition.source, reason)
            if person not in moves or moves[person].at <= move.at:
                moves[person] = move
    engine.store.journal_rows(
        [
            {
                "cycle_id": report.cycle_id,
                "link_id": note["link_id"],
                "action": "closed_loop",
                "detail": {k: note[k] for k in ("rule", "people", "reason")},
            }
            for note in notes
        ],
        now=engine.clock(),
    )
    states = engine.store.link_states(sorted(moves))
    items: list[tuple[PairPlan, list[Any]]] = []
    for person, move in sorted(moves.items()):
        link = states.get(person)
        if link is None:
            continue
        plan = plan_stage_move(
            f"loop:{person}",
            link,
            move.stage,
            move.at,
            move.source,
            person_rules,
            move.reason,
            keep_from,
        )
        items.append((plan, []))
    if items:
        engine.execute(PERSON, items, report, committer)


def _deal_link(engine: Engine, plan: PairPlan) -> int | None:
    """The deal's link id (stored by now, also for a deal created this cycle)."""
    if plan.link.id is not None:
        return plan.link.id
    for role, record in (("crm", plan.crm), ("marketing", plan.marketing)):
        if record is not None:
            link = engine.store.find_link(DEAL, role, record.ref.id)
            if link is not None:
                return link.id
    return None


def attribute(engine: Engine, plan: PairPlan) -> tuple[list[int], str | None]:
    """The deal's people and the rule that found them (None: nobody found)."""
    for rule in engine.attribution:
        if rule == "contact_roles":
            people = [int(i) for i in split_ids(plan.base.get("contacts"))]
        elif rule == "converted_lead":
            crm = plan.crm.ref if plan.crm else plan.link.crm
            people = engine.store.converted_from(crm.id) if crm else []
        else:
            company = plan.base.get("company")
            people = engine.store.people_of_company(company) if company else []
        if people:
            return sorted(set(people)), rule
    return [], None
