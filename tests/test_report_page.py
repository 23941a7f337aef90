"""The report's trend, labels and currency, and the page and text that show them.

The history is ``tests/test_report.py``'s March 2026 (its figures are worked out there);
the trend's are worked out here from the same literal times. The page's layout in a real
browser is ``tests/test_report_browser.py``'s.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from rich.console import Console

from syncd.config.load import load_config
from syncd.errors import ConfigError
from syncd.report import html as report_html
from syncd.report import view as report_view
from syncd.report.build import build, read_history
from syncd.report.format import EMPTY
from syncd.report.model import Period, Report
from syncd.report.trend import bucket_edges
from syncd.state.store import Store
from tests.test_report import SINCE, UNTIL, _config_dir, at, fill, make_report

GENERATED = datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


def _report(store: Store, config, by: str | None = None, **settings: str) -> Report:
    return make_report(store, config, by, GENERATED, **settings)


@pytest.fixture
def config():
    return load_config(Path(__file__).resolve().parents[1] / "config" / "syncd.yaml")


def _text(report: Report) -> str:
    out = io.StringIO()
    report_view.print_report(Console(file=out, width=200), report)
    return out.getvalue()


def test_the_trend_counts_each_week_and_the_previous_period(store: Store, config) -> None:
    report = make_report(store, config)
    trend = report.trend
    assert trend.bucket == "week"  # 31 days
    assert [(b.start, b.end, b.handoffs, b.won, b.won_revenue) for b in trend.buckets] == [
        (SINCE, at(2), 0, 0, 0),  # Sunday 1 March: the week of 23 February, cut
        (at(2), at(9), 3, 0, 0),  # hand-offs P1 (2nd), P2 (3rd), P3 (6th)
        (at(9), at(16), 2, 1, Decimal("1200")),  # P7 (10th), P8 (12th); D1 won the 15th
        (at(16), at(23), 0, 2, Decimal("599.5")),  # D2 the 16th; D4 the 22nd (its win decides)
        (at(23), at(30), 0, 0, 0),
        (at(30), UNTIL, 1, 0, 0),  # P6 (31st)
    ]
    # The buckets add up to the period's own figures.
    assert trend.current.handoffs == report.speed_to_lead.handoffs == 6
    assert trend.current.won == report.closed_loop.total.won == 3
    assert trend.current.won_revenue == report.closed_loop.total.won_revenue
    # The previous period, [29 January, 1 March): P5's mql on 28 February 12:00 is a
    # hand-off; D5 was won on 10 February (10000).
    assert trend.previous_since == datetime(2026, 1, 29, tzinfo=UTC)
    assert (trend.previous.handoffs, trend.previous.won, trend.previous.won_revenue) == (
        1,
        1,
        Decimal("10000"),
    )
    assert trend.change.handoffs == 5.0 and trend.change.won == 2.0
    assert trend.change.won_revenue == pytest.approx((1799.5 - 10000) / 10000)


def test_periods_up_to_a_quarter_show_weeks_longer_ones_months() -> None:
    def edges(since: datetime, until: datetime) -> tuple[str, list[tuple[datetime, datetime]]]:
        return bucket_edges(Period(since, until))

    day = datetime(2026, 1, 1, tzinfo=UTC)
    assert edges(day, datetime(2026, 4, 3, tzinfo=UTC))[0] == "week"  # 92 days
    kind, found = edges(datetime(2026, 10, 15, tzinfo=UTC), datetime(2027, 2, 10, tzinfo=UTC))
    assert kind == "month"
    starts = [datetime(2026, 10, 15), *(datetime(y, m, 1) for y, m in _months())]
    ends = [*(datetime(y, m, 1) for y, m in _months()), datetime(2027, 2, 10)]
    assert found == [
        (s.replace(tzinfo=UTC), e.replace(tzinfo=UTC)) for s, e in zip(starts, ends, strict=True)
    ]


def _months() -> list[tuple[int, int]]:
    return [(2026, 11), (2026, 12), (2027, 1), (2027, 2)]


def test_json_holds_the_trend_labels_currency_and_time(store: Store, config) -> None:
    found = _report(store, config).as_dict()
    assert found["generated_at"] == "2026-04-01T08:00:00+00:00"
    assert found["currency"] == "USD"
    assert found["stage_labels"]["mql"] == "Marketing qualified lead"
    assert found["stage_labels"]["closed_won"] == "Closed won"
    assert found["stage_labels"]["subscriber"] == "Subscriber"  # no label: its name as words
    trend = found["trend"]
    assert trend["bucket"] == "week"
    assert [b["won_revenue"] for b in trend["buckets"]] == ["0", "0", "1200", "599.5", "0", "0"]
    assert trend["previous"] == {"handoffs": 1, "won": 1, "won_revenue": "10000"}


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, re.DOTALL)


def test_the_page_scales_labels_its_charts_and_speaks_plainly(store: Store, config) -> None:
    report = _report(store, config, by="lead_source")
    page = report_html.render(report)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "Generated at 2026-04-01 08:00 UTC for 1 Mar 2026 to 31 Mar 2026" in page
    svgs = _svgs(page)
    # funnel, 3 groups, histogram, revenue, lead quality by source (no scores in this
    # history: no score band or threshold chart), 3 trends
    assert len(svgs) == 1 + 3 + 1 + 1 + 1 + 3
    for svg in svgs:
        tag = svg[: svg.index(">")]
        assert 'viewBox="0 0 ' in tag and " width=" not in tag and " height=" not in tag, tag
        assert 'role="img"' in tag and "aria-labelledby=" in tag
        assert re.search(r"^<svg[^>]*><title id=[^>]*>[^<]+</title><desc id=[^>]*>[^<]+", svg)
    assert page.count("<table>") == page.count("<caption>") > 0
    assert page.count('class="scroll" role="region" tabindex="0" aria-label=') == page.count(
        "<table>"
    )
    for jargon in (r"\btimed\b", r"\bp90\b", "until excluded", r"\bmedian h\b", r"response h\b"):
        assert re.search(jargon, page, re.IGNORECASE) is None, jargon
    for words in (
        "Median hours to first follow-up",
        "90% followed up within (hours)",
        "Median hours to next stage",
        "Hours from hand-off to first follow-up",  # the histogram's axis
        "People reached",  # the funnel's axis
        "Won revenue (USD)",  # the revenue chart's axis and the tables' column
    ):
        assert words in page, words

    funnel = next(s for s in svgs if 'id="funnel-chart"' in s)
    assert ">Marketing qualified lead<" in funnel and ">mql<" not in funnel
    assert "↓ 75% moved on" in funnel and "↓ 33% moved on" in funnel  # 6 / 8, 2 / 6
    speed = next(s for s in svgs if 'id="speed-chart"' in s)
    assert re.search(
        r'<g id="speed-chart-marker" class="marker"><line [^>]*/><text[^>]*>SLA 24 h', speed
    )
    revenue = next(s for s in svgs if 'id="revenue-chart"' in s)
    assert ">$1,200<" in revenue and ">$99.50<" in revenue and "Partner &lt;b&gt;&amp;" in revenue
    assert "Recycled people, by current stage" in page and '<th scope="row">Nurture</th>' in page


def _first_bar(svg: str) -> float:
    return float(re.findall(r'<rect class="bar" x="8" y="[\d.]+" width="([\d.]+)"', svg)[0])


def test_groups_share_the_whole_funnels_scale(store: Store, config) -> None:
    svgs = _svgs(report_html.render(_report(store, config, by="lead_source")))
    whole = _first_bar(next(s for s in svgs if 'id="funnel-chart"' in s))
    groups = {
        re.findall(r"<title[^>]*>Funnel, lead_source (.*?)</title>", s)[0]: s
        for s in svgs
        if "funnel-by-" in s
    }
    # subscribers: 8 in all, (none) 1, ads 4, webinar 3: drawn against the same 8
    assert {g: _first_bar(s) / whole for g, s in groups.items()} == {
        "(none)": pytest.approx(1 / 8, abs=0.01),
        "ads": pytest.approx(4 / 8, abs=0.01),
        "webinar": pytest.approx(3 / 8, abs=0.01),
    }


def test_an_empty_period_says_so_instead_of_empty_tables(store: Store, config) -> None:
    fill(store)
    period = Period(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC))
    report = build(
        read_history(store, period),
        period,
        stages=config.stages,
        crm=config.syncd.crm,
        settings=config.syncd.report,
        generated_at=GENERATED,
    )
    page, text = report_html.render(report), _text(report)
    for key in ("funnel", "speed", "revenue", "recycled"):
        assert EMPTY[key] in page and EMPTY[key] in text, key
    # The trend still shows its (empty) weeks; no other table is drawn.
    assert page.count("<table>") == 1 and "Trend per week" in page
    for section in ("summary", "funnel", "speed-to-lead", "revenue", "trend", "recycled"):
        assert f'<section id="{section}"' in page


def test_another_currency_is_shown_with_its_symbol_or_code(store: Store, config) -> None:
    euro = report_html.render(_report(store, config, currency="EUR"))
    assert "€1,200" in euro and "Won revenue (EUR)" in euro and "$" not in euro


def test_a_bad_currency_is_named_with_file_line_and_key(tmp_path: Path) -> None:
    path = _config_dir(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  days: 90", "  days: 90\n  currency: dollars"), "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.key == "report.currency" and problem.line is not None
    assert "currency: dollars" in path.read_text(encoding="utf-8").splitlines()[problem.line - 1]
    assert "ISO 4217" in problem.message


def test_text_and_page_give_the_same_figures(store: Store, config) -> None:
    report = _report(store, config, by="lead_source")
    page, text = report_html.render(report), _text(report)
    assert "Generated at 2026-04-01 08:00 UTC for 1 Mar 2026 to 31 Mar 2026" in text
    for figure in (
        "Marketing qualified lead",
        "Trend per week",
        "Week of 23 Feb",
        "Week of 9 Mar",
        "599.50",
        "1,799.50",
        "10,000",
        "+500%",
        "+200%",
        "-82%",
        "Followed up late or never (SLA 24 hours)",
        "Median hours to first follow-up",
        "90% followed up within (hours)",
        "Won revenue (USD)",
    ):
        assert figure in page and figure in text, figure
