"""Cadence and latency: ``syncd validate`` projects the idle calls a day and the propagation
time from the settings, refuses a cadence below the floor, warns where idle cycles would
spend more than a tenth of a system's daily limit; the cycles measure how long each
change took to cross (``syncd_propagation_seconds``, the last cycle's p50/p95 in
``syncd status``)."""

from __future__ import annotations

import json
import math
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from syncd import registry
from syncd.cli.app import app, main
from syncd.config.load import load_config
from syncd.daemon import cadence
from syncd.daemon.budget import Budgets
from syncd.daemon.service import Daemon
from syncd.sync.cycle import CycleReport, percentile, summary
from syncd.sync.latency import Latencies
from syncd.sync.sweeps import CALLS_PER_CYCLE
from tests.world import World

ROOT = Path(__file__).resolve().parents[1]
OBJECTS = ("company", "person", "deal")


def _config(
    tmp_path: Path,
    cadence_seconds: dict[str, int],
    hubspot: dict[str, Any] | None = None,
    salesforce: dict[str, Any] | None = None,
) -> Path:
    """The shipped configuration with these cadences and system settings (real hosts)."""
    for name in ("fields.yaml", "stages.yaml"):
        shutil.copy(ROOT / "config" / name, tmp_path / name)
    raw = YAML(typ="safe").load((ROOT / "config" / "syncd.yaml").read_text("utf-8"))
    raw["cadence_seconds"] = cadence_seconds
    raw["systems"]["hubspot"].update(hubspot or {})
    raw["systems"]["salesforce"].update(salesforce or {})
    raw["systems"]["salesforce"]["login_url"] = "https://acme.my.salesforce.com"
    path = tmp_path / "syncd.yaml"
    _dump(raw, path)
    return path


def _dump(raw: dict[str, Any], path: Path) -> None:
    dumper = YAML(typ="safe", pure=True)
    dumper.default_flow_style = False  # one key a line, so that lines can be checked
    with path.open("w", encoding="utf-8") as out:
        dumper.dump(raw, out)


def _validate(path: Path, *extra: str) -> Any:
    return CliRunner().invoke(app, ["validate", "--offline", "-c", str(path), *extra])


def _refused(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """``syncd validate --offline`` as the command line runs it: (exit code, output)."""
    monkeypatch.setattr(sys, "argv", ["syncd", "validate", "--offline", "-c", str(path)])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), captured.out + captured.err


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# -- the idle cost -------------------------------------------------------------------------


def test_the_idle_calls_per_cycle_follow_todays_scans_and_sweeps() -> None:
    """One scan call per object (a HubSpot search, a Salesforce /composite), plus the
    sweeps' budget where HubSpot reads associations (people and deals)."""
    assert {o: registry.idle_calls_per_cycle("hubspot", o) for o in OBJECTS} == {
        "company": 1,
        "person": 1 + CALLS_PER_CYCLE,
        "deal": 1 + CALLS_PER_CYCLE,
    }
    assert {o: registry.idle_calls_per_cycle("salesforce", o) for o in OBJECTS} == dict.fromkeys(
        OBJECTS, 1
    )


