"""Pydantic models of syncd.yaml, fields.yaml and stages.yaml, and the loader.

``read_config`` reads all three files, validates them and their cross-references, and
raises one ``ConfigError`` listing every problem with its file, line and key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from syncd.config.checks import (
    CADENCE_FLOOR,
    cadence_floor,
    named_file,
    objects,
    read_secrets,
    roles,
    system_problems,
)
from syncd.config.stage_reading import StageReading, holders_of, parse_reading
from syncd.config.yamlfile import YamlDocument, did_you_mean, load_yaml, validate
from syncd.errors import ConfigError, ConfigProblem
from syncd.logs import LEVELS as LOG_LEVELS
from syncd.model import FieldMap, FieldType
from syncd.state import url as store_url

Direction = Literal["both", "to_crm", "to_marketing"]
ConflictRule = Literal["crm_wins", "marketing_wins", "latest"]
WriteBack = Literal["immediate", "with_next_update"]
"""When a record learns the id of the partner syncd just created for it: in a batch of
its own right after the create, or with the next update syncd makes to it anyway."""
WRITE_BACK_CHOICES: tuple[WriteBack, ...] = ("immediate", "with_next_update")
OBJECTS = ("company", "person", "deal")
"""Synced objects, in the order a cycle runs them: parents exist before what refers to them."""
STAGE_FIELD = "stage"
DEFAULT_CADENCE_SECONDS = 30
"""The shipped cadence: a propagation p95 under a minute each way, idle cost under a tenth
of Salesforce's base daily limit (the arithmetic: ``syncd.daemon.cadence``, README)."""


class Strict(BaseModel):
    # use_attribute_docstrings: the docstring under each field is its description in the
    # JSON Schema and docs/configuration.md (syncd.config.schema)
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class SystemSettings(BaseModel):
    """One system: which connector drives it; the rest belongs to that connector."""

    model_config = ConfigDict(
        extra="allow",
        frozen=True,
        use_attribute_docstrings=True,
        title="System",
        json_schema_extra={
            "x-other-keys": "The connection keys its connector reads. HubSpot: host, auth"
            " (token or oauth), access_token_env or client_id_env, client_secret_env and"
            " refresh_token_env, oauth_token_path, search_settle_seconds. Salesforce: login_url"
            " (the My Domain), auth (client_credentials or jwt), client_id_env,"
            " client_secret_env, username, private_key_file, audience, connect_to, api_version,"
            " duplicate_rule_allow_save, max_concurrent_requests. Both: timeout, daily_budget,"
            " daily_limit, rate_limit, search_rate_limit, overlap_minutes,"
            " deletion_sweep_minutes, association_sweep_minutes, ca_bundle. The README and"
            " the syncd.yaml `syncd init` writes explain each."
        },
    )
    connector: str
    """The connector that drives this system: hubspot or salesforce."""
    partner_id_field: str | dict[str, str]
    """The field holding the other system's id: one name for every synced kind, or one
    per native kind (``{Lead: X__c, Contact: X__c, Account: Y__c, Opportunity: Z__c}``)."""
    partner_id_write_back: WriteBack | None = None
    """When this system's records learn the id of a partner syncd created for them:
    ``immediate`` (one more batch write, which the next cycle reads back) or
    ``with_next_update`` (no call of its own). None: the connector's default
    (``syncd.registry.WRITE_BACK``)."""

    @field_validator("partner_id_write_back", mode="before")
    @classmethod
    def _write_back(cls, value: object) -> object:
        if value is not None and value not in WRITE_BACK_CHOICES:
            raise ValueError(f"{value!r}: one of {', '.join(WRITE_BACK_CHOICES)}")
        return value

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PeopleSettings(Strict):
    """`people:` how people are created and recycled."""

    new_marketing_person_becomes: Literal["Lead", "Contact"] = "Lead"
    """The CRM kind a new marketing person is created as (Lead or Contact)."""
    recycle_reason_field: str | None = None
    """The person field holding why a person was recycled: read into the stage history
    when sales recycles a lead, written to both systems when a lost deal recycles one."""


Attribution = Literal["contact_roles", "converted_lead", "account_contacts"]
ATTRIBUTION_RULES: tuple[Attribution, ...] = ("contact_roles", "converted_lead", "account_contacts")


