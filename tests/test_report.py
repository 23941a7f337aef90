"""The report: funnel, speed to lead and closed loop from a hand-built stage history.

Every expected figure is worked out by hand from the fixture's literal times below.
The period is March 2026: [2026-03-01, 2026-04-01). Hand-off stage mql, SLA 24 h, the
CRM is salesforce (the shipped configuration).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from syncd.config.load import load_config
from syncd.report import build as report_build
from syncd.report.build import build, durations, read_history
from syncd.report.model import Base, JsonFields, Period
from syncd.state.store import Store
from syncd.state.tables import bases, links, stage_history

ROOT = Path(__file__).resolve().parents[1]
SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)
PARTNER = "Partner <b>&"
"""A source that must come out escaped in HTML."""


def at(day: int, hour: int = 0) -> datetime:
    """A time in March 2026."""
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


# link id: (lead_source, email in the base, email_key of the link, current base stage)
PEOPLE = {
    1: ("webinar", "p1@example.com", "p1@example.com", "sql"),
    2: ("webinar", "p2@example.com", "p2@example.com", "sal"),
    3: ("ads", None, "p3@example.com", "sal"),  # email only on the link
    4: ("ads", "p4@example.com", "p4@example.com", "sql"),
    5: ("ads", "p5@example.com", "p5@example.com", "sal"),
    6: ("  ", "p6@example.com", "p6@example.com", "mql"),  # blank source
    7: ("webinar", "p7@example.com", "p7@example.com", "lead"),
    8: ("ads", "p8@example.com", "p8@example.com", "nurture"),
    9: ("ads", "p9@example.com", "p9@example.com", "?"),  # tombstoned, stage unknown
    10: (PARTNER, "p10@example.com", "p10@example.com", "customer"),  # no transitions
}
HS, SF = "hubspot", "salesforce"
# (link id, to stage, at, system)
PERSON_HISTORY = [
    (1, "lead", at(1, 9), HS),
    (1, "mql", at(2, 10), HS),
    (1, "sal", at(2, 12), SF),  # follow-up after 2 h
    (1, "sql", at(5, 10), SF),
    (2, "mql", at(3, 8), HS),
    (2, "sal", at(4, 14), SF),  # follow-up after 30 h: late
    (3, "lead", at(1, 0), HS),  # exactly at `since`: inside
    (3, "mql", at(6, 0), HS),
    (3, "sal", at(6, 5), HS),  # the marketing system: no follow-up
    (4, "lead", at(2, 9), HS),
    (4, "sql", at(3, 9), SF),  # skips mql and sal
    (5, "lead", datetime(2026, 2, 27, tzinfo=UTC), HS),  # before the period
    (5, "mql", datetime(2026, 2, 28, 12, tzinfo=UTC), HS),  # before the period
    (5, "nurture", datetime(2026, 2, 20, tzinfo=UTC), SF),  # before the period
    (5, "sal", at(1, 10), SF),
    (5, "sql", UNTIL, SF),  # exactly at `until`: outside
    (6, "mql", at(31, 12), HS),  # 12 h before `until`: waiting, within the SLA
    (7, "mql", at(10, 9), HS),
    (7, "disqualified", at(10, 15), SF),  # a recycle stage: follow-up after 6 h
    (7, "lead", at(20, 9), HS),  # re-qualified
    (8, "mql", at(12, 9), HS),
    (8, "sal", at(12, 21), SF),  # follow-up after 12 h
    (8, "nurture", at(15, 9), SF),
    (9, "nurture", at(8, 9), HS),
]
# link id: (fields of the base)
DEALS = {
    101: {"name": "D1", "amount": "1200", "contacts": "1,3", "attributed_people": "10"},
    102: {"name": "D2", "amount": "99.5", "contacts": None, "attributed_people": "10"},
    103: {"name": "D3", "amount": "700", "contacts": "6,8"},
    104: {"name": "D4", "amount": "500", "contacts": "3"},
    105: {"name": "D5", "amount": "10000", "contacts": "1"},
    106: {"name": "D6", "amount": "50"},
}
DEAL_HISTORY = [
    (101, "proposal", at(3, 9), SF),
    (101, "closed_won", at(15, 9), SF),
    (102, "closed_won", at(16, 9), SF),
    (103, "closed_lost", at(18, 9), SF),
    (104, "closed_lost", at(5, 9), SF),
    (104, "closed_won", at(22, 9), SF),  # the last outcome decides: won
    (105, "closed_won", datetime(2026, 2, 10, tzinfo=UTC), SF),  # before the period
    (106, "closed_lost", at(9, 9), HS),
]


def fill(store: Store) -> None:
    """Write the fixture's links, bases and stage history straight into the tables."""
    created = datetime(2026, 1, 1, tzinfo=UTC)
    link_rows, base_rows = [], []
    for link_id, (source, email, key, stage) in PEOPLE.items():
        tombstoned = at(9) if link_id == 9 else None
        link_rows.append(("person", link_id, key, tombstoned))
        fields = {"email": email, "first_name": f"P{link_id}", "lead_source": source}
        base_rows.append((link_id, fields, stage))
    for link_id, fields in DEALS.items():
        link_rows.append(("deal", link_id, None, None))
        base_rows.append((link_id, fields, None))
    history = [("person", *row) for row in PERSON_HISTORY]
    history += [("deal", *row) for row in DEAL_HISTORY]
    with store.engine.begin() as connection:
        connection.execute(
            links.insert(),
            [
                {
                    "id": link_id,
                    "object": obj,
                    "marketing_kind": "contacts" if obj == "person" else "deals",
                    "marketing_id": f"m{link_id}",
                    "crm_kind": "Lead" if obj == "person" else "Opportunity",
                    "crm_id": f"c{link_id}",
                    "email_key": key,
                    "created_at": created,
                    "updated_at": created,
                    "tombstoned_at": tombstoned,
                }
                for obj, link_id, key, tombstoned in link_rows
            ],
        )
        connection.execute(
            bases.insert(),
            [
                {
                    "link_id": link_id,
                    "fields": orjson.dumps(fields).decode(),
                    "stage": stage,
                    "synced_at": created,
                }
                for link_id, fields, stage in base_rows
            ],
        )
        connection.execute(
            stage_history.insert(),
            [
                {
                    "link_id": link_id,
                    "object": obj,
                    "from_stage": None,
                    "to_stage": to_stage,
                    "at": moment,
                    "source_system": system,
                    "source_record": f"{system}/{link_id}",
                }
                for obj, link_id, to_stage, moment, system in history
            ],
        )