def test_validate_prints_the_idle_calls_a_day_by_the_formula(tmp_path: Path) -> None:
    cadences = {"company": 20, "person": 30, "deal": 90}
    path = _config(tmp_path, cadences, hubspot={"daily_limit": 1_000_000})
    answer = _validate(path, "--json")
    assert answer.exit_code == 0, answer.output
    idle = json.loads(answer.stdout)["projection"]["idle"]
    for system in ("hubspot", "salesforce"):
        expected_total = 0.0
        for obj, seconds in cadences.items():
            got = idle[system]["objects"][obj]
            per_cycle = registry.idle_calls_per_cycle(system, obj)
            assert got["cadence_s"] == seconds
            assert got["cycles_per_day"] == pytest.approx(86_400 / seconds)
            assert got["calls_per_cycle"] == per_cycle
            assert got["calls_per_day"] == pytest.approx(86_400 / seconds * per_cycle)
            expected_total += 86_400 / seconds * per_cycle
        assert idle[system]["calls_per_day"] == pytest.approx(expected_total)
    assert idle["hubspot"]["daily_limit"] == idle["hubspot"]["allowance"] == 1_000_000
    assert "daily_limit" in idle["hubspot"]["limit_from"]
    assert idle["salesforce"]["daily_limit"] == 100_000  # the published base, by default
    assert idle["salesforce"]["share"] == pytest.approx(
        idle["salesforce"]["calls_per_day"] / 100_000
    )
    # the same figures as text, per object and per system
    text = _validate(path)
    assert text.exit_code == 0, text.output
    hubspot_person = 86_400 / 30 * registry.idle_calls_per_cycle("hubspot", "person")
    assert f"{hubspot_person:,.0f}" in text.stdout
    assert f"{idle['salesforce']['calls_per_day']:,.0f}" in text.stdout
    assert f"{idle['salesforce']['share']:.1%} of 100,000 a day" in text.stdout


def test_the_projection_follows_a_daily_budget(tmp_path: Path) -> None:
    """An absolute budget is what syncd may spend; a share takes that part of the limit."""
    path = _config(
        tmp_path,
        dict.fromkeys(OBJECTS, 60),
        hubspot={"daily_budget": 40_000},
        salesforce={"daily_budget": "50%", "daily_limit": 300_000},
    )
    idle = cadence.project(load_config(path)).as_dict()["idle"]
    assert idle["hubspot"]["allowance"] == 40_000 and idle["hubspot"]["daily_limit"] == 650_000
    assert idle["salesforce"]["allowance"] == 150_000


def _warned(answer: Any) -> list[dict[str, Any]]:
    result = json.loads(answer.stdout)
    return [p for p in result["problems"] if "idle cycles" in p["message"]]


def test_the_idle_warning_fires_above_a_tenth_of_the_limit_and_not_at_or_below(
    tmp_path: Path,
) -> None:
    # at 60 s, Salesforce's idle cycles cost 1,440 x (1 + 2 + 1 + the deal sweeps) a day
    per_day = 1_440 * sum(registry.idle_calls_per_cycle("salesforce", o) for o in OBJECTS)
    at_share = math.ceil(per_day / cadence.IDLE_SHARE)
    for limit, warned in ((at_share - 100, True), (at_share, False), (2 * at_share, False)):
        folder = tmp_path / str(limit)
        folder.mkdir()
        path = _config(folder, dict.fromkeys(OBJECTS, 60), salesforce={"daily_limit": limit})
        answer = _validate(path, "--json")
        assert answer.exit_code == 0, answer.output  # a warning, not a refusal
        assert json.loads(answer.stdout)["ok"] is True
        found = _warned(answer)
        assert bool(found) is warned, (limit, found)
        if warned:
            (warning,) = found
            assert warning["blocking"] is False
            assert warning["file"] == str(path)
            assert warning["line"] == _line_of(path, "cadence_seconds")
            assert "salesforce" in warning["message"] and f"{limit:,}" in warning["message"]
            # the cadence it proposes stays under the share
            proposed = int(warning["message"].split("a cadence of ")[1].split(" s")[0])
            assert 86_400 / proposed * per_day / 1_440 <= cadence.IDLE_SHARE * limit
    # HubSpot's 650,000 a day is far from it at the same cadence
    assert not [w for w in _warned(answer) if "hubspot" in w["message"]]
    text = _validate(tmp_path / str(at_share - 100) / "syncd.yaml")
    assert "idle cycles alone would spend" in text.output and "warning" in text.output


