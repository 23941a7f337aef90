"""The first-touch rules on plain values and on the store (SQLite and PostgreSQL), and
speed to lead measured by them in the report. Times are literal; expected figures are
worked out by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connectors.salesforce import activities as sf_activities
from syncd.config.settings import ReportSettings, StageDef
from syncd.model import Activity, Cursor, RecordRef
from syncd.report.build import speed_to_lead
from syncd.report.model import Base, FirstTouch, Transition
from syncd.state import touches as stored
from syncd.state.store import Store
from syncd.state.tables import links, stage_history


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def act(id_: str, who: str, when: datetime, owner: str = "005A", channel: str = "call") -> Activity:
    return Activity(RecordRef("salesforce", "Task", id_), who, owner, when, channel, when)


def fill(store: Store) -> None:
    """Person 1 (lead 00Q1) handed off on March 2 at 10:00 and again on March 20;
    person 2 (00Q2) on March 3 at 8:00; person 3 (00Q3) never."""
    with store.engine.begin() as connection:
        for link_id, crm_id in ((1, "00Q1"), (2, "00Q2"), (3, "00Q3")):
            connection.execute(
                links.insert(),
                {
                    "id": link_id,
                    "object": "person",
                    "crm_kind": "Lead",
                    "crm_id": crm_id,
                    "created_at": at(1),
                    "updated_at": at(1),
                },
            )
        for link_id, when in ((1, at(2, 10)), (1, at(20)), (2, at(3, 8))):
            connection.execute(
                stage_history.insert(),
                {
                    "link_id": link_id,
                    "object": "person",
                    "to_stage": "mql",
                    "at": when,
                    "source_system": "hubspot",
                    "source_record": "x",
                },
            )


def keep(store: Store, items: list[Activity]) -> list[stored.Touch]:
    with store.engine.begin() as connection:
        return stored.keep(connection, items, "mql", at(31))


def kept(store: Store) -> dict[tuple[int, datetime], tuple[str, datetime]]:
    with store.engine.connect() as connection:
        return {
            (t.link_id, t.handoff_at): (t.activity_id, t.touched_at)
            for t in stored.touches(connection)
        }


def test_the_first_touch_after_each_hand_off_is_kept(store: Store) -> None:
    fill(store)
    keep(
        store,
        [
            act("T1", "00Q1", at(2, 9)),  # before person 1's first hand-off: none
            act("T2", "00Q1", at(2, 14)),  # 4 h after it: the first touch
            act("T3", "00Q1", at(4)),  # later: not the first
            act("T4", "00Q1", at(21)),  # after the second hand-off: its own first touch
            act("T5", "00Q3", at(5)),  # person 3 was never handed off
            act("T6", "00Q9", at(5)),  # a lead syncd has not linked
        ],
    )
    assert kept(store) == {(1, at(2, 10)): ("T2", at(2, 14)), (1, at(20)): ("T4", at(21))}
    # read later: a later touch changes nothing, an earlier one logged late replaces it
    assert keep(store, [act("T7", "00Q1", at(3))]) == []
    changed = keep(store, [act("T8", "00Q1", at(2, 11)), act("T9", "00Q2", at(3, 9))])
    assert sorted(t.activity_id for t in changed) == ["T8", "T9"]
    assert kept(store)[(1, at(2, 10))] == ("T8", at(2, 11))
    assert kept(store)[(2, at(3, 8))] == ("T9", at(3, 9))
    # the same activity read again (the lookback window) is no change
    assert keep(store, [act("T8", "00Q1", at(2, 11))]) == []


def test_a_task_is_timed_when_done_and_an_event_when_booked_or_held() -> None:
    task = sf_activities.activity(
        "Task",
        {
            "Id": "00T1",
            "WhoId": "00Q1",
            "OwnerId": "005A",
            "TaskSubtype": "Email",
            "CompletedDateTime": "2026-03-02T12:00:00.000+0000",
            "CreatedDate": "2026-03-02T11:00:00.000+0000",
            "SystemModstamp": "2026-03-02T12:00:00.000+0000",
        },
    )
    assert (task.at, task.channel, task.owner_id) == (at(2, 12), "email", "005A")
    booked = {"Id": "00U1", "WhoId": "00Q1", "CreatedDate": "2026-03-02T11:00:00.000+0000"}
    booked["SystemModstamp"] = booked["CreatedDate"]
    ahead = sf_activities.activity("Event", {**booked, "StartDateTime": "2026-03-09T11:00:00Z"})
    logged = sf_activities.activity("Event", {**booked, "StartDateTime": "2026-03-01T09:00:00Z"})
    assert (ahead.at, ahead.channel, logged.at) == (at(2, 11), "meeting", at(1, 9))


def test_the_scan_asks_only_for_done_activities_on_people() -> None:
    since = at(2)
    soql, window = sf_activities.scan_query("Task", Cursor(since), at(3), timedelta(minutes=10))
    assert "WhoId != null AND IsClosed = true" in soql and "SystemModstamp >=" in soql
    assert soql.endswith("ORDER BY SystemModstamp, Id") and window is not None
    event, _ = sf_activities.scan_query("Event", Cursor(), at(3), timedelta(minutes=10))
    assert "FROM Event WHERE WhoId != null" in event and "IsClosed" not in event


def test_speed_to_lead_by_first_touch_per_owner_and_source() -> None:
    stages = [StageDef(name=n) for n in ("lead", "mql", "sal")]
    settings = ReportSettings(speed_to_lead_sla_hours=24)
    people = {
        1: [Transition(1, 1, "person", "mql", at(2, 10), "hubspot")],
        2: [
            Transition(2, 2, "person", "mql", at(3, 8), "hubspot"),
            # a stage change 1 h later: not the measure when touches were read
            Transition(3, 2, "person", "sal", at(3, 9), "salesforce"),
        ],
        3: [Transition(4, 3, "person", "mql", at(4), "hubspot")],
        4: [Transition(5, 4, "person", "mql", at(31, 12), "hubspot")],
    }
    bases = {
        1: Base({"lead_source": "webinar"}),
        2: Base({"lead_source": "webinar"}),
        3: Base({"lead_source": "ads"}),
        4: Base({"lead_source": "ads"}),
    }
    touches = {
        (1, at(2, 10)): FirstTouch(at(2, 14), "call", "Avery Stone"),  # 4 h
        (2, at(3, 8)): FirstTouch(at(4, 16), "email", "Avery Stone"),  # 32 h: late
    }
    speed = speed_to_lead(
        people,
        bases,
        datetime(2026, 4, 1, tzinfo=UTC),
        stages=stages,
        crm="salesforce",
        settings=settings,
        touches=touches,
    )
    assert speed.measure == "touch"
    assert (speed.handoffs, speed.followed_up, speed.over_sla, speed.waiting) == (4, 2, 2, 1)
    assert speed.response.median == 18  # (4 + 32) / 2
    assert [h.link_id for h in speed.unanswered] == [3]  # 27 days untouched
    avery = speed.by_owner["Avery Stone"]
    assert list(speed.by_owner) == ["Avery Stone"]
    assert (avery.touched, avery.over_sla, avery.response.median) == (2, 1, 18)
    assert speed.by_source["webinar"].never_touched == 0.0
    assert speed.by_source["ads"].never_touched == 1.0  # neither P3 nor P4 touched
    # without activity data: the stage measure, P2 followed up in 1 h
    by_stage = speed_to_lead(
        people,
        bases,
        datetime(2026, 4, 1, tzinfo=UTC),
        stages=stages,
        crm="salesforce",
        settings=settings,
    )
    assert by_stage.measure == "stage" and by_stage.followed_up == 1 and not by_stage.by_owner
