"""How native stage values read, as the admin sets it in stages.yaml (``read`` and ``ignore``).

Several stages may share one native value (subscriber and lead are both "Open - Not
Contacted" in Salesforce). Writing such a stage is plain; reading the value back is a
choice, and the admin makes it, per object::

    person:
      read:
        salesforce:
          Status:
            Open - Not Contacted: lead       # a new Salesforce lead is a lead
            Closed - Converted: write-only   # written, never read as a stage
      ignore:
        salesforce: {Status: [Working - Follow Up]}
      stages: [...]

A value named under ``read`` reads as the stage given, which must be one of the stages
holding that value; ``write-only`` (or ``null``) means reading it keeps the current stage.
A shared value not named reads as the earliest stage holding it. Values under ``ignore``
are live values syncd leaves alone: a record holding one is never created on the other
side, and a linked one keeps its stage untouched on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.config.yamlfile import YamlDocument
from syncd.errors import ConfigProblem

WRITE_ONLY = "write-only"


@dataclass(frozen=True)
class StageReading:
    """One object's reading table: the admin's choices for native stage values."""

    read: Mapping[tuple[str, str, str], str | None] = field(default_factory=dict)
    """(system, field, value) -> the stage it reads as; None: write-only."""
    ignore: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    """(system, field) -> the live values syncd leaves alone."""

    def ignored(self, system: str, native: Mapping[str, str]) -> tuple[str, str] | None:
        """The (field, value) of ``native`` listed under ``ignore``, if any."""
        for name, value in native.items():
            if value in self.ignore.get((system, name), ()):
                return name, value
        return None


def parse_reading(
    doc: YamlDocument,
    obj: str,
    node: Mapping[str, Any],
    holders: Mapping[tuple[str, str, str], Sequence[str]],
    systems: set[str],
) -> tuple[StageReading, list[ConfigProblem]]:
    """The ``read`` and ``ignore`` keys of one object; every problem with its line.

    ``holders`` maps (system, field, value) to the stages holding that value, in order.
    """
    problems: list[ConfigProblem] = []
    fields = {(s, f) for s, f, _ in holders}
    read: dict[tuple[str, str, str], str | None] = {}
    for system, name, at, values in _fields_of(doc, obj, node, "read", systems, fields, problems):
        if not isinstance(values, dict):
            problems.append(doc.problem(at, "a mapping of native value: stage (or write-only)"))
            continue
        for value, target in values.items():
            where = [*at, value]
            held_by = holders.get((system, name, str(value)), ())
            if not held_by:
                problems.append(doc.problem(where, f"no stage of {obj} has {name} {value!r}"))
            elif target in (None, WRITE_ONLY):
                read[(system, name, str(value))] = None
            elif target not in held_by:
                problems.append(
                    doc.problem(
                        where,
                        f"{target!r} is no stage with {name} {value!r}"
                        f" (stages with it: {', '.join(held_by)}; or {WRITE_ONLY})",
                    )
                )
            else:
                read[(system, name, str(value))] = str(target)
    ignore: dict[tuple[str, str], frozenset[str]] = {}
    for system, name, at, values in _fields_of(doc, obj, node, "ignore", systems, fields, problems):
        if not isinstance(values, list) or not all(isinstance(v, str | int) for v in values):
            problems.append(doc.problem(at, "a list of native values"))
            continue
        for index, value in enumerate(values):
            held_by = holders.get((system, name, str(value)), ())
            if held_by:
                problems.append(
                    doc.problem(
                        [*at, index],
                        f"{value!r} is mapped by {', '.join(held_by)}: map a value or ignore it,"
                        " not both",
                    )
                )
        ignore[(system, name)] = frozenset(str(v) for v in values)
    return StageReading(read, ignore), problems


def _fields_of(
    doc: YamlDocument,
    obj: str,
    node: Mapping[str, Any],
    key: str,
    systems: set[str],
    fields: set[tuple[str, str]],
    problems: list[ConfigProblem],
) -> list[tuple[str, str, list[str | int], Any]]:
    """(system, field, location, entry) under ``node[key]``, unknown names reported."""
    section = node.get(key)
    if section is None:
        return []
    if not isinstance(section, dict):
        problems.append(doc.problem([obj, key], "a mapping of system: {native field: ...}"))
        return []
    found = []
    for system, per_field in section.items():
        if system not in systems:
            problems.append(doc.problem([obj, key, system], "unknown system"))
            continue
        if not isinstance(per_field, dict):
            problems.append(doc.problem([obj, key, system], "a mapping of native field: ..."))
            continue
        for name, entry in per_field.items():
            at: list[str | int] = [obj, key, system, name]
            if (system, str(name)) not in fields:
                known = sorted(f for s, f in fields if s == system)
                problems.append(
                    doc.problem(
                        at,
                        f"no stage of {obj} sets {system} {name}"
                        f" (stage fields: {', '.join(known) or 'none'})",
                    )
                )
                continue
            found.append((str(system), str(name), at, entry))
    return found


def holders_of(stages: Sequence[Any]) -> dict[tuple[str, str, str], list[str]]:
    """(system, field, value) -> the names of the stages holding it, in funnel order."""
    holders: dict[tuple[str, str, str], list[str]] = {}
    for stage in stages:
        for system, native in stage.values.items():
            for name, value in native.items():
                holders.setdefault((system, name, value), []).append(stage.name)
    return holders
