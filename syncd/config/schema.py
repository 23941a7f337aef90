"""JSON Schema of syncd.yaml, stages.yaml and fields.yaml, and the reference page of every
configuration key (docs/configuration.md), both generated from the pydantic models of
``syncd.config.settings``: ``syncd schema`` writes them.

The models validate the files (``load_config``); a few parts of the files are read by
hand there (stages.yaml keeps a stage's native values beside its keys; fields.yaml a
field's native names), so the file shapes of those parts are modelled here, on top of
the same models, for the schema alone. The schema describes; ``syncd validate`` decides.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from syncd.config.settings import FieldRule, StageFields, SyncdSettings

DIALECT = "http://json-schema.org/draft-07/schema#"
"""Declared draft 7, the newest the YAML language server (VS Code, Neovim, JetBrains)
reads; pydantic's output uses nothing newer (its ``$defs`` are plain JSON pointers)."""


def _open_keys(key: str, description: str) -> Any:
    """A model's open keys (named after a system), described for editors and the page."""

    def describe(schema: dict[str, Any]) -> None:
        schema["additionalProperties"] = {
            **schema["additionalProperties"],
            "description": description,
            "x-key": key,
        }

    return describe


class NativeFieldRule(FieldRule):
    """One canonical field of fields.yaml: its native name in each system (a key named
    after the system, e.g. `hubspot: firstname`, `salesforce: {Lead: Company}`) and how
    it syncs."""

    model_config = ConfigDict(
        title="FieldRule",
        json_schema_extra=_open_keys(
            "<system>",
            "The field's native name in that system (hubspot, salesforce): one name, or one"
            " per native kind ({Lead: Company}); a name starting with @ is an association.",
        ),
    )
    __pydantic_extra__: dict[str, str | dict[str, str]] = Field(init=False)


class FieldsFile(BaseModel):
    """fields.yaml: the canonical fields of each synced object, by name."""

    model_config = ConfigDict(extra="forbid", title="fields.yaml", use_attribute_docstrings=True)
    company: dict[str, NativeFieldRule] = Field(default_factory=dict)
    """Companies: HubSpot companies and Salesforce accounts, matched by a `match` field."""
    person: dict[str, NativeFieldRule] = Field(default_factory=dict)
    """People: HubSpot contacts and Salesforce leads and contacts; needs `email`."""
    deal: dict[str, NativeFieldRule] = Field(default_factory=dict)
    """Deals: HubSpot deals and Salesforce opportunities."""


class StageEntry(StageFields):
    """One stage of stages.yaml: its keys and, under a key named after each system, the
    native values that mean it (`hubspot: {lifecyclestage: lead}`)."""

    model_config = ConfigDict(
        extra="allow",
        title="Stage",
        json_schema_extra=_open_keys(
            "<system>",
            "The native values that mean this stage in that system (hubspot, salesforce),"
            " by native field: {lifecyclestage: lead}, {StageName: Closed Won}.",
        ),
    )
    __pydantic_extra__: dict[str, dict[str, str | int]] = Field(init=False)


class StagedObject(BaseModel):
    """An object of stages.yaml written as a mapping: how its stages move and read."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    moves: Literal["forward", "any"] = "forward"
    """forward: a stage is never left for an earlier one (except a recycle stage); any:
    stages move both ways (a reopened deal)."""
    read: dict[str, dict[str, dict[str, str | None]]] = Field(default_factory=dict)
    """Per system, native field and value shared by several stages: the stage it reads
    as, or write-only (null): written for its stages, never read as one."""
    ignore: dict[str, dict[str, list[str]]] = Field(default_factory=dict)
    """Per system and native field, live values syncd leaves alone."""
    stages: list[StageEntry]
    """The stages, in funnel order."""


class StagesFile(BaseModel):
    """stages.yaml: the shared funnel vocabulary, per object its stages in order."""

    model_config = ConfigDict(extra="forbid", title="stages.yaml", use_attribute_docstrings=True)
    company: list[StageEntry] | StagedObject | None = None
    """Company stages (none are shipped)."""
    person: list[StageEntry] | StagedObject | None = None
    """People's funnel: subscriber to customer, and the recycle stages."""
    deal: list[StageEntry] | StagedObject | None = None
    """Deal stages; a stage with an `outcome` closes the deal."""


MODELS: dict[str, type[BaseModel]] = {
    "syncd.yaml": SyncdSettings,
    "stages.yaml": StagesFile,
    "fields.yaml": FieldsFile,
}
"""Each configuration file and the model of its shape."""


def schema_name(file: str) -> str:
    """``syncd.yaml`` -> ``syncd.schema.json``."""
    return file.removesuffix(".yaml") + ".schema.json"


def schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each configuration file, by file name."""
    found = {}
    for file, model in MODELS.items():
        schema = model.model_json_schema()
        schema["title"] = file
        found[file] = {"$schema": DIALECT, **schema}
    return found


def write(directory: Path) -> list[Path]:
    """Write ``syncd.schema.json``, ``stages.schema.json`` and ``fields.schema.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file, schema in schemas().items():
        path = directory / schema_name(file)
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


