"""Small readable factories for records and rules."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syncd.config.settings import FieldRule, StageDef
from syncd.model import Record, RecordRef, Value
from syncd.sync.reconcile import Rules
from syncd.sync.vocabulary import Vocabulary

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

STAGES = [
    StageDef(
        name="lead",
        values={
            "hubspot": {"lifecyclestage": "lead"},
            "salesforce": {"Status": "Open - Not Contacted"},
        },
    ),
    StageDef(
        name="mql",
        values={
            "hubspot": {"lifecyclestage": "marketingqualifiedlead"},
            "salesforce": {"Status": "Marketing Qualified"},
        },
    ),
    StageDef(
        name="sql",
        values={
            "hubspot": {"lifecyclestage": "salesqualifiedlead"},
            "salesforce": {"Status": "Qualified"},
        },
    ),
    StageDef(
        name="nurture",
        recycle=True,
        values={
            "hubspot": {"lifecyclestage": "lead", "hs_lead_status": "BAD_TIMING"},
            "salesforce": {"Status": "Nurture"},
        },
    ),
]


def rules(**overrides: FieldRule) -> Rules:
    fields = {
        "email": FieldRule(type="email"),
        "first_name": FieldRule(),
        "phone": FieldRule(conflict="crm_wins"),
        "title": FieldRule(conflict="latest"),
        "lead_source": FieldRule(conflict="marketing_wins"),
        "score": FieldRule(direction="to_crm"),
    }
    fields.update(overrides)
    return Rules(
        fields=fields,
        stage_rule=FieldRule(type="stage"),
        vocabulary=Vocabulary(STAGES),
        marketing="hubspot",
        crm="salesforce",
        marketing_create_kind="contacts",
        crm_create_kind="Lead",
    )


def _record(
    ref: RecordRef,
    minutes: int,
    stage: dict[str, str] | None,
    partner: str | None,
    fields: dict[str, Value],
) -> Record:
    return Record(ref, fields, T0 + timedelta(minutes=minutes), stage or {}, partner)


def hubspot(
    id_: str,
    minutes: int = 0,
    stage: dict[str, str] | None = None,
    partner: str | None = None,
    **fields: Value,
) -> Record:
    return _record(RecordRef("hubspot", "contacts", id_), minutes, stage, partner, fields)


def salesforce(
    id_: str,
    minutes: int = 0,
    stage: dict[str, str] | None = None,
    partner: str | None = None,
    **fields: Value,
) -> Record:
    return _record(RecordRef("salesforce", "Lead", id_), minutes, stage, partner, fields)


ROOT = Path(__file__).resolve().parents[1]


def syncd_cli(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``syncd ARGS`` in a process of its own, as an operator's shell runs it (from the
    repository unless ``cwd``)."""
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=env,
        timeout=timeout,
        check=False,
    )