@pytest.fixture
def config():
    return load_config(ROOT / "config" / "syncd.yaml")


def make_report(
    store: Store,
    config,
    by: str | None = None,
    generated_at: datetime | None = None,
    **settings: str,
):
    """The report of the hand-made history, with ``settings`` of ``report:`` replaced."""
    fill(store)
    period = Period(SINCE, UNTIL)
    return build(
        read_history(store, period),
        period,
        stages=config.stages,
        crm=config.syncd.crm,
        settings=config.syncd.report.model_copy(update=settings),
        by=by,
        generated_at=generated_at,
    )


def test_funnel_is_cumulative_and_times_each_step(store: Store, config) -> None:
    report = make_report(store, config)
    reached = {step.stage: step.reached for step in report.funnel}
    # Furthest non-recycle stage in the period: P1 sql, P2 sal, P3 sal, P4 sql (skipped
    # mql), P5 sal (its mql is before, its sql at `until`), P6 mql, P7 mql (lead again
    # later is not further), P8 sal. P9 only entered a recycle stage; P10 nothing.
    assert reached == {
        "subscriber": 8,
        "lead": 8,
        "mql": 8,
        "sal": 6,  # P1 P2 P3 P4 P5 P8
        "sql": 2,  # P1 P4
        "opportunity": 0,
        "customer": 0,
        "evangelist": 0,
    }
    steps = {step.stage: step for step in report.funnel}
    assert steps["mql"].conversion == 6 / 8
    assert steps["sal"].conversion == 2 / 6
    assert steps["sql"].conversion == 0 / 2
    assert steps["opportunity"].conversion is None  # nobody reached opportunity
    assert steps["evangelist"].conversion is None and steps["evangelist"].hours_to_next is None

    # mql -> sal: P1, P2, P3 (a marketing-made sal still moves the funnel), P8;
    # not P4 (skipped mql) nor P5 (its mql is outside the period).
    mql_to_sal = sorted(
        [
            hours(at(2, 12) - at(2, 10)),  # P1: 2
            hours(at(4, 14) - at(3, 8)),  # P2: 30
            hours(at(6, 5) - at(6, 0)),  # P3: 5
            hours(at(12, 21) - at(12, 9)),  # P8: 12
        ]
    )
    timed = steps["mql"].hours_to_next
    assert timed is not None
    assert timed.count == 4
    assert timed.median == (mql_to_sal[1] + mql_to_sal[2]) / 2 == 8.5
    assert timed.p90 == mql_to_sal[3] == 30  # nearest rank: ceil(0.9 * 4) = 4th
    # lead -> mql: P1 25 h, P3 120 h; P7's lead comes after its mql, so it is not timed.
    lead_to_mql = steps["lead"].hours_to_next
    assert lead_to_mql is not None
    assert (lead_to_mql.count, lead_to_mql.median, lead_to_mql.p90) == (
        2,
        (hours(at(2, 10) - at(1, 9)) + hours(at(6, 0) - at(1, 0))) / 2,
        hours(at(6, 0) - at(1, 0)),
    )
    assert report.funnel_by == {}


