"""What the emulated portal knows: object schemas, contact properties, checks, error bodies.

Shapes follow HubSpot's CRM v3 API as the official client (hubspot-api-client 12)
parses them: error bodies carry ``status``, ``message``, ``correlationId`` and
``category``; per-input errors of a multi-status (207) answer also carry ``context``,
``links`` and ``errors`` because the client's ``StandardError`` model requires them.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
"""Lifecycle stages in HubSpot's order: an API write may not move a contact backwards."""
LIFECYCLE_RANK = {stage: rank for rank, stage in enumerate(LIFECYCLE_STAGES)}
LEAD_STATUSES = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)
LEAD_SOURCES = ("Web", "Webinar", "Trade Show", "Partner", "Paid Search", "Other")

MAX_BATCH = 100
"""Inputs per batch call."""
ALWAYS_RETURNED = ("createdate", "hs_object_id", "lastmodifieddate")
DEFAULT_RETURNED = (
    "createdate",
    "email",
    "firstname",
    "lastname",
    "hs_object_id",
    "lastmodifieddate",
)
"""Properties an object carries when the request names none."""


@dataclass(frozen=True, slots=True)
class PropertyDef:
    """One property as ``GET /crm/v3/properties/{objectType}`` describes it.

    The answer's fields (``type``, ``fieldType``, ``hasUniqueValue``,
    ``modificationMetadata.readOnlyValue`` and the rest of ``to_json``) follow the
    property model of HubSpot's reference,
    https://developers.hubspot.com/docs/api-reference/latest/crm/properties/update-property
    and the guide https://developers.hubspot.com/docs/api/crm/properties (``type``:
    string, number, date, datetime, enumeration, bool, phone_number). ``unique`` is what
    batch upsert may key on (``idProperty``); the changelog "Updating objects by custom
    field" says unique-ID properties are those created with ``hasUniqueValue`` true.
    Not confirmed: whether a portal lets an admin turn ``hasUniqueValue`` on for an
    existing property (the emulator's ``change_property`` can, as a test switch), and
    the exact error of a batch upsert keyed on a property that is not unique.
    """

    name: str
    label: str
    type: str
    field_type: str
    options: tuple[str, ...] = ()
    option_labels: tuple[str, ...] = ()
    unique: bool = False
    custom: bool = False
    read_only: bool = False

    def to_json(self, order: int, group: str = "contactinformation") -> dict[str, Any]:
        labels = self.option_labels or self.options
        stamp = "2020-01-01T00:00:00.000Z"
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": "",
            "groupName": group,
            "options": [
                {"label": label, "value": value, "displayOrder": i, "hidden": False}
                for i, (value, label) in enumerate(zip(self.options, labels, strict=True))
            ],
            "displayOrder": order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.unique,
            "hidden": False,
            "hubspotDefined": not self.custom,
            "formField": not self.read_only,
            "modificationMetadata": {
                "archivable": self.custom,
                "readOnlyDefinition": not self.custom,
                "readOnlyValue": self.read_only,
            },
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
        }


def _enum(name: str, label: str, options: tuple[str, ...], **kw: Any) -> PropertyDef:
    labels = tuple(o.replace("_", " ").title() for o in options)
    return PropertyDef(name, label, "enumeration", "select", options, labels, **kw)