class DealSettings(Strict):
    """`deals:` who hears of a deal's outcome."""

    attribution: list[Attribution] = Field(default_factory=lambda: list(ATTRIBUTION_RULES))
    """Who a deal's outcome is written back to, first rule that finds people wins:
    its contacts (contact roles / associations), the person whose lead was converted
    into it, then every person of its company."""
    associate_attributed: bool = True
    """Associate the people a deal's outcome is attributed to by converted_lead or
    account_contacts with the marketing system's deal (HubSpot: deal-contact
    associations, which its revenue attribution reads), once; never carried to the CRM
    as contact roles, never removed."""
    person_revenue_property: str | None = None
    """A marketing-system person property (a number) to hold the person's won revenue:
    the sum of the amounts of the won deals attributed to them. None: not written."""
    person_last_outcome_property: str | None = None
    """A marketing-system person property (text) to hold the outcome of the person's
    latest closed deal (won or lost). None: not written."""


class GateSettings(Strict):
    """`gate:` which marketing people are created in the CRM. Every condition set must
    hold (AND); a condition left out does not count. People held back stay in the
    marketing system only and cross as soon as they pass; people already linked keep
    syncing whatever the gate says. No `gate:` at all: everyone crosses."""

    min_stage: str | None = None
    """The person stage (stages.yaml) a person must be at, or later in its order:
    `mql` lets mql, sal, sql, ... cross. A recycle stage (nurture, disqualified) never
    passes it, nor a person whose stage reads as no stage."""
    property_equals: dict[str, str] = Field(default_factory=dict)
    """Marketing-system properties and the value each must hold (compared ignoring case
    and surrounding blanks), e.g. {sync_to_crm: "true"}."""
    min_score: float | None = None
    """The score a person must reach (score_property >= min_score); blank scores do not."""
    score_property: str = "hubspotscore"
    """The marketing-system property holding the score (a number property); read through
    its canonical field when fields.yaml maps it."""


class SlaTaskSettings(Strict):
    """`sla.crm_task:` the CRM task written for the owner of a hand-off past its SLA."""

    enabled: bool = False
    """Write the task (off by default: reps get tasks only when RevOps decides so)."""
    subject: str = Field(default="Follow up: marketing hand-off past its SLA", min_length=1)
    """The task's subject (up to 255 characters are kept)."""
    due_in_hours: float = Field(default=0, ge=0)
    """The task is due this long after the breach was seen (its date, in UTC)."""


class SlaPropertySettings(Strict):
    """`sla.marketing_property:` the marketing contact property marking the breach."""

    enabled: bool = False
    """Set the property ("true") on the breach and clear it ("") when the touch comes."""
    property: str = Field(default="syncd_sla_breached", min_length=1)
    """A contact property the admin created (a single checkbox)."""


class SlaSettings(Strict):
    """`sla:` a hand-off past ``report.speed_to_lead_sla_hours`` with no touch is
    written back, once, in each team's tool (``syncd.sync.sla``)."""

    crm_task: SlaTaskSettings = SlaTaskSettings()
    """A task in the CRM for the person's owner (a Salesforce Task)."""
    marketing_property: SlaPropertySettings = SlaPropertySettings()
    """A flag on the marketing contact (a HubSpot property), so marketing can re-route."""
    look_back_days: int = Field(default=7, ge=1)
    """Only hand-offs this recent are written back (not a whole history at first run)."""


class QualitySettings(Strict):
    """`report.quality:` lead quality by score and by source: what marketing knew at the
    hand-off (stored with the hand-off transition) against what sales made of it."""

    score_field: str | None = "lead_score"
    """The person field holding the marketing score (a number); null: no score bands."""
    grade_field: str | None = None
    """A person field holding a grade or fit (A, B, ...), where one is mapped."""
    source_field: str | None = None
    """The person field holding the source; default: ``report.source_field``."""
    score_bands: list[float] = Field(default=[0, 25, 50, 75, 100], min_length=2)
    """Band edges, ascending: [0, 25, 50] makes the bands 0-25 and 25-50 (the last edge
    included); a score outside them is counted apart."""
    thresholds: list[float] = Field(default=[20, 40, 60, 80])
    """Candidate MQL score thresholds: what each would have handed off, and its win rate."""
    accepted_stage: str | None = None
    """The person stage that means sales accepted a hand-off; default: the stage after
    ``report.handoff_stage`` in stages.yaml."""
    min_deals: int = Field(default=5, ge=1)
    """A win rate drawn from fewer closed deals than this is shown as "n<5", not as a rate."""

    @field_validator("score_bands")
    @classmethod
    def _ascending(cls, value: list[float]) -> list[float]:
        if any(low >= high for low, high in pairwise(value)):
            raise ValueError(f"the band edges {value} must go strictly up")
        return value


