"""Outcomes visible in the marketing system's own reports (issue 13, section 5).

HubSpot's revenue attribution reads the contacts associated with a deal. When the closed
loop attributes a deal's outcome to people by a rule other than its contacts (the
converted lead's person, the people of its company: ``syncd.sync.closed_loop``), the
marketing system's deal has none of them, and its dashboards disagree with
``syncd report``. So:

- ``associate``: those people are added to the marketing deal's people reference (the
  ``refs`` field of deals that targets people; HubSpot: the default deal-to-contact
  association, v4 batch create, 1,000 a call), through ``syncd.abc.Associating``. The
  pairs are kept in the store (``derived_refs``) before they are sent, and the deal is
  journaled as looped after: a crash in between sends them again next cycle, which
  changes nothing (HubSpot keeps one association per pair and type), and the next
  cycle is not sent them again once the deal is looped. Not confirmed in HubSpot's own
  words: the reference of the v4 batch create
  (https://developers.hubspot.com/docs/api-reference/latest/crm/associations/associate-records/batch/create-associations)
  documents the call and its 201/207 answer, not what a second create of an existing
  pair does; a third-party guide says it "does not create a duplicate but also does not
  error" (https://mcp.waymark.network/r/499f62e9-1a75-4cac-845c-9c69c2264a77), and the
  emulator keeps one association per pair and type. Kept, they are left out of
  what the marketing side reads (``syncd.sync.canonical``), so the merge never carries
  them to the CRM as contact roles and the association sweep does not see them as news;
  and like every association syncd makes, they are never removed, nor is any other.
  A refused pair is dead-lettered with the system's words, and its deal stays unlooped
  (tried again next cycle, as a refused person move is).
- ``with_person_fields``: a person's won revenue (the amounts of the won deals attributed to
  them, as the report attributes deals: their contacts, else their attributed people)
  and the outcome of their latest closed deal, written to marketing properties named in
  syncd.yaml (``deals.person_revenue_property``, ``deals.person_last_outcome_property``)
  with the closed loop's own batch of people writes. They are hidden fields: the
  marketing connector reads and writes them, the merge never syncs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from syncd.abc import Associating, Connector
from syncd.config.settings import Config, DealSettings
from syncd.model import Change, FieldType, Value
from syncd.state.derived import DerivedRef, RefusedRef
from syncd.state.store import Store
from syncd.sync import killpoints
from syncd.sync.reconcile import LinkState, PairPlan, Rules, split_ids

PERSON, DEAL = "person", "deal"
ASSOCIATED_RULES = ("converted_lead", "account_contacts")
"""The attribution rules whose people the marketing deal does not already hold."""
HIDDEN = "~outcome:"
REVENUE = HIDDEN + "won_revenue"
LAST_OUTCOME = HIDDEN + "last_outcome"
LAST_AT = HIDDEN + "last_outcome_at"
"""Base key: when the outcome in ``LAST_OUTCOME`` happened (an older one does not replace it)."""


@dataclass(frozen=True, slots=True)
class Attributed:
    """One looped deal and the people its outcome was attributed to."""

    link_id: int
    people: Sequence[int]
    rule: str | None


def people_field(rules: Rules) -> str | None:
    """The deal field that holds its people (``refs`` targeting people), if mapped."""
    return next(
        (name for name, (target, many) in rules.refs().items() if target == PERSON and many),
        None,
    )


def associate(
    store: Store,
    marketing: Connector,
    rules: Rules,
    deals: Sequence[Attributed],
    people: Mapping[int, LinkState],
    now: datetime,
) -> tuple[list[DerivedRef], list[RefusedRef]]:
    """Add the attributed people to the marketing deals that lack them (one batch a
    1,000), kept in the store first (``Store.intend_refs``); the pairs added and those
    refused, for ``Store.finish_loop``. A deal looped again (after a crash, or a refusal
    of one of its pairs) sends its pairs again: adding one that exists changes nothing."""
    field = people_field(rules)
    wanted = [d for d in deals if d.rule in ASSOCIATED_RULES and d.people]
    if field is None or not wanted or not isinstance(marketing, Associating):
        return [], []
    links = store.link_states([d.link_id for d in wanted])
    refs: list[DerivedRef] = []
    for deal in wanted:
        link = links.get(deal.link_id)
        if link is None or link.marketing is None or link.tombstoned:
            continue
        held = set(split_ids(link.base.get(field)))
        for person in deal.people:
            state = people.get(person)
            if state is None or state.marketing is None or state.tombstoned:
                continue
            if str(person) in held:  # the deal has them already (from either system)
                continue
            refs.append(
                DerivedRef(
                    DEAL,
                    marketing.system,
                    link.marketing.kind,
                    link.marketing.id,
                    field,
                    person,
                    state.marketing.id,
                    deal.link_id,
                    str(deal.rule),
                )
            )
    if not refs:
        return [], []
    store.intend_refs(refs, now=now)
    refused: dict[tuple[str, str], tuple[str, str | None]] = {}
    for kind in sorted({r.kind for r in refs}):
        pairs = [(r.record_id, r.ref_id) for r in refs if r.kind == kind]
        refused.update(marketing.associate(kind, field, pairs))
    killpoints.reached("loop.associated")
    added = [r for r in refs if (r.record_id, r.ref_id) not in refused]
    letters = [RefusedRef(r, *refused[(r.record_id, r.ref_id)]) for r in refs if r not in added]
    return added, letters


def hidden_fields(config: Config) -> dict[str, tuple[str, FieldType]]:
    """The hidden person fields the marketing connector writes for the outcomes:
    name -> (property, type)."""
    deals: DealSettings = config.syncd.deals
    found: dict[str, tuple[str, FieldType]] = {}
    if deals.person_revenue_property:
        found[REVENUE] = (deals.person_revenue_property, "number")
    if deals.person_last_outcome_property:
        found[LAST_OUTCOME] = (deals.person_last_outcome_property, "string")
    return found


def config_key(name: str) -> list[str | int]:
    """Where in syncd.yaml the property of hidden field ``name`` is named."""
    prop = "person_revenue_property" if name == REVENUE else "person_last_outcome_property"
    return ["deals", prop]


@dataclass(frozen=True, slots=True)
class LastOutcome:
    """A person's latest closing deal in this chunk: what it was, and when."""

    value: str
    at: datetime


