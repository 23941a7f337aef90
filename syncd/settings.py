"""Pydantic models of syncd.yaml, fields.yaml and stages.yaml, and the loader.

``load_config`` reads all three files, validates them and their cross-references, and
raises one ``ConfigError`` listing every problem with its file, line and key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from syncd.errors import ConfigError, ConfigProblem
from syncd.model import FieldMap, FieldType
from syncd.yamlfile import YamlDocument, load_yaml, validate

Direction = Literal["both", "to_crm", "to_marketing"]
ConflictRule = Literal["crm_wins", "marketing_wins", "latest"]
OBJECTS = ("person",)
STAGE_FIELD = "stage"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemSettings(BaseModel):
    """One system: which connector drives it; the rest belongs to that connector."""

    model_config = ConfigDict(extra="allow", frozen=True)
    connector: str
    partner_id_field: str

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class PeopleSettings(Strict):
    new_marketing_person_becomes: str = "Lead"
    """The CRM kind a new marketing person is created as (Lead or Contact)."""


class SyncdSettings(Strict):
    store: str = "sqlite:///syncd.db"
    marketing: str
    crm: str
    systems: dict[str, SystemSettings]
    cadence_seconds: dict[str, int] = Field(default_factory=lambda: {"person": 60})
    people: PeopleSettings = PeopleSettings()
    secrets_file: str | None = None
    fields: str = "fields.yaml"
    stages: str = "stages.yaml"


class FieldRule(BaseModel):
    """One canonical field: its native names per system and how it syncs."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: FieldType | Literal["stage"] = "string"
    direction: Direction = "both"
    conflict: ConflictRule = "latest"
    blank_overwrites: bool = False

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
        for name, rule in self.fields[obj].items():
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
        return {n: r.type for n, r in self.fields[obj].items() if r.type != "stage"}

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
            for system, native in rule.native().items():
                if system not in systems:
                    problems.append(doc.problem([obj, name, system], "unknown system"))
                elif not isinstance(native, str | dict):
                    problems.append(
                        doc.problem([obj, name, system], "a field name or {kind: field name}")
                    )
            result[obj][str(name)] = rule
        if "email" not in result[obj]:
            problems.append(doc.problem([obj], "people need an 'email' field to be matched"))
    return result, problems


def _stages(doc: YamlDocument, systems: set[str]) -> tuple[dict, list[ConfigProblem]]:
    problems: list[ConfigProblem] = []
    result: dict[str, tuple[StageDef, ...]] = {}
    root = doc.root if isinstance(doc.root, dict) else {}
    for obj in root:
        if obj not in OBJECTS:
            problems.append(doc.problem([obj], f"unknown object (known: {', '.join(OBJECTS)})"))
            continue
        items = root[obj]
        if not isinstance(items, list) or not items:
            problems.append(doc.problem([obj], "a list of stages, in funnel order"))
            continue
        stages: list[StageDef] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                problems.append(doc.problem([obj, index], "a stage needs a name"))
                continue
            known = {"name", "label", "recycle"}
            raw = {k: item[k] for k in item if k in known}
            values = {str(k): item[k] for k in item if k not in known}
            for system, native in values.items():
                if system not in systems:
                    problems.append(doc.problem([obj, index, system], "unknown system"))
                elif not isinstance(native, dict) or not all(
                    isinstance(v, str | int) for v in native.values()
                ):
                    problems.append(
                        doc.problem([obj, index, system], "a mapping of native field: value")
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
                    problems.append(doc.problem([obj, index, *where], e["msg"]))
                continue
            if any(s.name == stage.name for s in stages):
                problems.append(doc.problem([obj, index, "name"], f"duplicate stage {stage.name}"))
            stages.append(stage)
        result[obj] = tuple(stages)
    return result, problems


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
    fields_doc, found = load_yaml(path.parent / settings.fields)
    problems += found
    if fields_doc is not None:
        fields, found = _fields(fields_doc, systems)
        problems += found
    stages_doc, found = load_yaml(path.parent / settings.stages)
    problems += found
    if stages_doc is not None:
        stages, found = _stages(stages_doc, systems)
        problems += found
    secrets: dict[str, str] = {}
    if settings.secrets_file:
        secrets_path = path.parent / settings.secrets_file
        try:
            secrets = _read_secrets(secrets_path)
        except OSError as error:
            problems.append(doc.problem(["secrets_file"], f"cannot read: {error.strerror}"))
    if problems:
        raise ConfigError(problems)
    return Config(path, settings, fields, stages, secrets)
