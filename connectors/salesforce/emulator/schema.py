"""The emulated org's objects: fields, describe answers, ids and per-record validation."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
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
CONVERTED_STATUSES = frozenset({"Closed - Converted"})
"""The ``LeadStatus`` values with ``IsConverted`` true. Conversion is a separate call
(convertLead); an update that sets one of these on a lead is accepted and leaves the lead
unconverted (IsConverted false): a scratch-org test shows it, Database.update succeeding,
no account, contact or opportunity created (github.com/berardo/apex-windfarm,
force-app/main/default/classes/DatabaseConvertTest.cls, testsetLeadStatusToConverted).
The LeadStatus object and its fields: developer.salesforce.com/docs/atlas.en-us.
object_reference.meta/object_reference/sforce_api_objects_leadstatus.htm (ApiName since
API 36.0; the object is read-only through the API). Not confirmed: whether the REST
API answers the same as Apex DML there (the same save path is assumed); whether a Lead
Process (record types) narrows which statuses an update may set."""
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
INDUSTRIES = (
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
)
LOSS_REASONS = ("Price", "Competitor", "No Budget", "No Decision", "Timing", "Features", "Other")
CONTACT_ROLES = (
    "Business User",
    "Decision Maker",
    "Economic Buyer",
    "Economic Decision Maker",
    "Evaluator",
    "Executive Sponsor",
    "Influencer",
    "Technical Buyer",
    "Other",
)


@dataclass(frozen=True, slots=True)
class Stage:
    """One value of ``Opportunity.StageName`` as the ``OpportunityStage`` object holds it.

    ``StageName`` holds the stage's API name (``OpportunityStage.ApiName``, API v36+);
    ``MasterLabel`` is the label an admin can rename (``label``; by default the same).
    https://developer.salesforce.com/docs/platform/object-reference/references/standard-objects/object-opportunitystage.html
    ("ApiName ... Uniquely identifies a picklist value so it can be retrieved without
    using an id or master label").
    """

    label: str
    probability: int
    forecast: str
    closed: bool = False
    won: bool = False
    api_name: str = ""

    @property
    def api(self) -> str:
        """The value ``StageName`` holds."""
        return self.api_name or self.label


STAGES = (
    Stage("Prospecting", 10, "Pipeline"),
    Stage("Qualification", 10, "Pipeline"),
    Stage("Needs Analysis", 20, "Pipeline"),
    Stage("Value Proposition", 50, "Pipeline"),
    Stage("Proposal/Price Quote", 75, "Pipeline"),
    Stage("Negotiation/Review", 90, "Pipeline"),
    Stage("Closed Won", 100, "Closed", closed=True, won=True),
    Stage("Closed Lost", 0, "Omitted", closed=True),
)
STAGE_BY_NAME = {s.api: s for s in STAGES}
PREFIXES = {
    "Lead": "00Q",
    "Contact": "003",
    "Account": "001",
    "Opportunity": "006",
    "OpportunityContactRole": "00K",
    "OpportunityStage": "01J",
    "LeadStatus": "01J",
    "User": "005",
    "Task": "00T",
    "Event": "00U",
}
NUMERIC = ("double", "currency", "percent", "int")
_PRECISION = {"double": (18, 0), "currency": (18, 2), "percent": (3, 0), "int": (0, 0)}
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")


@dataclass(frozen=True, slots=True)
class Field:
    """One field as describe reports it; ``kind`` is Salesforce's field type."""

    name: str
    label: str
    kind: str = "string"  # id string email phone url picklist double currency percent int
    # boolean datetime date reference
    length: int = 0
    required: bool = False
    writable: bool = True
    external_id: bool = False
    picklist: tuple[str, ...] = ()
    default: str | None = None
    restricted: bool = True  # for picklists: only the listed values are accepted
    references: str | None = None  # for references: the object the id points at

    @property
    def targets(self) -> list[str]:
        """The objects a reference can name (``WhoId``: Lead or Contact, polymorphic)."""
        return self.references.split(",") if self.references else []

    @property
    def soql_type(self) -> str:
        """The type the SOQL evaluator compares this field as."""
        if self.kind in ("id", "reference"):
            return "id"
        if self.kind in NUMERIC:
            return "double"
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
            "restrictedPicklist": bool(self.picklist) and self.restricted,
            "precision": _PRECISION.get(self.kind, (0, 0))[0],
            "scale": _PRECISION.get(self.kind, (0, 0))[1],
            "digits": 9 if self.kind == "int" else 0,
            "referenceTo": self.targets,
            "relationshipName": _relationship(self.name) if self.references else None,
            "externalId": self.external_id,
            "idLookup": self.kind == "id" or self.external_id,
            "unique": self.external_id,
            "caseSensitive": False,
            "nillable": not self.required and self.kind not in ("id", "boolean"),
            "createable": self.writable,
            "updateable": self.writable,
            "defaultedOnCreate": self.default is not None or not self.writable,
        }


