"""Lead quality: what sales made of the hand-offs, by what marketing knew when it made them.

One pass over the period's person and deal transitions (already read for the other
sections): no query of its own, so the report stays as fast at 100,000 people.

- A **hand-off** is a person's first transition into ``report.handoff_stage`` in the
  period (as in speed to lead). What marketing knew then, its score, grade and source, is
  the snapshot stored with that transition (``stage_history.snapshot``, kept since
  migration 0009_quality). A field the snapshot lacks (a hand-off recorded before, or a field
  named in the settings since) is taken from the person's current values, and the
  hand-off is counted in ``current_values``.
- **Accepted**: a later transition (at or after the hand-off, not the hand-off itself)
  into the accepted stage or any later non-recycle stage. The accepted stage is
  ``report.quality.accepted_stage``, else the stage after the hand-off stage.
- **Disqualified or recycled**: a later transition into a recycle stage; the reason of
  the first such (``stage_history.reason``: what sales wrote) is counted, ``(no reason
  given)`` when there is none.
- **Opportunities**: the deals with a transition in the period whose people
  (``deal_people``) include a hand-off of the period; a deal counts once, for the first of
  its people (lowest link id) handed off. Won or lost by its last outcome transition in
  the period (as the closed loop); won revenue the sum of the won deals' amounts.
- **Win rate** = won / (won + lost). With fewer closed deals than
  ``report.quality.min_deals`` it is flagged ``small_sample`` and shown as ``n<5``.
- **First touch**: hours from the hand-off to its first follow-up, as ``first_touch``
  measures it (the caller's: speed to lead's measure); median and p90 of those followed up.
- **Score bands**: the edges ``[e0, e1, ..., en]`` make the bands ``[e_i, e_i+1)``, the
  last one closed; scores below or above them, and hand-offs without a numeric score,
  are counted apart.
- **Thresholds**: for each candidate score threshold ``t``, the hand-offs scored at or
  above ``t`` (those it would have made) and their deals, and those below (held back)
  with the deals they won. Hand-offs without a score are in neither.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise

import orjson

from syncd.config.settings import ReportSettings, StageDef
from syncd.report.measure import NONE, amount, deal_people, durations
from syncd.report.model import Base, Quality, QualityRow, ThresholdRow, Transition

NO_SCORE = "(no score)"
NO_REASON = "(no reason given)"

TouchHours = Callable[[int, Transition, Sequence[Transition]], float | None]
"""Hours from a hand-off (link id, its transition, the person's transitions in the
period) to its first follow-up; None when not followed up."""


@dataclass
class _Outcome:
    """One hand-off: what marketing knew and what became of it."""

    score: float | None
    source: str
    grade: str
    accepted: bool
    reason: str | None
    """Why it was disqualified or recycled; None: it was not."""
    touch_hours: float | None
    opportunities: int = 0
    won: int = 0
    lost: int = 0
    revenue: Decimal = Decimal(0)


@dataclass
class _Tally:
    handoffs: int = 0
    accepted: int = 0
    disqualified: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    opportunities: int = 0
    won: int = 0
    lost: int = 0
    revenue: Decimal = Decimal(0)
    touches: list[float] = field(default_factory=list)

    def add(self, o: _Outcome) -> None:
        self.handoffs += 1
        self.accepted += o.accepted
        if o.reason is not None:
            self.disqualified += 1
            self.reasons[o.reason] += 1
        self.opportunities += o.opportunities
        self.won += o.won
        self.lost += o.lost
        self.revenue += o.revenue
        if o.touch_hours is not None:
            self.touches.append(o.touch_hours)

    def merge(self, other: _Tally) -> None:
        self.handoffs += other.handoffs
        self.accepted += other.accepted
        self.disqualified += other.disqualified
        self.reasons.update(other.reasons)
        self.opportunities += other.opportunities
        self.won += other.won
        self.lost += other.lost
        self.revenue += other.revenue
        self.touches += other.touches

    def row(self, min_deals: int) -> QualityRow:
        closed = self.won + self.lost
        return QualityRow(
            handoffs=self.handoffs,
            accepted=self.accepted,
            disqualified=self.disqualified,
            reasons=dict(sorted(self.reasons.items(), key=lambda item: (-item[1], item[0]))),
            opportunities=self.opportunities,
            won=self.won,
            lost=self.lost,
            win_rate=self.won / closed if closed else None,
            small_sample=closed < min_deals,
            won_revenue=self.revenue,
            first_touch=durations(self.touches),
        )


def score_of(text: str | None) -> float | None:
    """A score as a number; None when blank or not a finite number."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def band_labels(edges: Sequence[float]) -> list[str]:
    """``0 to 25``, ``25 to 50``, ...: the bands the edges make, in order."""
    return [f"{low:g} to {high:g}" for low, high in pairwise(edges)]


