"""The emulated org's objects: fields, describe answers, ids and per-record validation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LEAD_STATUSES = (
    "Open - Not Contacted",
    "Marketing Qualified",
    "Working - Contacted",
    "Qualified",
    "Nurture",
    "Closed - Converted",
    "Closed - Not Converted",
)
LEAD_SOURCES = (
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Partner",
    "Webinar",
    "Trade Show",
    "Paid Search",
    "Other",
)
PREFIXES = {"Lead": "00Q", "Contact": "003", "Account": "001"}
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


@dataclass(frozen=True, slots=True)
class Field:
    """One field as describe reports it; ``kind`` is Salesforce's field type."""

    name: str
    label: str
    kind: str = "string"  # id string email phone picklist double boolean datetime date reference
    length: int = 0
    required: bool = False
    writable: bool = True
    external_id: bool = False
    picklist: tuple[str, ...] = ()
    default: str | None = None

    @property
    def soql_type(self) -> str:
        """The type the SOQL evaluator compares this field as."""
        if self.kind in ("id", "reference"):
            return "id"
        if self.kind in ("double", "boolean", "datetime", "date"):
            return self.kind
        return "string"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.kind,
            "length": self.length,
            "custom": self.name.endswith("__c"),
            "picklistValues": [
                {"value": v, "label": v, "active": True, "defaultValue": v == self.default}
                for v in self.picklist
            ],
            "restrictedPicklist": bool(self.picklist),
            "externalId": self.external_id,
            "idLookup": self.kind == "id" or self.external_id,
            "unique": self.external_id,
            "caseSensitive": False,
            "nillable": not self.required and self.kind not in ("id", "boolean"),
            "createable": self.writable,
            "updateable": self.writable,
            "defaultedOnCreate": self.default is not None or not self.writable,
        }


def _audit() -> list[Field]:
    return [
        Field("CreatedDate", "Created Date", "datetime", writable=False),
        Field("LastModifiedDate", "Last Modified Date", "datetime", writable=False),
        Field("SystemModstamp", "System Modstamp", "datetime", writable=False),
        Field("IsDeleted", "Deleted", "boolean", writable=False),
    ]


def _person() -> list[Field]:
    return [
        Field("FirstName", "First Name", length=40),
        Field("LastName", "Last Name", length=80, required=True),
        Field("Email", "Email", "email", length=80),
        Field("Title", "Title", length=128),
        Field("Phone", "Phone", "phone", length=40),
        Field("LeadSource", "Lead Source", "picklist", 255, picklist=LEAD_SOURCES),
        Field("Syncd_HubSpot_Id__c", "HubSpot Id", length=255, external_id=True),
    ]


@dataclass(frozen=True, slots=True)
class SObject:
    """One object type: its name, key prefix and fields by name."""

    name: str
    label: str
    fields: Mapping[str, Field]

    @property
    def prefix(self) -> str:
        return PREFIXES[self.name]

    def field(self, name: str) -> Field | None:
        """The field called ``name`` in any case (the API ignores case in field names)."""
        found = self.fields.get(name)
        if found is None:
            found = next((f for n, f in self.fields.items() if n.lower() == name.lower()), None)
        return found

    def describe(self, version: str = "60.0") -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "name": self.name,
            "label": self.label,
            "keyPrefix": self.prefix,
            "custom": False,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "queryable": True,
            "fields": [f.describe() for f in self.fields.values()],
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }


def _sobject(name: str, label: str, fields: list[Field]) -> SObject:
    fields = [Field("Id", f"{label} ID", "id", 18, writable=False), *fields, *_audit()]
    return SObject(name, label, {f.name: f for f in fields})