def _relationship(name: str) -> str:
    """``AccountId`` -> ``Account``; ``WhoId`` -> ``Who`` (the polymorphic ones)."""
    return name[:-2] if name.endswith("Id") else name


def _audit(deletable: bool = True) -> list[Field]:
    return [
        Field("CreatedDate", "Created Date", "datetime", writable=False),
        Field("LastModifiedDate", "Last Modified Date", "datetime", writable=False),
        Field("SystemModstamp", "System Modstamp", "datetime", writable=False),
        *([Field("IsDeleted", "Deleted", "boolean", writable=False)] if deletable else []),
    ]


def _partner_id() -> Field:
    return Field("Syncd_HubSpot_Id__c", "HubSpot Id", length=255, external_id=True)


def _person() -> list[Field]:
    """Lead and Contact fields syncd maps. Lengths from Salesforce's field reference
    (https://developer.salesforce.com/docs/platform/field-reference/references/field-reference/salesforce-field-reference-lead.html:
    Email 80, Company 255, FirstName 40, LastName 80; Title 128 is the describe length
    reported for standard orgs, not confirmed from that page's excerpt). A longer value
    is refused with STRING_TOO_LONG, that record alone (``allOrNone: false``). Whether
    Salesforce keeps a NUL character in a text field could not be confirmed: the emulator
    keeps it."""
    return [
        Field("FirstName", "First Name", length=40),
        Field("LastName", "Last Name", length=80, required=True),
        Field("Email", "Email", "email", length=80),
        Field("Title", "Title", length=128),
        Field("Phone", "Phone", "phone", length=40),
        Field("LeadSource", "Lead Source", "picklist", 255, picklist=LEAD_SOURCES),
        Field("Recycle_Reason__c", "Recycle Reason", length=255),
        _reference("OwnerId", "Owner ID", "User"),
        _partner_id(),
    ]


@dataclass(frozen=True, slots=True)
class SObject:
    """One object type: its name, key prefix and fields by name."""

    name: str
    label: str
    fields: Mapping[str, Field]
    createable: bool = True  # False: read-only setup data (OpportunityStage)

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
            "createable": self.createable,
            "updateable": self.createable,
            "deletable": self.createable,
            "queryable": True,
            "fields": [f.describe() for f in self.fields.values()],
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }


def _sobject(name: str, label: str, fields: list[Field], *, createable: bool = True) -> SObject:
    fields = [Field("Id", f"{label} ID", "id", 18, writable=False), *fields, *_audit(createable)]
    return SObject(name, label, {f.name: f for f in fields}, createable)


def _engagement() -> list[Field]:
    """Custom fields an org creates for the marketing engagement fields.yaml's commented
    example maps (score, recent conversion, last email click, last visit, visits)."""
    return [
        Field("HubSpot_Score__c", "HubSpot Score", "double", 18),
        Field("HubSpot_Recent_Conversion__c", "Recent Conversion", length=255),
        Field("HubSpot_Recent_Conversion_Date__c", "Recent Conversion Date", "date"),
        Field("HubSpot_Last_Email_Click__c", "Last Email Click", "date"),
        Field("HubSpot_Last_Visit__c", "Last Visit", "date"),
        Field("HubSpot_Visits__c", "Number of Visits", "double", 18),
    ]


def _reference(name: str, label: str, target: str, *, required: bool = False) -> Field:
    return Field(name, label, "reference", 18, required=required, references=target)


TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
"""Task.Status in a new org; ``Completed`` is the closed one (``TaskStatus.IsClosed``)."""
CLOSED_TASK_STATUSES = frozenset({"Completed"})
TASK_SUBTYPES = ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")
ACTIVITY_TYPES = ("Call", "Email", "Meeting", "Other")