def band_of(score: float | None, edges: Sequence[float]) -> str:
    """The band ``score`` falls in: ``[e_i, e_i+1)``, the last band closed."""
    if score is None:
        return NO_SCORE
    if score < edges[0]:
        return f"< {edges[0]:g}"
    if score > edges[-1]:
        return f"> {edges[-1]:g}"
    index = min(bisect_right(edges, score) - 1, len(edges) - 2)
    return band_labels(edges)[index]


def accepted_stage(stages: Sequence[StageDef], settings: ReportSettings) -> str | None:
    """The configured accepted stage, else the non-recycle stage after the hand-off's."""
    if settings.quality.accepted_stage is not None:
        return settings.quality.accepted_stage
    linear = [s.name for s in stages if not s.recycle]
    if settings.handoff_stage in linear:
        after = linear.index(settings.handoff_stage) + 1
        return linear[after] if after < len(linear) else None
    return None


class _Known:
    """What marketing knew at a hand-off: its snapshot, else the person's current values."""

    def __init__(self, handoff: Transition, base: Base | None) -> None:
        loaded = orjson.loads(handoff.snapshot) if handoff.snapshot else None
        self.snapshot: dict[str, object] = loaded if isinstance(loaded, dict) else {}
        self.base = base
        self.from_current = False

    def value(self, name: str | None) -> str | None:
        if name is None:
            return None
        if name in self.snapshot:
            held = self.snapshot[name]
            text = str(held).strip() if held is not None else ""
            return text or None
        self.from_current = True
        return self.base.value(name) if self.base is not None else None


def _outcomes(
    people: Mapping[int, Sequence[Transition]],
    bases_: Mapping[int, Base],
    stages: Sequence[StageDef],
    settings: ReportSettings,
    first_touch: TouchHours,
) -> tuple[dict[int, _Outcome], int]:
    """Each hand-off of the period by link id, and how many used current values."""
    quality = settings.quality
    source_field = quality.source_field or settings.source_field
    rank = {s.name: i for i, s in enumerate(s for s in stages if not s.recycle)}
    recycle = {s.name for s in stages if s.recycle}
    accepted_at = rank.get(accepted_stage(stages, settings) or "", len(rank))
    found: dict[int, _Outcome] = {}
    current = 0
    for link_id, rows in people.items():
        handoff = next((t for t in rows if t.to_stage == settings.handoff_stage), None)
        if handoff is None:
            continue
        accepted, rejected = False, None
        for t in rows:
            if t is handoff or t.at < handoff.at:
                continue
            accepted = accepted or rank.get(t.to_stage, -1) >= accepted_at
            if rejected is None and t.to_stage in recycle:
                rejected = t
        known = _Known(handoff, bases_.get(link_id))
        found[link_id] = _Outcome(
            score=score_of(known.value(quality.score_field)),
            source=known.value(source_field) or NONE,
            grade=known.value(quality.grade_field) or NONE,
            accepted=accepted,
            reason=(rejected.reason or NO_REASON) if rejected is not None else None,
            touch_hours=first_touch(link_id, handoff, rows),
        )
        current += known.from_current
    return found, current


def _add_deals(
    outcomes: Mapping[int, _Outcome],
    deals: Mapping[int, Sequence[Transition]],
    bases_: Mapping[int, Base],
    deal_stages: Sequence[StageDef],
) -> None:
    """Each deal of the period counted once, for the first of its people handed off."""
    outcome_of = {s.name: s.outcome for s in deal_stages if s.outcome}
    for link_id, rows in deals.items():
        base = bases_.get(link_id)
        owner = next((outcomes[p] for p in deal_people(base) if p in outcomes), None)
        if owner is None:
            continue
        owner.opportunities += 1
        closes = [outcome_of[t.to_stage] for t in rows if t.to_stage in outcome_of]
        last = closes[-1] if closes else None
        if last == "won":
            owner.won += 1
            owner.revenue += amount(base) or 0
        elif last is not None:
            owner.lost += 1


