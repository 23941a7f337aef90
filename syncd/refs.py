"""Reference fields: a deal's company and people, held as link ids between the systems.

A connector reports a reference as its own native ids (a HubSpot deal's associated
contact ids, an opportunity's ``AccountId``). The merge compares links, not native ids:
``resolve`` turns native ids into the ids of the links that hold them, and ``to_native``
turns the merged link ids back into the ids of the system written to. A native id no
link holds yet (a person not synced) is left out, and is picked up the next time the
record changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from syncd.model import Change, Record, Value
from syncd.reconcile import MARKETING, PairPlan, Rules, join_ids, split_ids
from syncd.state.store import Store

CRM = "crm"


def _role(record: Record, rules: Rules) -> str:
    return MARKETING if record.ref.system == rules.marketing else CRM


def resolve(store: Store, rules: Rules, records: Sequence[Record]) -> list[Record]:
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
    found = {
        key: store.link_ids(key[0], key[1], sorted(ids)) for key, ids in wanted.items() if ids
    }
    resolved = []
    for record in records:
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


def to_native(store: Store, rules: Rules, plans: Iterable[PairPlan]) -> dict[str, list[Change]]:
    """Each side's changes with reference fields as that side's native ids.

    A ``refs`` change carries only what the side lacks (associations are added, never
    replaced); a reference whose link lacks that side is left out.
    """
    refs = rules.refs()
    plans = list(plans)
    sides = {
        MARKETING: [(p, p.marketing_change, p.marketing) for p in plans if p.marketing_change],
        CRM: [(p, p.crm_change, p.crm) for p in plans if p.crm_change],
    }
    result: dict[str, list[Change]] = {}
    for role, items in sides.items():
        link_ids = [
            int(i)
            for _, change, _ in items
            for name in refs
            if change is not None
            for i in split_ids(change.fields.get(name))
        ]
        natives = store.native_ids(role, link_ids) if link_ids else {}
        changes = []
        for plan, change, record in items:
            assert change is not None
            if not refs or not any(name in change.fields for name in refs):
                changes.append(change)
                continue
            fields = dict(change.fields)
            for name, (_, many) in refs.items():
                if name not in fields:
                    continue
                held = _held(record, plan, name) if many else None
                ids = [
                    natives[int(i)]
                    for i in split_ids(fields[name])
                    if int(i) in natives and i not in held_ids(held)
                ]
                value: Value = ",".join(ids) if many else (ids[0] if ids else None)
                if value:
                    fields[name] = value
                else:
                    del fields[name]
            changes.append(replace(change, fields=fields))
        result[role] = changes
    return result


def _held(record: Record | None, plan: PairPlan, name: str) -> Value:
    """The side's current value of ``name``: as read this cycle, else as last synced."""
    if record is not None and name in record.fields:
        return record.fields[name]
    return plan.link.base.get(name)


def held_ids(value: Value) -> set[str]:
    return set(split_ids(value))


def people_of(base: Mapping[str, Value]) -> list[int]:
    """The person link ids a deal's base names (its contacts)."""
    return [int(i) for i in split_ids(base.get("contacts"))]