def test_funnel_by_source(store: Store, config) -> None:
    report = make_report(store, config, by="lead_source")
    reached = {
        group: {s.stage: s.reached for s in steps if s.stage in ("mql", "sal", "sql")}
        for group, steps in report.funnel_by.items()
    }
    assert reached == {
        "(none)": {"mql": 1, "sal": 0, "sql": 0},  # P6, blank source
        "ads": {"mql": 4, "sal": 4, "sql": 1},  # P3 P4 P5 P8; sql: P4
        "webinar": {"mql": 3, "sal": 2, "sql": 1},  # P1 P2 P7; sal: P1 P2; sql: P1
    }
    assert report.speed_to_lead_by["webinar"].handoffs == 3  # P1 P2 P7
    assert report.speed_to_lead_by["ads"].over_sla == 1  # P3, never followed up


def test_speed_to_lead(store: Store, config) -> None:
    speed = make_report(store, config).speed_to_lead
    # Hand-offs (first mql in the period): P1 P2 P3 P6 P7 P8; P5's mql is before it.
    assert speed.handoffs == 6
    # Followed up by salesforce into a later or a recycle stage: P1 2 h, P2 30 h,
    # P7 6 h (disqualified), P8 12 h. P3's sal came from hubspot; P6 has nothing yet.
    responses = sorted([2.0, 30.0, 6.0, 12.0])
    assert speed.followed_up == 4
    assert speed.response.median == (responses[1] + responses[2]) / 2 == 9
    assert speed.response.p90 == responses[3]  # ceil(0.9 * 4) = 4th
    assert [(h.link_id, h.email, h.source, h.response_hours) for h in speed.late] == [
        (2, "p2@example.com", "webinar", hours(at(4, 14) - at(3, 8)))
    ]
    # P3: handed off on March 6, so 26 days old at `until`; its email is the link's.
    assert [(h.link_id, h.email, h.handed_off_at) for h in speed.unanswered] == [
        (3, "p3@example.com", at(6, 0))
    ]
    assert speed.over_sla == 2
    assert speed.waiting == 1  # P6: 12 h old at `until`
    # ≤ 6 h: 2 and 6; 6 to 12 h: 12; 12 to 24 h: none; 24 to 48 h: 30; above: none.
    assert [b.count for b in speed.histogram] == [2, 1, 0, 1, 0]


def test_closed_loop_by_source(store: Store, config) -> None:
    loop = make_report(store, config).closed_loop
    # D1 won (contacts 1,3: P1 webinar first), D2 won (no contacts: attributed P10,
    # partner), D3 lost (contacts 6,8: P6 has no source, so P8 ads), D4 lost then won
    # (P3 ads), D6 lost (no people). D5 was won before the period.
    assert (loop.total.won, loop.total.lost) == (3, 2)
    assert loop.total.win_rate == 3 / 5
    assert loop.total.won_revenue == Decimal("1200") + Decimal("99.5") + Decimal("500")
    summary = {
        source: (o.won, o.lost, o.win_rate, o.won_revenue) for source, o in loop.by_source.items()
    }
    assert summary == {
        "(none)": (0, 1, 0.0, Decimal(0)),
        "ads": (1, 1, 1 / 2, Decimal("500")),
        "webinar": (1, 0, 1.0, Decimal("1200")),
        PARTNER: (1, 0, 1.0, Decimal("99.5")),
    }
    assert loop.won_without_amount == 0


def test_recycled_people(store: Store, config) -> None:
    recycled = make_report(store, config).recycled
    # P7 disqualified, then lead again (re-qualified, now lead); P8 nurture (now
    # nurture); P9 nurture (tombstoned, stage "?"). P5's nurture is before the period.
    assert recycled.people == 3
    assert recycled.requalified == 1
    assert recycled.by_current_stage == {"(unknown)": 1, "lead": 1, "nurture": 1}


def test_p90_is_the_nearest_rank() -> None:
    seventy = durations(float(v) for v in range(1, 71))
    assert seventy.p90 == 63  # ceil(0.9 * 70) = 63rd value
    assert seventy.median == (35 + 36) / 2
    assert durations([5.0]).p90 == 5 and durations([]).median is None
    assert durations(float(v) for v in range(1, 11)).p90 == 9  # ceil(9.0) = 9th


def _config_dir(tmp_path: Path) -> Path:
    for name in ("syncd.yaml", "fields.yaml", "stages.yaml"):
        shutil.copy(ROOT / "config" / name, tmp_path / name)
    return tmp_path / "syncd.yaml"