Cell = tuple[str, str, float | None]
"""Hand-offs alike in what marketing knew: source, grade, score."""


def _cells(outcomes: Iterable[_Outcome]) -> dict[Cell, _Tally]:
    """The hand-offs tallied by source, grade and score: every grouping below merges
    these few cells instead of going over the hand-offs again."""
    cells: dict[Cell, _Tally] = defaultdict(_Tally)
    for o in outcomes:
        cells[(o.source, o.grade, o.score)].add(o)
    return cells


def _merged(tallies: Iterable[_Tally]) -> _Tally:
    found = _Tally()
    for tally in tallies:
        found.merge(tally)
    return found


def _threshold(t: float, cells: Mapping[Cell, _Tally], min_deals: int) -> ThresholdRow:
    kept = _merged(c for (_, _, score), c in cells.items() if score is not None and score >= t)
    below = _merged(c for (_, _, score), c in cells.items() if score is not None and score < t)
    row = kept.row(min_deals)
    return ThresholdRow(
        threshold=t,
        handoffs=row.handoffs,
        won=row.won,
        lost=row.lost,
        win_rate=row.win_rate,
        small_sample=row.small_sample,
        won_revenue=row.won_revenue,
        held_back=below.handoffs,
        held_back_won=below.won,
        held_back_revenue=below.revenue,
    )


def _grouped(
    cells: Mapping[Cell, _Tally], key: Callable[[Cell], str], order: Sequence[str] = ()
) -> dict[str, _Tally]:
    """Tallies by ``key``: the ``order``'s groups first (also when empty), then the rest
    sorted, with ``(no score)`` last."""
    tallies: dict[str, _Tally] = {name: _Tally() for name in order}
    for cell, tally in cells.items():
        tallies.setdefault(key(cell), _Tally()).merge(tally)
    rest = sorted((k for k in tallies if k not in order), key=lambda k: (k == NO_SCORE, k))
    return {k: tallies[k] for k in (*order, *rest)}


def lead_quality(
    people: Mapping[int, Sequence[Transition]],
    deals: Mapping[int, Sequence[Transition]],
    bases_: Mapping[int, Base],
    *,
    stages: Sequence[StageDef],
    deal_stages: Sequence[StageDef],
    settings: ReportSettings,
    first_touch: TouchHours,
) -> Quality:
    """The lead-quality section over the period's transitions (see the module's docstring)."""
    quality = settings.quality
    outcomes, current = _outcomes(people, bases_, stages, settings, first_touch)
    _add_deals(outcomes, deals, bases_, deal_stages)
    cells = _cells(outcomes.values())
    edges = quality.score_bands
    min_deals = quality.min_deals

    def rows(tallies: Mapping[str, _Tally]) -> dict[str, QualityRow]:
        return {k: t.row(min_deals) for k, t in tallies.items()}

    unscored = sum(t.handoffs for (_, _, score), t in cells.items() if score is None)
    return Quality(
        handoff_stage=settings.handoff_stage,
        accepted_stage=accepted_stage(stages, settings),
        score_field=quality.score_field,
        grade_field=quality.grade_field,
        source_field=quality.source_field or settings.source_field,
        min_deals=min_deals,
        total=_merged(cells.values()).row(min_deals),
        by_source=rows(_grouped(cells, lambda cell: cell[0])),
        by_band=(
            rows(_grouped(cells, lambda cell: band_of(cell[2], edges), band_labels(edges)))
            if quality.score_field
            else {}
        ),
        by_grade=rows(_grouped(cells, lambda cell: cell[1])) if quality.grade_field else {},
        thresholds=(
            tuple(_threshold(t, cells, min_deals) for t in sorted(quality.thresholds))
            if quality.score_field
            else ()
        ),
        unscored=unscored,
        current_values=current,
    )
