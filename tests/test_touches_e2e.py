"""Speed to lead from sales activities, end to end: HubSpot hands a contact off (mql),
syncd creates the lead, a rep logs a call or books a meeting in Salesforce (Task, Event,
through the emulator as a user would), and the next cycle keeps the first touch, timed
from the hand-off, named by its owner; the reads cost a bounded number of calls."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from connectors.salesforce.emulator.schema import USERS
from syncd.report.build import build, read_history
from syncd.report.html import render
from syncd.report.model import Period, Report
from syncd.state.tables import crm_owners, first_touches, links, stage_history
from syncd.sync.cycle import counts_text
from tests.world import World

REP, OTHER = USERS[1][0], USERS[2][0]


def handed_off(world: World, email: str) -> tuple[str, int, datetime]:
    """A contact created at mql in HubSpot and synced: (its lead id, link id, hand-off)."""
    world.hubspot.add_contact(
        {
            "email": email,
            "firstname": "Hand",
            "lastname": "Off",
            "company": "Acme",
            "lifecyclestage": "marketingqualifiedlead",
        }
    )
    world.cycle()
    lead = world.person(email)["Id"]
    with world.store.engine.connect() as connection:
        link = connection.scalar(select(links.c.id).where(links.c.crm_id == lead))
        at = connection.scalar(
            select(stage_history.c.at).where(
                stage_history.c.link_id == link, stage_history.c.to_stage == "mql"
            )
        )
    assert link is not None and at is not None
    return lead, int(link), at if at.tzinfo else at.replace(tzinfo=UTC)


def call(world: World, lead: str, owner: str = REP, **fields: Any) -> str:
    values = {"WhoId": lead, "OwnerId": owner, "Subject": "Call", "TaskSubtype": "Call"}
    return str(world.salesforce.add("Task", {**values, "Status": "Completed", **fields}))


def touches(world: World) -> list[Any]:
    with world.store.engine.connect() as connection:
        return list(connection.execute(select(first_touches)))


def test_the_first_touch_is_kept_timed_and_named(world: World) -> None:
    lead, link, handoff = handed_off(world, "first@example.com")
    assert touches(world) == []  # nothing done yet: no touch
    task = call(world, lead)
    report = world.cycle()
    assert report.activities == 1 and report.touches == 1
    assert "sales activities read 1 (first touches 1)" in counts_text(report.as_dict())
    [touch] = touches(world)
    assert (touch.link_id, touch.activity_id, touch.channel, touch.owner_id) == (
        link,
        task,
        "call",
        REP,
    )
    done = world.salesforce.get("Task", task)["CompletedDateTime"]
    touched = datetime.fromisoformat(done.replace("+0000", "+00:00"))
    assert touch.touched_at.replace(tzinfo=UTC) == touched >= handoff
    with world.store.engine.connect() as connection:
        names = dict(connection.execute(select(crm_owners.c.owner_id, crm_owners.c.name)).all())
    assert names == {REP: "Avery Stone"}

    # a later touch, by someone else, a meeting: the first stays
    world.salesforce.add(
        "Event",
        {
            "WhoId": lead,
            "OwnerId": OTHER,
            "Subject": "Demo",
            "StartDateTime": "2099-01-01T10:00:00.000+0000",
            "DurationInMinutes": 30,
        },
    )
    again = world.cycle()
    assert again.activities == 1 and again.touches == 0
    assert [(t.activity_id, t.owner_id) for t in touches(world)] == [(task, REP)]

    # the report measures it, by the owner's name, and says so (text, JSON, HTML)
    speed = _report(world).speed_to_lead
    assert speed.measure == "touch" and speed.followed_up == 1
    hours = (touched - handoff).total_seconds() / 3600
    assert speed.response.median == hours
    assert list(speed.by_owner) == ["Avery Stone"] and speed.by_owner["Avery Stone"].touched == 1
    page = render(_report(world))
    assert "First touch by owner" in page and "Avery Stone" in page
    assert "first sales activity" in page


def _report(world: World) -> Report:
    now = datetime.now(UTC)
    period = Period(now - timedelta(days=1), now + timedelta(hours=1))
    return build(
        read_history(world.store, period),
        period,
        stages=world.config.stages,
        crm="salesforce",
        settings=world.config.syncd.report,
    )


def test_open_tasks_and_activities_on_others_are_no_touch(world: World) -> None:
    lead, _, _ = handed_off(world, "open@example.com")
    call(world, lead, Status="Not Started")  # a to-do, not a touch
    account = world.salesforce.add("Account", {"Name": "Elsewhere"})
    world.salesforce.add("Task", {"WhatId": account, "Subject": "x", "Status": "Completed"})
    report = world.cycle()
    assert report.activities == 0 and touches(world) == []
    # no sales activity ever read: the report keeps measuring by stage, and says so
    assert _report(world).speed_to_lead.measure == "stage"
    call(world, lead)
    world.cycle()
    assert _report(world).speed_to_lead.measure == "touch"


def test_a_quiet_org_reads_activities_at_no_call_of_their_own(world: World) -> None:
    handed_off(world, "quiet@example.com")
    world.cycle()

    def quiet_calls() -> dict[str, int]:
        world.salesforce.reset_calls()
        world.cycle()
        return world.salesforce.calls()

    world.engine.handoff_stage = None  # no activity read
    without = quiet_calls()
    world.engine.handoff_stage = "mql"
    with_activities = quiet_calls()
    # Task and Event ride in the people's composite (Lead, Contact): the same calls
    assert with_activities == without and without.get("POST composite") == 1, without


def test_activity_reads_are_bounded_by_the_page_size(world: World) -> None:
    lead, _, _ = handed_off(world, "many@example.com")
    world.cycle()
    n, page = 4500, 2000
    rows = [
        {"WhoId": lead, "OwnerId": REP, "Subject": f"Email {i}", "TaskSubtype": "Email"}
        for i in range(n)
    ]
    for row in rows:
        row["Status"] = "Completed"
        world.salesforce.add("Task", row)
    world.salesforce.reset_calls()
    report = world.cycle()
    assert report.activities == n
    calls = world.salesforce.calls()
    # the first page rides in the people's composite, the rest are queryMore pages
    assert calls.get("GET queryMore", 0) == math.ceil(n / page) - 1, calls
    assert calls.get("POST composite") == 1, calls
    assert len(touches(world)) == 1


def test_a_touch_before_the_hand_off_is_none(world: World) -> None:
    lead, _, handoff = handed_off(world, "early@example.com")
    # an event that started (and was logged) before the hand-off is no follow-up
    start = (handoff - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    world.salesforce.add("Event", {"WhoId": lead, "StartDateTime": start, "DurationInMinutes": 15})
    assert world.cycle().touches == 0 and touches(world) == []
