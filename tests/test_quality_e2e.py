"""Lead quality end to end: the score and source come from HubSpot through the official
client into the hand-off's snapshot, sales acts in Salesforce, and ``syncd report``'s
quality section counts what became of each hand-off (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from syncd.cli import common
from syncd.cli.app import app
from syncd.report.build import build, read_history
from syncd.report.model import Period, Quality
from syncd.state.tables import links, stage_history
from tests.world import World

MQL = "marketingqualifiedlead"


def _contact(world: World, email: str, score: int, source: str | None) -> str:
    properties = {
        "email": email,
        "lastname": email.split("@")[0].capitalize(),
        "company": "Initech",
        "lifecyclestage": MQL,
        "hubspotscore": str(score),
    }
    if source:
        properties["lead_source"] = source
    return str(world.hubspot.add_contact(properties))


def _lead(world: World, email: str) -> str:
    (lead,) = [
        r["Id"]
        for r in world.salesforce.records("Lead")
        if r.get("Email") == email and not r.get("IsDeleted")
    ]
    return str(lead)


def _snapshots(world: World) -> dict[str, dict[str, Any]]:
    """The snapshot of each person's hand-off, by the HubSpot contact id."""
    query = (
        select(links.c.marketing_id, stage_history.c.snapshot)
        .select_from(stage_history.join(links, links.c.id == stage_history.c.link_id))
        .where(stage_history.c.to_stage == "mql")
    )
    with world.store.engine.connect() as connection:
        return {row.marketing_id: json.loads(row.snapshot) for row in connection.execute(query)}


def _quality(world: World) -> Quality:
    now = datetime.now(UTC)
    period = Period(now - timedelta(days=1), now + timedelta(days=1))
    config = world.config
    return build(
        read_history(world.store, period),
        period,
        stages=config.stages,
        crm=config.syncd.crm,
        settings=config.syncd.report,
    ).quality


def test_the_handoff_keeps_what_marketing_knew_and_the_report_counts_what_sales_did(
    world: World,
) -> None:
    ada = _contact(world, "ada@example.com", 85, "Webinar")
    bob = _contact(world, "bob@example.com", 40, "Partner")
    cy = _contact(world, "cy@example.com", 70, "Webinar")
    world.hubspot.add_contact(  # not handed off: no quality figure counts it
        {"email": "dee@example.com", "lastname": "Dee", "lifecyclestage": "lead"}
    )
    world.cycle()
    assert _snapshots(world) == {
        ada: {"lead_score": "85", "lead_source": "Webinar"},
        bob: {"lead_score": "40", "lead_source": "Partner"},
        cy: {"lead_score": "70", "lead_source": "Webinar"},
    }

    # Marketing rescores Ada after the hand-off: the hand-off keeps the 85 sales got.
    world.hubspot.update_contact(ada, {"hubspotscore": "5"})
    # Sales: converts Ada and wins the deal, disqualifies Bob with a reason, works Cy.
    ids = world.salesforce.convert_lead(_lead(world, "ada@example.com"), opportunity_name="Big")
    world.salesforce.update(
        "Lead",
        _lead(world, "bob@example.com"),
        {"Status": "Closed - Not Converted", "Recycle_Reason__c": "No budget this year"},
    )
    world.salesforce.update(
        "Lead", _lead(world, "cy@example.com"), {"Status": "Working - Contacted"}
    )
    world.cycle()
    opportunity = ids["opportunityId"]
    assert opportunity is not None
    world.salesforce.update(
        "Opportunity", opportunity, {"StageName": "Closed Won", "Amount": 30000}
    )
    world.cycle()
    world.cycle()
    assert _snapshots(world)[ada] == {"lead_score": "85", "lead_source": "Webinar"}
    assert world.contact("ada@example.com")["hubspotscore"] == "5"

    q = _quality(world)
    total = q.total
    assert (total.handoffs, total.accepted, total.disqualified) == (3, 2, 1)  # Ada Cy | Bob
    assert total.reasons == {"No budget this year": 1}
    assert (total.opportunities, total.won, total.lost) == (1, 1, 0)
    assert total.won_revenue == Decimal(30000)
    assert total.small_sample and total.first_touch.count == 3  # all three answered by sales
    assert {k: (r.handoffs, r.won) for k, r in q.by_source.items()} == {
        "Partner": (1, 0),
        "Webinar": (2, 1),
    }
    bands = {k: r.handoffs for k, r in q.by_band.items() if r.handoffs}
    assert bands == {"25 to 50": 1, "50 to 75": 1, "75 to 100": 1}  # Ada by her 85
    assert q.by_band["75 to 100"].won == 1
    kept = {t.threshold: (t.handoffs, t.won, t.held_back) for t in q.thresholds}
    assert kept == {20: (3, 1, 0), 40: (3, 1, 0), 60: (2, 1, 1), 80: (1, 1, 2)}
    assert q.current_values == 0 and q.unscored == 0

    # syncd explain shows what Ada was handed off with, beside her stage history.
    # (wide enough for the line whole: the console's width is fixed when it is made,
    # from COLUMNS then, so an env= here would not reach it)
    width = common.console._width
    common.console.width = 250
    try:
        answer = CliRunner().invoke(
            app, ["explain", "ada@example.com", "--config", str(world.box.config_path)]
        )
    finally:
        common.console._width = width
    assert answer.exit_code == 0, answer.output
    assert "handed off with lead_score 85, lead_source Webinar" in answer.output
