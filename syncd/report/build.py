"""Funnel, speed to lead and closed loop, from the state store alone (no API calls).

Only stage transitions whose time falls in the period ``[since, until)`` count, and
tombstoned links count like any other (history is history). A person's or deal's
"first" transition is the first by time, then by row id (the order they were appended).

- **Funnel** (people, non-recycle stages in order): ``reached(s)`` is the number of
  distinct people with a transition in the period into ``s`` or into any later
  non-recycle stage (cumulative: someone who jumped to sql also passed mql).
  Conversion ``s_i -> s_i+1`` is ``reached(i+1) / reached(i)`` (None when
  ``reached(i)`` is 0). The time ``s_i -> s_i+1`` is measured for people with a
  transition into both in the period: from the first transition into ``s_i`` to the
  first transition into ``s_i+1`` at or after it; median and p90 in hours, p90 by
  nearest rank (sorted values, index ``ceil(0.9 n) - 1``).
- **Speed to lead**: a hand-off is a person's first transition into the hand-off stage
  in the period. Its follow-up is the first other transition of that person at or after
  it that the CRM made (``source_system``) into a stage ranked after the hand-off stage
  or into a recycle stage. A follow-up more than the SLA after its hand-off is *late*;
  a hand-off without follow-up is *unanswered* when ``until`` is more than the SLA
  after it and *waiting* otherwise. Over the SLA = late + unanswered.
- **Speed to lead by first touch** (once syncd has read sales activities from the CRM:
  ``syncd.sync.touches``): the follow-up is instead the hand-off's first touch, the
  first sales activity on the person at or after it (a logged call or email, a
  meeting), by whoever did it; the same figures, plus per owner (by name) and per
  source, with the share never touched. The report says which measure it used.
- **Closed loop** (deals): a deal closed in the period when it has a transition in the
  period into a stage with an ``outcome``; its last such transition decides won or lost.
  Win rate = won / (won + lost); won revenue = the sum of the won deals' ``amount``
  (a won deal without a readable amount adds nothing and is counted apart). A deal's
  people are its ``contacts``, else its ``attributed_people``; its source is the group
  field's value of the first of them (lowest link id) that has a non-blank one, else
  ``(none)``.
- **Recycled**: people with a transition into a recycle stage in the period, counted
  by their current base stage; re-qualified when a transition into a non-recycle stage
  follows their first recycle transition in the period.
- **Trend** (``syncd.report.trend``): the hand-offs and the won deals (at their deciding
  transition) with their revenue, per week or month, and the same totals over the
  previous period of the same length, counted the same way over its own transitions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, select

from syncd.config.settings import ReportSettings, StageDef
from syncd.model import Cursor
from syncd.report.measure import NONE, deal_people, durations
from syncd.report.measure import amount as _amount
from syncd.report.measure import hours as _hours
from syncd.report.measure import utc as _utc
from syncd.report.model import (
    Base,
    Bucket,
    ClosedLoop,
    FirstTouch,
    FunnelStep,
    GroupSpeed,
    Handoff,
    History,
    JsonFields,
    Outcomes,
    Period,
    Recycled,
    Report,
    SpeedToLead,
    Transition,
)
from syncd.report.quality import TouchHours, lead_quality
from syncd.report.trend import Win, trend
from syncd.state.store import Store
from syncd.state.tables import (
    EPOCH,
    MICROSECOND,
    bases,
    cursors,
    first_touches,
    links,
    stage_history,
)
from syncd.state.touches import ACTIVITY_CURSOR, owner_names

UNKNOWN = "(unknown)"
"""A current stage that is not known (blank or "?")."""


def _by_link(transitions: Iterable[Transition], obj: str) -> dict[int, list[Transition]]:
    """Each link's transitions of ``obj``, in time order (then append order)."""
    found: dict[int, list[Transition]] = defaultdict(list)
    # Only ``obj``'s sorted: the report calls this for each object and period.
    for t in sorted((t for t in transitions if t.object == obj), key=lambda t: (t.at, t.id)):
        found[t.link_id].append(t)
    return dict(found)


def stage_label(stage: StageDef) -> str:
    """The vocabulary's label of the stage, else its name written as words (``Closed won``)."""
    return stage.label or stage.name.replace("_", " ").capitalize()


def _group(base: Base | None, field: str) -> str:
    value = base.value(field) if base is not None else None
    return value or NONE


