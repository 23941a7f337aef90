"""The lead-quality section from a hand-built store: every figure worked out by hand.

The period is March 2026, the shipped configuration: hand-off at mql, accepted at sal (the
next stage), score ``lead_score``, source ``lead_source``, bands 0/25/50/75/100,
thresholds 20/40/60/80, win rates from fewer than 5 closed deals marked. What marketing
knew at the hand-off is the snapshot stored with the mql transition; person 1's current
values differ from it on purpose (the report must use what sales was handed).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner

from syncd.cli.app import app
from syncd.config.load import load_config
from syncd.errors import ConfigError
from syncd.report import html, view
from syncd.report.build import build, read_history
from syncd.report.model import Period, Report
from syncd.report.quality import band_of, score_of
from syncd.state.store import Store
from syncd.state.tables import bases, links, stage_history
from tests.test_report import ROOT, _config_dir

SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)
HS, SF = "hubspot", "salesforce"
BANDS = ["0 to 25", "25 to 50", "50 to 75", "75 to 100", "< 0", "> 100", "(no score)"]
"""The score bands of the shipped edges, then the scores outside them and the unscored."""


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def snap(score: str | None, source: str) -> dict[str, Any]:
    return {"lead_score": score, "lead_source": source}


# link id: (snapshot kept with the mql transition or None (recorded before 0008),
#           current base values)
PEOPLE: dict[int, tuple[dict[str, Any] | None, dict[str, Any]]] = {
    1: (snap("90", "webinar"), {"lead_score": "10", "lead_source": "ads"}),  # changed since
    2: (snap("80", "webinar"), {}),
    3: (snap("60", "webinar"), {}),
    4: (snap("30", "ads"), {}),
    5: (snap("10", "ads"), {}),
    6: (snap("50", "ads"), {}),  # a band's lower edge belongs to it
    7: (snap("", "webinar"), {"lead_score": "70"}),  # blank at hand-off: no score
    8: (None, {"lead_score": "100", "lead_source": "partner"}),  # current values; 100 in 75-100
    9: (snap("120", "partner"), {}),  # above the bands
    10: (None, {"lead_source": "ads"}),  # handed off before the period
    11: (snap("-5", "ads"), {}),  # below the bands
}
# (link id, to stage, at, system, reason)
PERSON_HISTORY = [
    (1, "mql", at(2, 10), HS, None),
    (1, "sal", at(2, 12), SF, None),  # touched after 2 h, accepted
    (1, "sql", at(5), SF, None),
    (2, "mql", at(3, 8), HS, None),
    (2, "sal", at(4, 14), SF, None),  # 30 h
    (3, "mql", at(5), HS, None),
    (3, "disqualified", at(5, 6), SF, "no budget"),  # 6 h, not accepted
    (4, "mql", at(6), HS, None),
    (4, "nurture", at(7), SF, "bad timing"),  # 24 h
    (4, "sal", at(10), SF, None),  # accepted after all
    (5, "mql", at(8), HS, None),
    (5, "disqualified", at(8, 12), SF, None),  # 12 h, no reason given
    (6, "mql", at(9), HS, None),
    (6, "sal", at(9, 3), HS, None),  # accepted, but by marketing: no touch
    (7, "mql", at(10), HS, None),
    (8, "mql", at(11), HS, None),
    (8, "sal", at(11, 1), SF, None),  # 1 h
    (9, "mql", at(12), HS, None),
    (10, "mql", datetime(2026, 2, 20, tzinfo=UTC), HS, None),
    (11, "mql", at(13), HS, None),
]
DEALS = {
    101: {"name": "D1", "amount": "1000", "contacts": "1"},
    102: {"name": "D2", "amount": "500", "contacts": "2"},
    103: {"name": "D3", "amount": "900", "contacts": "2,10"},  # 10 no hand-off: P2's
    104: {"name": "D4", "amount": "2000", "contacts": "6"},
    105: {"name": "D5", "amount": "800", "contacts": "8"},
    106: {"name": "D6", "amount": "300", "contacts": "10"},  # no hand-off of the period
    107: {"name": "D7", "amount": "400", "contacts": "3"},  # still open
    108: {"name": "D8", "amount": "abc", "attributed_people": "1"},  # no readable amount
}
DEAL_HISTORY = [
    (101, "closed_won", at(20)),
    (102, "closed_won", at(21)),
    (103, "closed_lost", at(21)),
    (104, "closed_lost", at(15)),
    (104, "closed_won", at(22)),  # the last outcome decides
    (105, "closed_lost", at(23)),
    (106, "closed_won", at(24)),
    (107, "proposal", at(24)),
    (108, "closed_won", at(25)),
]


def fill(store: Store) -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    person_rows = [(i, "person", f"p{i}@example.com") for i in PEOPLE]
    deal_rows = [(i, "deal", None) for i in DEALS]
    with store.engine.begin() as connection:
        connection.execute(
            links.insert(),
            [
                {
                    "id": link_id,
                    "object": obj,
                    "marketing_id": f"m{link_id}",
                    "crm_id": f"c{link_id}",
                    "email_key": key,
                    "created_at": created,
                    "updated_at": created,
                }
                for link_id, obj, key in person_rows + deal_rows
            ],
        )
        base_rows = [(i, {"email": f"p{i}@example.com", **now}) for i, (_, now) in PEOPLE.items()]
        base_rows += list(DEALS.items())
        connection.execute(
            bases.insert(),
            [
                {"link_id": i, "fields": orjson.dumps(f).decode(), "synced_at": created}
                for i, f in base_rows
            ],
        )
        rows = [
            {
                "link_id": link_id,
                "object": "person",
                "to_stage": stage,
                "at": moment,
                "source_system": system,
                "source_record": f"{system}/{link_id}",
                "reason": reason,
                "snapshot": (
                    orjson.dumps(PEOPLE[link_id][0]).decode()
                    if stage == "mql" and PEOPLE[link_id][0] is not None
                    else None
                ),
            }
            for link_id, stage, moment, system, reason in PERSON_HISTORY
        ]
        rows += [
            {
                "link_id": link_id,
                "object": "deal",
                "to_stage": stage,
                "at": moment,
                "source_system": SF,
                "source_record": f"{SF}/{link_id}",
                "reason": None,
                "snapshot": None,
            }
            for link_id, stage, moment in DEAL_HISTORY
        ]
        connection.execute(stage_history.insert(), rows)


@pytest.fixture
def config() -> Any:
    return load_config(ROOT / "config" / "syncd.yaml")


def make_report(store: Store, config: Any, **quality: Any) -> Report:
    fill(store)
    return report_of(store, config, **quality)


def report_of(store: Store, config: Any, **quality: Any) -> Report:
    """The March report of the store, with ``quality`` replacing ``report.quality`` keys."""
    period = Period(SINCE, UNTIL)
    report = config.syncd.report
    settings = report.model_copy(update={"quality": report.quality.model_copy(update=quality)})
    return build(
        read_history(store, period),
        period,
        stages=config.stages,
        crm=config.syncd.crm,
        settings=settings,
        generated_at=UNTIL,
    )


def figures(row: Any) -> tuple[Any, ...]:
    """hand-offs, accepted, disqualified, opportunities, won, lost, win rate, small sample,
    revenue, median hours to first touch."""
    return (
        row.handoffs,
        row.accepted,
        row.disqualified,
        row.opportunities,
        row.won,
        row.lost,
        row.win_rate,
        row.small_sample,
        row.won_revenue,
        row.first_touch.median,
    )


def test_quality_by_source_and_in_total(store: Store, config: Any) -> None:
    q = make_report(store, config).quality
    assert (q.handoff_stage, q.accepted_stage, q.source_field) == ("mql", "sal", "lead_source")
    # Hand-offs: 1-9 and 11 (10's mql is before the period). Accepted: 1 2 4 6 8.
    # Disqualified or recycled: 3 4 5. Deals: D1 D8 (P1), D2 D3 (P2), D7 (P3), D4 (P6),
    # D5 (P8); D6 names only 10. Won D1 D8 D2 D4, lost D3 D5: 4 of 6 closed.
    # Revenue 1000 + 500 + 2000 (D8's amount unreadable). First touches (CRM only):
    # 2 30 6 24 12 1 -> median (6 + 12) / 2, p90 the 6th of 6.
    assert figures(q.total) == (10, 5, 3, 7, 4, 2, 4 / 6, False, Decimal(3500), 9)
    assert q.total.first_touch.p90 == 30
    assert q.total.reasons == {"(no reason given)": 1, "bad timing": 1, "no budget": 1}
    assert list(q.by_source) == ["ads", "partner", "webinar"]
    # webinar: 1 2 3 7 (1 by its snapshot, though it is "ads" now); 3 won of 4 closed.
    assert figures(q.by_source["webinar"]) == (4, 2, 1, 5, 3, 1, 0.75, True, Decimal(1500), 6)
    # ads: 4 5 6 11; touches 24 and 12.
    assert figures(q.by_source["ads"]) == (4, 2, 2, 1, 1, 0, 1.0, True, Decimal(2000), 18)
    assert q.by_source["ads"].reasons == {"(no reason given)": 1, "bad timing": 1}
    # partner: 8 (its current values) and 9.
    assert figures(q.by_source["partner"]) == (2, 1, 0, 1, 0, 1, 0.0, True, Decimal(0), 1)
    assert q.current_values == 1  # 8


def test_quality_by_score_band(store: Store, config: Any) -> None:
    q = make_report(store, config).quality
    assert list(q.by_band) == BANDS
    handoffs = {band: row.handoffs for band, row in q.by_band.items()}
    # 10 | 30 | 50 60 | 90 80 100 | -5 | 120 | blank
    assert handoffs == {
        "0 to 25": 1,
        "25 to 50": 1,
        "50 to 75": 2,
        "75 to 100": 3,
        "< 0": 1,
        "> 100": 1,
        "(no score)": 1,
    }
    # 75 to 100: P1 (D1 D8 won), P2 (D2 won, D3 lost), P8 (D5 lost): 3 of 5, enough deals.
    assert figures(q.by_band["75 to 100"]) == (3, 3, 0, 5, 3, 2, 0.6, False, Decimal(1500), 2)
    assert figures(q.by_band["50 to 75"]) == (2, 1, 1, 2, 1, 0, 1.0, True, Decimal(2000), 6)
    assert q.by_grade == {}  # no grade field mapped
    assert q.unscored == 1


def test_score_thresholds(store: Store, config: Any) -> None:
    q = make_report(store, config).quality
    rows = [
        (
            t.threshold,
            t.handoffs,
            t.won,
            t.lost,
            t.small_sample,
            t.won_revenue,
            t.held_back,
            t.held_back_won,
            t.held_back_revenue,
        )
        for t in q.thresholds
    ]
    # Scored: P1 90, P2 80, P3 60, P4 30, P5 10, P6 50, P8 100, P9 120, P11 -5 (P7 none).
    assert rows == [
        (20, 7, 4, 2, False, Decimal(3500), 2, 0, Decimal(0)),  # held back P5 P11
        (40, 6, 4, 2, False, Decimal(3500), 3, 0, Decimal(0)),  # + P4
        (60, 5, 3, 2, False, Decimal(1500), 4, 1, Decimal(2000)),  # + P6 and its D4
        (80, 4, 3, 2, False, Decimal(1500), 5, 1, Decimal(2000)),  # + P3
    ]
    assert [t.win_rate for t in q.thresholds] == [4 / 6, 4 / 6, 0.6, 0.6]


def test_settings_change_bands_accepted_stage_and_the_small_number_limit(
    store: Store, config: Any
) -> None:
    q = make_report(
        store, config, score_bands=[0, 50, 100], accepted_stage="sql", min_deals=2, thresholds=[]
    ).quality
    assert {band: row.handoffs for band, row in q.by_band.items()} == {
        "0 to 50": 2,  # 10 30
        "50 to 100": 5,  # 90 80 60 50 100
        "< 0": 1,
        "> 100": 1,
        "(no score)": 1,
    }
    assert q.accepted_stage == "sql" and q.total.accepted == 1  # P1 only reached sql
    assert not q.by_source["webinar"].small_sample  # 4 closed, 2 needed
    assert q.by_source["partner"].small_sample  # 1 closed
    assert q.thresholds == ()


def test_without_a_score_field_by_source_only_and_by_grade_where_mapped(
    store: Store, config: Any
) -> None:
    # The source field standing in for a grade: read from the snapshots like the source.
    q = make_report(store, config, score_field=None, grade_field="lead_source").quality
    assert q.by_band == {} and q.thresholds == () and q.unscored == 10
    assert {k: r.handoffs for k, r in q.by_grade.items()} == {
        "ads": 4,
        "partner": 2,
        "webinar": 4,
    }
    assert q.current_values == 1  # 8 only: lead_source is in every other snapshot
    text = _text(report_of(store, config, score_field=None))
    assert "Lead quality by lead_source" in text
    assert "at or above a threshold" not in text and "Score band" not in text


def _text(report: Report) -> str:
    out = io.StringIO()
    view.print_report(Console(file=out, width=250, color_system=None), report)
    return out.getvalue()


def _line(text: str, first: str) -> str:
    found = [line for line in text.splitlines() if line.strip("│ ").startswith(first)]
    assert found, f"no line starting with {first!r}"
    return found[0]


def test_small_numbers_are_marked_not_drawn_as_rates(store: Store, config: Any) -> None:
    report = make_report(store, config)
    text = _text(report)
    # webinar won 3 of 4 closed (fewer than 5): no "75%" anywhere in its row.
    webinar = _line(text[text.index("Lead quality by lead_source") :], "webinar")
    assert "n<5 (3/4)" in webinar and "%" not in webinar
    band = _line(text[text.index("Lead quality by lead_score") :], "75 to 100")
    assert "60%" in band and "n<" not in band  # 5 closed: a rate
    assert "n<5: fewer than 5 deals closed" in text
    page = html.render(report)
    start = page.index('<svg id="quality-source-chart"')
    chart = page[start : page.index("</svg>", start)]
    assert "n&lt;5 (3/4)" in chart and "75%" not in chart
    # A small sample draws no bar: the bar of webinar has no width.
    assert chart.count('class="waiting"') == 3 and 'class="won"' not in chart
    assert 'width="0.0"' in chart


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_the_text_report_has_reasons_and_thresholds(store: Store, config: Any) -> None:
    text = _text(make_report(store, config))
    reasons = text[text.index("Why sales disqualified or") :]
    assert [_cells(_line(reasons, r)) for r in ("(no reason", "bad timing", "no budget")] == [
        ["(no reason given)", "1"],
        ["bad timing", "1"],
        ["no budget", "1"],
    ]
    thresholds = text[text.index("If only lead_score at or above a threshold") :]
    assert _cells(_line(thresholds, "score ≥ 60")) == [
        "score ≥ 60",
        "5",
        "3",
        "60%",
        "1,500",
        "4",
        "1",
        "2,000",
    ]


def test_cli_json_shape(store: Store, store_url: str, tmp_path: Path) -> None:
    fill(store)
    config = _config_dir(tmp_path)
    period = ["--since", "2026-03-01", "--until", "2026-04-01"]
    answer = CliRunner().invoke(
        app,
        ["report", "--config", str(config), *period, "--json"],
        env={"SYNCD_STORE_URL": store_url},
    )
    assert answer.exit_code == 0, answer.output
    q = json.loads(answer.stdout)["quality"]
    assert set(q) == {
        "handoff_stage",
        "accepted_stage",
        "score_field",
        "grade_field",
        "source_field",
        "min_deals",
        "total",
        "by_source",
        "by_band",
        "by_grade",
        "thresholds",
        "unscored",
        "current_values",
    }
    assert q["total"] == {
        "handoffs": 10,
        "accepted": 5,
        "disqualified": 3,
        "reasons": {"(no reason given)": 1, "bad timing": 1, "no budget": 1},
        "opportunities": 7,
        "won": 4,
        "lost": 2,
        "win_rate": 4 / 6,
        "small_sample": False,
        "won_revenue": "3500",
        "first_touch": {"count": 6, "median": 9.0, "p90": 30.0},
    }
    assert q["by_source"]["webinar"]["small_sample"] is True
    assert list(q["by_band"]) == BANDS
    assert q["thresholds"][2] == {
        "threshold": 60,
        "handoffs": 5,
        "won": 3,
        "lost": 2,
        "win_rate": 0.6,
        "small_sample": False,
        "won_revenue": "1500",
        "held_back": 4,
        "held_back_won": 1,
        "held_back_revenue": "2000",
    }


def test_validate_names_a_quality_field_or_stage_that_does_not_exist(tmp_path: Path) -> None:
    config = _config_dir(tmp_path)
    text = config.read_text(encoding="utf-8")
    text = text.replace(
        "  days: 90 ",
        "  quality: {score_field: score, accepted_stage: sall}\n  days: 90 ",
    )
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    problems = {p.key: p.message for p in raised.value.problems}
    assert problems["report.quality.score_field"] == "no person field score"
    assert problems["report.quality.accepted_stage"].startswith("no person stage sall")


def test_score_bands_must_go_up(tmp_path: Path) -> None:
    config = _config_dir(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace("  days: 90 ", "  quality: {score_bands: [0, 50, 50]}\n  days: 90 "),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    assert any(
        p.key.startswith("report.quality.score_bands") and "strictly up" in p.message
        for p in raised.value.problems
    )


def test_scores_and_bands_at_their_edges() -> None:
    assert [score_of(t) for t in ("42", " 42.5 ", "abc", "nan", "inf", "", None)] == [
        42,
        42.5,
        None,
        None,
        None,
        None,
        None,
    ]
    edges = [0, 25, 50]
    assert [band_of(s, edges) for s in (0, 24.9, 25, 50, 50.1, -0.1, None)] == [
        "0 to 25",
        "0 to 25",
        "25 to 50",
        "25 to 50",  # the last band is closed
        "> 50",
        "< 0",
        "(no score)",
    ]