# -- the reference page -------------------------------------------------------------------

REGENERATE = "syncd schema --markdown > docs/configuration.md"


def reference() -> str:
    """docs/configuration.md: every key of the three files, its type, default and meaning."""
    lines = [
        "# Configuration reference",
        "",
        f"<!-- Generated from the models in syncd/config/settings.py by `{REGENERATE}`. -->",
        "",
        "Every key of the three configuration files, generated from the models that validate",
        "them (`syncd/config/settings.py`, `syncd/config/schema.py`): edit their docstrings, not",
        "this page. `syncd validate --offline` checks a configuration, `syncd init DIR` writes a",
        "commented one to start from, and the README explains the settings at length. In a key,",
        "`<name>` stands for a name you choose (a system, a field) and `[]` for each item of a",
        "list.",
    ]
    for file, schema in schemas().items():
        defs = schema.get("$defs", {})
        lines += ["", f"## {file}", "", _one_line(schema.get("description")), ""]
        lines += _table(schema, defs)
        for name, paths in _used_defs(schema, defs).items():
            section = defs[name]
            lines += ["", f"### {file}: {section.get('title', name)}", ""]
            lines += [_one_line(section.get("description")), ""]
            lines += [f"Keys of: {', '.join(f'`{p}`' for p in dict.fromkeys(paths))}.", ""]
            lines += _table(section, defs)
    return "\n".join(lines) + "\n"


def _table(node: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    """One row per key of ``node``, and one for the keys it leaves open."""
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    required = set(node.get("required", ()))
    for key, spec in node.get("properties", {}).items():
        default = "(required)" if key in required else _default(spec)
        meaning = _one_line(spec.get("description") or _resolved(spec, defs).get("description"))
        rows.append(f"| `{key}` | {_type(spec, defs)} | {default} | {meaning} |")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        key = extra.get("x-key", "<name>")
        meaning = _one_line(extra.get("description"))
        rows.append(f"| `{key}` | {_type(extra, defs)} |  | {meaning} |")
    elif extra is True and node.get("x-other-keys"):
        rows.append(f"| other keys | any |  | {_one_line(node['x-other-keys'])} |")
    return rows


def _used_defs(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, list[str]]:
    """The models a schema refers to, in the order a reader meets them, with every key
    path at which each one is used."""
    found: dict[str, list[str]] = {}

    def visit(node: dict[str, Any], path: str, within: tuple[str, ...]) -> None:
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            found.setdefault(name, []).append(path)
            if name not in within:  # a model holding itself would never end
                visit(defs[name], path, (*within, name))
        for key, spec in node.get("properties", {}).items():
            visit(spec, f"{path}.{key}" if path else key, within)
        for option in node.get("anyOf", ()):
            visit(option, path, within)
        if isinstance(node.get("items"), dict):
            visit(node["items"], f"{path}[]", within)
        if isinstance(node.get("additionalProperties"), dict):
            visit(node["additionalProperties"], f"{path}.<name>", within)

    visit(schema, "", ())
    return found


def _resolved(spec: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = spec.get("$ref")
    return defs[ref.rsplit("/", 1)[-1]] if ref else spec


def _type(spec: dict[str, Any], defs: dict[str, Any]) -> str:
    """A key's type for people: ``one of `Lead`, `Contact```, ``list of text``."""
    if "anyOf" in spec and all("enum" in option for option in spec["anyOf"]):
        return _type({"enum": [v for option in spec["anyOf"] for v in option["enum"]]}, defs)
    if "anyOf" in spec:
        return " or ".join(dict.fromkeys(_type(option, defs) for option in spec["anyOf"]))
    if "$ref" in spec:
        return f"{_resolved(spec, defs).get('title', 'mapping')} (below)"
    if "enum" in spec:
        return "one of " + ", ".join(f"`{v}`" for v in spec["enum"])
    if "const" in spec:
        return f"`{spec['const']}`"
    kind = spec.get("type")
    if kind == "array":
        return f"list of {_type(spec.get('items', {}), defs)}"
    if kind == "object":
        extra = spec.get("additionalProperties")
        return f"mapping of name to {_type(extra, defs)}" if isinstance(extra, dict) else "mapping"
    bounds = [
        f"{word} {spec[name]}"
        for name, word in (("exclusiveMinimum", ">"), ("minimum", ">="))
        if name in spec
    ]
    names = {"string": "text", "integer": "whole number", "null": "null", "boolean": "true/false"}
    text = names.get(str(kind), str(kind or "any"))
    return f"{text} {', '.join(bounds)}" if bounds else text


def _default(spec: dict[str, Any]) -> str:
    if "default" not in spec:
        return ""
    value = spec["default"]
    if "$ref" in spec:
        return "(below)"
    if value is None:
        return "none"
    return f"`{json.dumps(value)}`"


def _one_line(text: str | None) -> str:
    """A description in one table cell: one line, no stray pipes."""
    return " ".join((text or "").split()).replace("|", "\\|")