def funnel(
    people: Mapping[int, Sequence[Transition]], stages: Sequence[StageDef]
) -> tuple[FunnelStep, ...]:
    """The cumulative funnel of people's transitions (already limited to the period)."""
    linear = [s for s in stages if not s.recycle]
    rank = {s.name: i for i, s in enumerate(linear)}
    furthest: list[int] = []
    # per stage, the hours from a person's first entry into it to their first entry
    # into the next stage at or after it (one pass over each person's own stages)
    to_next: list[list[float]] = [[] for _ in linear]
    for rows in people.values():
        times: dict[int, list[datetime]] = {}
        for t in rows:
            i = rank.get(t.to_stage)
            if i is not None:
                times.setdefault(i, []).append(t.at)
        if not times:
            continue
        furthest.append(max(times))
        for i, entries in times.items():
            following = times.get(i + 1)
            if following is None:
                continue
            start = entries[0]
            later = next((at for at in following if at >= start), None)
            if later is not None:
                to_next[i].append(_hours(later - start))
    reached = [sum(1 for f in furthest if f >= i) for i in range(len(linear))]
    steps = []
    for i, stage in enumerate(linear):
        conversion, hours_to_next = None, None
        if i + 1 < len(linear):
            conversion = reached[i + 1] / reached[i] if reached[i] else None
            hours_to_next = durations(to_next[i])
        steps.append(
            FunnelStep(stage.name, stage_label(stage), reached[i], conversion, hours_to_next)
        )
    return tuple(steps)


def _histogram(hours: Sequence[float], sla: float) -> tuple[Bucket, ...]:
    bounds = [sla / 4, sla / 2, sla, 2 * sla]
    counts = [0] * (len(bounds) + 1)
    for value in hours:
        counts[next((i for i, b in enumerate(bounds) if value <= b), len(bounds))] += 1
    labels = [f"≤ {bounds[0]:g} h"]
    labels += [f"{low:g} to {high:g} h" for low, high in pairwise(bounds)]
    labels.append(f"> {bounds[-1]:g} h")
    uppers: list[float | None] = [*bounds, None]
    return tuple(
        Bucket(label, upper, n) for label, upper, n in zip(labels, uppers, counts, strict=True)
    )


def speed_to_lead(
    people: Mapping[int, Sequence[Transition]],
    bases_: Mapping[int, Base],
    until: datetime,
    *,
    stages: Sequence[StageDef],
    crm: str,
    settings: ReportSettings,
    touches: Mapping[tuple[int, datetime], FirstTouch] | None = None,
) -> SpeedToLead:
    """Hand-offs to sales and how fast the CRM followed them up: by first touch when
    ``touches`` is given (sales activities were read), else by stage transition."""
    handoff_stage, sla = settings.handoff_stage, settings.speed_to_lead_sla_hours
    hours_to_follow_up = first_touch(stages, crm, settings, touches)
    handoffs: list[Handoff] = []
    for link_id, rows in people.items():
        handoff = next((t for t in rows if t.to_stage == handoff_stage), None)
        if handoff is None:
            continue
        touch = touches.get((link_id, handoff.at)) if touches is not None else None
        base = bases_.get(link_id)
        handoffs.append(
            Handoff(
                link_id=link_id,
                email=(base.value("email") or base.email_key) if base else None,
                source=_group(base, settings.source_field),
                handed_off_at=handoff.at,
                response_hours=hours_to_follow_up(link_id, handoff, rows),
                owner=touch.owner if touch else None,
            )
        )
    handoffs.sort(key=lambda h: (h.handed_off_at, h.link_id))
    answered = [h.response_hours for h in handoffs if h.response_hours is not None]
    late = tuple(h for h in handoffs if h.response_hours is not None and h.response_hours > sla)
    pending = [h for h in handoffs if h.response_hours is None]
    unanswered = tuple(h for h in pending if _hours(until - h.handed_off_at) > sla)
    return SpeedToLead(
        handoff_stage=handoff_stage,
        sla_hours=sla,
        handoffs=len(handoffs),
        followed_up=len(answered),
        response=durations(answered),
        over_sla=len(late) + len(unanswered),
        late=late,
        unanswered=unanswered,
        waiting=len(pending) - len(unanswered),
        histogram=_histogram(answered, sla),
        measure="stage" if touches is None else "touch",
        by_owner={} if touches is None else _grouped(handoffs, sla, lambda h: h.owner),
        by_source={} if touches is None else _grouped(handoffs, sla, lambda h: h.source),
    )


