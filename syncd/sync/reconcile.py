"""The three-way merge: pure functions from records, links and bases to a plan.

No I/O and no clock. For one linked pair, each canonical field compares the two sides
with the base (the value as last synced): a field changed on one side flows to the
other; a field changed on both sides to different values is a conflict decided by the
field's rule. A side's record that did not change this cycle stands at the base.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from syncd.config.settings import FieldRule
from syncd.model import Change, Record, RecordRef, Value
from syncd.sync.vocabulary import IGNORED, Vocabulary
from syncd.sync.vocabulary import UNMAPPED as NOT_MAPPED

MARKETING, CRM = "marketing", "crm"
UNMAPPED = "?"
"""The base stage of a pair one of whose sides holds a stage outside the vocabulary."""
HELD_BACK = (IGNORED + ":", NOT_MAPPED + ":")
"""How the skip reason of a record held back by its stage starts (journaled as ignored)."""
KEPT_STAGE = {MARKETING: "~unwritten_stage_marketing", CRM: "~unwritten_stage_crm"}
"""Base keys: the native stage a side held when the pair's stage could not be written to
it (a converted status on a lead). That stale value is no move when read again."""


def stage_text(native: Mapping[str, str]) -> str:
    """A native stage as one comparable text (for ``KEPT_STAGE``)."""
    return "; ".join(f"{k}={v}" for k, v in sorted(native.items()))


@dataclass(frozen=True, slots=True)
class Rules:
    """Everything the merge needs to know about configuration."""

    fields: Mapping[str, FieldRule]
    stage_rule: FieldRule | None
    vocabulary: Vocabulary | None
    marketing: str
    crm: str
    marketing_create_kind: str
    crm_create_kind: str
    obj: str = "person"
    match_field: str | None = "email"
    """Unlinked records with equal values of this field pair up (email, domain)."""
    reason_field: str | None = None
    """The field that says why a record entered a recycle stage."""
    snapshot_stage: str | None = None
    """A move into this stage (the hand-off to sales) keeps ``snapshot_fields``' merged
    values with it: what marketing knew then (``syncd.report.quality``)."""
    snapshot_fields: tuple[str, ...] = ()
    deferred: frozenset[str] = frozenset()
    """Systems whose records learn a created partner's id only with the next update syncd
    makes to them (``partner_id_write_back: with_next_update``): a record of theirs that
    names no partner is not written for that alone, and still settles."""

    def refs(self) -> dict[str, tuple[str, bool]]:
        """Reference fields: name -> (target object, holds several)."""
        return {
            name: (rule.target, rule.type == "refs")
            for name, rule in self.fields.items()
            if rule.type in ("ref", "refs") and rule.target
        }


@dataclass(frozen=True, slots=True)
class LinkState:
    """A stored link and its base, as the merge sees it."""

    id: int | None
    marketing: RecordRef | None
    crm: RecordRef | None
    base: Mapping[str, Value] = field(default_factory=dict)
    stage: str | None = None
    tombstoned: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    from_stage: str | None
    to_stage: str
    at: datetime
    source: RecordRef
    reason: str | None = None
    snapshot: tuple[tuple[str, Value], ...] | None = None
    """The values of ``Rules.snapshot_fields`` at a move into ``Rules.snapshot_stage``."""


@dataclass(frozen=True, slots=True)
class Conflict:
    field: str
    rule: str
    marketing: Value
    crm: Value
    winner: str


@dataclass(frozen=True, slots=True)
class PairPlan:
    """What to write for one pair and what to store once the writes landed."""

    key: str
    link: LinkState
    marketing: Record | None
    crm: Record | None
    marketing_change: Change | None = None
    crm_change: Change | None = None
    base: Mapping[str, Value] = field(default_factory=dict)
    stage: str | None = None
    transitions: tuple[Transition, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    notes: tuple[str, ...] = ()
    skip: str | None = None
    """Why nothing is written (tombstoned link, deleted record, duplicate)."""

    @property
    def changes(self) -> list[Change]:
        return [c for c in (self.marketing_change, self.crm_change) if c is not None]


def _flows(rule: FieldRule, to: str) -> bool:
    return rule.direction == "both" or rule.direction == ("to_crm" if to == CRM else "to_marketing")


def _needs_write(value: Value, held: Value, rule: FieldRule, to: str, creating: bool) -> bool:
    """Whether the merged ``value`` must be written to the side holding ``held``."""
    if not _flows(rule, to) or (value is None and (creating or not rule.blank_overwrites)):
        return False
    return creating or value != held


def _side_value(record: Record | None, name: str, base: Mapping[str, Value]) -> tuple[Value, bool]:
    """The side's value and whether it changed against the base."""
    if record is None or name not in record.fields:
        return base.get(name), False
    value = record.fields[name]
    return value, value != base.get(name)