def _activity() -> list[Field]:
    """Fields Task and Event share. The object reference lists them
    (https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm,
    https://developer.salesforce.com/docs/platform/object-reference/references/standard-objects/object-event.html;
    the field table of ActivityHistory:
    https://developer.salesforce.com/docs/atlas.en-us.228.0.sfFieldRef.meta/sfFieldRef/salesforce_field_reference_ActivityHistory.htm):
    ``WhoId`` names a Lead or a Contact (polymorphic), ``WhatId`` another record (here
    an Account or an Opportunity), ``OwnerId`` the user the activity is assigned to,
    ``ActivityDate`` a date only (a task's due date), ``Description`` 32,000 characters.
    Not emulated: Shared Activities (one task on several contacts: ``TaskWhoRelation``),
    ``AccountId`` derived from ``WhatId``/``WhoId``, call-center fields."""
    return [
        _reference("WhoId", "Name ID", "Lead,Contact"),
        _reference("WhatId", "Related To ID", "Account,Opportunity"),
        _reference("OwnerId", "Assigned To ID", "User"),
        Field("Subject", "Subject", length=255),
        Field("ActivityDate", "Due Date Only", "date"),
        Field("Description", "Description", "textarea", 32000),
        Field("Type", "Type", "picklist", 40, picklist=ACTIVITY_TYPES, restricted=False),
    ]


def _task() -> list[Field]:
    """Task's own fields. ``Status`` (required, default Not Started) closes the task when
    a closed value is set: ``IsClosed`` and ``CompletedDateTime`` (API 46+, "the date and
    time the task was saved with a Closed status") are derived, read-only. ``TaskSubtype``
    is set on create only (Call, Email, ...). The picklist values are those of a new org
    as remembered, not confirmed from a public page."""
    return [
        Field(
            "Status",
            "Status",
            "picklist",
            40,
            required=True,
            picklist=TASK_STATUSES,
            default=TASK_STATUSES[0],
            restricted=False,
        ),
        Field("IsClosed", "Closed", "boolean", writable=False),
        Field("CompletedDateTime", "Completed Date/Time", "datetime", writable=False),
        Field("TaskSubtype", "Task Subtype", "picklist", 40, picklist=TASK_SUBTYPES),
    ]