def _grouped(
    handoffs: Sequence[Handoff], sla: float, key: Callable[[Handoff], str | None]
) -> dict[str, GroupSpeed]:
    """Speed to lead per group of hand-offs (those whose ``key`` is None left out)."""
    groups: dict[str, list[Handoff]] = defaultdict(list)
    for h in handoffs:
        if (name := key(h)) is not None:
            groups[name].append(h)
    found = {}
    for name in sorted(groups):
        members = groups[name]
        answered = [h.response_hours for h in members if h.response_hours is not None]
        found[name] = GroupSpeed(
            handoffs=len(members),
            touched=len(answered),
            response=durations(answered),
            over_sla=sum(1 for hours in answered if hours > sla),
            never_touched=(len(members) - len(answered)) / len(members),
        )
    return found


def _outcomes(won: int, lost: int, revenue: Decimal) -> Outcomes:
    return Outcomes(won, lost, won / (won + lost) if won + lost else None, revenue)


def first_touch(
    stages: Sequence[StageDef],
    crm: str,
    settings: ReportSettings,
    touches: Mapping[tuple[int, datetime], FirstTouch] | None = None,
) -> TouchHours:
    """How speed to lead and the lead-quality section time a hand-off's first follow-up:
    by the first sales activity after it when ``touches`` is given (activities were read),
    else by the stage measure (the CRM's first move of the person past the hand-off stage,
    or into a recycle stage, at or after it)."""
    rank = {s.name: i for i, s in enumerate(s for s in stages if not s.recycle)}
    recycle = {s.name for s in stages if s.recycle}
    handoff_rank = rank.get(settings.handoff_stage, len(rank))

    def by_touch(link_id: int, handoff: Transition, rows: Sequence[Transition]) -> float | None:
        touch = touches.get((link_id, handoff.at)) if touches is not None else None
        return _hours(touch.touched_at - handoff.at) if touch else None

    def by_stage(link_id: int, handoff: Transition, rows: Sequence[Transition]) -> float | None:
        follow_up = next(
            (
                t
                for t in rows
                if t is not handoff
                and t.at >= handoff.at
                and t.source_system == crm
                and (t.to_stage in recycle or rank.get(t.to_stage, -1) > handoff_rank)
            ),
            None,
        )
        return _hours(follow_up.at - handoff.at) if follow_up else None

    return by_stage if touches is None else by_touch


def closed_loop(
    deals: Mapping[int, Sequence[Transition]],
    bases_: Mapping[int, Base],
    *,
    stages: Sequence[StageDef],
    group_field: str,
) -> ClosedLoop:
    """Deals won and lost in the period, in total and by their people's source."""
    outcome_of = {s.name: s.outcome for s in stages if s.outcome}
    tally: dict[str, list[Any]] = defaultdict(lambda: [0, 0, Decimal(0)])
    without_amount = 0
    for link_id, rows in deals.items():
        closes = [outcome_of[t.to_stage] for t in rows if t.to_stage in outcome_of]
        if not closes:
            continue
        base = bases_.get(link_id)
        source = next(
            (v for p in deal_people(base) if (v := _group(bases_.get(p), group_field)) != NONE),
            NONE,
        )
        counts = tally[source]
        if closes[-1] == "won":
            counts[0] += 1
            amount = _amount(base)
            counts[2] += amount or 0
            without_amount += amount is None
        else:
            counts[1] += 1
    total = [sum(c[i] for c in tally.values()) for i in range(3)]
    return ClosedLoop(
        group_field=group_field,
        total=_outcomes(total[0], total[1], Decimal(total[2])),
        by_source={k: _outcomes(*tally[k]) for k in sorted(tally)},
        won_without_amount=without_amount,
    )


def handoff_times(people: Mapping[int, Sequence[Transition]], handoff_stage: str) -> list[datetime]:
    """When each person was handed off: their first transition into the hand-off stage."""
    found = []
    for rows in people.values():
        handoff = next((t for t in rows if t.to_stage == handoff_stage), None)
        if handoff is not None:
            found.append(handoff.at)
    return found


def wins(
    deals: Mapping[int, Sequence[Transition]],
    bases_: Mapping[int, Base],
    stages: Sequence[StageDef],
) -> list[Win]:
    """The won deals: when their deciding (last outcome) transition was, and their amount."""
    outcome_of = {s.name: s.outcome for s in stages if s.outcome}
    found = []
    for link_id, rows in deals.items():
        last = next((t for t in reversed(rows) if t.to_stage in outcome_of), None)
        if last is not None and outcome_of[last.to_stage] == "won":
            found.append((last.at, _amount(bases_.get(link_id)) or Decimal(0)))
    return found


