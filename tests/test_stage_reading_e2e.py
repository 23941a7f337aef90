"""End to end, stage reading the admin controls (stages.yaml ``read`` and ``ignore``).

A shared status reads as the admin chose; a new Salesforce lead does not enter the funnel
as an MQL; deals in an ignored or unmapped stage are journaled and left alone, never
dead-lettered; a converted status is never written to a lead; ``syncd validate`` refuses
an unmapped live pipeline in one line naming stages.yaml.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from syncd.config.load import load_config
from syncd.state.tables import journal, links, stage_history
from syncd.sync.engine import Engine
from tests.world import World

ROOT = Path(__file__).resolve().parents[1]
SHARED = "Open - Not Contacted"


def _restage(world: World, edit: Callable[[str], str]) -> None:
    """Rewrite the world's stages.yaml with ``edit`` and rebuild its engine on it."""
    stages = world.box.config_path.parent / "stages.yaml"
    stages.write_text(edit(stages.read_text()))
    world.config = load_config(world.box.config_path)
    engine = world.engine
    world.engine = Engine.for_config(world.config, world.store, engine.marketing, engine.crm)


def _three_share_the_open_status(text: str) -> str:
    """Subscriber, lead and MQL all map to "Open - Not Contacted", as many orgs do."""
    return text.replace("{Status: Marketing Qualified}", "{Status: " + SHARED + "}")


def _first_stage(world: World, crm_id: str) -> str:
    with world.store.engine.connect() as connection:
        link = connection.execute(select(links.c.id).where(links.c.crm_id == crm_id)).scalar_one()
        return str(
            connection.execute(
                select(stage_history.c.to_stage)
                .where(stage_history.c.link_id == link)
                .order_by(stage_history.c.id)
            ).first()[0]  # type: ignore[index]
        )


def _lead(world: World, email: str, status: str = SHARED) -> str:
    fields = {"Email": email, "LastName": email[:3], "Company": "Acme", "Status": status}
    return world.salesforce.add("Lead", fields)


def test_a_shared_status_reads_as_the_admin_chose(world: World) -> None:
    # the shipped table reads the shared status as lead: never the latest (mql) of three
    _restage(world, _three_share_the_open_status)
    chosen = _lead(world, "ann@example.com")
    world.cycle()
    assert world.contact("ann@example.com")["lifecyclestage"] == "lead"
    assert _first_stage(world, chosen) == "lead"
    # without the table entry the earliest stage holding it: subscriber
    _restage(world, lambda text: text.replace("        Open - Not Contacted: lead\n", ""))
    default = _lead(world, "bob@example.com")
    world.cycle()
    assert world.contact("bob@example.com")["lifecyclestage"] == "subscriber"
    assert _first_stage(world, default) == "subscriber"
    # write-only: written for its stages, never read as a stage (the lead brings none)
    _restage(
        world,
        lambda text: text.replace(
            "Status:\n", "Status:\n        Open - Not Contacted: write-only\n"
        ),
    )
    _lead(world, "cy@example.com")
    world.cycle()
    assert not world.contact("cy@example.com").get("lifecyclestage")


def test_a_new_salesforce_lead_does_not_enter_the_funnel_as_an_mql(world: World) -> None:
    _restage(world, _three_share_the_open_status)
    lead = _lead(world, "new@example.com")
    world.cycle()
    assert world.contact("new@example.com")["lifecyclestage"] != "marketingqualifiedlead"
    assert _first_stage(world, lead) != "mql"
    # and a second cycle does not promote it either
    world.cycle()
    assert world.contact("new@example.com")["lifecyclestage"] == "lead"


def _deal_in(world: World, pipeline: str, stage: str) -> str:
    return world.hubspot.add_deal(
        {
            "dealname": f"{pipeline} deal",
            "amount": "100",
            "closedate": "2027-01-15T00:00:00.000Z",
            "pipeline": pipeline,
            "dealstage": stage,
        }
    )