def _decide(
    name: str,
    rule: FieldRule,
    base: Value,
    m: tuple[Value, bool],
    c: tuple[Value, bool],
    m_at: datetime | None,
    c_at: datetime | None,
) -> tuple[Value, Conflict | None]:
    (m_value, m_changed), (c_value, c_changed) = m, c
    # A change flows only in the field's direction, and a blank only where allowed.
    m_changed = m_changed and _flows(rule, CRM) and (m_value is not None or rule.blank_overwrites)
    c_changed = (
        c_changed and _flows(rule, MARKETING) and (c_value is not None or rule.blank_overwrites)
    )
    if m_changed and c_changed and m_value != c_value:
        if rule.conflict == "crm_wins":
            winner = CRM
        elif rule.conflict == "marketing_wins":
            winner = MARKETING
        else:
            winner = MARKETING if (m_at and c_at and m_at > c_at) else CRM
        value = m_value if winner == MARKETING else c_value
        return value, Conflict(name, rule.conflict, m_value, c_value, winner)
    if m_changed:
        return m_value, None
    if c_changed:
        return c_value, None
    return base, None


def _side_stage(
    record: Record | None, system: str, rules: Rules, current: str | None, kept: Value = None
) -> tuple[str | None, bool]:
    """What the side's stage reads as and whether that is a move; a value the side kept
    because the pair's stage could not be written to it (``kept``) says nothing."""
    if record is None or rules.vocabulary is None or not record.stage:
        return current, False
    if kept is not None and stage_text(record.stage) == kept:
        return current, False
    stage = rules.vocabulary.to_canonical(system, record.stage, current)
    return stage, stage is not None and stage != current


