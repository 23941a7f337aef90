"""The SLA written back, end to end: a hand-off left untouched past its SLA gets one
Salesforce task for the lead's owner and the HubSpot flag, written once (also when the
task's answer is lost after it landed, as in a crash before the commit), and the flag is
cleared by the first touch; a hand-off touched in time gets neither."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from syncd.config.settings import SlaPropertySettings, SlaSettings, SlaTaskSettings
from syncd.errors import ConnectorError
from syncd.harness import sandbox
from syncd.state.sla import breaches
from syncd.state.tables import dead_letters, journal
from syncd.sync.cycle import counts_text
from tests.factories import syncd_cli
from tests.test_touches_e2e import REP, call, handed_off
from tests.world import World

SUBJECT = "Call back: marketing hand-off"
SLA_SECONDS = 1.0


def enable(world: World) -> None:
    world.engine.sla = SlaSettings(
        crm_task=SlaTaskSettings(enabled=True, subject=SUBJECT, due_in_hours=4),
        marketing_property=SlaPropertySettings(enabled=True),
    )
    world.engine.sla_hours = SLA_SECONDS / 3600


def overdue(world: World, email: str) -> tuple[str, int]:
    """A hand-off whose lead belongs to the rep, then the SLA passing, then the SLA
    written back (not before: the hand-off's own cycle may outlast the short SLA):
    (lead, link)."""
    sla, world.engine.sla = world.engine.sla, SlaSettings()
    lead, link, _ = handed_off(world, email)
    world.salesforce.update("Lead", lead, {"OwnerId": REP})
    time.sleep(SLA_SECONDS + 0.2)
    world.engine.sla = sla
    return lead, link


def reminders(world: World, lead: str) -> list[dict[str, Any]]:
    return [
        t
        for t in world.salesforce.records("Task", include_deleted=False)
        if t["WhoId"] == lead and t["Subject"] == SUBJECT
    ]


def flag(world: World, email: str) -> str | None:
    return world.contact(email).get("syncd_sla_breached")


def actions(world: World, link: int) -> list[str]:
    with world.store.engine.connect() as connection:
        rows = connection.execute(
            select(journal.c.action).where(
                journal.c.link_id == link, journal.c.action.like("sla_%")
            )
        )
        return sorted(r.action for r in rows)


def test_a_breach_is_written_once_to_each_system_and_cleared_by_the_touch(world: World) -> None:
    enable(world)
    lead, link = overdue(world, "late@example.com")
    wrote = world.cycle()
    assert (wrote.sla_breaches, wrote.sla_tasks, wrote.sla_flags, wrote.sla_cleared) == (1, 1, 1, 0)
    assert wrote.as_dict()["sla_tasks"] == 1
    assert counts_text(wrote.as_dict()).endswith(
        ", SLA breaches 1: tasks written 1, flags set 1, flags cleared 0"
    )
    [task] = reminders(world, lead)
    assert (task["OwnerId"], task["Status"], task["IsClosed"]) == (REP, "Not Started", False)
    assert f"[syncd-sla {link}@" in task["Description"] and task["ActivityDate"]
    assert flag(world, "late@example.com") == "true"
    assert actions(world, link) == ["sla_flag", "sla_task"]
    # the next cycles write nothing more
    world.cycle()
    again = world.cycle()
    assert (again.sla_breaches, again.sla_tasks, again.sla_flags) == (0, 0, 0)
    assert "sla_tasks" not in again.as_dict() and "SLA" not in counts_text(again.as_dict())
    assert len(reminders(world, lead)) == 1 and actions(world, link) == ["sla_flag", "sla_task"]
    # the rep calls: the first touch is the call (the open reminder is none), the flag goes
    done = call(world, lead)
    report = world.cycle()
    assert report.touches == 1 and report.sla_cleared == 1
    assert flag(world, "late@example.com") in ("", None)
    assert actions(world, link) == ["sla_clear", "sla_flag", "sla_task"]
    with world.store.engine.connect() as connection:
        [row] = breaches(connection)
    assert (row.task_state, row.flag_state, row.task_id) == ("written", "cleared", task["Id"])
    assert row.touched_at is not None
    assert len(reminders(world, lead)) == 1 and done != task["Id"]


def test_a_task_whose_answer_was_lost_is_found_not_written_again(world: World) -> None:
    enable(world)
    lead, link = overdue(world, "lost@example.com")
    # the create lands, its answer is lost: the cycle fails before storing it
    world.salesforce.land_then_drop("composite/sobjects", method="POST")
    with pytest.raises(ConnectorError):
        world.cycle()
    assert len(reminders(world, lead)) == 1
    with world.store.engine.connect() as connection:
        [row] = breaches(connection)
    assert row.task_state == "intent"  # written remotely, not committed
    world.cycle()
    [task] = reminders(world, lead)
    with world.store.engine.connect() as connection:
        [row] = breaches(connection)
        letters = connection.execute(select(dead_letters)).all()
    assert (row.task_state, row.task_id) == ("written", task["Id"]) and letters == []
    assert actions(world, link).count("sla_task") == 1


def test_a_hand_off_touched_in_time_gets_no_breach(world: World) -> None:
    enable(world)
    world.engine.sla_hours = 1.0  # an hour: the call comes well within it
    lead, link, _ = handed_off(world, "quick@example.com")
    call(world, lead)
    world.cycle()
    world.engine.sla_hours = SLA_SECONDS / 3600  # even once an SLA has passed since
    time.sleep(SLA_SECONDS + 0.2)
    world.cycle()
    assert reminders(world, lead) == [] and flag(world, "quick@example.com") in ("", None)
    with world.store.engine.connect() as connection:
        assert breaches(connection) == []
    assert actions(world, link) == []


def test_the_sla_is_off_by_default(world: World) -> None:
    assert world.engine.sla == SlaSettings()
    world.engine.sla_hours = SLA_SECONDS / 3600
    lead, _ = overdue(world, "off@example.com")
    world.cycle()
    assert reminders(world, lead) == [] and flag(world, "off@example.com") in ("", None)


@pytest.mark.parametrize(
    ("prop", "message"),
    [
        ("syncd_sla_breachd", "HubSpot contacts have no property 'syncd_sla_breachd'"),
        ("hubspotscore", "property 'hubspotscore' is of type number, which cannot hold"),
        ("createdate", "property 'createdate' is read-only"),
    ],
)
def test_validate_names_an_sla_flag_property_hubspot_cannot_hold(
    tmp_path: Path, prop: str, message: str
) -> None:
    sla = {"marketing_property": {"enabled": True, "property": prop}}
    with sandbox.start(tmp_path, sample=False, overrides={"sla": sla}) as box:
        checked = syncd_cli("validate", "--json", "--config", str(box.config_path))
    assert checked.returncode != 0, checked.stdout
    answer = json.loads(checked.stdout)
    key = "sla.marketing_property.property"
    (problem,) = [p for p in answer["problems"] if p["key"] == key and message in p["message"]]
    lines = (tmp_path / "syncd.yaml").read_text("utf-8").splitlines()
    assert problem["file"].endswith("syncd.yaml") and prop in lines[problem["line"] - 1]


def test_the_shipped_sla_flag_property_validates_when_on(tmp_path: Path) -> None:
    sla = {"marketing_property": {"enabled": True}, "crm_task": {"enabled": True}}
    with sandbox.start(tmp_path, sample=False, overrides={"sla": sla}) as box:
        checked = syncd_cli("validate", "--json", "--config", str(box.config_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