class ReportSettings(Strict):
    """`report:` what `syncd report` measures."""

    handoff_stage: str = "mql"
    """The person stage at which marketing hands a lead to sales."""
    speed_to_lead_sla_hours: float = Field(default=24, gt=0)
    """A hand-off not followed up within this many hours is over the SLA."""
    source_field: str = "lead_source"
    """The person field the report groups by."""
    days: int = Field(default=90, gt=0)
    """The default period: the last ``days`` days."""
    currency: str = "USD"
    """The ISO 4217 code of the deals' amounts (one currency: amounts are summed as they are)."""
    touches: bool = True
    """Read the CRM's sales activities (Salesforce tasks and events on leads and contacts)
    and measure speed to lead from hand-off to first touch; false: by stage transitions."""
    quality: QualitySettings = QualitySettings()
    """The lead-quality section: which fields are score, grade and source, the bands."""

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(f"{value!r} is no ISO 4217 currency code (three capitals: USD, EUR)")
        return value


class DaemonSettings(Strict):
    """`daemon:` the service (`syncd run`): lease, shutdown, schedule, metrics."""

    lease_seconds: float = Field(default=30, gt=0)
    """A standby takes over at most this long after the active daemon died (SQLite)."""
    shutdown_timeout_seconds: float = Field(default=60, gt=0)
    """SIGTERM: the batch in flight gets this long to finish and commit."""
    misfire_grace_seconds: float = Field(default=30, gt=0)
    """A cycle that could not start within this of its time is skipped, not run late."""
    progress_log_seconds: float = Field(default=10, gt=0)
    """While a cycle runs, a progress line is logged this often (object, records read
    and written so far per system, rates)."""
    resync_poll_seconds: float = Field(default=2, gt=0)
    """How often the daemon looks for manual resync requests."""
    preflight_retry_seconds: float = Field(default=60, gt=0)
    """While a blocking setup check fails, the daemon writes nothing and checks again
    this often, so that an admin's fix is picked up without a restart."""
    log_json: bool | None = None
    """One JSON object a log line; default: when stderr is not a terminal."""
    metrics: str | None = "127.0.0.1:9464"
    """Where /metrics (Prometheus) and /healthz listen, HOST:PORT; empty: nowhere."""

    @field_validator("metrics")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if not value:
            return value
        host, colon, port = value.rpartition(":")
        if not colon or not port.isdigit() or not 0 <= int(port) <= 65535 or " " in host:
            raise ValueError(
                f"{value!r} is no HOST:PORT address (e.g. 127.0.0.1:9464; port 0 to 65535);"
                " empty turns the metrics off"
            )
        return value