def recycled(
    people: Mapping[int, Sequence[Transition]],
    bases_: Mapping[int, Base],
    stages: Sequence[StageDef],
) -> Recycled:
    """People recycled in the period: what became of them, and how many re-qualified."""
    recycle = {s.name for s in stages if s.recycle}
    linear = {s.name for s in stages if not s.recycle}
    count, requalified = 0, 0
    now: dict[str, int] = defaultdict(int)
    for link_id, rows in people.items():
        first = next((i for i, t in enumerate(rows) if t.to_stage in recycle), None)
        if first is None:
            continue
        count += 1
        requalified += any(t.to_stage in linear for t in rows[first + 1 :])
        base = bases_.get(link_id)
        stage = base.stage if base is not None else None
        now[stage if stage and stage != "?" else UNKNOWN] += 1
    return Recycled(count, requalified, dict(sorted(now.items())))


def build(
    history: History,
    period: Period,
    *,
    stages: Mapping[str, Sequence[StageDef]],
    crm: str,
    settings: ReportSettings,
    by: str | None = None,
    generated_at: datetime | None = None,
) -> Report:
    """The whole report of ``history`` over ``period``, made at ``generated_at`` (now).

    ``by`` (a person field) groups the funnel and speed to lead too, and replaces
    ``settings.source_field`` as the closed loop's grouping. The trend compares with the
    previous period's transitions in ``history`` (``read_history`` reads them).
    """
    since, until, earlier = period.since, period.until, period.previous.since
    inside = [t for t in history.transitions if since <= t.at < until]
    people, deals = _by_link(inside, "person"), _by_link(inside, "deal")
    before = [t for t in history.transitions if earlier <= t.at < since]
    people_before, deals_before = _by_link(before, "person"), _by_link(before, "deal")
    person_stages = stages.get("person", ())
    deal_stages = stages.get("deal", ())

    def speed(group: Mapping[int, Sequence[Transition]]) -> SpeedToLead:
        return speed_to_lead(
            group,
            history.bases,
            period.until,
            stages=person_stages,
            crm=crm,
            settings=settings,
            touches=history.touches,
        )

    groups: dict[str, dict[int, list[Transition]]] = defaultdict(dict)
    if by is not None:
        for link_id, rows in people.items():
            groups[_group(history.bases.get(link_id), by)][link_id] = rows
    return Report(
        since=period.since,
        until=period.until,
        generated_at=(generated_at or datetime.now(UTC)).astimezone(UTC),
        by=by,
        currency=settings.currency,
        stage_labels={s.name: stage_label(s) for s in (*deal_stages, *person_stages)},
        funnel=funnel(people, person_stages),
        funnel_by={k: funnel(groups[k], person_stages) for k in sorted(groups)},
        speed_to_lead=speed(people),
        speed_to_lead_by={k: speed(groups[k]) for k in sorted(groups)},
        closed_loop=closed_loop(
            deals,
            history.bases,
            stages=deal_stages,
            group_field=by or settings.source_field,
        ),
        recycled=recycled(people, history.bases, person_stages),
        quality=lead_quality(
            people,
            deals,
            history.bases,
            stages=person_stages,
            deal_stages=deal_stages,
            settings=settings,
            first_touch=first_touch(person_stages, crm, settings, history.touches),
        ),
        trend=trend(
            period,
            handoff_times(people, settings.handoff_stage),
            wins(deals, history.bases, deal_stages),
            previous_handoffs=handoff_times(people_before, settings.handoff_stage),
            previous_wins=wins(deals_before, history.bases, deal_stages),
        ),
    )


def read_history(store: Store, period: Period) -> History:
    """The person and deal transitions in ``period`` and in the previous period (for the
    trend), and the bases of their links and people."""
    since = period.previous.since
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            transitions = _sqlite_transitions(connection, since, period.until)
        else:
            transitions = _transitions(connection, since, period.until)
        found = _read_bases(connection, {t.link_id for t in transitions})
        deal_ids = {t.link_id for t in transitions if t.object == "deal"}
        people = {p for d in deal_ids for p in deal_people(found.get(d))} - set(found)
        found.update(_read_bases(connection, people))
        touches = _read_touches(connection, since, period.until)
    return History(transitions, found, touches)