def won_revenue(
    store: Store, won_stages: Sequence[str], people: Sequence[int], field: str | None
) -> dict[int, Decimal]:
    """Per person of ``people``, the summed amounts of the won deals attributed to them
    (their contacts, else their attributed people: as ``syncd report`` attributes them)."""
    wanted = set(people)
    totals = dict.fromkeys(people, Decimal(0))
    for base in store.deal_bases(won_stages):
        for person in _deal_people(base, field):
            if person in wanted:
                totals[person] += _amount(base.get("amount"))
    return totals


def _deal_people(base: Mapping[str, Any], field: str | None) -> list[int]:
    for name in (field, "attributed_people"):
        ids = {int(i) for i in split_ids(base.get(name)) if i.isdigit()} if name else set()
        if ids:
            return sorted(ids)
    return []


def _amount(value: Any) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def number_text(value: Decimal) -> str:
    """A sum as a number property holds it: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def with_person_fields(
    plan: PairPlan,
    link: LinkState,
    fields: Mapping[str, Value],
    outcome: LastOutcome | None,
) -> PairPlan:
    """``plan`` also writing the hidden outcome ``fields`` that the person's marketing
    record does not hold yet (as syncd last wrote them: the base), in the same change as
    its stage when it moves. An outcome older than the one written stays unwritten."""
    base = dict(plan.base) if not plan.skip else dict(link.base)
    wanted = dict(fields)
    if outcome is not None:
        last = base.get(LAST_AT)
        if last is None or datetime.fromisoformat(str(last)) <= outcome.at:
            wanted[LAST_OUTCOME] = outcome.value
            base[LAST_AT] = outcome.at.isoformat()
    wanted = {k: v for k, v in wanted.items() if base.get(k) != v}
    if link.tombstoned or link.marketing is None or not wanted:
        return plan
    base.update(wanted)
    if plan.skip:
        plan = PairPlan(plan.key, link, None, None, base=base, stage=link.stage)
    change = plan.marketing_change
    if change is None:
        partner = link.crm.id if link.crm else None
        change = Change(
            "update", link.marketing.kind, plan.key, link.marketing.id, partner_id=partner
        )
    change = replace(change, fields={**change.fields, **wanted})
    return replace(plan, marketing_change=change, base=base)
