"""``syncd demo`` as a user runs it: the facts it prints, and its exit code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from syncd.cli.app import app
from syncd.sync import closed_loop


def _demo() -> Any:
    return CliRunner().invoke(app, ["demo"], catch_exceptions=False)


@pytest.fixture(scope="module")
def output() -> str:
    result = _demo()
    assert result.exit_code == 0, result.output
    return str(result.output)


def _line(output: str, pattern: str) -> re.Match[str]:
    found = re.search(pattern, output, re.MULTILINE)
    assert found, f"no line matches {pattern!r} in:\n{output}"
    return found


def test_every_fact_holds_and_nothing_is_duplicated(output: str) -> None:
    assert "✗" not in output
    _line(output, r"✓ All \d+ facts checked above held\.$")
    _line(output, r"Analytical Engines matched by domain: 1 HubSpot company, 1 Salesforce account")
    _line(output, r"Alan: 1 HubSpot contact, 1 Salesforce lead")
    _line(output, r"Ada's HubSpot deal is now a Salesforce opportunity: stage 'Needs Analysis'")
    _line(output, r"records written: 0$")
    _line(output, r"0 dead letters\.")


def test_the_converted_lead_keeps_its_one_hubspot_contact(output: str) -> None:
    found = _line(
        output,
        r"HubSpot contacts with katherine@example\.com: (\d+) "
        r"\(id (\d+); before the conversion: (\d+)\)",
    )
    assert found[1] == "1" and found[2] == found[3]
    _line(output, r"Katherine's HubSpot lifecycle stage: opportunity$")
    _line(output, r"HubSpot companies named NASA: 1; deals named 'NASA trajectory analysis': 1")


def test_the_loop_closes_in_the_tables(output: str) -> None:
    _line(output, r"^NASA trajectory analysis\s+closedwon\s+Closed Won\s+120000\s+120000")
    _line(output, r"^Difference Engine No\. 2\s+closedlost\s+Closed Lost\s+.*No Budget")
    _line(output, r"^Katherine@Example\.com\s+customer\s+Contact")
    _line(output, r"^ada@example\.com\s+lead / BAD_TIMING\s+Lead Nurture")
    _line(output, r"^grace@example\.com\s+lead / BAD_TIMING\s+Lead Nurture")


def test_the_report_ends_the_demo(output: str) -> None:
    report = output[output.index("syncd report, on the demo's store") :]
    _line(report, r"^Funnel, ")
    _line(report, r"│ Customer\s+│\s+1 │")
    _line(report, r"│ Partner\s+│\s+1 │\s+0 │\s+100% │\s+120,000 │")
    _line(report, r"│ Webinar\s+│\s+0 │\s+1 │\s+0% │\s+0 │")
    _line(report, r"^2 recycled, 0 re-qualified since")
    # Lead quality: Ada, handed off as a Webinar MQL scored 75 or more, lost her deal;
    # Mary (Webinar, 72) and Dorothy (Trade Show, 45) are handed off and called.
    quality = report[report.index("Lead quality by lead_source") :]
    _line(quality, r"│ Webinar\s+│\s+2 │\s+0 │\s+1 │\s+1 │\s+0 │ n<5 \(0/1\) │")
    _line(quality, r"│ Trade Show\s+│\s+1 │\s+0 │\s+0 │\s+0 │\s+0 │\s+- │")
    _line(quality, r"│ 50 to 75\s+│\s+1 │")
    _line(quality, r"│ 75 to 100\s+│\s+1 │\s+0 │\s+1 │\s+1 │\s+0 │ n<5 \(0/1\) │")
    _line(quality, r"│ deal 'Difference Engine No\. 2' lost: No Budget\s+│\s+1 │")


def test_one_hand_off_is_called_in_time_and_one_breaches_its_sla(output: str) -> None:
    story = output[output.index("Two hand-offs: one called in time") :]
    _line(story, r"✓ Mary's first touch: a call, [\d.]+ s after her hand-off, within the SLA$")
    _line(story, r"SLA breaches 1 · SLA tasks written 1 · flags set 1 · flags cleared 0$")
    _line(story, r"✓ tasks 'Follow up: marketing hand-off past its SLA' on Dorothy's lead: 1,")
    _line(story, r"✓ HubSpot syncd_sla_breached: Dorothy 'true', Mary None$")
    _line(story, r"flags set 0 · flags cleared 1$")
    _line(story, r"✓ Dorothy: flag None, tasks 1, first touch [\d.]+ s after her hand-off$")
    report = output[output.index("syncd report, on the demo's store") :]
    _line(report, r"│ Avery Stone\s+│\s+2 │\s+2 │\s+[\d.]+ │\s+[\d.]+ │\s+1 │\s+0% │")
    _line(report, r"│ \d+\s+│ dorothy@example\.com │ Trade Show │")


def test_a_step_that_fails_is_shown_and_fails_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(closed_loop, "apply", lambda *args, **kwargs: None)
    result = _demo()
    assert result.exit_code == 1
    assert "✗ Katherine's HubSpot lifecycle stage: opportunity" in result.output
    _line(result.output, r"✗ \d+ of \d+ facts did not hold")


def test_the_kept_demo_answers_status_report_and_explain_without_the_emulators(
    tmp_path: Path,
) -> None:
    kept = tmp_path / "demo-run"
    result = CliRunner().invoke(app, ["demo", "--keep", str(kept)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    config = str(kept / "syncd.yaml")
    assert f"syncd status --config {config}" in result.output
    # the emulators are stopped: these read the store alone
    status = CliRunner().invoke(app, ["status", "--json", "--config", config])
    assert status.exit_code == 0, status.output
    counts = json.loads(status.output)
    assert counts["links"] == {"company": 4, "deal": 2, "person": 7}
    assert counts["counts"]["dead_letters"] == 0 and counts["counts"]["stage_history"] > 0
    # the demo's cycles count their calls, as syncd once does
    assert all(
        counts["api_calls_today"][system]["calls"] > 0 for system in ("hubspot", "salesforce")
    )
    page = kept / "report.html"
    report = CliRunner().invoke(app, ["report", "--config", config, "--html", str(page)])
    assert report.exit_code == 0, report.output
    assert "120,000" in page.read_text(encoding="utf-8")
    explained = CliRunner().invoke(
        app, ["explain", "katherine@example.com", "--json", "--config", config]
    )
    assert explained.exit_code == 0, explained.output
    assert '"customer"' in explained.output and "NASA" in explained.output


def test_demo_keep_refuses_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "syncd.db").write_text("mine", encoding="utf-8")
    result = CliRunner().invoke(app, ["demo", "--keep", str(tmp_path)])
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # the error box, unwrapped
    assert result.exit_code == 2 and "is not an empty folder" in said
    assert (tmp_path / "syncd.db").read_text(encoding="utf-8") == "mine"