class SyncdSettings(Strict):
    """syncd.yaml: the store, the two systems and how syncd runs."""

    store: str = "sqlite:///syncd.db"
    """The state store: sqlite:///PATH (relative to this file's folder) or
    postgresql+psycopg://USER@HOST/DB; SYNCD_STORE_URL overrides it."""
    marketing: str
    """The system under `systems` that is the marketing automation (hubspot)."""
    crm: str
    """The system under `systems` that is the CRM (salesforce)."""
    systems: dict[str, SystemSettings]
    """Per system, its connection: the connector, where it is, which environment
    variables hold its credentials, the pace; the connector reads the keys it knows."""
    cadence_seconds: dict[str, int] = Field(
        default_factory=lambda: dict.fromkeys(OBJECTS, DEFAULT_CADENCE_SECONDS)
    )
    """Seconds between two cycles of each object; an object left out gets the default
    (``syncd.daemon.cadence`` has the arithmetic of its idle cost and propagation time)."""
    people: PeopleSettings = PeopleSettings()
    """How people are created and recycled."""
    deals: DealSettings = DealSettings()
    """Who hears of a deal's outcome."""
    report: ReportSettings = ReportSettings()
    """What `syncd report` measures."""
    sla: SlaSettings = SlaSettings()
    """Hand-offs past their SLA, written back to the CRM and the marketing system."""
    daemon: DaemonSettings = DaemonSettings()
    """The service: lease, shutdown, schedule, metrics."""
    gate: GateSettings | None = None
    """Which marketing people are created in the CRM (none: every one)."""
    secrets_file: str | None = None
    """A file of KEY=VALUE lines holding the credentials (mode 0600), relative to this
    file's folder; the environment wins over it."""
    fields: str = "fields.yaml"
    """The field mapping file, relative to this file's folder."""
    stages: str = "stages.yaml"
    """The stage vocabulary file, relative to this file's folder."""
    journal_retention_days: int = Field(default=90, ge=1)
    """Days the journal keeps what each cycle did (``syncd explain``); the entries the
    closed loop and conversions still read are kept whatever their age."""
    log_level: str | None = None
    """debug, info, warning or error; ``--log-level`` overrides it. None: info for the
    daemon, warning for ``syncd once`` (which prints its own report)."""

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or value.lower() not in LOG_LEVELS:
            raise ValueError(f"{value!r} is not a log level: one of {', '.join(LOG_LEVELS)}")
        return value.lower()

    @field_validator("store")
    @classmethod
    def _store(cls, value: str) -> str:
        found = store_url.problem(value)
        if found:
            raise ValueError(found)
        return value

    @field_validator("cadence_seconds")
    @classmethod
    def _cadence(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(OBJECTS))
        if unknown:
            raise ValueError(f"unknown object {', '.join(unknown)} (known: {', '.join(OBJECTS)})")
        idle = sorted(obj for obj, seconds in value.items() if seconds <= 0)
        if idle:
            raise ValueError(f"{', '.join(idle)}: {CADENCE_FLOOR}")
        return {**dict.fromkeys(OBJECTS, DEFAULT_CADENCE_SECONDS), **value}


class FieldRule(BaseModel):
    """One canonical field: its native names per system and how it syncs."""

    model_config = ConfigDict(extra="allow", frozen=True, use_attribute_docstrings=True)
    type: FieldType | Literal["stage", "ref", "refs"] = "string"
    """How values compare and normalize; ``stage``: the object's stage (stages.yaml);
    ``ref``: the id of one record of ``target``; ``refs``: of several (associations)."""
    direction: Direction = "both"
    """Which way changes flow: both, to_crm or to_marketing."""
    conflict: ConflictRule = "latest"
    """Who wins when both sides changed the field since the last sync."""
    blank_overwrites: bool = False
    """Whether a value emptied on one side empties it on the other."""
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


class StageFields(Strict):
    """The keys of one stage in stages.yaml besides its native values."""

    name: str
    """The stage's name in syncd (the journal, the report)."""
    label: str | None = None
    """How the report names it; default: the name."""
    recycle: bool = False
    """A stage that can be entered from any stage and left for any (nurture,
    disqualified): sales sends a person back to marketing."""
    outcome: Literal["won", "lost"] | None = None
    """A deal stage that closes the deal, won or lost."""
    people: str | None = None
    """The person stage a deal's people move to when the deal enters this stage."""


STAGED_KEYS = ("moves", "read", "ignore", "stages")
"""The keys of an object of stages.yaml written as a mapping, not a plain list."""


class StageDef(StageFields):
    """A stage, validated: its keys and its native values per system."""

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
        """The store in effect: ``store:`` of syncd.yaml unless SYNCD_STORE_URL overrides it;
        a relative SQLite path is relative to the folder of syncd.yaml."""
        url = os.environ.get(store_url.ENV) or self.syncd.store
        return store_url.resolve(url, self.path.parent)

    @property
    def store_source(self) -> str:
        """Where the store in effect was named: the environment or syncd.yaml's line."""
        if os.environ.get(store_url.ENV):
            return f"{store_url.ENV} in the environment, overriding store: of {self.path}"
        doc, _ = load_yaml(self.path)
        if doc is not None and isinstance(doc.root, dict) and "store" in doc.root:
            return f"{self.path}:{doc.line_of(['store'])} (store)"
        return f"the default: {self.path} names no store"

    def problem(self, loc: Sequence[str | int], message: str) -> ConfigProblem:
        """A problem of syncd.yaml at ``loc``, located to its line."""
        doc, _ = load_yaml(self.path)
        if doc is None:
            key = ".".join(str(p) for p in loc)
            return ConfigProblem(str(self.path), None, key, message)
        return doc.problem(loc, message)

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


