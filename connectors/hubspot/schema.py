"""What a portal's properties must offer the configured mapping (``schema_problems``).

Read from ``GET /crm/v3/properties/{objectType}``: each property's ``type``,
``hasUniqueValue`` and ``modificationMetadata.readOnlyValue``
(https://developers.hubspot.com/docs/api-reference/latest/crm/properties/update-property
shows the answer's shape; https://developers.hubspot.com/docs/api/crm/properties lists
the ``type`` values: string, number, date, datetime, enumeration, bool, phone_number).

Which property types can hold a canonical field's ``type`` (``COMPATIBLE``):

    string   string, enumeration, phone_number, bool   (text syncd writes as it reads it)
    email    string                                    (HubSpot's ``email`` is a string)
    domain   string
    number   number
    date     date, datetime                            (syncd writes YYYY-MM-DD)

An enumeration holding a string field is allowed: its options are checked apart, per
value (``values`` pairs in fields.yaml, stages against the live picklists).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from connectors.hubspot.mapping import LINK, ObjectMapping
from syncd.model import SchemaProblem

COMPATIBLE: Mapping[str, frozenset[str]] = {
    "string": frozenset({"string", "enumeration", "phone_number", "bool"}),
    "email": frozenset({"string"}),
    "domain": frozenset({"string"}),
    "number": frozenset({"number"}),
    "date": frozenset({"date", "datetime"}),
}
"""Canonical field type -> the HubSpot property types that can hold it."""


def problems(
    mapping: ObjectMapping, properties: Iterable[Mapping[str, Any]], written: Collection[str]
) -> list[SchemaProblem]:
    """The mapping's problems against one object type's live property definitions;
    ``written``: the canonical fields syncd writes to HubSpot."""
    kind = mapping.kind
    found = {str(p.get("name")): p for p in properties}
    result: list[SchemaProblem] = []
    for canonical, name in mapping.fields.items():
        if name.startswith(LINK):
            continue
        prop = found.get(name)
        if prop is None:
            result.append(
                SchemaProblem(
                    kind,
                    canonical,
                    f"HubSpot {kind} have no property {name!r}: fix the name, or create the"
                    f" property in HubSpot (Settings > Properties > {kind})",
                )
            )
            continue
        wanted = mapping.types.get(canonical, "string")
        actual = str(prop.get("type"))
        allowed = COMPATIBLE.get(wanted, COMPATIBLE["string"])
        if actual not in allowed:
            result.append(
                SchemaProblem(
                    kind,
                    canonical,
                    f"HubSpot {kind} property {name!r} is of type {actual}, which cannot hold"
                    f" a {wanted} field (needs {' or '.join(sorted(allowed))}): map another"
                    " property or change the field's type",
                )
            )
        if canonical in written and _read_only(prop):
            result.append(
                SchemaProblem(
                    kind,
                    canonical,
                    f"HubSpot {kind} property {name!r} is read-only (readOnlyValue) but syncd"
                    " writes it: map a writable property or change the field's direction",
                )
            )
    result.extend(_partner_problems(mapping, found))
    return result


def _partner_problems(
    mapping: ObjectMapping, found: Mapping[str, Mapping[str, Any]]
) -> list[SchemaProblem]:
    kind, name = mapping.kind, mapping.partner_field
    if not name:
        return [
            SchemaProblem(
                kind, None, f"no partner-id property is configured for HubSpot {kind}: name one"
            )
        ]
    prop = found.get(name)
    create = (
        f"create a single-line text property {name!r} on {kind} with 'Require unique values'"
        " (hasUniqueValue) set"
    )
    if prop is None:
        return [SchemaProblem(kind, None, f"HubSpot {kind} have no property {name!r}: {create}")]
    result = []
    if not prop.get("hasUniqueValue"):
        result.append(
            SchemaProblem(
                kind,
                None,
                f"HubSpot {kind} property {name!r} does not require unique values"
                " (hasUniqueValue false), so upserts on it are refused: "
                + create.replace("create", "create instead", 1),
            )
        )
    if _read_only(prop):
        result.append(
            SchemaProblem(kind, None, f"HubSpot {kind} property {name!r} is read-only: {create}")
        )
    return result


def _read_only(prop: Mapping[str, Any]) -> bool:
    return bool((prop.get("modificationMetadata") or {}).get("readOnlyValue"))