def _event() -> list[Field]:
    """Event's own fields: when it starts and how long it lasts (``EndDateTime`` derived
    here; the real API also accepts EndDateTime instead of the duration)."""
    return [
        Field("StartDateTime", "Start", "datetime"),
        Field("DurationInMinutes", "Duration", "int"),
        Field("EndDateTime", "End", "datetime", writable=False),
        Field("EventSubtype", "Event Subtype", "picklist", 40, picklist=("Event",)),
    ]


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
            *_engagement(),
            Field("IsConverted", "Converted", "boolean", writable=False),
            Field(
                "ConvertedContactId",
                "Converted Contact ID",
                "reference",
                18,
                writable=False,
                references="Contact",
            ),
            Field(
                "ConvertedAccountId",
                "Converted Account ID",
                "reference",
                18,
                writable=False,
                references="Account",
            ),
            Field(
                "ConvertedOpportunityId",
                "Converted Opportunity ID",
                "reference",
                18,
                writable=False,
                references="Opportunity",
            ),
            Field("ConvertedDate", "Converted Date", "date", writable=False),
        ],
    ),
    "Contact": _sobject(
        "Contact",
        "Contact",
        [*_person(), _reference("AccountId", "Account ID", "Account"), *_engagement()],
    ),
    "Account": _sobject(
        "Account",
        "Account",
        [
            Field("Name", "Account Name", length=255, required=True),
            Field("Website", "Website", "url", 255),
            Field("Industry", "Industry", "picklist", 255, picklist=INDUSTRIES, restricted=False),
            Field("NumberOfEmployees", "Employees", "int"),
            _partner_id(),
        ],
    ),
    "Opportunity": _sobject(
        "Opportunity",
        "Opportunity",
        [
            Field("Name", "Name", length=120, required=True),
            _reference("AccountId", "Account ID", "Account"),
            Field("Amount", "Amount", "currency"),
            Field("CloseDate", "Close Date", "date", required=True),
            Field(
                "StageName",
                "Stage",
                "picklist",
                255,
                required=True,
                picklist=tuple(s.api for s in STAGES),
            ),
            Field("IsWon", "Won", "boolean", writable=False),
            Field("IsClosed", "Closed", "boolean", writable=False),
            Field("Probability", "Probability (%)", "percent"),
            Field("LeadSource", "Lead Source", "picklist", 255, picklist=LEAD_SOURCES),
            Field(
                "LossReason__c",
                "Loss Reason",
                "picklist",
                255,
                picklist=LOSS_REASONS,
                restricted=False,
            ),
            _reference("OwnerId", "Owner ID", "User"),
            _partner_id(),
        ],
    ),
    "OpportunityContactRole": _sobject(
        "OpportunityContactRole",
        "Opportunity Contact Role",
        [
            _reference("OpportunityId", "Opportunity ID", "Opportunity", required=True),
            _reference("ContactId", "Contact ID", "Contact", required=True),
            Field("Role", "Role", "picklist", 40, picklist=CONTACT_ROLES, restricted=False),
            Field("IsPrimary", "Primary", "boolean"),
        ],
    ),
    "OpportunityStage": _sobject(
        "OpportunityStage",
        "Opportunity Stage",
        [
            Field("MasterLabel", "Master Label", length=255, writable=False),
            Field("ApiName", "Api Name", length=255, writable=False),
            Field("IsActive", "Is Active", "boolean", writable=False),
            Field("SortOrder", "Sort Order", "int", writable=False),
            Field("IsClosed", "Closed", "boolean", writable=False),
            Field("IsWon", "Won", "boolean", writable=False),
            Field("ForecastCategoryName", "Forecast Category", length=255, writable=False),
            Field("DefaultProbability", "Probability (%)", "percent", writable=False),
        ],
        createable=False,
    ),
    "LeadStatus": _sobject(
        "LeadStatus",
        "Lead Status",
        [
            Field("MasterLabel", "Master Label", length=255, writable=False),
            Field("ApiName", "API Name", length=255, writable=False),
            Field("IsConverted", "Is Converted", "boolean", writable=False),
            Field("IsDefault", "Is Default", "boolean", writable=False),
            Field("SortOrder", "Sort Order", "int", writable=False),
        ],
        createable=False,
    ),
}
OBJECTS.update(
    {
        "User": _sobject(
            "User",
            "User",
            [
                Field("Name", "Full Name", length=121, writable=False),
                Field("FirstName", "First Name", length=40),
                Field("LastName", "Last Name", length=80, required=True),
                Field("Email", "Email", "email", length=128, required=True),
                Field("IsActive", "Active", "boolean"),
            ],
        ),
        "Task": _sobject("Task", "Task", [*_activity(), *_task()]),
        "Event": _sobject("Event", "Event", [*_activity(), *_event()]),
    }
)
USER_ID = "0055g00000EmuLatAA"
"""The emulated API user: owner of the records it creates (its token's ``id`` names it).
18 characters, as every id (it had 19, unnoticed while user ids were not checked)."""
SOQL_TYPES = {o.name: {f.name: f.soql_type for f in o.fields.values()} for o in OBJECTS.values()}
"""Per object, field -> SOQL comparison type (what the SOQL parser needs)."""


def sobject(name: str) -> SObject | None:
    """The object called ``name`` in any case."""
    return next((o for n, o in OBJECTS.items() if n.lower() == name.lower()), None)


def stage_rows(stamp: str) -> list[dict[str, Any]]:
    """The ``OpportunityStage`` records matching the StageName picklist, stamped ``stamp``."""
    return [
        {
            "Id": make_id(PREFIXES["OpportunityStage"], order),
            "MasterLabel": stage.label,
            "ApiName": stage.api,
            "IsActive": True,
            "SortOrder": order,
            "IsClosed": stage.closed,
            "IsWon": stage.won,
            "ForecastCategoryName": stage.forecast,
            "DefaultProbability": float(stage.probability),
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
            "IsDeleted": False,
        }
        for order, stage in enumerate(STAGES, 1)
    ]


def lead_status_rows(stamp: str) -> list[dict[str, Any]]:
    """The ``LeadStatus`` records matching the Lead.Status picklist, stamped ``stamp``."""
    return [
        {
            "Id": make_id(PREFIXES["LeadStatus"], 100 + order),
            "MasterLabel": status,
            "ApiName": status,
            "IsConverted": status in CONVERTED_STATUSES,
            "IsDefault": order == 1,
            "SortOrder": order,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
            "IsDeleted": False,
        }
        for order, status in enumerate(LEAD_STATUSES, 1)
    ]


