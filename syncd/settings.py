"""Pydantic models of syncd.yaml, fields.yaml and stages.yaml, and the loader.

``load_config`` reads all three files, validates them and their cross-references, and
raises one ``ConfigError`` listing every problem with its file, line and key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from syncd.errors import ConfigError, ConfigProblem
from syncd.model import FieldMap, FieldType
from syncd.stage_reading import StageReading, holders_of, parse_reading
from syncd.yamlfile import YamlDocument, load_yaml, validate

Direction = Literal["both", "to_crm", "to_marketing"]
ConflictRule = Literal["crm_wins", "marketing_wins", "latest"]
OBJECTS = ("company", "person", "deal")
"""Synced objects, in the order a cycle runs them: parents exist before what refers to them."""
STAGE_FIELD = "stage"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemSettings(BaseModel):
    """One system: which connector drives it; the rest belongs to that connector."""

    model_config = ConfigDict(extra="allow", frozen=True)
    connector: str
    partner_id_field: str | dict[str, str]
    """The field holding the other system's id: one name for every synced kind, or one
    per native kind (``{Lead: X__c, Contact: X__c, Account: Y__c, Opportunity: Z__c}``)."""

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PeopleSettings(Strict):
    new_marketing_person_becomes: str = "Lead"
    """The CRM kind a new marketing person is created as (Lead or Contact)."""
    recycle_reason_field: str | None = None
    """The person field holding why a person was recycled: read into the stage history
    when sales recycles a lead, written to both systems when a lost deal recycles one."""


Attribution = Literal["contact_roles", "converted_lead", "account_contacts"]
ATTRIBUTION_RULES: tuple[Attribution, ...] = ("contact_roles", "converted_lead", "account_contacts")


class DealSettings(Strict):
    attribution: list[Attribution] = Field(default_factory=lambda: list(ATTRIBUTION_RULES))
    """Who a deal's outcome is written back to, first rule that finds people wins:
    its contacts (contact roles / associations), the person whose lead was converted
    into it, then every person of its company."""


class ReportSettings(Strict):
    handoff_stage: str = "mql"
    """The person stage at which marketing hands a lead to sales."""
    speed_to_lead_sla_hours: float = 24
    """A hand-off not followed up within this many hours is over the SLA."""
    source_field: str = "lead_source"
    """The person field the report groups by."""
    days: int = 90
    """The default period: the last ``days`` days."""


class DaemonSettings(Strict):
    lease_seconds: float = 30
    """A standby takes over at most this long after the active daemon died (SQLite)."""
    shutdown_timeout_seconds: float = 60
    """SIGTERM: the batch in flight gets this long to finish and commit."""
    misfire_grace_seconds: float = 30
    """A cycle that could not start within this of its time is skipped, not run late."""
    resync_poll_seconds: float = 2
    """How often the daemon looks for manual resync requests."""
    preflight_retry_seconds: float = 60
    """While a blocking setup check fails, the daemon writes nothing and checks again
    this often, so that an admin's fix is picked up without a restart."""
    log_json: bool | None = None
    """One JSON object a log line; default: when stderr is not a terminal."""
    metrics: str | None = "127.0.0.1:9464"
    """Where /metrics (Prometheus) and /healthz listen, HOST:PORT; empty: nowhere."""


class SyncdSettings(Strict):
    store: str = "sqlite:///syncd.db"
    marketing: str
    crm: str
    systems: dict[str, SystemSettings]
    cadence_seconds: dict[str, int] = Field(
        default_factory=lambda: {"company": 60, "person": 60, "deal": 60}
    )
    people: PeopleSettings = PeopleSettings()
    deals: DealSettings = DealSettings()
    report: ReportSettings = ReportSettings()
    daemon: DaemonSettings = DaemonSettings()
    secrets_file: str | None = None
    fields: str = "fields.yaml"
    stages: str = "stages.yaml"


