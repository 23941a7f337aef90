"""The setup checks end to end: each broken setup is found through the real clients,
named by file:line:key or by what to create in which system, and refused before any
write, by the engine (on both stores), by ``syncd validate`` and by ``syncd once``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from syncd import preflight, registry
from syncd.config.load import load_config
from syncd.config.settings import Config
from syncd.errors import SetupError
from syncd.harness import sandbox
from syncd.sync.engine import Engine
from tests.factories import syncd_cli
from tests.world import World

ROOT = Path(__file__).resolve().parents[1]
WRITES = ("batch/create", "batch/update", "batch/upsert", "POST composite", "PATCH composite")
"""Endpoint labels of writes, in either emulator's call counts."""


@dataclass(frozen=True)
class Broken:
    """One setup that would half-work, and what the problem must say."""

    name: str
    apply: Callable[[Any, Any, Path], None]
    """(HubSpot emulator, Salesforce emulator, config folder) -> break the setup."""
    file: str | None
    key: str
    message: str


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _relabel_and_map_the_label(hubspot: Any, salesforce: Any, folder: Path) -> None:
    salesforce.relabel_stage("Closed Won", "Won (signed)")
    _edit(folder / "stages.yaml", "{StageName: Closed Won}", "{StageName: Won (signed)}")


BROKEN = [
    Broken(
        "salesforce-opportunity-without-partner-field",
        lambda hs, sf, folder: sf.drop_field("Opportunity", "Syncd_HubSpot_Id__c"),
        "syncd.yaml",
        "systems.salesforce.partner_id_field",
        "Salesforce Opportunity has no field 'Syncd_HubSpot_Id__c': create a text field",
    ),
    Broken(
        "hubspot-property-typo",
        lambda hs, sf, folder: _edit(
            folder / "fields.yaml", "hubspot: jobtitle", "hubspot: jobtitel"
        ),
        "fields.yaml",
        "person.title.hubspot",
        "HubSpot contacts have no property 'jobtitel'",
    ),
    Broken(
        "hubspot-partner-property-not-unique",
        lambda hs, sf, folder: hs.change_property("contacts", "syncd_salesforce_id", unique=False),
        "syncd.yaml",
        "systems.hubspot.partner_id_field",
        "HubSpot contacts property 'syncd_salesforce_id' does not require unique values",
    ),
    Broken(
        "salesforce-field-read-only-where-it-flows-to-crm",
        lambda hs, sf, folder: sf.make_read_only("Lead", "Lead_Score__c"),
        "fields.yaml",
        "person.lead_score.salesforce",
        "Salesforce Lead.Lead_Score__c is not createable and updateable for the integration user",
    ),
    Broken(
        "opportunity-stage-label-instead-of-api-name",
        _relabel_and_map_the_label,
        "stages.yaml",
        "deal.closed_won.salesforce.StageName",
        "'Won (signed)' is not a value of salesforce's StageName picklist",
    ),
    Broken(
        "hubspot-live-pipeline-neither-mapped-nor-ignored",
        lambda hs, sf, folder: _edit(
            folder / "stages.yaml", "pipeline: [renewals]", "pipeline: []"
        ),
        "stages.yaml",
        "deal.ignore.hubspot.pipeline",
        "hubspot pipeline 'renewals' is live but in no stage of deal",
    ),
]


def _seed(world_box: sandbox.Sandbox) -> None:
    """Something to write in each direction, so that a write would show."""
    sandbox.seed_sample(world_box.emulators)
    sandbox.seed_sample_deals(world_box.emulators)


def _counts(box: sandbox.Sandbox) -> tuple[int, ...]:
    hubspot, salesforce = box.emulators["hubspot"], box.emulators["salesforce"]
    return (
        len(hubspot.contacts()),
        len(hubspot.companies()),
        len(hubspot.deals()),
        *(len(salesforce.records(k)) for k in ("Lead", "Contact", "Account", "Opportunity")),
    )


def _writes(box: sandbox.Sandbox) -> list[str]:
    calls = {**box.emulators["hubspot"].calls(), **box.emulators["salesforce"].calls()}
    return [label for label in calls if any(w in label for w in WRITES)]


def _located(problem: preflight.Problem, case: Broken, config: Config) -> None:
    assert problem.blocking and problem.key == case.key and case.message in problem.message
    assert problem.file is not None and problem.file.endswith(str(case.file))
    line = Path(problem.file).read_text(encoding="utf-8").splitlines()[problem.line - 1]
    assert case.key.split(".")[-1] in line or case.key.split(".")[-2] in line, line


def test_the_shipped_setup_passes_every_check(world: World) -> None:
    result = preflight.check(world.config, [world.engine.marketing, world.engine.crm])
    assert result.problems == [] and result.checked == ["hubspot", "salesforce"]


