"""The reading table of stages.yaml (``read``, ``ignore``): parsing, errors, the vocabulary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from syncd.config.load import load_config
from syncd.errors import ConfigError
from syncd.sync.vocabulary import IGNORED, MAPPED, UNMAPPED, WRITE_ONLY, Vocabulary

CONFIG = Path(__file__).resolve().parents[1] / "config"
OPEN = {"Status": "Open - Not Contacted"}

PLAIN = """\
person:
  - name: subscriber
    salesforce: {Status: Open - Not Contacted}
  - name: lead
    salesforce: {Status: Open - Not Contacted}
  - name: mql
    salesforce: {Status: Open - Not Contacted}
  - name: sql
    salesforce: {Status: Qualified}
"""

TABLE = """\
person:
  read:
    salesforce:
      Status:
        Open - Not Contacted: lead
        Qualified: write-only
  ignore:
    salesforce:
      Status: [Working - Follow Up]
  stages:
    - name: subscriber
      salesforce: {Status: Open - Not Contacted}
    - name: lead
      salesforce: {Status: Open - Not Contacted}
    - name: mql
      salesforce: {Status: Open - Not Contacted}
    - name: sql
      salesforce: {Status: Qualified}
"""


def _config(tmp_path: Path, stages: str) -> Path:
    for name in ("syncd.yaml", "fields.yaml"):
        shutil.copy(CONFIG / name, tmp_path / name)
    (tmp_path / "stages.yaml").write_text(stages)
    return tmp_path / "syncd.yaml"


def _people(tmp_path: Path, stages: str) -> Vocabulary:
    config = load_config(_config(tmp_path, stages))
    return Vocabulary(config.stages["person"], reading=config.readings.get("person"))


def test_the_plain_list_reads_a_shared_value_as_its_earliest_stage(tmp_path: Path) -> None:
    people = _people(tmp_path, PLAIN)
    assert people.to_canonical("salesforce", OPEN) == "subscriber"  # was: mql, the latest
    assert people.to_canonical("salesforce", OPEN, "lead") == "lead"  # no move
    assert people.to_canonical("salesforce", OPEN, "sql") == "subscriber"  # a backward read
    assert people.classify("salesforce", {"Status": "Nurture"}) == UNMAPPED


def test_the_table_reads_as_chosen_keeps_write_only_and_ignores(tmp_path: Path) -> None:
    people = _people(tmp_path, TABLE)
    assert people.to_canonical("salesforce", OPEN) == "lead"
    assert people.to_canonical("salesforce", OPEN, "subscriber") == "subscriber"
    assert people.to_canonical("salesforce", OPEN, "mql") == "mql"
    qualified = {"Status": "Qualified"}
    assert people.classify("salesforce", qualified) == WRITE_ONLY
    assert people.to_canonical("salesforce", qualified, "mql") == "mql"  # keeps the current
    assert people.to_canonical("salesforce", qualified) is None
    assert people.to_native("salesforce", "sql") == qualified  # still written
    follow_up = {"Status": "Working - Follow Up"}
    assert people.classify("salesforce", follow_up) == IGNORED
    assert people.to_canonical("salesforce", follow_up, "lead") is None
    assert people.classify("salesforce", OPEN) == MAPPED
    rows = people.read_table("salesforce")
    assert ("Status=Open - Not Contacted", "lead", rows[0][2]) == rows[0]
    assert "shared by subscriber, lead, mql" in rows[0][2]
    assert rows[1][:2] == ("Status=Qualified", WRITE_ONLY)
    assert rows[2] == ("Status=Working - Follow Up", IGNORED, "left alone")


def _line(path: Path, needle: str) -> int:
    return next(i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text)


def test_every_reading_error_names_its_line_and_key(tmp_path: Path) -> None:
    bad = (
        TABLE.replace("Open - Not Contacted: lead", "Open - Not Contacted: sql")
        .replace("Qualified: write-only", "Qualifyed: sql")
        .replace("      Status: [Working", "      Stage: [Working")
        .replace("  ignore:\n", "  ignore:\n    pardot: {Status: [x]}\n")
        .replace("  read:\n", "  read:\n    salesforce_x: {}\n")
        .replace("  stages:\n", "  reads: {}\n  stages:\n")
    )
    path = _config(tmp_path, bad)
    stages = tmp_path / "stages.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    found = {p.key: p for p in caught.value.problems}
    wrong = found["person.read.salesforce.Status.Open - Not Contacted"]
    assert wrong.line == _line(stages, "Open - Not Contacted: sql")
    assert (
        "'sql' is no stage with Status" in wrong.message
        and "subscriber, lead, mql" in wrong.message
    )
    typo = found["person.read.salesforce.Status.Qualifyed"]
    assert typo.line == _line(stages, "Qualifyed") and "no stage of person has" in typo.message
    field = found["person.ignore.salesforce.Stage"]
    assert field.line == _line(stages, "Stage: [") and "stage fields: Status" in field.message
    assert found["person.ignore.pardot"].message == "unknown system"
    assert found["person.read.salesforce_x"].message == "unknown system"
    assert "unknown key" in found["person.reads"].message
    assert all(p.file.endswith("stages.yaml") for p in found.values())


def test_a_value_is_mapped_or_ignored_not_both(tmp_path: Path) -> None:
    bad = TABLE.replace("[Working - Follow Up]", "[Working - Follow Up, Qualified]")
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, bad))
    (problem,) = caught.value.problems
    assert problem.key == "person.ignore.salesforce.Status.1" and "mapped by sql" in problem.message


def test_coverage_names_each_live_value_neither_mapped_nor_ignored() -> None:
    config = load_config(CONFIG / "syncd.yaml")
    deals = Vocabulary(config.stages["deal"], reading=config.readings["deal"])
    live = [
        {"dealstage": "closedwon", "pipeline": "default"},
        {"dealstage": "71840211", "pipeline": "renewals"},  # ignored pipeline
        {"dealstage": "9001", "pipeline": "partners"},  # an unmapped pipeline: once
        {"dealstage": "9002", "pipeline": "partners"},
        {"dealstage": "newstage", "pipeline": "default"},  # an unmapped stage of a mapped one
        {"Status": "Open - Not Contacted"},  # another object's field: not deals'
    ]
    assert deals.check_coverage("hubspot", live) == [
        ("pipeline", "partners", ""),
        ("dealstage", "newstage", " (pipeline default)"),
    ]
    live_sf = [{"StageName": "Value Proposition"}, {"StageName": "Id. Decision Makers"}]
    assert deals.check_coverage("salesforce", live_sf) == [("StageName", "Id. Decision Makers", "")]
    people = Vocabulary(config.stages["person"], reading=config.readings["person"])
    assert people.check_coverage("salesforce", [{"Status": "Working - Follow Up"}, OPEN]) == [
        ("Status", "Working - Follow Up", "")
    ]