OBJECTS: dict[str, SObject] = {
    "Lead": _sobject(
        "Lead",
        "Lead",
        [
            *_person(),
            Field("Company", "Company", length=255, required=True),
            Field(
                "Status",
                "Lead Status",
                "picklist",
                255,
                required=True,
                picklist=LEAD_STATUSES,
                default=LEAD_STATUSES[0],
            ),
            Field("Lead_Score__c", "Lead Score", "double", 18),
            Field("IsConverted", "Converted", "boolean", writable=False),
            Field("ConvertedContactId", "Converted Contact ID", "reference", 18, writable=False),
            Field("ConvertedAccountId", "Converted Account ID", "reference", 18, writable=False),
            Field(
                "ConvertedOpportunityId",
                "Converted Opportunity ID",
                "reference",
                18,
                writable=False,
            ),
            Field("ConvertedDate", "Converted Date", "date", writable=False),
        ],
    ),
    "Contact": _sobject(
        "Contact", "Contact", [*_person(), Field("AccountId", "Account ID", "reference", 18)]
    ),
    "Account": _sobject(
        "Account", "Account", [Field("Name", "Account Name", length=255, required=True)]
    ),
}
SOQL_TYPES = {o.name: {f.name: f.soql_type for f in o.fields.values()} for o in OBJECTS.values()}
"""Per object, field -> SOQL comparison type (what the SOQL parser needs)."""


def sobject(name: str) -> SObject | None:
    """The object called ``name`` in any case."""
    return next((o for n, o in OBJECTS.items() if n.lower() == name.lower()), None)


def make_id(prefix: str, number: int) -> str:
    """An 18-character id: prefix, zero-padded base-62 counter, case-safe checksum suffix.

    Base-62 digits in ASCII order keep ids increasing as strings, as real ids do.
    """
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    short = prefix + "5g" + digits.rjust(10, "0")
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, c in enumerate(short[chunk * 5 : chunk * 5 + 5]) if c.isupper())
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return short + suffix


def error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    """One entry of a save result's ``errors``."""
    return {"statusCode": code, "message": message, "fields": fields or []}


def validate(
    obj: SObject, values: Mapping[str, Any], *, creating: bool, system: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Values as stored (canonical names, coerced, blanks as None) and the errors found.

    ``system`` allows read-only fields (the emulator's own writes, lead conversion).
    """
    clean: dict[str, Any] = {}
    errors: list[dict[str, Any]] = []
    for name, raw in values.items():
        if name == "attributes":
            continue
        field = obj.field(name)
        if field is None:
            errors.append(
                error("INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
            )
            continue
        if not field.writable and not system:
            errors.append(
                error(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {field.name}. Please check the security"
                    " settings of this field and verify that it is read/write for your profile"
                    " or permission set.",
                    [field.name],
                )
            )
            continue
        value, problem = _coerce(field, raw)
        if problem:
            errors.append(problem)
        else:
            clean[field.name] = value
    if creating:
        for field in obj.fields.values():
            if field.default is not None and clean.get(field.name) is None:
                clean[field.name] = field.default
    missing = [
        f.name
        for f in obj.fields.values()
        if f.required
        and f.kind != "picklist"
        and (creating or f.name in clean)
        and clean.get(f.name) is None
    ]
    if missing:
        errors.append(
            error(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        )
    return clean, errors


def _coerce(field: Field, raw: Any) -> tuple[Any, dict[str, Any] | None]:
    """A value as stored for ``field``, or the error Salesforce gives for it."""
    if raw is None or raw == "":
        if field.kind == "picklist" and field.required:
            return None, _bad_picklist(field, raw)
        return (False if field.kind == "boolean" else None), None
    if field.kind == "double":
        try:
            return float(raw), None
        except (TypeError, ValueError):
            return None, error(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{field.label}: value not of required type: {raw}",
                [field.name],
            )
    if field.kind == "boolean":
        return raw in (True, "true", "True", 1), None
    text = raw if isinstance(raw, str) else str(raw)
    if field.length and len(text) > field.length:
        return None, error(
            "STRING_TOO_LONG",
            f"{field.label}: data value too large: {text} (max length={field.length})",
            [field.name],
        )
    if field.kind == "email" and not _EMAIL.match(text):
        return None, error(
            "INVALID_EMAIL_ADDRESS", f"{field.label}: invalid email address: {text}", [field.name]
        )
    if field.picklist and text not in field.picklist:
        return None, _bad_picklist(field, text)
    return text, None


def _bad_picklist(field: Field, value: Any) -> dict[str, Any]:
    return error(
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        f"{field.label}: bad value for restricted picklist field: {value or ''}",
        [field.name],
    )
