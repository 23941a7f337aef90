"""Between the systems' values and the canonical ones the merge compares.

References (a deal's company and people): a connector reports its own native ids (a
HubSpot deal's associated contact ids, an opportunity's ``AccountId``); the merge
compares links. ``resolve`` turns native ids into the ids of the links that hold them,
``to_native`` turns merged link ids back into the ids of the system written to. A
native id no link holds yet (a person not synced) is left out, and is picked up the
next time the record changes.

Mapped values (``values:`` of a field in fields.yaml, e.g. industries or owners): the
canonical value is the CRM's; a marketing value is read as its CRM counterpart and
written back as itself. A value the list does not name is not synced either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from syncd.abc import Connector
from syncd.model import Change, Record, RecordRef, Value
from syncd.state.store import Store
from syncd.sync.reconcile import (
    CRM,
    KEPT_STAGE,
    MARKETING,
    PairPlan,
    Rules,
    join_ids,
    partner_missing,
    split_ids,
    stage_text,
)


def _role(record: Record, rules: Rules) -> str:
    return MARKETING if record.ref.system == rules.marketing else CRM


def resolve(store: Store, rules: Rules, records: Sequence[Record]) -> list[Record]:
    """``records`` with canonical values: mapped values, references as link ids, less
    the references syncd added on its own (``_without_derived``)."""
    return _without_derived(store, rules, _resolve_refs(store, rules, _map_values(rules, records)))


def _without_derived(store: Store, rules: Rules, records: list[Record]) -> list[Record]:
    """``records`` without the references syncd added to the marketing system on its own
    (a won deal's attributed people, ``syncd.sync.outcomes``), unless the link's base holds
    them (the CRM holds them too). So they read as the marketing side's own change neither
    in a scan nor in the association sweep, and the merge never carries them to the CRM
    (a contact role sales did not make); since associations are never removed, none is
    taken away either. One query per chunk holding references of several records."""
    many = [name for name, (_, several) in rules.refs().items() if several]
    mine = [
        r.ref.id
        for r in records
        if r.ref.system == rules.marketing and any(r.fields.get(n) for n in many)
    ]
    derived = store.derived_refs(rules.obj, rules.marketing, mine) if mine else {}
    if not derived:
        return records
    links = store.links_for(rules.obj, MARKETING, list(derived))
    result = []
    for record in records:
        added = derived.get(record.ref.id) if record.ref.system == rules.marketing else None
        if not added:
            result.append(record)
            continue
        link = links.get(record.ref.id)
        base = link.base if link is not None else {}
        fields = dict(record.fields)
        for name, ids in added.items():
            if fields.get(name) is None:
                continue
            dropped = {str(i) for i in ids} - set(split_ids(base.get(name)))
            fields[name] = join_ids([i for i in split_ids(fields[name]) if i not in dropped])
        result.append(replace(record, fields=fields))
    return result


def _value_maps(rules: Rules) -> dict[str, list[dict[str, str]]]:
    return {name: rule.values for name, rule in rules.fields.items() if rule.values}


def _map_values(rules: Rules, records: Sequence[Record]) -> list[Record]:
    maps = _value_maps(rules)
    if not maps:
        return list(records)
    mapped = []
    for record in records:
        if not any(record.fields.get(name) is not None for name in maps):
            mapped.append(record)
            continue
        fields = dict(record.fields)
        for name, entries in maps.items():
            value = fields.get(name)
            if value is None:
                continue
            canonical = next(
                (e.get(rules.crm) for e in entries if e.get(record.ref.system) == value), None
            )
            if canonical is None:
                del fields[name]  # not in the list: not synced
            else:
                fields[name] = canonical
        mapped.append(replace(record, fields=fields))
    return mapped


def _resolve_refs(store: Store, rules: Rules, records: Sequence[Record]) -> list[Record]:
    """``records`` with their reference fields as link ids (one query per target and side)."""
    refs = rules.refs()
    if not refs or not records:
        return list(records)
    wanted: dict[tuple[str, str], set[str]] = {}
    for record in records:
        for name, (target, _) in refs.items():
            ids = split_ids(record.fields.get(name))
            if ids:
                wanted.setdefault((target, _role(record, rules)), set()).update(ids)
    found = {key: store.link_ids(key[0], key[1], sorted(ids)) for key, ids in wanted.items() if ids}
    resolved = []
    for record in records:
        if not any(record.fields.get(name) is not None for name in refs):
            resolved.append(record)
            continue
        fields = dict(record.fields)
        for name, (target, many) in refs.items():
            if name not in fields or fields[name] is None:
                continue
            links = found.get((target, _role(record, rules)), {})
            ids = [str(links[i]) for i in split_ids(fields[name]) if i in links]
            if many:
                fields[name] = join_ids(ids)
            elif ids:
                fields[name] = ids[0]
            else:  # the one it names is not linked: the side says nothing about it yet
                del fields[name]
        resolved.append(replace(record, fields=fields))
    return resolved


def to_native(
    store: Store, rules: Rules, plans: Sequence[PairPlan], targets: Mapping[str, Connector]
) -> list[PairPlan]:
    """The plans with each change in its side's native terms, and only what it can hold.

    A ``refs`` change carries only what the side lacks (associations are added, never
    replaced). A reference whose link lacks that side, or whose record the side cannot
    point at (a contact role cannot name a lead), is left out, as are stage fields the
    record's kind does not have (a Salesforce contact has no lead status); a change
    left with nothing to write is dropped, so that it is not sent for nothing.
    """
    refs = rules.refs()
    maps = _value_maps(rules)
    wanted = {
        role: [
            int(i)
            for plan in plans
            if (change := _change(plan, role)) is not None
            for name in refs
            for i in split_ids(change.fields.get(name))
        ]
        for role in (MARKETING, CRM)
    }
    natives = {role: store.native_ids(role, ids) if ids else {} for role, ids in wanted.items()}
    result = []
    for plan in plans:
        sides = {}
        for role in (MARKETING, CRM):
            change = _change(plan, role)
            if change is not None and any(name in change.fields for name in (*refs, *maps)):
                system = rules.marketing if role == MARKETING else rules.crm
                change = _translate(rules, plan, role, change, refs, natives[role], targets[role])
                change = change and _unmap(rules, plan, role, change, maps, system)
            if change is not None and change.stage:
                change, note = _holdable_stage(rules, plan, role, change, targets[role])
                plan = _keep_unwritten(rules, plan, role, note, change)
            sides[role] = change
        result.append(replace(plan, marketing_change=sides[MARKETING], crm_change=sides[CRM]))
    return result


def _holdable_stage(
    rules: Rules, plan: PairPlan, role: str, change: Change, target: Connector
) -> tuple[Change | None, str | None]:
    """The change without the stage fields its kind cannot be given, and why, if a value
    was one the system must never be given (a converted status on a lead)."""
    held = target.stage_fields(change.kind)
    barred = target.unwritable_stages(change.kind) if held else {}
    stage = {f: v for f, v in change.stage.items() if f in held and v not in barred.get(f, ())}
    if stage == change.stage:
        return change, None
    refused = {f: v for f, v in change.stage.items() if f in held and f not in stage}
    note = (
        f"{change.kind} cannot be given {refused}: stage {plan.stage} not written to it"
        if refused
        else None
    )
    record = plan.marketing if role == MARKETING else plan.crm
    return _unless_empty(rules, record, replace(change, stage=stage)), note


def _keep_unwritten(
    rules: Rules, plan: PairPlan, role: str, note: str | None, change: Change | None
) -> PairPlan:
    """Remember in the base what a side holds when the pair's stage could not be written
    to it (``note`` says why), so that its stale value is not read as a move later;
    forget it once a stage is written to that side."""
    key = KEPT_STAGE[role]
    if note is None:
        if change is not None and change.stage and key in plan.base:
            base = {k: v for k, v in plan.base.items() if k != key}
            return replace(plan, base=base)
        return plan
    record = plan.marketing if role == MARKETING else plan.crm
    system = rules.marketing if role == MARKETING else rules.crm
    held: Value = plan.base.get(key)
    if record is not None and record.stage:
        held = stage_text(record.stage)
    elif held is None and rules.vocabulary and plan.link.stage in rules.vocabulary.names:
        # not read this cycle (a closed-loop move): it holds what syncd last gave it
        held = stage_text(rules.vocabulary.to_native(system, str(plan.link.stage)))
    base = {**plan.base, key: held} if held else dict(plan.base)
    return replace(plan, notes=(*plan.notes, note), base=base)


def _change(plan: PairPlan, role: str) -> Change | None:
    return plan.marketing_change if role == MARKETING else plan.crm_change


def _translate(
    rules: Rules,
    plan: PairPlan,
    role: str,
    change: Change,
    refs: Mapping[str, tuple[str, bool]],
    natives: Mapping[int, RecordRef],
    target: Connector,
) -> Change | None:
    record = plan.marketing if role == MARKETING else plan.crm
    fields = dict(change.fields)
    for name, (_, many) in refs.items():
        if name not in fields:
            continue
        allowed = target.refers_to(change.kind, name)
        held = held_ids(_held(record, plan, name)) if many else set()
        ids = [
            natives[int(i)].id
            for i in split_ids(fields[name])
            if int(i) in natives
            and i not in held
            and (allowed is None or natives[int(i)].kind in allowed)
        ]
        if ids:
            fields[name] = ",".join(ids) if many else ids[0]
        else:
            del fields[name]
    return _unless_empty(rules, record, replace(change, fields=fields))


def _unmap(
    rules: Rules,
    plan: PairPlan,
    role: str,
    change: Change,
    maps: Mapping[str, list[dict[str, str]]],
    system: str,
) -> Change | None:
    """Mapped values as the system written to names them (the CRM's are canonical)."""
    fields = dict(change.fields)
    for name, entries in maps.items():
        value = fields.get(name)
        if value is None:
            continue
        native = next((e.get(system) for e in entries if e.get(rules.crm) == value), None)
        if native is None:
            del fields[name]
        else:
            fields[name] = native
    record = plan.marketing if role == MARKETING else plan.crm
    return _unless_empty(rules, record, replace(change, fields=fields))


def _unless_empty(rules: Rules, record: Record | None, change: Change) -> Change | None:
    """None for an update left with nothing to write (its record knows its partner, or
    learns it with a later update: ``Rules.deferred``)."""
    missing = partner_missing(rules, record, change.partner_id)
    if change.op == "update" and not change.fields and not change.stage and not missing:
        return None
    return change


def _held(record: Record | None, plan: PairPlan, name: str) -> Value:
    """The side's current value of ``name``: as read this cycle, else as last synced."""
    if record is not None and name in record.fields:
        return record.fields[name]
    return plan.link.base.get(name)


def held_ids(value: Value) -> set[str]:
    return set(split_ids(value))
