"""The JSON Schema of the configuration files and docs/configuration.md, from the models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from syncd.cli.app import app
from syncd.config import schema as config_schema
from syncd.config.settings import STAGED_KEYS, StageFields

ROOT = Path(__file__).resolve().parents[1]
FILES = ("syncd.yaml", "stages.yaml", "fields.yaml")


def _errors(file: str, data: Any) -> list[str]:
    validator = jsonschema.Draft7Validator(config_schema.schemas()[file])
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(data)]


@pytest.mark.parametrize("folder", ["config", "syncd/config/templates"])
@pytest.mark.parametrize("file", FILES)
def test_the_shipped_files_satisfy_their_schema(folder: str, file: str) -> None:
    jsonschema.Draft7Validator.check_schema(config_schema.schemas()[file])
    data = YAML(typ="safe").load((ROOT / folder / file).read_text(encoding="utf-8"))
    assert _errors(file, data) == []


def test_the_schema_refuses_what_validate_refuses() -> None:
    load = YAML(typ="safe").load
    settings = load((ROOT / "config" / "syncd.yaml").read_text(encoding="utf-8"))
    fields = load((ROOT / "config" / "fields.yaml").read_text(encoding="utf-8"))
    stages = load((ROOT / "config" / "stages.yaml").read_text(encoding="utf-8"))
    settings["report"]["days"] = 0
    settings["cadence"] = 30  # cadence_seconds, misspelt
    fields["person"]["company"]["conflict"] = "crm_win"
    stages["deal"]["stages"][0]["outcome"] = "maybe"
    stages["person"]["move"] = "any"
    assert len(_errors("syncd.yaml", settings)) == 2
    assert _errors("fields.yaml", fields) and "crm_win" in _errors("fields.yaml", fields)[0]
    assert len(_errors("stages.yaml", stages)) == 2


def test_every_key_has_a_description() -> None:
    missing = []
    for file, schema in config_schema.schemas().items():
        for name, node in [("", schema), *schema.get("$defs", {}).items()]:
            missing += [
                f"{file}: {name}.{key}"
                for key, spec in node.get("properties", {}).items()
                if not spec.get("description")
            ]
    assert not missing, f"keys without a docstring in syncd/config/settings.py: {missing}"


def test_the_stage_shapes_follow_the_parser() -> None:
    assert tuple(config_schema.StagedObject.model_fields) == STAGED_KEYS
    stage = config_schema.schemas()["stages.yaml"]["$defs"]["StageEntry"]
    assert set(stage["properties"]) == set(StageFields.model_fields)


def test_docs_configuration_md_is_generated_from_the_models() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == config_schema.reference(), (
        f"docs/configuration.md is out of date: run `{config_schema.REGENERATE}`"
    )
    for key in ("`partner_id_field`", "`speed_to_lead_sla_hours`", "`blank_overwrites`"):
        assert key in committed


def test_syncd_schema_writes_the_three_files_and_prints_the_reference(tmp_path: Path) -> None:
    written = CliRunner().invoke(app, ["schema", "--out", str(tmp_path)])
    assert written.exit_code == 0, written.output
    for file, schema in config_schema.schemas().items():
        path = tmp_path / config_schema.schema_name(file)
        assert json.loads(path.read_text(encoding="utf-8")) == schema
    printed = CliRunner().invoke(app, ["schema"])
    assert json.loads(printed.output).keys() == set(FILES)
    page = CliRunner().invoke(app, ["schema", "--markdown"])
    assert page.output == config_schema.reference()