def _fields(doc: YamlDocument, systems: set[str]) -> tuple[dict, list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    result: dict[str, dict[str, FieldRule]] = {}
    root, problems = objects(doc, "fields")
    for obj in root:
        if obj not in OBJECTS:
            problems.append(doc.problem([obj], _unknown_object(obj)))
            continue
        result[obj] = {}
        if not isinstance(root[obj], dict):
            problems.append(
                doc.problem([obj], "a mapping of field name: {hubspot, salesforce, ...}")
            )
            continue
        for name in root[obj]:
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
                    problems.append(doc.problem([obj, name, system], _unknown_key(system, systems)))
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
    ``syncd.config.stage_reading`` for ``read`` and ``ignore``).
    """
    problems: list[ConfigProblem] = []
    result: dict[str, tuple[StageDef, ...]] = {}
    moves: dict[str, str] = {}
    readings: dict[str, StageReading] = {}
    root, problems = objects(doc, "stages")
    for obj in root:
        if obj not in OBJECTS:
            problems.append(doc.problem([obj], _unknown_object(obj)))
            continue
        items, at = root[obj], [obj]
        node = items if isinstance(items, dict) else {}
        if isinstance(items, dict):  # {moves: forward | any, read, ignore, stages: [...]}
            unknown = set(items) - set(STAGED_KEYS)
            for key in sorted(unknown):
                sections = STAGED_KEYS
                problems.append(
                    doc.problem(
                        [obj, key],
                        f"unknown key {key}{did_you_mean(str(key), sections)}"
                        f" (known: {', '.join(sections)})",
                    )
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
            known = tuple(StageFields.model_fields)
            raw = {k: item[k] for k in item if k in known}
            values = {str(k): item[k] for k in item if k not in known}
            for system, native in values.items():
                if system not in systems:
                    problems.append(
                        doc.problem([*at, index, system], _unknown_key(system, systems, known))
                    )
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


def read_config(path: str | Path, checks: Sequence[Check] = ()) -> Config:
    """Load and validate syncd.yaml and the fields and stages files it names, and run
    ``checks`` on the result; raise one ``ConfigError`` with every problem found.

    ``syncd.config.load.load_config`` adds the checks only the registry can make (the
    connectors, known there by name): call that, not this."""
    path = Path(path)
    doc, problems = load_yaml(path)
    settings = None
    if doc is not None:
        settings, found = _settings(doc)
        problems += found
    if settings is None or doc is None:
        raise ConfigError(problems)
    problems += roles(doc, settings)
    problems += cadence_floor(doc, settings)
    problems += system_problems(doc, settings.systems)
    env_url = os.environ.get(store_url.ENV)
    if env_url and store_url.problem(env_url):
        problems.append(
            ConfigProblem(
                f"{store_url.ENV} (environment)",
                None,
                store_url.ENV,
                str(store_url.problem(env_url)),
            )
        )
    systems = set(settings.systems)
    fields: dict = {}
    stages: dict = {}
    moves: dict[str, str] = {}
    readings: dict[str, StageReading] = {}
    fields_doc, found = named_file(doc, "fields", path.parent / settings.fields)
    problems += found
    if fields_doc is not None:
        fields, found = _fields(fields_doc, systems)
        problems += found
    stages_doc, found = named_file(doc, "stages", path.parent / settings.stages)
    problems += found
    if stages_doc is not None:
        stages, moves, readings, found = _stages(stages_doc, systems)
        problems += found
        problems += _cross_check(doc, stages_doc, stages, settings)
    problems += _gate_score(doc, settings, fields)
    reason = settings.people.recycle_reason_field
    if reason and fields and reason not in fields.get("person", {}):
        problems.append(
            doc.problem(["people", "recycle_reason_field"], f"no person field {reason}")
        )
    problems += _quality_fields(doc, settings, fields)
    secrets: dict[str, str] = {}
    if settings.secrets_file:
        secrets, problem = read_secrets(path.parent / settings.secrets_file)
        if problem is not None and problem.line is None:  # unreadable: blame the key naming it
            problem = doc.problem(["secrets_file"], f"{problem.file}: {problem.message}")
        if problem is not None:
            problems.append(problem)
    config = Config(path, settings, fields, stages, secrets, moves, readings)
    for check in checks:
        problems += check(config)
    if problems:
        raise ConfigError(problems)
    return config


def _quality_fields(
    doc: YamlDocument, settings: SyncdSettings, fields: Mapping[str, Any]
) -> list[ConfigProblem]:
    """The lead-quality section's fields are person fields of fields.yaml."""
    person = fields.get("person", {})
    if not person:
        return []
    quality = settings.report.quality
    named = {
        "score_field": quality.score_field,
        "grade_field": quality.grade_field,
        "source_field": quality.source_field,
    }
    return [
        doc.problem(["report", "quality", key], f"no person field {name}")
        for key, name in named.items()
        if name and name not in person
    ]