def test_cli_report_json_and_html(store: Store, store_url: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from syncd.cli.app import app

    fill(store)
    config = _config_dir(tmp_path)
    runner = CliRunner()
    env = {"SYNCD_STORE_URL": store_url}
    period = ["--since", "2026-03-01", "--until", "2026-04-01T00:00:00"]
    answer = runner.invoke(app, ["report", "--config", str(config), *period, "--json"], env=env)
    assert answer.exit_code == 0, answer.output
    report = json.loads(answer.stdout)
    assert report["since"] == "2026-03-01T00:00:00+00:00"
    assert [s["reached"] for s in report["funnel"]][2:5] == [8, 6, 2]
    speed = report["speed_to_lead"]
    assert (speed["handoffs"], speed["followed_up"], speed["over_sla"]) == (6, 4, 2)
    assert speed["response"]["median"] == 9
    loop = report["closed_loop"]
    assert loop["total"]["won_revenue"] == "1799.5"  # 1200 + 99.5 + 500
    assert loop["by_source"]["ads"]["win_rate"] == 0.5
    # The trend's weeks add up to the same figures.
    trend = report["trend"]
    assert sum(b["handoffs"] for b in trend["buckets"]) == trend["current"]["handoffs"] == 6
    assert trend["current"]["won_revenue"] == "1799.5" and report["currency"] == "USD"

    page = tmp_path / "report.html"
    answer = runner.invoke(
        app, ["report", "--config", str(config), *period, "--html", str(page)], env=env
    )
    assert answer.exit_code == 0, answer.output
    text = page.read_text(encoding="utf-8")
    assert "<svg" in text and "<style>" in text
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text
    assert PARTNER not in text and "Partner &lt;b&gt;&amp;" in text

    tables = runner.invoke(app, ["report", "--config", str(config), *period], env=env)
    assert tables.exit_code == 0, tables.output
    assert "Funnel" in tables.stdout and PARTNER in tables.stdout
    assert "Generated at " in tables.stdout and "Trend per week" in tables.stdout


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--since", "March"], "--since"),
        (["--until", "2026-13-01"], "--until"),
        (["--since", "2026-04-02", "--until", "2026-04-01"], "--since"),
    ],
)
def test_cli_report_refuses_a_bad_period(tmp_path: Path, options: list[str], named: str) -> None:
    from typer.testing import CliRunner

    from syncd.cli.app import app

    config = _config_dir(tmp_path)
    answer = CliRunner().invoke(app, ["report", "--config", str(config), *options])
    assert answer.exit_code == 2
    assert f"Invalid value for {named}" in answer.output


def test_bases_read_in_one_scan_equal_those_read_by_id(
    store: Store, config, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(store)
    period = Period(SINCE, UNTIL)
    by_id = read_history(store, period)
    monkeypatch.setattr(report_build, "WHOLE_TABLE", 1)  # every read is the one scan
    scanned = read_history(store, period)
    assert len(by_id.bases) > 1 and set(scanned.bases) == set(by_id.bases)
    for link_id, base in by_id.bases.items():
        other = scanned.bases[link_id]
        assert (dict(other.fields), other.stage, other.email_key) == (
            dict(base.fields),
            base.stage,
            base.email_key,
        )
    assert scanned.transitions == by_id.transitions


def test_a_base_parses_its_fields_only_when_read() -> None:
    fields = JsonFields(b'{"email": " ada@example.com ", "lead_source": ""}')
    base = Base(fields, "mql", "ada@example.com")
    assert fields._parsed is None  # nothing read yet
    assert base.value("email") == "ada@example.com" and base.value("lead_source") is None
    assert dict(fields) == {"email": " ada@example.com ", "lead_source": ""} and len(fields) == 2
    assert dict(JsonFields(None)) == {} and base.value("missing") is None


def test_sqlites_own_cursor_reads_the_transitions_the_generic_query_reads(
    tmp_path: Path,
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'syncd.db'}")  # the driver's path: SQLite's
    try:
        fill(store)
        with store.engine.connect() as connection:
            generic = report_build._transitions(connection, SINCE, UNTIL)
            own = report_build._sqlite_transitions(connection, SINCE, UNTIL)
            # a bound falls between two transitions: the same ones fall outside it
            middle = generic[len(generic) // 2].at
            cut = report_build._sqlite_transitions(connection, SINCE, middle)
            assert cut == report_build._transitions(connection, SINCE, middle)
    finally:
        store.close()
    assert len(generic) > 10 and own == generic
    assert all(t.at.tzinfo is not None for t in own) and 0 < len(cut) < len(own)
