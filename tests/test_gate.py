"""The gate on the CRM as a predicate: plain records, the shipped vocabulary, no I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from syncd import registry
from syncd.config.load import load_config
from syncd.config.settings import Config
from syncd.errors import ConfigError
from syncd.sync import gate
from syncd.sync.vocabulary import Vocabulary
from tests.factories import hubspot

ROOT = Path(__file__).resolve().parents[1]
LEAD = {"lifecyclestage": "lead"}
MQL = {"lifecyclestage": "marketingqualifiedlead"}
SQL = {"lifecyclestage": "salesqualifiedlead", "hs_lead_status": "CONNECTED"}
NURTURE = {"lifecyclestage": "lead", "hs_lead_status": "BAD_TIMING"}


def _config(tmp_path: Path, settings: dict[str, Any] | None) -> Config:
    """The shipped configuration with ``gate:`` set (None: no gate)."""
    for name in ("fields.yaml", "stages.yaml"):
        (tmp_path / name).write_text((ROOT / "config" / name).read_text("utf-8"), "utf-8")
    raw = YAML(typ="safe").load((ROOT / "config" / "syncd.yaml").read_text("utf-8"))
    if settings is not None:
        raw["gate"] = settings
    with (tmp_path / "syncd.yaml").open("w", encoding="utf-8") as out:
        YAML(typ="safe", pure=True).dump(raw, out)
    return load_config(tmp_path / "syncd.yaml")


def _vocabulary(config: Config) -> Vocabulary:
    vocabulary = registry.object_rules(config, "person").vocabulary
    assert vocabulary is not None
    return vocabulary


def test_no_gate_and_an_empty_gate_let_everyone_cross(tmp_path: Path) -> None:
    assert gate.from_config(_config(tmp_path, None)) is None
    assert gate.from_config(_config(tmp_path, {})) is None


@pytest.mark.parametrize(
    ("stage", "held"),
    [
        (LEAD, ["stage lead is before mql"]),
        (MQL, []),
        (SQL, []),
        (NURTURE, ["stage nurture is a recycle stage"]),
        ({}, ["it holds no stage of the vocabulary (none)"]),
    ],
)
def test_min_stage_in_the_vocabularys_order(
    tmp_path: Path, stage: dict[str, str], held: list[str]
) -> None:
    config = _config(tmp_path, {"min_stage": "mql"})
    found = gate.from_config(config)
    assert found is not None
    assert found.reasons(hubspot("1", stage=stage), _vocabulary(config), "hubspot") == held


def test_score_through_the_mapped_field_and_property_through_a_hidden_one(tmp_path: Path) -> None:
    config = _config(
        tmp_path, {"min_score": 40, "property_equals": {"sync_to_crm": "true"}, "min_stage": "mql"}
    )
    found = gate.from_config(config)
    assert found is not None
    # fields.yaml maps hubspotscore as lead_score; sync_to_crm is mapped by nobody
    assert found.score == ("lead_score", "hubspotscore")
    assert found.equals == {"~gate:sync_to_crm": ("sync_to_crm", "true")}
    assert gate.hidden_fields(config) == {"~gate:sync_to_crm": ("sync_to_crm", "string")}
    vocabulary = _vocabulary(config)
    low = hubspot("1", stage=LEAD, lead_score="12")
    assert found.held_back(low, vocabulary, "hubspot") == (
        "gate: stage lead is before mql; sync_to_crm is blank, not 'true'; hubspotscore 12 < 40"
    )
    passing = hubspot("2", stage=MQL, lead_score="40", **{"~gate:sync_to_crm": "True "})
    assert found.held_back(passing, vocabulary, "hubspot") is None
    unscored = hubspot("3", stage=MQL, **{"~gate:sync_to_crm": "false"})
    assert found.reasons(unscored, vocabulary, "hubspot") == [
        "sync_to_crm is 'false', not 'true'",
        "hubspotscore blank < 40",
    ]


def test_an_unmapped_score_property_is_read_as_a_hidden_number(tmp_path: Path) -> None:
    config = _config(tmp_path, {"min_score": 7.5, "score_property": "hs_analytics_num_visits"})
    assert gate.hidden_fields(config) == {
        "~gate:hs_analytics_num_visits": ("hs_analytics_num_visits", "number")
    }
    found = gate.from_config(config)
    assert found is not None
    record = hubspot("1", stage=LEAD, **{"~gate:hs_analytics_num_visits": "7"})
    assert found.reasons(record, None, "hubspot") == ["hs_analytics_num_visits 7 < 7.5"]
    assert gate.config_key(config, "~gate:hs_analytics_num_visits") == ["gate", "score_property"]


def test_an_unknown_min_stage_is_refused_with_file_line_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _config(tmp_path, {"min_stage": "mqll"})
    (problem,) = [p for p in raised.value.problems if p.key == "gate.min_stage"]
    assert problem.file.endswith("syncd.yaml") and problem.line
    assert "no person stage mqll" in problem.message and "mql" in problem.message
    lines = (tmp_path / "syncd.yaml").read_text("utf-8").splitlines()
    assert "min_stage" in lines[problem.line - 1]


def test_the_cycle_summary_and_the_metrics_count_the_held_back() -> None:
    from syncd.daemon.metrics import Metrics
    from syncd.sync.cycle import CycleReport, counts_text

    report = CycleReport("c1")
    report.gated = 3
    assert counts_text(report.as_dict()).endswith(", held back by the gate: 3")
    assert "held back" not in counts_text(CycleReport("c2").as_dict())
    metrics = Metrics()
    metrics.observe("person", report, 0.5)
    metrics.observe("person", report, 0.5)
    assert (
        metrics.registry.get_sample_value("syncd_gate_held_back_total", {"object": "person"}) == 6
    )