def _writes(world: World) -> list[str]:
    """The write calls both emulators received (reads, searches and tokens left out;
    syncd's ``POST composite`` calls hold queries only)."""
    calls = [*world.salesforce.calls(), *world.hubspot.calls()]
    reads = ("GET ", "oauth2/token", "/search", "/batch/read", "POST composite")
    return [c for c in calls if not any(r in c for r in reads)]


def _journal(world: World, action: str) -> list[dict[str, Any]]:
    with world.store.engine.connect() as connection:
        rows = connection.execute(select(journal.c.detail).where(journal.c.action == action))
        return [json.loads(row.detail) for row in rows]


def _left_alone_over_two_cycles(world: World, why: str) -> None:
    deal = _deal_in(world, "renewals", "71840211")
    opportunity = world.salesforce.add(
        "Opportunity",
        {"Name": "Value deal", "StageName": "Value Proposition", "CloseDate": "2027-02-01"},
    )
    world.salesforce.reset_calls()
    world.hubspot.reset_calls()
    for _ in range(2):
        report = world.cycle()
        deals = report.objects["deal"]
        assert deals.created == {} and deals.updated == {} and deals.rejected == {}
    assert _writes(world) == [], _writes(world)
    assert world.store.dead_letters() == []
    assert [o["Name"] for o in world.salesforce.records("Opportunity")] == ["Value deal"]
    assert [d["id"] for d in world.hubspot.deals()] == [deal]
    ignored = _journal(world, "ignored")
    assert len(ignored) == 2, ignored  # once per change of each record, not per cycle
    assert {d["record"] for d in ignored} == {
        f"hubspot:deals:{deal}",
        f"salesforce:Opportunity:{opportunity}",
    }
    assert all(d["reason"].startswith(why) for d in ignored)


def test_deals_in_an_ignored_pipeline_or_stage_are_journaled_and_left_alone(
    world: World,
) -> None:
    _left_alone_over_two_cycles(world, "ignored:")


def test_deals_in_an_unmapped_pipeline_or_stage_are_never_dead_lettered(world: World) -> None:
    _restage(world, lambda text: text.replace("pipeline: [renewals]", "pipeline: []"))
    _restage(world, lambda text: text.replace("StageName: [Value Proposition]", "StageName: []"))
    _left_alone_over_two_cycles(world, "unmapped:")


def test_a_converted_status_is_never_written_to_a_lead(world: World) -> None:
    contact = world.hubspot.add_contact(
        {
            "email": "opp@example.com",
            "lastname": "Opp",
            "company": "Acme",
            "lifecyclestage": "marketingqualifiedlead",
        }
    )
    world.cycle()
    assert world.person("opp@example.com")["Status"] == "Marketing Qualified"
    # marketing moves the person on to opportunity: its lead is not converted by a write
    world.hubspot.update_contact(contact, {"lifecyclestage": "opportunity"})
    world.cycle()
    lead = world.person("opp@example.com")
    assert lead["Status"] == "Marketing Qualified" and not lead["IsConverted"]
    notes = [n for d in _journal(world, "decision") for n in d["notes"]]
    assert any("cannot be given {'Status': 'Closed - Converted'}" in n for n in notes), notes
    assert world.store.dead_letters() == []
    # a person first seen at opportunity is created as a lead with the default status
    world.hubspot.add_contact(
        {
            "email": "late@example.com",
            "lastname": "Late",
            "company": "A",
            "lifecyclestage": "opportunity",
        }
    )
    world.cycle()
    assert world.person("late@example.com")["Status"] == SHARED


def _validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from syncd.cli.app import main; main()",
            "validate",
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_an_unmapped_live_pipeline_is_refused_by_validate(world: World) -> None:
    config = world.box.config_path
    ok = _validate(config)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "renewals" in ok.stdout and "ignored" in ok.stdout  # the read table shows it
    _restage(world, lambda text: text.replace("pipeline: [renewals]", "pipeline: []"))
    bad = _validate(config)
    assert bad.returncode == 1
    (line,) = [line for line in bad.stderr.splitlines() if "renewals" in line]
    assert "stages.yaml" in line and "deal" in line and "deal.ignore.hubspot.pipeline" in line
    assert len([x for x in bad.stderr.splitlines() if x.startswith("✗")]) == 1, bad.stderr