Check = Callable[["Config"], list[ConfigProblem]]
"""A check of a whole configuration, run by ``read_config`` with all the others."""


def _settings(doc: YamlDocument) -> tuple[SyncdSettings | None, list[ConfigProblem]]:
    """syncd.yaml validated; a refused optional section is set aside (its problems kept)
    so that the other files are still checked and every problem reported at once."""
    settings, problems = validate(doc, SyncdSettings)
    if settings is not None or not isinstance(doc.root, dict):
        return settings, problems
    refused = {p.key.split(".")[0] for p in problems}
    required = {n for n, f in SyncdSettings.model_fields.items() if f.is_required()}
    if refused & required:
        return None, problems
    kept = YamlDocument(doc.path, {k: v for k, v in doc.root.items() if k not in refused})
    settings, _ = validate(kept, SyncdSettings)
    return settings, problems


def _unknown_object(obj: object) -> str:
    return f"unknown object {obj}{did_you_mean(str(obj), OBJECTS)} (known: {', '.join(OBJECTS)})"


def _unknown_key(key: object, systems: set[str], keys: Sequence[str] | set[str] = ()) -> str:
    """A key that is neither a known key nor a system: probably a misspelt key."""
    keys = keys or [k for k in FieldRule.model_fields]
    hint = did_you_mean(str(key), keys)
    if hint:
        return f"unknown key {key}{hint}"
    return f"unknown system {key} (systems: {', '.join(sorted(systems))}; keys: {', '.join(keys)})"


def _cross_check(
    doc: YamlDocument,
    stages_doc: YamlDocument,
    stages: Mapping[str, tuple[StageDef, ...]],
    settings: SyncdSettings,
) -> list[ConfigProblem]:
    """Deal stages name person stages that exist; so does the report's hand-off stage."""
    problems = []
    people = {s.name for s in stages.get("person", ())}
    for index, stage in enumerate(stages.get("deal", ())):
        if stage.people is not None and stage.people not in people:
            problems.append(
                stages_doc.problem(
                    ["deal", "stages", index, "people"], f"no person stage {stage.people}"
                )
            )
    problems += _gate_stage(doc, settings, people)
    for key, named in (
        (["report", "handoff_stage"], settings.report.handoff_stage),
        (["report", "quality", "accepted_stage"], settings.report.quality.accepted_stage),
    ):
        if people and named is not None and named not in people:
            problems.append(
                doc.problem(
                    key,
                    f"no person stage {named} in {settings.stages}{did_you_mean(named, people)}",
                )
            )
    return problems


def _gate_stage(
    doc: YamlDocument, settings: SyncdSettings, people: set[str]
) -> list[ConfigProblem]:
    """The gate's ``min_stage`` names a person stage of stages.yaml."""
    wanted = settings.gate.min_stage if settings.gate else None
    if wanted is None or wanted in people:
        return []
    message = f"no person stage {wanted} in {settings.stages}{did_you_mean(wanted, people)}"
    return [doc.problem(["gate", "min_stage"], message)]


def _gate_score(
    doc: YamlDocument, settings: SyncdSettings, fields: Mapping[str, Mapping[str, FieldRule]]
) -> list[ConfigProblem]:
    """The gate's score property, where fields.yaml maps it, is a number field there (an
    unmapped one is checked against the live schema, as a number, by ``syncd validate``)."""
    gate = settings.gate
    if gate is None or gate.min_score is None:
        return []
    for name, rule in fields.get("person", {}).items():
        if rule.native().get(settings.marketing) == gate.score_property and rule.type != "number":
            message = (
                f"{gate.score_property} is mapped in {settings.fields} as person field"
                f" {name} of type {rule.type}: a score must be a number (type: number)"
            )
            return [doc.problem(["gate", "score_property"], message)]
    return []