def test_won_and_lost_come_from_the_stage_api_name_not_its_label(world: World) -> None:
    world.salesforce.relabel_stage("Closed Won", "Won (signed)")
    world.salesforce.relabel_stage("Closed Lost", "Lost")
    assert world.engine.crm.stage_outcomes() == {
        ("StageName", "Closed Won"): "won",
        ("StageName", "Closed Lost"): "lost",
    }
    result = preflight.check(world.config, [world.engine.marketing, world.engine.crm])
    assert result.problems == []


@pytest.mark.parametrize("case", BROKEN, ids=[c.name for c in BROKEN])
def test_the_engine_refuses_a_broken_setup_before_any_write(world: World, case: Broken) -> None:
    _seed(world.box)
    case.apply(world.hubspot, world.salesforce, world.box.config_dir)
    config = load_config(world.box.config_path)
    marketing = registry.connector(config, "hubspot")
    crm = registry.connector(config, "salesforce")
    try:
        engine = Engine.for_config(config, world.store, marketing, crm)
        before = _counts(world.box)
        result = preflight.gate(config, engine)
        (problem,) = [p for p in result.blocking if p.key == case.key]
        _located(problem, case, config)
        with pytest.raises(SetupError, match=case.key.replace(".", r"\.")):
            engine.run_once()
        assert _counts(world.box) == before and _writes(world.box) == []
        assert world.link_count() == 0
    finally:
        marketing.close()
        crm.close()


_syncd = syncd_cli


@pytest.mark.parametrize("case", BROKEN, ids=[c.name for c in BROKEN])
def test_validate_and_once_refuse_a_broken_setup(
    tmp_path: Path, store_url: str, case: Broken
) -> None:
    with sandbox.start(tmp_path, sample=True, store=store_url) as box:
        case.apply(box.emulators["hubspot"], box.emulators["salesforce"], tmp_path)
        config = str(box.config_path)
        checked = _syncd("validate", "--json", "--config", config)
        text = _syncd("validate", "--config", config)
        before = _counts(box)
        once = _syncd("once", "--config", config)
        once_json = _syncd("once", "--json", "--config", config)
        after, writes = _counts(box), _writes(box)
        links = json.loads(_syncd("status", "--json", "--config", config).stdout)["links"]
    assert checked.returncode == 1, checked.stdout + checked.stderr
    answer = json.loads(checked.stdout)
    assert answer["ok"] is False and answer["systems_checked"] == ["hubspot", "salesforce"]
    (problem,) = [p for p in answer["problems"] if p["key"] == case.key]
    assert set(problem) == {"file", "line", "key", "system", "message", "blocking"}
    assert problem["key"] == case.key and case.message in problem["message"]
    assert problem["file"].endswith(str(case.file)) and problem["line"] > 0
    (line,) = [row for row in text.stderr.splitlines() if case.key in row]
    assert f"{case.file}:{problem['line']}: {case.key}: " in line, line
    assert text.returncode == 1
    assert once.returncode == 1 and "nothing written" in once.stderr and case.key in once.stderr
    refused = json.loads(once_json.stdout)
    assert once_json.returncode == 1 and refused["written"] is False
    assert case.key in [p["key"] for p in refused["checks_failed"]]
    assert after == before and writes == [] and links == {}


def test_once_dry_run_plans_but_says_the_checks_fail(tmp_path: Path) -> None:
    with sandbox.start(tmp_path, sample=True) as box:
        box.emulators["hubspot"].change_property("contacts", "syncd_salesforce_id", unique=False)
        planned = _syncd("once", "--dry-run", "--json", "--config", str(box.config_path))
        leads = len(box.emulators["salesforce"].records("Lead"))
    assert planned.returncode == 1
    answer = json.loads(planned.stdout)
    assert answer["dry_run"] is True and answer["created"]["salesforce"] == 2
    (failed,) = answer["checks_failed"]
    assert failed["key"] == "systems.hubspot.partner_id_field"
    assert leads == 2  # as seeded: nothing written


def test_a_system_that_refuses_the_credentials_is_a_problem_of_that_system(tmp_path: Path) -> None:
    with sandbox.start(tmp_path, sample=False) as box:
        secrets = tmp_path / "secrets.env"
        secrets.write_text(
            "\n".join(
                "HUBSPOT_ACCESS_TOKEN=wrong" if line.startswith("HUBSPOT_ACCESS_TOKEN=") else line
                for line in secrets.read_text().splitlines()
            )
        )
        checked = _syncd("validate", "--json", "--config", str(box.config_path))
    assert checked.returncode == 1
    answer = json.loads(checked.stdout)
    assert answer["systems_checked"] == ["salesforce"]
    (problem,) = answer["problems"]
    assert problem["system"] == "hubspot" and problem["blocking"] is True
    assert (problem["file"], problem["line"], problem["key"]) == (None, None, None)
    words, check, said = problem["message"].splitlines()
    assert (
        words == "HubSpot refused the access token (HTTP 401); a static token cannot be refreshed"
    )
    assert check.strip().startswith("check HUBSPOT_ACCESS_TOKEN:") and "secrets file" in check
    assert said.strip().startswith("hubspot said: Authentication credentials not found.")