class FieldRule(BaseModel):
    """One canonical field: its native names per system and how it syncs."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: FieldType | Literal["stage", "ref", "refs"] = "string"
    """``ref``: the id of one record of ``target``; ``refs``: of several (associations)."""
    direction: Direction = "both"
    conflict: ConflictRule = "latest"
    blank_overwrites: bool = False
    target: str | None = None
    """The object a ``ref`` or ``refs`` field points at."""
    match: bool = False
    """Unlinked records with equal values of this field are the same (email, domain)."""
    values: list[dict[str, str]] = Field(default_factory=list)
    """Value pairs, one per line: {hubspot: X, salesforce: Y}. Values not listed do not
    sync (industries that differ in name, owners that differ in id)."""

    @field_validator("values", mode="before")
    @classmethod
    def _text_values(cls, value: object) -> object:
        if isinstance(value, list):
            return [
                {str(k): str(v) for k, v in e.items()} if isinstance(e, dict) else e for e in value
            ]
        return value

    @field_validator("direction", "conflict", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower().replace(" ", "_") if isinstance(value, str) else value

    def native(self) -> dict[str, str | dict[str, str]]:
        """Native field names by system: one name, or one per native kind."""
        return dict(self.model_extra or {})


class StageDef(Strict):
    name: str
    label: str | None = None
    recycle: bool = False
    outcome: Literal["won", "lost"] | None = None
    """A deal stage that closes the deal, won or lost."""
    people: str | None = None
    """The person stage a deal's people move to when the deal enters this stage."""
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Native stage values by system, e.g. {"hubspot": {"lifecyclestage": "lead"}}."""


@dataclass(frozen=True)
class Config:
    """Everything syncd reads from configuration, validated."""

    path: Path
    syncd: SyncdSettings
    fields: Mapping[str, Mapping[str, FieldRule]]
    stages: Mapping[str, tuple[StageDef, ...]]
    secrets: Mapping[str, str]
    moves: Mapping[str, str] = field(default_factory=dict)
    """Per object, how stages may move: ``forward`` (the default) or ``any``."""
    readings: Mapping[str, StageReading] = field(default_factory=dict)
    """Per object, how shared native values read and which are ignored (stages.yaml)."""

    @property
    def store_url(self) -> str:
        url = os.environ.get("SYNCD_STORE_URL") or self.syncd.store
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            relative = url.removeprefix("sqlite:///")
            if relative and relative != ":memory:":
                url = "sqlite:///" + str((self.path.parent / relative).resolve())
        return url

    def field_map(self, obj: str, system: str, kinds: list[str]) -> FieldMap:
        """Canonical -> native field names per native kind of ``system``."""
        result: dict[str, dict[str, str]] = {kind: {} for kind in kinds}
        for name, rule in self.fields.get(obj, {}).items():
            native = rule.native().get(system)
            if native is None:
                continue
            for kind in kinds:
                if isinstance(native, str):
                    result[kind][name] = native
                elif kind in native:
                    result[kind][name] = native[kind]
        return result

    def field_types(self, obj: str) -> dict[str, FieldType]:
        """Value types of the synced fields; references travel as text (native ids)."""
        types: dict[str, FieldType] = {}
        for name, rule in self.fields.get(obj, {}).items():
            if rule.type in ("ref", "refs"):
                types[name] = "string"
            elif rule.type not in ("stage", "ref", "refs"):
                types[name] = cast(FieldType, rule.type)
        return types

    def match_field(self, obj: str) -> str | None:
        """The field unlinked records of ``obj`` are matched on, if any."""
        found = next((n for n, r in self.fields.get(obj, {}).items() if r.match), None)
        return found or ("email" if obj == "person" else None)

    def stage_fields(self, obj: str, system: str) -> list[str]:
        names: list[str] = []
        for stage in self.stages.get(obj, ()):
            names.extend(k for k in stage.values.get(system, {}) if k not in names)
        return names

    def secret(self, name: str) -> str | None:
        return os.environ.get(name) or self.secrets.get(name)


def _read_secrets(path: Path) -> dict[str, str]:
    secrets: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            secrets[key.strip()] = value.strip().strip("'\"")
    return secrets


def _fields(doc: YamlDocument, systems: set[str]) -> tuple[dict, list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    result: dict[str, dict[str, FieldRule]] = {}
    root = doc.root if isinstance(doc.root, dict) else {}
    for obj in root:
        if obj not in OBJECTS:
            problems.append(doc.problem([obj], f"unknown object (known: {', '.join(OBJECTS)})"))
            continue
        result[obj] = {}
        for name in root[obj] or {}:
            rule, found = validate(doc, FieldRule, [obj, name])
            problems += found
            if rule is None:
                continue
            if rule.type in ("ref", "refs") and rule.target not in OBJECTS:
                problems.append(doc.problem([obj, name, "target"], f"one of {', '.join(OBJECTS)}"))
            for index, entry in enumerate(rule.values):
                missing = sorted(set(rule.native()) - set(entry))
                if missing:
                    problems.append(
                        doc.problem([obj, name, "values", index], f"needs {', '.join(missing)}")
                    )
            for system, native in rule.native().items():
                if system not in systems:
                    problems.append(doc.problem([obj, name, system], "unknown system"))
                elif not isinstance(native, str | dict):
                    problems.append(
                        doc.problem([obj, name, system], "a field name or {kind: field name}")
                    )
            result[obj][str(name)] = rule
        if obj == "person" and "email" not in result[obj]:
            problems.append(doc.problem([obj], "people need an 'email' field to be matched"))
    return result, problems


def _stages(
    doc: YamlDocument, systems: set[str]
) -> tuple[dict, dict[str, str], dict[str, StageReading], list[ConfigProblem]]:
    """Per object: its stages, how they move, how their native values read.

    An object is a list of stages, or ``{moves, read, ignore, stages}`` (see
    ``syncd.stage_reading`` for ``read`` and ``ignore``).
    """
    problems: list[ConfigProblem] = []
    result: dict[str, tuple[StageDef, ...]] = {}
    moves: dict[str, str] = {}
    readings: dict[str, StageReading] = {}
    root = doc.root if isinstance(doc.root, dict) else {}
    for obj in root:
        if obj not in OBJECTS:
            problems.append(doc.problem([obj], f"unknown object (known: {', '.join(OBJECTS)})"))
            continue
        items, at = root[obj], [obj]
        node = items if isinstance(items, dict) else {}
        if isinstance(items, dict):  # {moves: forward | any, read, ignore, stages: [...]}
            unknown = set(items) - {"moves", "stages", "read", "ignore"}
            for key in sorted(unknown):
                problems.append(
                    doc.problem([obj, key], "unknown key (known: moves, read, ignore, stages)")
                )
            moves[obj] = str(items.get("moves", "forward"))
            if moves[obj] not in ("forward", "any"):
                problems.append(doc.problem([obj, "moves"], "forward or any"))
            items, at = items.get("stages"), [obj, "stages"]
        if not isinstance(items, list) or not items:
            problems.append(doc.problem(at, "a list of stages, in funnel order"))
            continue
        stages: list[StageDef] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                problems.append(doc.problem([*at, index], "a stage needs a name"))
                continue
            known = {"name", "label", "recycle", "outcome", "people"}
            raw = {k: item[k] for k in item if k in known}
            values = {str(k): item[k] for k in item if k not in known}
            for system, native in values.items():
                if system not in systems:
                    problems.append(doc.problem([*at, index, system], "unknown system"))
                elif not isinstance(native, dict) or not all(
                    isinstance(v, str | int) for v in native.values()
                ):
                    problems.append(
                        doc.problem([*at, index, system], "a mapping of native field: value")
                    )
            native_values = {
                s: {str(k): str(v) for k, v in n.items()}
                for s, n in values.items()
                if isinstance(n, dict)
            }
            try:
                stage = StageDef.model_validate({**raw, "values": native_values})
            except ValidationError as error:
                for e in error.errors():
                    where = [p for p in e["loc"] if isinstance(p, str | int)]
                    problems.append(doc.problem([*at, index, *where], e["msg"]))
                continue
            if any(s.name == stage.name for s in stages):
                problems.append(doc.problem([*at, index, "name"], f"duplicate stage {stage.name}"))
            stages.append(stage)
        result[obj] = tuple(stages)
        readings[obj], found = parse_reading(doc, obj, node, holders_of(stages), systems)
        problems += found
    return result, moves, readings, problems


def load_config(path: str | Path) -> Config:
    """Load and validate syncd.yaml and the fields and stages files it names."""
    path = Path(path)
    doc, problems = load_yaml(path)
    settings = None
    if doc is not None:
        settings, found = validate(doc, SyncdSettings)
        problems += found
    if settings is None or doc is None:
        raise ConfigError(problems)
    for role in ("marketing", "crm"):
        if getattr(settings, role) not in settings.systems:
            problems.append(doc.problem([role], "names no system under 'systems'"))
    systems = set(settings.systems)
    fields: dict = {}
    stages: dict = {}
    moves: dict[str, str] = {}
    readings: dict[str, StageReading] = {}
    fields_doc, found = load_yaml(path.parent / settings.fields)
    problems += found
    if fields_doc is not None:
        fields, found = _fields(fields_doc, systems)
        problems += found
    stages_doc, found = load_yaml(path.parent / settings.stages)
    problems += found
    if stages_doc is not None:
        stages, moves, readings, found = _stages(stages_doc, systems)
        problems += found
        problems += _cross_check(stages_doc, stages, settings)
    # each connector checks its own options (sign-in URLs, flows); imported here because
    # the registry, the only module that knows the connectors, imports this one
    from syncd import registry

    problems += registry.option_problems(doc, settings)
    reason = settings.people.recycle_reason_field
    if reason and fields and reason not in fields.get("person", {}):
        problems.append(
            doc.problem(["people", "recycle_reason_field"], f"no person field {reason}")
        )
    secrets: dict[str, str] = {}
    if settings.secrets_file:
        secrets_path = path.parent / settings.secrets_file
        try:
            secrets = _read_secrets(secrets_path)
        except OSError as error:
            problems.append(doc.problem(["secrets_file"], f"cannot read: {error.strerror}"))
    if problems:
        raise ConfigError(problems)
    return Config(path, settings, fields, stages, secrets, moves, readings)


def _cross_check(
    doc: YamlDocument, stages: Mapping[str, tuple[StageDef, ...]], settings: SyncdSettings
) -> list[ConfigProblem]:
    """Deal stages name person stages that exist; so does the report's hand-off stage."""
    problems = []
    people = {s.name for s in stages.get("person", ())}
    for index, stage in enumerate(stages.get("deal", ())):
        if stage.people is not None and stage.people not in people:
            problems.append(
                doc.problem(["deal", "stages", index, "people"], f"no person stage {stage.people}")
            )
    if people and settings.report.handoff_stage not in people:
        problems.append(
            doc.problem(
                ["person"], f"report.handoff_stage {settings.report.handoff_stage} is no stage here"
            )
        )
    return problems