def test_systems_on_this_machine_are_not_warned_of(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        dict.fromkeys(OBJECTS, 10),
        hubspot={"host": "http://127.0.0.1:8080"},
        salesforce={"login_url": "https://acme.my.salesforce.com", "daily_limit": 1_000},
    )
    raw = YAML(typ="safe").load(path.read_text("utf-8"))
    raw["systems"]["salesforce"]["connect_to"] = {"acme.my.salesforce.com:443": "127.0.0.1:8443"}
    _dump(raw, path)
    answer = _validate(path, "--json")
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout)["projection"]["idle"]["salesforce"]["share"] > 1
    assert _warned(answer) == []


def test_a_cadence_below_the_floor_is_refused_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, {"company": 60, "person": 5, "deal": 60})
    code, output = _refused(path, monkeypatch, capsys)
    assert code == 2
    assert f"{path}:{_line_of(path, 'person: 5')}: cadence_seconds.person" in output
    assert "at least 10" in output


def test_a_daily_limit_that_is_no_number_is_refused_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, dict.fromkeys(OBJECTS, 60), hubspot={"daily_limit": "lots"})
    code, output = _refused(path, monkeypatch, capsys)
    assert code == 2
    assert f"{path}:{_line_of(path, 'daily_limit')}: systems.hubspot.daily_limit" in output


def test_an_object_left_out_of_the_cadence_gets_the_shipped_default(tmp_path: Path) -> None:
    path = _config(tmp_path, {"person": 30})
    settings = load_config(path).syncd
    shipped = YAML(typ="safe").load((ROOT / "config" / "syncd.yaml").read_text("utf-8"))
    assert settings.cadence_seconds == {
        "company": shipped["cadence_seconds"]["company"],
        "person": 30,
        "deal": shipped["cadence_seconds"]["deal"],
    }


# -- the propagation -----------------------------------------------------------------------


def test_validate_prints_the_propagation_by_the_formula(tmp_path: Path) -> None:
    cadences = {"company": 20, "person": 30, "deal": 90}
    path = _config(
        tmp_path,
        cadences,
        hubspot={"search_settle_seconds": 7, "overlap_minutes": 3},
        salesforce={"overlap_minutes": 12},
    )
    answer = _validate(path, "--json")
    assert answer.exit_code == 0, answer.output
    projection = json.loads(answer.stdout)["projection"]
    cycle = projection["assumptions"]["cycle_s"]
    rows = {(p["object"], p["direction"]): p for p in projection["propagation"]}
    assert len(rows) == 6
    for source, target, settle, overlap in (
        ("hubspot", "salesforce", 7, 180),
        ("salesforce", "hubspot", 0, 720),
    ):
        for obj, c in cadences.items():
            row = rows[(obj, f"{source}_to_{target}")]
            assert row["settle_s"] == settle
            assert row["mean_s"] == pytest.approx(settle + c / 2 + cycle)
            assert row["p95_s"] == pytest.approx(settle + 0.95 * c + cycle)
            assert row["worst_s"] == pytest.approx(settle + c + cycle)
            assert row["late_s"] == pytest.approx(overlap + c + cycle)
    text = _validate(path)
    assert "hubspot -> salesforce: never under 7 s" in text.stdout
    assert f"{7 + 0.95 * 30 + cycle:g}" in text.stdout


def test_the_shipped_settings_meet_the_targets() -> None:
    """p95 under 60 s each way, idle cycles under a tenth of each published limit."""
    projection = cadence.project(load_config(ROOT / "config" / "syncd.yaml"))
    assert {p.direction for p in projection.propagation} == {
        "hubspot_to_salesforce",
        "salesforce_to_hubspot",
    }
    assert all(p.p95_s < cadence.TARGET_P95_SECONDS for p in projection.propagation)
    assert all(s.share <= cadence.IDLE_SHARE for s in projection.systems)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]  # 1 .. 20
    assert percentile(values, 0.95) == 19 and percentile(values, 0.5) == 10
    assert percentile([4.0], 0.95) == 4
    assert summary([3.0, 1.0, 2.0]) == {"changes": 3, "p50_s": 2, "p95_s": 3, "max_s": 3}


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("+0000", "+00:00"))