def plan_pair(
    key: str, link: LinkState, marketing: Record | None, crm: Record | None, rules: Rules
) -> PairPlan:
    """Merge one pair: the writes to each side and the new base."""
    for record in (marketing, crm):
        if record is not None and record.deleted:
            return PairPlan(key, link, marketing, crm, skip=f"deleted in {record.ref.system}")
    if link.tombstoned:
        return PairPlan(key, link, marketing, crm, skip="link tombstoned")
    held = _held_back(link, marketing, crm, rules)
    if held:
        return PairPlan(key, link, marketing, crm, skip=held)
    base = dict(link.base)
    m_at = marketing.modified_at if marketing else None
    c_at = crm.modified_at if crm else None
    # What syncd derived and keeps in the base (a deal's attributed people) stays.
    merged: dict[str, Value] = {k: v for k, v in base.items() if k not in rules.fields}
    conflicts: list[Conflict] = []
    to_marketing: dict[str, Value] = {}
    to_crm: dict[str, Value] = {}
    for name, rule in rules.fields.items():
        m = _side_value(marketing, name, base)
        c = _side_value(crm, name, base)
        if rule.type == "refs":
            value, conflict = union(m[0], c[0]), None
        else:
            value, conflict = _decide(name, rule, base.get(name), m, c, m_at, c_at)
        if conflict:
            conflicts.append(conflict)
        merged[name] = value
        if _needs_write(value, m[0], rule, MARKETING, marketing is None and not link.marketing):
            to_marketing[name] = value
        if _needs_write(value, c[0], rule, CRM, crm is None and not link.crm):
            to_crm[name] = value

    stage, transitions, notes = _merge_stage(link, marketing, crm, rules)
    m_stage: dict[str, str] = {}
    c_stage: dict[str, str] = {}
    unmapped = [r for r in (marketing, crm) if r is not None and _unmapped_stage(r, rules)]
    # Once a side held a stage outside the vocabulary, a side read alone cannot tell
    # whether that is still so: stages stay alone until both sides are read together.
    blind = link.stage == UNMAPPED and (marketing is None or crm is None)
    if unmapped or blind:
        stage, transitions = UNMAPPED, []
        notes.extend(
            f"stage {dict(r.stage)} of {r.ref} is {_outside(r, rules)}: stages left alone"
            for r in unmapped
        )
    if (
        stage is not None
        and stage != UNMAPPED
        and rules.vocabulary is not None
        and rules.stage_rule is not None
    ):
        m_native = rules.vocabulary.to_native(rules.marketing, stage)
        c_native = rules.vocabulary.to_native(rules.crm, stage)
        m_reads = _side_stage(marketing, rules.marketing, rules, stage, _kept(link, MARKETING))[0]
        c_reads = _side_stage(crm, rules.crm, rules, stage, _kept(link, CRM))[0]
        if _flows(rules.stage_rule, MARKETING) and _stage_differs(
            marketing, link.marketing, m_reads, link.stage, stage
        ):
            m_stage = m_native
        if _flows(rules.stage_rule, CRM) and _stage_differs(
            crm, link.crm, c_reads, link.stage, stage
        ):
            c_stage = c_native

    transitions = _with_snapshot(_with_reasons(transitions, merged, rules), merged, rules)
    m_ref = link.marketing or (marketing.ref if marketing else None)
    c_ref = link.crm or (crm.ref if crm else None)
    m_change = _side_change(
        key, m_ref, c_ref, rules.marketing_create_kind, to_marketing, m_stage, marketing, rules
    )
    c_change = _side_change(key, c_ref, m_ref, rules.crm_create_kind, to_crm, c_stage, crm, rules)
    return PairPlan(
        key,
        link,
        marketing,
        crm,
        m_change,
        c_change,
        merged,
        stage,
        tuple(transitions),
        tuple(conflicts),
        tuple(notes),
    )


def _with_reasons(
    transitions: list[Transition], merged: Mapping[str, Value], rules: Rules
) -> list[Transition]:
    """A move into a recycle stage carries the merged reason field's value, if any."""
    reason = merged.get(rules.reason_field) if rules.reason_field else None
    vocabulary = rules.vocabulary
    if not reason or vocabulary is None:
        return transitions
    return [
        replace(t, reason=reason) if vocabulary.is_recycle(t.to_stage) else t for t in transitions
    ]


def _with_snapshot(
    transitions: list[Transition], merged: Mapping[str, Value], rules: Rules
) -> list[Transition]:
    """A move into the hand-off stage keeps the score, grade and source it was made with,
    so that a later change of them does not rewrite what sales was handed."""
    if rules.snapshot_stage is None or not rules.snapshot_fields:
        return transitions
    snapshot = tuple((name, merged.get(name)) for name in rules.snapshot_fields)
    return [
        replace(t, snapshot=snapshot) if t.to_stage == rules.snapshot_stage else t
        for t in transitions
    ]


def _stage_differs(
    record: Record | None,
    ref: RecordRef | None,
    reads_as: str | None,
    link_stage: str | None,
    stage: str,
) -> bool:
    """Whether a side needs ``stage`` written: it is new, or does not hold it already.

    ``reads_as`` is what the side's record means read in the light of ``stage``: a
    HubSpot lead whose lead status is NEW already is a ``lead``, whatever else the
    stage's native values would clear.
    """
    if ref is None:
        return True
    if record is None or not record.stage:
        return link_stage != stage
    return reads_as != stage