PROPERTIES: dict[str, PropertyDef] = {
    p.name: p
    for p in (
        PropertyDef("email", "Email", "string", "text"),
        PropertyDef("firstname", "First Name", "string", "text"),
        PropertyDef("lastname", "Last Name", "string", "text"),
        PropertyDef("company", "Company Name", "string", "text"),
        PropertyDef("jobtitle", "Job Title", "string", "text"),
        PropertyDef("phone", "Phone Number", "string", "phonenumber"),
        _enum("lifecyclestage", "Lifecycle Stage", LIFECYCLE_STAGES),
        _enum("hs_lead_status", "Lead Status", LEAD_STATUSES),
        PropertyDef("hubspotscore", "HubSpot Score", "number", "number"),
        _enum("lead_source", "Lead Source", LEAD_SOURCES, custom=True),
        PropertyDef(
            "syncd_recycle_reason", "Recycle reason (syncd)", "string", "textarea", custom=True
        ),
        PropertyDef(
            "syncd_salesforce_id",
            "Salesforce ID (syncd)",
            "string",
            "text",
            unique=True,
            custom=True,
        ),
        # The gate on the CRM (syncd.sync.gate) reads a custom checkbox like this one:
        # "type": "bool" with "fieldType": "booleancheckbox", as the properties API's
        # create-property reference shows it
        # (https://developers.hubspot.com/docs/api-reference/latest/crm/properties/create-property;
        # https://developers.hubspot.com/docs/api/crm/properties lists the types). Its
        # values travel as "true"/"false" text, as every value does (not confirmed for
        # bool in HubSpot's pages; the gate compares them ignoring case).
        PropertyDef("sync_to_crm", "Sync to CRM", "bool", "booleancheckbox", custom=True),
        # The closed loop's outcomes on people (syncd.sync.outcomes): custom properties a
        # portal admin creates, a number and a single-line text, like the recycle reason.
        PropertyDef("syncd_won_revenue", "Won revenue (syncd)", "number", "number", custom=True),
        PropertyDef(
            "syncd_last_outcome", "Last deal outcome (syncd)", "string", "text", custom=True
        ),
        # Engagement a rep prioritises by (fields.yaml's commented example): HubSpot's
        # default contact properties, set by HubSpot itself
        # (https://knowledge.hubspot.com/properties/hubspots-default-contact-properties:
        # "Recent conversion", "Recent conversion date", "Last email click date", "Last
        # visit date" (hs_analytics_last_visit_timestamp), "Number of visits"). Not
        # confirmed from HubSpot's own pages: the internal names (those of public client
        # code: recent_conversion_event_name, hs_email_last_click_date, ...) and whether the
        # API refuses writes to them: HubSpot calculates them, yet the emulator takes them
        # as a user's import would, so that tests can give a contact its engagement
        # (syncd maps them to_crm and never writes them).
        PropertyDef("recent_conversion_event_name", "Recent Conversion", "string", "text"),
        PropertyDef("recent_conversion_date", "Recent Conversion Date", "datetime", "date"),
        PropertyDef("hs_email_last_click_date", "Last email click date", "datetime", "date"),
        PropertyDef(
            "hs_analytics_last_visit_timestamp",
            "Time of Last Visit",
            "datetime",
            "date",
        ),
        PropertyDef("hs_analytics_num_visits", "Number of Visits", "number", "number"),
        # a custom single checkbox (type bool, values "true"/"false", "" clears): the
        # admin creates it for syncd's SLA flag (``sla.marketing_property``)
        PropertyDef(
            "syncd_sla_breached",
            "Hand-off past its SLA (syncd)",
            "bool",
            "booleancheckbox",
            ("true", "false"),
            ("Yes", "No"),
            custom=True,
        ),
        PropertyDef("createdate", "Create Date", "datetime", "date", read_only=True),
        PropertyDef("lastmodifieddate", "Last Modified Date", "datetime", "date", read_only=True),
        PropertyDef("hs_object_id", "Record ID", "number", "number", read_only=True),
    )
}
UNIQUE_PROPERTIES = tuple(p.name for p in PROPERTIES.values() if p.unique)
QUERY_PROPERTIES = ("email", "firstname", "lastname", "phone", "company")
"""What the free-text ``query`` of a contact search looks in."""


@dataclass(frozen=True, slots=True)
class ObjectSchema:
    """One CRM object type: its properties and what the store and search need to know."""

    name: str
    """The type as paths spell it: ``contacts``."""
    singular: str
    type_id: str
    """HubSpot's object type id (contacts ``0-1``, companies ``0-2``, deals ``0-3``)."""
    properties: dict[str, PropertyDef]
    modified: str
    """The modified-date property: ``lastmodifieddate`` (contacts), ``hs_lastmodifieddate``."""
    default_returned: tuple[str, ...]
    query_properties: tuple[str, ...]
    group: str
    folded: tuple[str, ...] = ()
    """Identifying properties compared regardless of case (contacts: email)."""

    @property
    def always_returned(self) -> tuple[str, str, str]:
        return ("createdate", "hs_object_id", self.modified)

    @property
    def keys(self) -> tuple[str, ...]:
        """Properties whose value identifies one record (upsert keys; conflicts)."""
        return (*self.folded, *(p.name for p in self.properties.values() if p.unique))

    def id_label(self) -> str:
        """The path parameter name of one record, as call counts spell it: ``{contactId}``."""
        return "{" + self.singular + "Id}"