def test_each_change_is_measured_as_it_lands_in_metrics_and_status(world: World) -> None:
    """Through the daemon's own cycle: the seconds from each source record's modified date
    (as the emulator stamped it) to the engine's clock when the write landed."""
    contact = world.hubspot.add_contact(
        {
            "email": "ada@example.com",
            "lastname": "Lovelace",
            "company": "Engines",
            "lifecyclestage": "marketingqualifiedlead",
        }
    )
    lead = world.salesforce.add(
        "Lead",
        {
            "Email": "grace@example.com",
            "LastName": "Hopper",
            "Company": "Navy",
            "Status": "Working - Contacted",
        },
    )
    contact_at = _stamp(world.hubspot.get_contact(contact)["properties"]["lastmodifieddate"])
    lead_at = _stamp(world.salesforce.get("Lead", lead)["SystemModstamp"])
    landed = max(contact_at, lead_at) + timedelta(seconds=42)

    daemon = Daemon(world.box.config_path)
    daemon.store = world.store
    daemon.budgets = Budgets.for_config(world.store, daemon.config)
    daemon._build(daemon.config)
    assert daemon.engine is not None
    # the scans' defaults are the ones the connectors are built with
    for connector in daemon._connectors:
        settle, overlap = registry.scan_lags(daemon.config, connector.system)
        assert getattr(connector, "settle", timedelta(0)) == timedelta(seconds=settle)
        assert connector.overlap == timedelta(seconds=overlap)  # type: ignore[attr-defined]
    daemon.engine.clock = lambda: landed
    try:
        daemon.cycle("person")
        first = daemon.last
        daemon.cycle("person")  # reads its own writes back: nothing crosses
        second = daemon.last
    finally:
        daemon._close_connectors()
    assert first["ok"] and second["ok"]
    assert first["result"]["created"] == {"salesforce": 1, "hubspot": 1}
    expected = {
        "hubspot_to_salesforce": (landed - contact_at).total_seconds(),
        "salesforce_to_hubspot": (landed - lead_at).total_seconds(),
    }
    assert first["result"]["propagation"] == {
        way: {"changes": 1, "p50_s": seconds, "p95_s": seconds, "max_s": seconds}
        for way, seconds in expected.items()
    }
    assert second["result"]["propagation"] == {}
    registry_ = daemon.metrics.registry
    for way, seconds in expected.items():
        labels = {"direction": way}
        assert registry_.get_sample_value("syncd_propagation_seconds_count", labels) == 1
        assert registry_.get_sample_value("syncd_propagation_seconds_sum", labels) == seconds

    # syncd status shows the last cycle of each object: the second, with nothing crossed
    status = CliRunner().invoke(app, ["status", "--json", "-c", str(world.box.config_path)])
    assert status.exit_code == 0, status.output
    person = json.loads(status.stdout)["last_cycles"]["person"]
    assert person["result"]["propagation"] == {}


def test_status_shows_the_p50_and_p95_of_the_last_cycle(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncd.cli.common import console
    from syncd.state import control

    monkeypatch.setattr(console, "_width", 300)  # the row on one line

    report = CycleReport("c1")
    part = CycleReport("c1")
    part.propagation = {"hubspot_to_salesforce": Latencies(range(1, 21))}
    report.add("person", part)
    now = datetime.now(UTC)
    control.record_cycle(world.store, "person", "c1", now, now, True, report.as_dict())
    answer = CliRunner().invoke(app, ["status", "-c", str(world.box.config_path)])
    assert answer.exit_code == 0, answer.output
    assert "hubspot -> salesforce p50 10 s, p95 19 s (20)" in answer.output
    as_json = CliRunner().invoke(app, ["status", "--json", "-c", str(world.box.config_path)])
    result = json.loads(as_json.stdout)["last_cycles"]["person"]["result"]
    assert result["objects"]["person"]["propagation"]["hubspot_to_salesforce"]["p95_s"] == 19