def _side_change(
    key: str,
    own: RecordRef | None,
    partner: RecordRef | None,
    create_kind: str,
    fields: dict[str, Value],
    stage: dict[str, str],
    record: Record | None,
    rules: Rules,
) -> Change | None:
    """The write to one side: a create keyed on its partner's id, or an update (which
    always carries the partner's id, so that a deferred one rides along)."""
    if own is None:
        if partner is None:
            return None
        return Change("create", create_kind, key, None, fields, stage, partner_id=partner.id)
    if fields or stage or partner_missing(rules, record, partner.id if partner else None):
        partner_id = partner.id if partner else None
        return Change("update", own.kind, key, own.id, fields, stage, partner_id=partner_id)
    return None


def _stage_class(record: Record, rules: Rules) -> str | None:
    """What the record's native stage is to the vocabulary; None: it holds none."""
    if rules.vocabulary is None or not any(record.stage.values()):
        return None
    system = rules.marketing if record.ref.system == rules.marketing else rules.crm
    return rules.vocabulary.classify(system, record.stage)


def _unmapped_stage(record: Record, rules: Rules) -> bool:
    """The record holds a native stage that is ignored or that the vocabulary does not
    know (never overwrite it)."""
    return _stage_class(record, rules) in (IGNORED, NOT_MAPPED)


def _outside(record: Record, rules: Rules) -> str:
    if _stage_class(record, rules) == IGNORED:
        return "ignored in stages.yaml"
    return "in no stage of the vocabulary"


def _kept(link: LinkState, role: str) -> Value:
    return link.base.get(KEPT_STAGE[role])


def _held_back(
    link: LinkState, marketing: Record | None, crm: Record | None, rules: Rules
) -> str | None:
    """Why a record is not created on the other side: its stage is ignored or unmapped.

    Only a record with no partner yet is held back; a linked one keeps its fields
    syncing, its stage left alone (see ``plan_pair``).
    """
    for record, partner_ref, partner, other in (
        (marketing, link.crm, crm, rules.crm),
        (crm, link.marketing, marketing, rules.marketing),
    ):
        if record is None or partner_ref is not None or partner is not None:
            continue
        kind = _stage_class(record, rules)
        if kind in (IGNORED, NOT_MAPPED):
            return (
                f"{kind}: stage {dict(record.stage)} of {record.ref} is {_outside(record, rules)}:"
                f" not created in {other}"
            )
    return None


def partner_missing(rules: Rules, record: Record | None, partner_id: str | None) -> bool:
    """The record (read this cycle) must be told ``partner_id`` now: it names another
    record, or names none and its system is not one that waits for the next update
    (``Rules.deferred``)."""
    if record is None or partner_id is None or record.partner_id == partner_id:
        return False
    return bool(record.partner_id) or record.ref.system not in rules.deferred


def _merge_stage(
    link: LinkState, marketing: Record | None, crm: Record | None, rules: Rules
) -> tuple[str | None, list[Transition], list[str]]:
    current = None if link.stage == UNMAPPED else link.stage
    vocabulary, rule = rules.vocabulary, rules.stage_rule
    if vocabulary is None or rule is None:
        return current, [], []
    m_stage, m_changed = _side_stage(
        marketing, rules.marketing, rules, current, _kept(link, MARKETING)
    )
    # A new pair reads the CRM's values in the light of the marketing stage, so that a
    # native value both stages share ("Open - Not Contacted") is no conflict.
    hint = current if current is not None or not m_changed else m_stage
    c_stage, c_changed = _side_stage(crm, rules.crm, rules, hint, _kept(link, CRM))
    if link.marketing is None and marketing is None:
        m_changed = False
    if link.crm is None and crm is None:
        c_changed = False
    m_changed = m_changed and _flows(rule, CRM)
    c_changed = c_changed and _flows(rule, MARKETING)
    notes: list[str] = []
    candidates: list[tuple[str, Record]] = []
    for stage, changed, record in ((m_stage, m_changed, marketing), (c_stage, c_changed, crm)):
        if not changed or stage is None or record is None:
            continue
        if vocabulary.allows(current, stage):
            candidates.append((stage, record))
        else:
            notes.append(f"backward move {current} -> {stage} from {record.ref} refused")
    if not candidates:
        return current, [], notes
    if len(candidates) == 2 and candidates[0][0] != candidates[1][0]:
        (ms, mr), (cs, cr) = candidates
        if rule.conflict == "crm_wins":
            chosen = candidates[1]
        elif rule.conflict == "marketing_wins":
            chosen = candidates[0]
        else:
            chosen = candidates[0] if mr.modified_at > cr.modified_at else candidates[1]
        notes.append(f"stage conflict {ms} vs {cs}: {chosen[0]} by {rule.conflict}")
    else:
        chosen = candidates[-1] if len(candidates) == 2 else candidates[0]
    stage, record = chosen
    return stage, [Transition(current, stage, record.modified_at, record.ref)], notes