CONTACTS = ObjectSchema(
    name="contacts",
    singular="contact",
    type_id="0-1",
    properties=PROPERTIES,
    modified="lastmodifieddate",
    default_returned=DEFAULT_RETURNED,
    query_properties=QUERY_PROPERTIES,
    group="contactinformation",
    folded=("email",),
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    """Epoch millis as HubSpot writes instants: ``2024-05-01T12:00:00.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def parse_ms(text: object) -> int | None:
    """An instant given as epoch millis or ISO-8601 (date or date-time), as epoch millis."""
    raw = str(text).strip()
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def error_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error envelope."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    body.update(extra)
    return body


@dataclass(slots=True)
class Problem:
    """Why one input was refused; ``status`` is the HTTP status if it fails the batch."""

    status: int
    category: str
    message: str
    context: dict[str, list[str]] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        extra = {"context": self.context} if self.context else {}
        return error_body(self.category, self.message, **extra)

    def batch_error(self, trace_id: str) -> dict[str, Any]:
        """The entry for this input in a 207 answer's ``errors``."""
        error = self.standard_error()
        error["context"]["objectWriteTraceId"] = [trace_id]
        error["objectWriteTraceId"] = trace_id
        return error

    def standard_error(self) -> dict[str, Any]:
        """The entry in a 207 answer's ``errors`` when inputs carry no trace ids."""
        return {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": dict(self.context),
            "links": {},
            "errors": [],
        }


def invalid_value(name: str, value: str, error: str, message: str) -> Problem:
    """HubSpot's "Property values were not valid" refusal of one property value."""
    detail = {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    }
    text = "Property values were not valid: " + json.dumps([detail])
    return Problem(400, "VALIDATION_ERROR", text, {"propertyName": [name]})


VALUE_LIMIT = 65_536
"""Characters a text property value may hold when written through the CRM (the API):
"When the value is added through the CRM, the character limit is 65,536 characters.
When the value is submitted through a form, there is no limit."
(https://knowledge.hubspot.com/contacts/property-field-types-in-hubspot). The error an
API write past it gets could not be confirmed from the public references: the emulator
answers HubSpot's usual "Property values were not valid" refusal of that one value."""


def check_values(
    properties: object, schema: ObjectSchema = CONTACTS, *, limit: int | None = VALUE_LIMIT
) -> tuple[dict[str, str], Problem | None]:
    """Coerce written values to text ("" clears) and check them against the schema.

    ``limit``: the longest value taken (None: no limit, as for a form submission)."""
    if not isinstance(properties, dict):
        return {}, Problem(400, "VALIDATION_ERROR", "properties must be an object")
    clean: dict[str, str] = {}
    for name, raw in properties.items():
        value = (
            ""
            if raw is None
            else ("true" if raw is True else "false" if raw is False else str(raw))
        )
        prop = schema.properties.get(name)
        if prop is None:
            return {}, invalid_value(
                name, value, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
            )
        if prop.read_only:
            return {}, invalid_value(
                name,
                value,
                "READ_ONLY_VALUE",
                f'"{name}" is a read only property; its value cannot be set.',
            )
        if value != "" and prop.options and value not in prop.options:
            allowed = ", ".join(prop.options)
            return {}, invalid_value(
                name,
                value,
                "INVALID_OPTION",
                f"{value} was not one of the allowed options: [{allowed}]",
            )
        if value != "" and prop.type == "number":
            try:
                float(value)
            except ValueError:
                return {}, invalid_value(
                    name, value, "INVALID_FLOAT", f"{value} was not a valid number."
                )
        if value != "" and prop.type == "datetime":
            ms = parse_ms(value)
            if ms is None:
                return {}, invalid_value(
                    name, value, "INVALID_DATETIME", f"{value} was not a valid date-time."
                )
            value = iso(ms)
        if limit is not None and len(value) > limit:
            return {}, invalid_value(
                name,
                value[:100],
                "MAX_CHARACTERS",
                f"{name} has {len(value)} characters; values may have at most {limit}",
            )
        if value != "" and name == "email" and not _plausible_email(value):
            return {}, invalid_value(
                name, value, "INVALID_EMAIL", f"Email address {value} is invalid"
            )
        clean[name] = value
    return clean, None


def _plausible_email(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and "." in domain and not any(c.isspace() for c in value))


def batch_answer(
    results: list[Any], errors: list[dict[str, Any]], started: str, ok_status: int
) -> tuple[int, dict[str, Any]]:
    """A batch endpoint's answer: ``ok_status`` with the results, or 207 with the errors."""
    answer: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": iso(now_ms()),
    }
    if errors:
        return 207, {**answer, "errors": errors, "numErrors": len(errors)}
    return ok_status, answer


def read_answer(
    results: list[Any], missing: list[str], started: str, message: str
) -> tuple[int, dict[str, Any]]:
    """A batch read's answer: 200 with every result, or 207 naming the ids not found."""
    errors = []
    if missing:
        errors.append(Problem(404, "OBJECT_NOT_FOUND", message, {"ids": missing}).standard_error())
    return batch_answer(results, errors, started, 200)