def derive(obj: SObject, row: dict[str, Any], given: Mapping[str, Any]) -> None:
    """Set, in place, the fields Salesforce computes on save: booleans never null, an
    opportunity's IsWon/IsClosed from its stage and Probability from a new stage (unless
    ``given``, the values written, sets it), the owner of a new opportunity."""
    for field in obj.fields.values():
        if field.kind == "boolean":
            row[field.name] = bool(row.get(field.name))
    if "OwnerId" in obj.fields and row.get("OwnerId") is None:
        row["OwnerId"] = USER_ID  # a record's owner defaults to the user creating it
    if obj.name in _DERIVED:
        _DERIVED[obj.name](row, given)
    if obj.name != "Opportunity":
        return
    stage = STAGE_BY_NAME.get(row.get("StageName") or "")
    if stage is not None and "StageName" in given:
        row["IsWon"], row["IsClosed"] = stage.won, stage.closed
        if "Probability" not in given:
            row["Probability"] = float(stage.probability)


def _derive_task(row: dict[str, Any], given: Mapping[str, Any]) -> None:
    """A task saved with a closed status is closed, completed at that save."""
    closed = row.get("Status") in CLOSED_TASK_STATUSES
    if closed and not row.get("IsClosed"):
        row["CompletedDateTime"] = row["SystemModstamp"]
    elif not closed:
        row["CompletedDateTime"] = None
    row["IsClosed"] = closed


def _derive_event(row: dict[str, Any], given: Mapping[str, Any]) -> None:
    """An event ends its duration after its start."""
    start, minutes = row.get("StartDateTime"), row.get("DurationInMinutes")
    if start and minutes is not None:
        begins = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        ends = begins + timedelta(minutes=int(minutes))
        row["EndDateTime"] = ends.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _derive_user(row: dict[str, Any], given: Mapping[str, Any]) -> None:
    row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)


_DERIVED = {"Task": _derive_task, "Event": _derive_event, "User": _derive_user}
"""Per object, the fields Salesforce computes on save beyond the booleans and owner."""


def user_rows(stamp: str, users: Sequence[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """User records (id, first name, last name), active, emails at example.com."""
    rows = []
    for id_, first, last in users:
        row: dict[str, Any] = {"Id": id_, "FirstName": first, "LastName": last}
        row.update(Email=f"{first}.{last}@example.com".lower(), IsActive=True, IsDeleted=False)
        row.update(CreatedDate=stamp, LastModifiedDate=stamp, SystemModstamp=stamp)
        _derive_user(row, row)
        rows.append(row)
    return rows


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
    reported: set[str] = set()
    if not obj.createable:
        refused = error(
            "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
            f"entity type cannot be inserted or updated: {obj.label}",
        )
        return clean, [refused]
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
            reported.add(field.name)
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
        and f.name not in reported
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
    wrong_type = error(
        "INVALID_TYPE_ON_FIELD_IN_RECORD",
        f"{field.label}: value not of required type: {raw}",
        [field.name],
    )
    if field.kind in NUMERIC:
        try:
            number = float(raw)
        except (TypeError, ValueError):
            return None, wrong_type
        if field.kind != "int":
            return number, None
        return (int(number), None) if number.is_integer() else (None, wrong_type)
    if field.kind == "boolean":
        return raw in (True, "true", "True", 1), None
    text = raw if isinstance(raw, str) else str(raw)
    if field.kind == "date":
        try:
            ok = bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)) and bool(date.fromisoformat(text))
        except ValueError:
            ok = False
        return (text, None) if ok else (None, wrong_type)
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
    if field.picklist and field.restricted and text not in field.picklist:
        return None, _bad_picklist(field, text)
    return text, None


def _bad_picklist(field: Field, value: Any) -> dict[str, Any]:
    return error(
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        f"{field.label}: bad value for restricted picklist field: {value or ''}",
        [field.name],
    )


USERS = (
    (USER_ID, "Syncd", "Integration"),
    (make_id("005", 1), "Avery", "Stone"),
    (make_id("005", 2), "Blake", "Rivera"),
    (make_id("005", 3), "Casey", "Nguyen"),
)
"""The org's users: the API user and three sales reps (ids made as the others are)."""