def split_ids(value: Value) -> list[str]:
    """The ids of a ``refs`` value ("3,17")."""
    return [part for part in (value or "").split(",") if part]


def join_ids(ids: Iterable[str]) -> Value:
    """A ``refs`` value: unique ids in ascending (numeric where possible) order, or None."""
    unique = set(ids)
    ordered = sorted(unique, key=lambda i: (len(i), i) if i.isdigit() else (1 << 30, i))
    return ",".join(ordered) or None


def union(*values: Value) -> Value:
    """Associations are only ever added: a ``refs`` field merges as the union of its sides."""
    return join_ids(i for value in values for i in split_ids(value))


def same_base(a: Mapping[str, Value], b: Mapping[str, Value]) -> bool:
    """Two bases hold the same values (a field missing from one is blank)."""
    return all(a.get(name) == b.get(name) for name in a.keys() | b.keys())


def settles(rules: Rules, record: Record, link: LinkState | None, role: str) -> bool:
    """``record`` (read alone, by ``role``'s side) changes nothing of its ``link``: the
    base already holds all it says (mostly syncd's own writes read back, and records
    read again by a lookback or a sweep). A deleted record settles once its link is
    tombstoned."""
    if link is None or record.converted:
        return False
    if record.deleted:
        return link.tombstoned
    if at_base(record, link, rules):
        return True
    m, c = (record, None) if role == MARKETING else (None, record)
    plan = plan_pair("settled?", link, m, c, rules)
    if plan.skip:
        return plan.skip == "link tombstoned"
    return (
        not plan.changes
        and not plan.transitions
        and plan.stage == link.stage
        and same_base(plan.base, link.base)
    )


def at_base(record: Record, link: LinkState, rules: Rules) -> bool:
    """A quick, sufficient test that ``record`` (read alone) changes nothing of ``link``.

    True only where ``plan_pair`` would plan no write and keep base and stage: every
    field it holds equals the base, its stage reads as the base stage, and it holds its
    partner's id (or none, where its system waits to be told: ``Rules.deferred``).
    False means "not known": run the merge.
    """
    if record.deleted or link.tombstoned:
        return False
    marketing_side = record.ref.system == rules.marketing
    partner = link.crm if marketing_side else link.marketing
    if partner is None or partner_missing(rules, record, partner.id):
        return False
    base = link.base
    for name in rules.fields:
        if name in record.fields and record.fields[name] != base.get(name):
            return False
    if rules.vocabulary is not None and any(record.stage.values()):
        system = rules.marketing if marketing_side else rules.crm
        kept = _kept(link, MARKETING if marketing_side else CRM)
        read = rules.vocabulary.to_canonical(system, record.stage, link.stage)
        if (read is None or read != link.stage) and stage_text(record.stage) != kept:
            return False
    return True


def pair_group(
    marketing: Sequence[Record], crm: Sequence[Record], linked: LinkState | None
) -> tuple[list[tuple[Record | None, Record | None]], list[Record]]:
    """Pair unlinked records that matched each other (partner id or email).

    The oldest record of each side pairs; the others are duplicates, never created.
    When a stored link already holds the email, every record is a duplicate of it,
    unless the link lacks that side (then the record completes it).
    """
    ms = sorted(marketing, key=lambda r: (r.modified_at, r.ref.id))
    cs = sorted(crm, key=lambda r: (r.modified_at, r.ref.id))
    if linked is not None:
        return [], [*ms, *cs]
    first_m = ms[0] if ms else None
    first_c = cs[0] if cs else None
    return [(first_m, first_c)], [*ms[1:], *cs[1:]]
