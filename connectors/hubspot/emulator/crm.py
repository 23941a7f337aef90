"""The emulator's companies and deals: their schemas, the deal pipelines, synthetic records.

Deals keep stage *ids* of a pipeline in ``dealstage`` (``GET /crm/v3/pipelines/deals``
lists them with ``metadata.isClosed`` and ``probability`` as strings, as HubSpot does);
a write whose stage is not one of its pipeline's is refused with a VALIDATION_ERROR.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from connectors.hubspot.emulator.schema import (
    ObjectSchema,
    Problem,
    PropertyDef,
    error_body,
    invalid_value,
)

_STAMP = "2020-01-01T00:00:00.000Z"


@dataclass(frozen=True, slots=True)
class Stage:
    id: str
    label: str
    probability: str
    closed: bool = False

    def to_json(self, order: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "displayOrder": order,
            "metadata": {
                "isClosed": "true" if self.closed else "false",
                "probability": self.probability,
            },
            "createdAt": _STAMP,
            "updatedAt": _STAMP,
            "archived": False,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }


@dataclass(frozen=True, slots=True)
class Pipeline:
    id: str
    label: str
    stages: tuple[Stage, ...]

    def to_json(self, order: int) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "displayOrder": order,
            "stages": [stage.to_json(i) for i, stage in enumerate(self.stages)],
            "createdAt": _STAMP,
            "updatedAt": _STAMP,
            "archived": False,
        }

    def stage_ids(self) -> tuple[str, ...]:
        return tuple(stage.id for stage in self.stages)


PIPELINES: dict[str, Pipeline] = {
    p.id: p
    for p in (
        Pipeline(
            "default",
            "Sales Pipeline",
            (
                Stage("appointmentscheduled", "Appointment Scheduled", "0.2"),
                Stage("qualifiedtobuy", "Qualified To Buy", "0.4"),
                Stage("presentationscheduled", "Presentation Scheduled", "0.6"),
                Stage("decisionmakerboughtin", "Decision Maker Bought-In", "0.8"),
                Stage("contractsent", "Contract Sent", "0.9"),
                Stage("closedwon", "Closed Won", "1.0", closed=True),
                Stage("closedlost", "Closed Lost", "0.0", closed=True),
            ),
        ),
        Pipeline(
            "renewals",
            "Renewals",
            (
                Stage("71840211", "Renewal Due", "0.5"),
                Stage("71840212", "Renewal Quoted", "0.7"),
                Stage("71840213", "Renewed", "1.0", closed=True),
                Stage("71840214", "Churned", "0.0", closed=True),
            ),
        ),
    )
}
DEFAULT_PIPELINE = "default"
ALL_STAGES = tuple(s for p in PIPELINES.values() for s in p.stages)
INDUSTRIES = (
    "ACCOUNTING",
    "COMPUTER_SOFTWARE",
    "FINANCIAL_SERVICES",
    "HOSPITAL_HEALTH_CARE",
    "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "MARKETING_AND_ADVERTISING",
    "RETAIL",
    "TELECOMMUNICATIONS",
)


def _read_only(name: str, label: str, kind: str = "datetime") -> PropertyDef:
    field_type = "date" if kind == "datetime" else "number"
    return PropertyDef(name, label, kind, field_type, read_only=True)


def _salesforce_id() -> PropertyDef:
    return PropertyDef(
        "syncd_salesforce_id", "Salesforce ID (syncd)", "string", "text", unique=True, custom=True
    )


def _props(*defs: PropertyDef) -> dict[str, PropertyDef]:
    return {p.name: p for p in defs}


COMPANIES = ObjectSchema(
    name="companies",
    singular="company",
    type_id="0-2",
    properties=_props(
        PropertyDef("name", "Company name", "string", "text"),
        PropertyDef("domain", "Company Domain Name", "string", "text"),
        PropertyDef(
            "industry",
            "Industry",
            "enumeration",
            "select",
            INDUSTRIES,
            tuple(i.replace("_", " ").title() for i in INDUSTRIES),
        ),
        PropertyDef("numberofemployees", "Number of Employees", "number", "number"),
        _salesforce_id(),
        _read_only("createdate", "Create Date"),
        _read_only("hs_lastmodifieddate", "Last Modified Date"),
        _read_only("hs_object_id", "Record ID", "number"),
    ),
    modified="hs_lastmodifieddate",
    default_returned=("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    query_properties=("name", "domain"),
    group="companyinformation",
)
DEALS = ObjectSchema(
    name="deals",
    singular="deal",
    type_id="0-3",
    properties=_props(
        PropertyDef("dealname", "Deal Name", "string", "text"),
        PropertyDef("amount", "Amount", "number", "number"),
        PropertyDef("closedate", "Close Date", "datetime", "date"),
        # Every pipeline's stage ids: which pipeline a stage belongs to is checked apart.
        PropertyDef(
            "dealstage",
            "Deal Stage",
            "enumeration",
            "radio",
            tuple(s.id for s in ALL_STAGES),
            tuple(s.label for s in ALL_STAGES),
        ),
        PropertyDef(
            "pipeline",
            "Pipeline",
            "enumeration",
            "select",
            tuple(PIPELINES),
            tuple(p.label for p in PIPELINES.values()),
        ),
        PropertyDef("closed_lost_reason", "Closed Lost Reason", "string", "textarea"),
        PropertyDef("hubspot_owner_id", "Deal owner", "enumeration", "select"),
        _salesforce_id(),
        _read_only("createdate", "Create Date"),
        _read_only("hs_lastmodifieddate", "Last Modified Date"),
        _read_only("hs_object_id", "Record ID", "number"),
    ),
    modified="hs_lastmodifieddate",
    default_returned=(
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    query_properties=("dealname",),
    group="dealinformation",
)


def check_deal(current: dict[str, str] | None, props: dict[str, str]) -> Problem | None:
    """Refuse a stage that is not one of the deal's pipeline's; a new deal gets "default".

    ``current`` is the deal's stored properties (None: the write creates it); ``props``
    are the checked values to write and may gain ``pipeline``.
    """
    stored = current or {}
    if current is None and not props.get("pipeline"):
        props["pipeline"] = DEFAULT_PIPELINE
    pipeline_id = props.get("pipeline", stored.get("pipeline")) or DEFAULT_PIPELINE
    stage = props.get("dealstage", stored.get("dealstage"))
    pipeline = PIPELINES[pipeline_id]  # check_values has refused unknown pipelines
    if stage and stage not in pipeline.stage_ids():
        message = (
            f"{stage} is not a valid deal stage for pipeline {pipeline_id}: "
            f"allowed stages are [{', '.join(pipeline.stage_ids())}]"
        )
        return invalid_value("dealstage", stage, "INVALID_OPTION", message)
    return None


def pipelines_answer(object_type: str, pipeline_id: str | None) -> tuple[int, dict[str, Any]]:
    """``GET /crm/v3/pipelines/{objectType}[/{pipelineId}]``: deals have pipelines here."""
    if object_type != "deals" and pipeline_id is None:
        return 200, {"results": []}
    if object_type == "deals" and pipeline_id is None:
        return 200, {"results": [p.to_json(i) for i, p in enumerate(PIPELINES.values())]}
    for i, pipeline in enumerate(PIPELINES.values()):
        if object_type == "deals" and pipeline.id == pipeline_id:
            return 200, pipeline.to_json(i)
    return 404, error_body("OBJECT_NOT_FOUND", f"Unable to find pipeline {pipeline_id}")


COMPANY_NAMES = (
    "Analytical Engines", "Bletchley Park", "Acme Corp", "Globex", "Initech", "Umbrella",
    "Stark Industries", "Wayne Enterprises", "Hooli", "Vandelay Industries",
)  # fmt: skip


def synthetic_company(company_id: int, rng: random.Random) -> dict[str, str]:
    name = rng.choice(COMPANY_NAMES)
    return {
        "name": f"{name} {company_id}",
        "domain": f"{name.lower().replace(' ', '')}{company_id}.example.com",
        "industry": rng.choice(INDUSTRIES),
        "numberofemployees": str(rng.randrange(1, 5000)),
    }


def synthetic_deal(
    deal_id: int, rng: random.Random, pipeline_id: str | None = None
) -> dict[str, str]:
    """A deal in a stage of ``pipeline_id`` (default: 80% the sales pipeline, else renewals)."""
    chosen = pipeline_id or (DEFAULT_PIPELINE if rng.random() < 0.8 else "renewals")
    pipeline = PIPELINES[chosen]
    stage = rng.choice(pipeline.stages)
    props = {
        "dealname": f"Deal {deal_id}",
        "amount": str(rng.randrange(1, 500) * 100),
        "pipeline": pipeline.id,
        "dealstage": stage.id,
        "closedate": f"2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}T00:00:00.000Z",
    }
    if stage.id == "closedlost":
        props["closed_lost_reason"] = rng.choice(("Price", "Timing", "Competitor"))
    return props
