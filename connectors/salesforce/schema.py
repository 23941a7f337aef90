"""What an org's describe must offer the configured mapping (``schema_problems``).

``GET sobjects/{Object}/describe`` answers for the user who holds the token: a field the
integration user cannot see is absent, and ``createable`` / ``updateable`` already
include field-level security ("describe answers per user"). So a mapped field syncd
writes must be createable and updateable; the partner-id field must exist, be an
External ID (``externalId``), ``unique`` and writable, or an upsert by it can duplicate
or fail (sObject Collections upsert keys on it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from syncd.model import SchemaProblem

ROLES_PREFIX = "@"


def problems(
    kind: str,
    describe: Mapping[str, Any],
    mapped: Mapping[str, str],
    written: Collection[str],
    partner: str | None,
) -> list[SchemaProblem]:
    """The problems of one kind: ``mapped`` canonical -> native field, ``written`` the
    canonical fields syncd writes to Salesforce, ``partner`` the partner-id field."""
    fields = {str(f.get("name")): f for f in describe.get("fields") or []}
    result: list[SchemaProblem] = []
    for canonical, native in mapped.items():
        if native.startswith(ROLES_PREFIX):
            continue
        field = fields.get(native)
        if field is None:
            result.append(
                SchemaProblem(
                    kind,
                    canonical,
                    f"Salesforce {kind} has no field {native!r} the integration user can see:"
                    f" fix the name, or create the field on {kind} (Object Manager) and give"
                    " the integration user access to it (field-level security)",
                )
            )
            continue
        if canonical in written:
            missing = [flag for flag in ("createable", "updateable") if not field.get(flag)]
            if missing:
                result.append(
                    SchemaProblem(
                        kind,
                        canonical,
                        f"Salesforce {kind}.{native} is not {' and '.join(missing)} for the"
                        " integration user but syncd writes it: give the user Edit access"
                        " (field-level security) or change the field's direction",
                    )
                )
    result.extend(_partner_problems(kind, fields, partner))
    return result


def _partner_problems(
    kind: str, fields: Mapping[str, Mapping[str, Any]], partner: str | None
) -> list[SchemaProblem]:
    if not partner:
        return [
            SchemaProblem(kind, None, f"no partner-id field is configured for Salesforce {kind}")
        ]
    create = (
        f"create a text field {partner!r} on {kind} marked External ID and Unique, editable"
        " by the integration user"
    )
    field = fields.get(partner)
    if field is None:
        return [SchemaProblem(kind, None, f"Salesforce {kind} has no field {partner!r}: {create}")]
    lacks = [
        what
        for what, flag in (
            ("an External ID", "externalId"),
            ("Unique", "unique"),
            ("createable", "createable"),
            ("updateable", "updateable"),
        )
        if not field.get(flag)
    ]
    if not lacks:
        return []
    return [
        SchemaProblem(
            kind,
            None,
            f"Salesforce {kind}.{partner} is not {', '.join(lacks)} for the integration user,"
            f" so upserts by it could fail or duplicate records: mark it External ID and"
            " Unique (Object Manager) and give the integration user Edit access to it",
        )
    ]
