"""Closed loop: a deal's outcome moves its people's stage in both systems.

When a deal enters a stage that names a person stage (``people:`` in stages.yaml: won
makes customers, lost recycles to nurture), the deal's people move there, with the
reason in the stage history. Who the deal's people are is decided by the first of the
configured attribution rules that finds anyone (``deals.attribution`` in syncd.yaml):

- ``contact_roles``: the deal's contacts (HubSpot associations, Salesforce contact roles);
- ``converted_lead``: the person whose lead was converted into the opportunity;
- ``account_contacts``: every person whose ``account`` field names the deal's company.

The journal says which rule applied; a deal attributed by another rule than its
contacts keeps the people in its base as ``attributed_people`` for the report, and those
people are associated with the marketing system's deal, so that its own reports agree
(``syncd.sync.outcomes``, with the won revenue and last outcome written to people).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import orjson

from syncd.abc import Connector
from syncd.config.settings import DealSettings, StageDef
from syncd.model import Change, RecordRef, Value
from syncd.state.derived import DerivedRef, RefusedRef
from syncd.state.store import Store, aware
from syncd.sync import outcomes
from syncd.sync.committer import Committer
from syncd.sync.cycle import CycleReport
from syncd.sync.reconcile import (
    UNMAPPED,
    LinkState,
    PairPlan,
    Rules,
    Transition,
    split_ids,
)
from syncd.sync.vocabulary import Vocabulary


class Looping(Protocol):
    """What the closed loop needs of the engine (``syncd.sync.engine.Engine`` has it);
    a protocol, so that this module does not import the engine that calls it."""

    @property
    def store(self) -> Store: ...
    @property
    def rules(self) -> Mapping[str, Rules]: ...
    @property
    def chunk(self) -> int: ...
    @property
    def attribution(self) -> Sequence[str]: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...
    @property
    def marketing(self) -> Connector: ...
    @property
    def deals(self) -> DealSettings: ...

    def execute(
        self,
        obj: str,
        items: list[tuple[PairPlan, list[Any]]],
        report: CycleReport,
        committer: Committer,
        dry_run: bool = False,
    ) -> set[str]: ...


PERSON, DEAL = "person", "deal"


@dataclass(frozen=True, slots=True)
class Move:
    """One person to move because of one deal."""

    person: int
    stage: str
    at: datetime
    source: RecordRef
    reason: str
    outcome: str


def apply(engine: Looping, report: CycleReport, committer: Committer) -> None:
    """Move the people of every deal that entered a closing stage and was not looped yet.

    Works from the stage history, not from this cycle's plans, so that a crash between
    the deal's commit and its people's costs nothing: the next cycle finds the deal's
    transition without its ``closed_loop`` journal entry and moves the people then. The
    entry is written after the people's commit, and only when no system refused one of
    them (the refusal is dead-lettered, and tried again each cycle); moving a person
    again is a no-op.
    """
    if PERSON not in engine.rules or DEAL not in engine.rules:
        return
    vocabulary = engine.rules[DEAL].vocabulary
    closing = {s.name: s for s in (vocabulary.stages if vocabulary else ()) if s.people}
    if not closing:
        return
    pending = engine.store.unlooped(DEAL, sorted(closing))
    for start in range(0, len(pending), engine.chunk):
        _loop(engine, pending[start : start + engine.chunk], closing, report, committer)


def _loop(
    engine: Looping,
    pending: list[Any],
    closing: Mapping[str, StageDef],
    report: CycleReport,
    committer: Committer,
) -> None:
    person_rules = engine.rules[PERSON]
    won = [s.people for s in closing.values() if s.outcome == "won"]
    keep_from = won[0] if won else None
    moves: dict[int, Move] = {}
    notes: list[tuple[list[int], dict[str, Any]]] = []
    attributed: list[outcomes.Attributed] = []
    for row in pending:
        stage = closing[row.to_stage]
        assert stage.people is not None
        base = orjson.loads(row.fields) if row.fields else {}
        people, rule = attribute(engine, base, row.crm_id)
        name = base.get("name") or f"link {row.link_id}"
        reason = f"deal {name!r} {stage.outcome or stage.name}"
        if stage.outcome == "lost" and base.get("lost_reason"):
            reason += f": {base['lost_reason']}"
        notes.append(
            (
                people,
                {
                    "cycle_id": report.cycle_id,
                    "link_id": row.link_id,
                    "record_id": str(row.id),
                    "action": "closed_loop",
                    "detail": {"rule": rule, "people": people, "reason": reason},
                },
            )
        )
        if rule not in (None, "contact_roles"):
            engine.store.set_base_field(
                row.link_id, "attributed_people", ",".join(map(str, people))
            )
        attributed.append(outcomes.Attributed(row.link_id, people, rule))
        source = RecordRef(*row.source_record.split(":", 2))
        at = aware(row.at)
        assert at is not None
        for person in people:
            move = Move(person, stage.people, at, source, reason, stage.outcome or stage.name)
            if person not in moves or moves[person].at <= move.at:
                moves[person] = move
    states = engine.store.link_states(sorted(moves))
    items: list[tuple[PairPlan, list[Any]]] = []
    written = _person_fields(engine, sorted(moves))
    last_wanted = bool(engine.deals.person_last_outcome_property)
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
        if written is not None:
            last = outcomes.LastOutcome(move.outcome, move.at) if last_wanted else None
            plan = outcomes.with_person_fields(plan, link, written.get(person, {}), last)
        items.append((plan, []))
    refused: set[int] = set()
    if items:
        failed = engine.execute(PERSON, items, report, committer)
        refused = {int(key.removeprefix("loop:")) for key in failed}
        committer.wait()  # the people are stored before the deals count as looped
    # A deal one of whose people a system refused stays unlooped: tried again next cycle.
    kept = [note for people, note in notes if not refused.intersection(people)]
    looped = {note["link_id"] for note in kept}
    added: list[DerivedRef] = []
    letters: list[RefusedRef] = []
    if engine.deals.associate_attributed:
        ready = [a for a in attributed if a.link_id in looped]
        added, letters = outcomes.associate(
            engine.store, engine.marketing, engine.rules[DEAL], ready, states, engine.clock()
        )
    # So does a deal one of whose people the marketing system refused to associate.
    unassociated = {letter.ref.link_id for letter in letters}
    done = [note for note in kept if note["link_id"] not in unassociated]
    for note in done:
        mine = [r.ref_link for r in added if r.link_id == note["link_id"]]
        if mine:
            note["detail"]["associated"] = mine
    engine.store.finish_loop(done, added, letters, now=engine.clock())


def _person_fields(engine: Looping, people: list[int]) -> dict[int, dict[str, Value]] | None:
    """Per person, the won revenue to write (None: no outcome property is written)."""
    deals = engine.deals
    if not deals.person_revenue_property and not deals.person_last_outcome_property:
        return None
    if not deals.person_revenue_property or not people:
        return {}
    vocabulary = engine.rules[DEAL].vocabulary
    won = [s.name for s in (vocabulary.stages if vocabulary else ()) if s.outcome == "won"]
    field = outcomes.people_field(engine.rules[DEAL])
    totals = outcomes.won_revenue(engine.store, won, people, field)
    return {p: {outcomes.REVENUE: outcomes.number_text(t)} for p, t in totals.items()}


def plan_stage_move(
    key: str,
    link: LinkState,
    stage: str,
    at: datetime,
    source: RecordRef,
    rules: Rules,
    reason: str,
    keep_from: str | None = None,
) -> PairPlan:
    """Move a linked pair to ``stage`` on both sides because of a rule (closed loop).

    Nothing moves when the pair stands there already, when the vocabulary refuses the
    move, when its stage is unknown, or when ``stage`` recycles and the pair stands at
    or after ``keep_from`` (a customer is not recycled by another, lost deal).
    """
    vocabulary = rules.vocabulary
    current = link.stage
    if link.tombstoned or vocabulary is None or current == UNMAPPED:
        return PairPlan(key, link, None, None, skip="no stage to move")
    if (
        current == stage
        or not vocabulary.allows(current, stage)
        or _kept(vocabulary, current, stage, keep_from)
    ):
        note = f"{reason}: stays {current}, not moved to {stage}"
        return PairPlan(key, link, None, None, base=link.base, stage=current, notes=(note,))
    fields: dict[str, Value] = {}
    base = dict(link.base)
    if rules.reason_field and vocabulary.is_recycle(stage):
        fields[rules.reason_field] = base[rules.reason_field] = reason
    changes: list[Change | None] = []
    for own, partner, system in (
        (link.marketing, link.crm, rules.marketing),
        (link.crm, link.marketing, rules.crm),
    ):
        if own is None:
            changes.append(None)
            continue
        native = vocabulary.to_native(system, stage)
        partner_id = partner.id if partner else None
        changes.append(
            Change("update", own.kind, key, own.id, fields, native, partner_id=partner_id)
        )
    return PairPlan(
        key,
        link,
        None,
        None,
        changes[0],
        changes[1],
        base,
        stage,
        (Transition(current, stage, at, source, reason),),
        notes=(reason,),
    )


def _kept(vocabulary: Vocabulary, current: str | None, stage: str, keep_from: str | None) -> bool:
    """A recycling move that would undo a stage at or after ``keep_from``."""
    if current is None or keep_from is None or not vocabulary.is_recycle(stage):
        return False
    floor, rank = vocabulary.rank(keep_from), vocabulary.rank(current)
    return floor is not None and rank is not None and rank >= floor


def attribute(
    engine: Looping, base: Mapping[str, Any], crm_id: str | None
) -> tuple[list[int], str | None]:
    """A deal's people and the rule that found them (None: nobody found)."""
    for rule in engine.attribution:
        if rule == "contact_roles":
            people = [int(i) for i in split_ids(base.get("contacts"))]
        elif rule == "converted_lead":
            people = engine.store.converted_from(crm_id) if crm_id else []
        else:
            company = base.get("company")
            people = engine.store.people_of_company(company) if company else []
        if people:
            return sorted(set(people)), rule
    return [], None
