"""The shipped systemd unit: notify type, watchdog, restarts, credentials, hardening."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

UNIT = Path(__file__).resolve().parents[1] / "config" / "systemd" / "syncd.service"


def _unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def test_the_unit_runs_syncd_as_a_notify_service_with_a_watchdog() -> None:
    service = _unit()["Service"]
    assert service["Type"] == "notify" and service["Restart"] == "on-failure"
    assert "syncd run" in service["ExecStart"] and "-HUP" in service["ExecReload"]
    assert int(service["WatchdogSec"]) > 0 and service["EnvironmentFile"].startswith("/etc/")
    assert service["StateDirectory"] == "syncd"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
    }.items():
        assert service[key] == value, key
    # the daemon's own SIGTERM budget (60 s by default) fits in systemd's
    assert int(service["TimeoutStopSec"]) > 60


def test_systemd_accepts_the_unit_where_systemd_is_installed() -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # not every machine has systemd; the parse above still ran
        return
    answer = subprocess.run(
        [analyze, "verify", str(UNIT)], capture_output=True, text=True, check=False
    )
    complaints = [
        line
        for line in (answer.stdout + answer.stderr).splitlines()
        if line and "is not executable" not in line and "/opt/syncd" not in line
    ]
    assert complaints == []


def test_the_unit_reads_the_system_config_and_names_no_store_of_its_own() -> None:
    from syncd.cli.common import SYSTEM_CONFIG

    service = _unit()["Service"]
    settings = [line for line in UNIT.read_text().splitlines() if not line.startswith("#")]
    # one source of truth for the store: the YAML; the unit never overrides it
    assert not [line for line in settings if "SYNCD_STORE_URL" in line]
    environment = service["Environment"]
    assert environment == f"SYNCD_CONFIG={SYSTEM_CONFIG}"
    # the service and an operator's shell read the same file: no --config elsewhere
    assert "--config" not in service["ExecStart"] or str(SYSTEM_CONFIG) in service["ExecStart"]