TRANSITION_COLUMNS = (
    stage_history.c.id,
    stage_history.c.link_id,
    stage_history.c.object,
    stage_history.c.to_stage,
    stage_history.c.at,
    stage_history.c.source_system,
    stage_history.c.reason,
    stage_history.c.snapshot,
)
"""What the report reads of each transition, in ``Transition``'s order."""


def _transitions(
    connection: Connection, since: datetime, until: datetime
) -> tuple[Transition, ...]:
    """The person and deal transitions in ``[since, until)``, on any store."""
    rows = connection.execute(
        select(*TRANSITION_COLUMNS).where(
            stage_history.c.object.in_(("person", "deal")),
            stage_history.c.at >= since.astimezone(UTC),
            stage_history.c.at < until.astimezone(UTC),
        )
    ).all()
    return tuple(
        Transition(id_, link_id, obj, to_stage, _utc(at), source, reason, snapshot)
        for id_, link_id, obj, to_stage, at, source, reason, snapshot in rows
    )


def _sqlite_transitions(
    connection: Connection, since: datetime, until: datetime
) -> tuple[Transition, ...]:
    """The person and deal transitions in ``[since, until)`` from SQLite, through the
    driver's cursor: the same rows as ``_transitions``, without a result row and a type
    conversion per value (100,000 transitions: about a second less). SQLite keeps a
    moment as whole microseconds since 1970 (``syncd.state.tables.Moment``)."""
    columns = ", ".join(column.name for column in TRANSITION_COLUMNS)
    sql = (
        f"SELECT {columns} FROM {stage_history.name}"
        " WHERE object IN ('person', 'deal') AND at >= ? AND at < ?"
    )
    bounds = ((since - EPOCH) // MICROSECOND, (until - EPOCH) // MICROSECOND)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        rows = cursor.execute(sql, bounds).fetchall()
    finally:
        cursor.close()
    return tuple(
        Transition(id_, link_id, obj, to_stage, EPOCH + at * MICROSECOND, source, reason, snap)
        for id_, link_id, obj, to_stage, at, source, reason, snap in rows
    )


def _read_touches(
    connection: Connection, since: datetime, until: datetime
) -> dict[tuple[int, datetime], FirstTouch] | None:
    """The first touches of hand-offs in ``[since, until)`` with their owners' names;
    None when syncd has never read a sales activity (no activity cursor has moved: the
    CRM is not read for them, or its team logs none), and the stage measure applies."""
    read = connection.scalars(
        select(cursors.c.value).where(cursors.c.kind.like(ACTIVITY_CURSOR + "%"))
    )
    if all(Cursor.loads(value).since is None for value in read):
        return None
    names = owner_names(connection)
    rows = connection.execute(
        select(
            first_touches.c.link_id,
            first_touches.c.handoff_at,
            first_touches.c.touched_at,
            first_touches.c.channel,
            first_touches.c.owner_id,
        ).where(
            first_touches.c.handoff_at >= since.astimezone(UTC),
            first_touches.c.handoff_at < until.astimezone(UTC),
        )
    ).all()
    named: dict[str | None, str] = {}  # one name string per owner, not per touch
    for owner_id in {row[4] for row in rows}:
        named[owner_id] = names.get(owner_id or "") or (f"user {owner_id}" if owner_id else NONE)
    return {
        (link_id, _utc(handoff_at)): FirstTouch(_utc(touched_at), channel, named[owner_id])
        for link_id, handoff_at, touched_at, channel, owner_id in rows
    }


WHOLE_TABLE = 20_000
"""From this many links on, their bases are read in one scan of every person's and
deal's link (cheaper than as many lookups of 500 ids: a large period reads most links)."""


def _read_bases(connection: Connection, link_ids: set[int]) -> dict[int, Base]:
    query = select(links.c.id, links.c.email_key, bases.c.fields, bases.c.stage).select_from(
        links.outerjoin(bases, bases.c.link_id == links.c.id)
    )
    found: dict[int, Base] = {}
    if len(link_ids) >= WHOLE_TABLE:
        rows = connection.execute(query.where(links.c.object.in_(("person", "deal"))))
        for link_id, email_key, fields, stage in rows.all():
            if link_id in link_ids:
                found[link_id] = Base(JsonFields(fields), stage, email_key)
        return found
    ids = sorted(link_ids)
    for start in range(0, len(ids), 500):
        chunk = connection.execute(query.where(links.c.id.in_(ids[start : start + 500])))
        for link_id, email_key, fields, stage in chunk.all():
            found[link_id] = Base(JsonFields(fields), stage, email_key)
    return found
