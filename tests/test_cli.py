"""The command line, as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.factories import syncd_cli

ROOT = Path(__file__).resolve().parents[1]


_syncd = syncd_cli


def test_validate_names_file_line_and_key_of_a_broken_file(tmp_path: Path) -> None:
    for name in ("syncd.yaml", "fields.yaml", "stages.yaml"):
        shutil.copy(ROOT / "config" / name, tmp_path / name)
    stages = tmp_path / "stages.yaml"
    stages.write_text(stages.read_text().replace("    recycle: true", "    recycle: maybe", 1))
    answer = _syncd("validate", "--offline", "--config", str(tmp_path / "syncd.yaml"))
    assert answer.returncode == 2
    line = next(i for i, text in enumerate(stages.read_text().splitlines(), 1) if "maybe" in text)
    assert f"stages.yaml:{line}" in answer.stderr and "recycle" in answer.stderr


def test_validate_offline_accepts_the_shipped_configuration() -> None:
    answer = _syncd("validate", "--offline", "--json")
    assert answer.returncode == 0, answer.stderr
    result = json.loads(answer.stdout)
    assert result["ok"] is True
    # the read table, from the files: what each native value reads as the first time
    table = {(r["object"], r["system"], r["value"]): r["reads_as"] for r in result["read_table"]}
    assert table[("person", "salesforce", "Status=Open - Not Contacted")] == "lead"
    assert table[("person", "salesforce", "Status=Closed - Converted")] == "opportunity"
    assert table[("deal", "hubspot", "pipeline=renewals")] == "ignored"


def test_status_reports_an_empty_store_as_json_once_migrate_made_it(tmp_path: Path) -> None:
    for name in ("syncd.yaml", "fields.yaml", "stages.yaml"):
        shutil.copy(ROOT / "config" / name, tmp_path / name)
    config = str(tmp_path / "syncd.yaml")
    missing = _syncd("status", "--json", "--config", config)
    assert missing.returncode == 3, missing.stdout + missing.stderr
    assert not (tmp_path / "syncd.db").exists()
    made = _syncd("migrate", "--json", "--config", config)
    assert made.returncode == 0, made.stderr
    assert (
        json.loads(made.stdout)["before"] is None
        and json.loads(made.stdout)["after"] == "0011_journal_index"
    )
    answer = _syncd("status", "--json", "--config", config)
    assert answer.returncode == 0, answer.stderr
    status = json.loads(answer.stdout)
    assert status["counts"]["links"] == 0 and status["schema"] == "0011_journal_index"


def test_validate_checks_stage_values_against_the_live_picklists(tmp_path: Path) -> None:
    from syncd.harness import sandbox

    with sandbox.start(tmp_path, sample=False) as box:
        ok = _syncd("validate", "--json", "--config", str(box.config_path))
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert json.loads(ok.stdout)["systems_checked"] == ["hubspot", "salesforce"]
        stages = tmp_path / "stages.yaml"
        stages.write_text(stages.read_text().replace("Status: Qualified", "Status: Hot Lead"))
        bad = _syncd("validate", "--config", str(box.config_path))
    assert bad.returncode == 1
    assert "stages.yaml" in bad.stderr and "'Hot Lead'" in bad.stderr and "Status" in bad.stderr


def test_validate_checks_deal_outcomes_against_won_and_closed_stages(tmp_path: Path) -> None:
    from syncd.harness import sandbox

    with sandbox.start(tmp_path, sample=False) as box:
        stages = tmp_path / "stages.yaml"
        text = stages.read_text()
        text = text.replace("{StageName: Closed Lost}", "{StageName: Negotiation/Review}")
        text = text.replace("{dealstage: closedlost, pipeline: default}", "{dealstage: closedwon}")
        stages.write_text(text)
        bad = _syncd("validate", "--json", "--config", str(box.config_path))
    assert bad.returncode == 1
    problems = json.loads(bad.stdout)["problems"]
    lost = [p for p in problems if p["key"].startswith("deal.closed_lost")]
    assert len(lost) == 2, problems
    assert all(p["file"].endswith("stages.yaml") and p["line"] and p["blocking"] for p in lost)
    messages = [p["message"] for p in lost]
    assert any("salesforce says {'StageName': 'Negotiation/Review'} is open" in m for m in messages)
    assert any("hubspot says {'dealstage': 'closedwon'} is won" in m for m in messages)
    assert not [p for p in problems if p["key"].startswith(("deal.closed_won", "person."))]


def test_once_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    from syncd.harness import sandbox

    with sandbox.start(tmp_path, sample=True) as box:
        planned = _syncd("once", "--dry-run", "--json", "--config", str(box.config_path))
        assert planned.returncode == 0, planned.stderr
        plan = json.loads(planned.stdout)
        assert plan["dry_run"] is True and plan["created"] == {"salesforce": 2, "hubspot": 2}
        creates = [p["crm"]["op"] for p in plan["plan"] if p["crm"]]
        assert creates.count("create") == 2
        assert len(box.emulators["salesforce"].records("Lead")) == 2  # as seeded
        companies = _syncd("once", "--object", "company", "--json", "-c", str(box.config_path))
        assert json.loads(companies.stdout)["objects"].keys() == {"company"}
        assert len(box.emulators["salesforce"].records("Lead")) == 2  # people not run yet
        done = _syncd("once", "--json", "--config", str(box.config_path))
        assert json.loads(done.stdout)["created"] == {"salesforce": 2, "hubspot": 2}
        assert len(box.emulators["salesforce"].records("Lead")) == 4
        status = json.loads(_syncd("status", "--json", "-c", str(box.config_path)).stdout)
        assert status["links"] == {"person": 5} and status["backlog"] == {}
        # once counts its calls as the daemon does, its dry runs too: each one the emulator got
        for system in ("hubspot", "salesforce"):
            received = sum(box.emulators[system].calls().values())
            assert status["api_calls_today"][system] == {
                "calls": received,
                "waits": 0,
                "wait_ms": 0,
                "http_429": 0,
                "budget": None,
            }
            assert received > 0
        cycles = status["last_cycles"]
        assert cycles.keys() == {"company", "person", "deal"}  # the dry run is no cycle
        assert cycles["person"]["result"]["by"] == "syncd once"
        assert cycles["person"]["result"]["created"] == {"salesforce": 2, "hubspot": 2}
        assert cycles["company"]["cycle_id"] != json.loads(companies.stdout)["cycle_id"]
        bad = _syncd("once", "--object", "invoice", "-c", str(box.config_path))
        assert bad.returncode == 2 and "invoice" in bad.stderr


def test_emulate_serves_the_whole_funnel_and_writes_a_working_config(tmp_path: Path) -> None:
    import signal
    import time

    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from syncd.cli.app import main; main()",
            "emulate",
            "--out",
            str(tmp_path / "emulated"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert "http://127.0.0.1:" in lines[0] and "https://127.0.0.1:" in lines[1]
        config = tmp_path / "emulated" / "syncd.yaml"
        assert config.exists()
        answer = _syncd("once", "--json", "--config", str(config))
        assert answer.returncode == 0, answer.stderr
        # HubSpot gets Katherine (converted) and Edsger, Bletchley Park and NASA, and both
        # opportunities; Salesforce gets Ada and Grace, US Navy and Ada's deal
        assert json.loads(answer.stdout)["created"] == {"salesforce": 4, "hubspot": 6}
        report = _syncd("report", "--json", "--config", str(config))
        assert report.returncode == 0, report.stderr
        loop = json.loads(report.stdout)
        assert loop["closed_loop"]["total"] == {
            "won": 1,
            "lost": 1,
            "win_rate": 0.5,
            "won_revenue": "120000",
        }
        assert loop["closed_loop"]["by_source"]["Partner"]["won_revenue"] == "120000"
        assert loop["recycled"]["by_current_stage"] == {"nurture": 1}
    finally:
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.returncode == 0


def test_the_default_config_is_the_services_when_it_is_installed(tmp_path: Path) -> None:
    from syncd.cli.common import default_config

    installed = tmp_path / "syncd.yaml"
    assert default_config(installed) == Path("config/syncd.yaml")
    installed.write_text("store: sqlite:///syncd.db\n")
    assert default_config(installed) == installed


def test_status_reads_syncd_config_and_says_which_store_and_who_named_it(tmp_path: Path) -> None:
    import os

    for name in ("syncd.yaml", "fields.yaml", "stages.yaml"):
        shutil.copy(ROOT / "config" / name, tmp_path / name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SYNCD_STORE_URL"}
    env["SYNCD_CONFIG"] = str(tmp_path / "syncd.yaml")
    made = subprocess.run(
        [sys.executable, "-c", "from syncd.cli.app import main; main()", "migrate"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "syncd.db").exists()  # the config's folder, not the shell's
    answer = subprocess.run(
        [sys.executable, "-c", "from syncd.cli.app import main; main()", "status", "--json"],
        capture_output=True,
        text=True,
        cwd=elsewhere,  # a shell anywhere: the relative SQLite path is the config folder's
        env=env,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    store = json.loads(answer.stdout)["store"]
    assert store["url"] == f"sqlite:///{tmp_path / 'syncd.db'}"
    assert store["from"] == f"{tmp_path / 'syncd.yaml'}:3 (store)"
    env["SYNCD_STORE_URL"] = f"sqlite:///{tmp_path / 'other.db'}"
    overridden = subprocess.run(
        [sys.executable, "-c", "from syncd.cli.app import main; main()", "validate", "--offline"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        timeout=120,
        check=False,
    )
    assert overridden.returncode == 0, overridden.stderr
    said = " ".join(overridden.stdout.split())
    assert f"Store: sqlite:///{tmp_path / 'other.db'}" in said
    assert "named by SYNCD_STORE_URL in the environment, overriding" in said
