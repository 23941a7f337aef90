"""The live setup checks: what must hold in both systems before syncd writes anything.

``check`` asks each connector to authenticate (``check``), to compare its live schema
with the mapping (``schema_problems``: fields and properties exist, have a compatible
type, are writable where they are written; the partner-id field exists, is unique and
writable on every synced kind), and checks the stage vocabulary against the live
picklists and the won/lost stages. Every problem is one line: the file, line and key
of the configuration at fault, and what the admin must create or change in which
system. A blocking problem stops every write (``gate``): ``syncd once`` and ``syncd
run`` refuse to cycle; ``syncd validate`` lists them all (``--json`` as objects).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd import registry
from syncd.abc import Connector
from syncd.config.settings import Config
from syncd.config.yamlfile import YamlDocument, load_yaml
from syncd.errors import ConnectorError
from syncd.model import SchemaProblem
from syncd.sync import gate as crm_gate
from syncd.sync import outcomes, sla


@dataclass(frozen=True, slots=True)
class Problem:
    """One setup problem, located in the configuration when the configuration is at fault."""

    message: str
    """What is wrong, and what the admin must create or change in which system."""
    system: str | None = None
    blocking: bool = True
    file: str | None = None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        if self.file is None:
            text = f"{self.system}: {self.message}"
        else:
            where = f"{self.file}:{self.line}" if self.line else self.file
            text = f"{where}: {self.key}: {self.message}"
        return text if self.blocking else f"{text} (warning: writes go on)"

    def as_dict(self) -> dict[str, Any]:
        """The ``syncd validate --json`` shape."""
        return {
            "file": self.file,
            "line": self.line,
            "key": self.key,
            "system": self.system,
            "message": self.message,
            "blocking": self.blocking,
        }


@dataclass(frozen=True, slots=True)
class Result:
    """Every problem found, and the systems that answered."""

    problems: list[Problem] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> list[Problem]:
        return [p for p in self.problems if p.blocking]


def check(config: Config, connectors: Sequence[Connector]) -> Result:
    """Run every live check against ``connectors`` (the marketing system, then the CRM)."""
    where = _Locator(config)
    result = Result()
    for connector in connectors:
        name = connector.system
        try:
            connector.check()
            written = registry.written_fields(config, name)
            found = connector.schema_problems(written)
            result.problems.extend(where.schema(name, p) for p in found)
            result.problems.extend(_vocabulary(config, connector, where))
        except ConnectorError as error:  # what happened, what to check, what it said
            result.problems.append(Problem(str(error).removeprefix(f"{error.system}: "), name))
        else:
            result.checked.append(name)
    return result


def gate(config: Config, engine: Any) -> Result:
    """Check ``engine``'s two systems and block its writes while a check fails
    (``Engine.blocked``); unblock them once every blocking check passes."""
    result = check(config, [engine.marketing, engine.crm])
    engine.blocked = tuple(str(p) for p in result.blocking)
    return result


def _vocabulary(config: Config, connector: Connector, where: _Locator) -> list[Problem]:
    """Stage values the live picklists lack; deal stages whose won/lost disagrees."""
    name = connector.system
    picklists = connector.picklists()
    outcomes = connector.stage_outcomes()
    live = connector.stage_values()
    problems = []
    for obj, obj_rules in registry.rules(config).items():
        vocabulary = obj_rules.vocabulary
        if vocabulary is None:
            continue
        for stage, native, value in vocabulary.check_picklists(name, picklists):
            problems.append(
                where.stage(
                    obj,
                    stage,
                    [name, native],
                    f"{value!r} is not a value of {name}'s {native} picklist"
                    f" (use the value's API name, not its label)",
                    name,
                )
            )
        if obj == "deal":
            for stage, message in vocabulary.check_outcomes(name, outcomes):
                problems.append(where.stage(obj, stage, [name], message, name))
        for native, value, within in vocabulary.check_coverage(name, live):
            problems.append(
                where.uncovered(
                    obj,
                    f"{name} {native} {value!r}{within} is live but in no stage of {obj}:"
                    f" map it to a stage or list it under {obj}.ignore.{name}.{native}",
                    name,
                    native,
                )
            )
    return problems


class _Locator:
    """Turns connector findings into problems that name file, line and key."""

    def __init__(self, config: Config) -> None:
        self.config = config
        folder = config.path.parent
        self.syncd = _doc(config.path)
        self.fields = _doc(folder / config.syncd.fields)
        self.stages = _doc(folder / config.syncd.stages)
        self.objects: dict[str, dict[str, str]] = {}
        for name, system in config.syncd.systems.items():
            kinds = registry.KINDS.get(system.connector, {})
            self.objects[name] = {k: obj for obj, ks in kinds.items() for k in ks}

    def schema(self, name: str, found: SchemaProblem) -> Problem:
        if found.field is not None and found.field.startswith(crm_gate.HIDDEN):
            return self._at(self.syncd, crm_gate.config_key(self.config, found.field), found, name)
        if found.field is not None and found.field.startswith(outcomes.HIDDEN):
            return self._at(self.syncd, outcomes.config_key(found.field), found, name)
        if found.field is not None and found.field.startswith(sla.HIDDEN):
            return self._at(self.syncd, sla.config_key(found.field), found, name)
        if found.field is not None:
            obj = self.objects[name].get(found.kind, "")
            loc: list[str | int] = [obj, found.field, name]
            return self._at(self.fields, loc, found, name)
        loc = ["systems", name, "partner_id_field"]
        if not isinstance(self.config.syncd.systems[name].partner_id_field, str):
            loc.append(found.kind)
        return self._at(self.syncd, loc, found, name)

    def stage(
        self, obj: str, stage: str, rest: list[str | int], message: str, name: str
    ) -> Problem:
        index = next(
            (i for i, s in enumerate(self.config.stages.get(obj, ())) if s.name == stage), 0
        )
        root = self.stages[1].root if self.stages[1] is not None else {}
        nested = isinstance(root.get(obj) if isinstance(root, dict) else None, dict)
        loc: list[str | int] = [obj, *(["stages"] if nested else []), index, *rest]
        key = ".".join(str(p) for p in [obj, stage, *rest])
        file, doc = self.stages
        line = doc.line_of(loc) if doc is not None else None
        return Problem(message, name, file=file, line=line, key=key)

    def uncovered(self, obj: str, message: str, name: str, native: str) -> Problem:
        """A live stage value ``stages.yaml`` neither maps nor ignores: located at the
        object (its ``ignore`` section when there is one)."""
        file, doc = self.stages
        line = doc.line_of([obj, "ignore", name, native]) if doc is not None else None
        return Problem(message, name, file=file, line=line, key=f"{obj}.ignore.{name}.{native}")

    @staticmethod
    def _at(
        source: tuple[str, YamlDocument | None],
        loc: list[str | int],
        found: SchemaProblem,
        name: str,
    ) -> Problem:
        file, doc = source
        line = doc.line_of(loc) if doc is not None else None
        key = ".".join(str(p) for p in loc)
        return Problem(found.message, name, found.blocking, file, line, key)


def _doc(path: Path) -> tuple[str, YamlDocument | None]:
    doc, _ = load_yaml(path)
    return str(path), doc
