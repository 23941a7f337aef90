"""The daemon as systemd runs it: a real ``syncd run`` subprocess against both emulators.

Each test starts the emulators in this process, writes a configuration with a short
cadence, and runs ``syncd run`` in a child process with a notify socket the test
listens on, as systemd would.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from syncd.harness import sandbox
from tests.daemons import Daemon
from tests.factories import syncd_cli

SETTINGS = {
    "cadence_seconds": {"company": 1, "person": 1, "deal": 1},
    "daemon": {
        "lease_seconds": 3,
        "shutdown_timeout_seconds": 20,
        "log_json": True,
        "metrics": "127.0.0.1:0",
    },
}
"""A one-second cadence, a three-second lease, JSON logs, metrics on any free port."""


def _box(tmp_path: Path, store: str | None = None) -> sandbox.Sandbox:
    return sandbox.start(tmp_path / "config", sample=False, store=store, overrides=SETTINGS)


def _leads(box: sandbox.Sandbox, email: str) -> list[dict[str, Any]]:
    return [
        r
        for r in box.emulators["salesforce"].records("Lead")
        if str(r.get("Email")).lower() == email and not r.get("IsDeleted")
    ]


def _syncd(*args: str) -> subprocess.CompletedProcess[str]:
    return syncd_cli(*args, timeout=60)


def _samples(text: str) -> dict[str, float]:
    """Prometheus text format: sample name with labels -> value."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


def _person(box: sandbox.Sandbox, n: int) -> str:
    email = f"daemon{n}@example.com"
    box.emulators["hubspot"].add_contact(
        {"email": email, "lastname": f"D{n}", "company": "Acme", "lifecyclestage": "lead"}
    )
    return email


def test_the_daemon_syncs_notifies_pauses_and_stops_cleanly(
    tmp_path: Path, start: Callable[[Path], Daemon]
) -> None:
    with _box(tmp_path) as box:
        config = box.config_path
        daemon = start(config)
        daemon.wait_for(lambda: daemon.notified("READY=1"))
        first = _person(box, 1)
        began = time.monotonic()
        daemon.wait_for(lambda: len(_leads(box, first)) == 1, seconds=10)
        delay = time.monotonic() - began
        assert delay < 4, f"took {delay:.1f} s at a 1 s cadence"  # within two cycles
        daemon.wait_for(lambda: daemon.notified("WATCHDOG=1") and daemon.notified("active"))
        # paused in the store: no cycle of people until resumed
        paused = _syncd("pause", "--object", "person", "--reason", "import", "-c", str(config))
        assert paused.returncode == 0 and "object:person paused" in paused.stdout
        daemon.wait_for(lambda: daemon.logged("cycle of person skipped: object:person paused"))
        second = _person(box, 2)
        time.sleep(2.5)
        assert _leads(box, second) == []
        assert _syncd("resume", "--object", "person", "-c", str(config)).returncode == 0
        daemon.wait_for(lambda: len(_leads(box, second)) == 1, seconds=10)
        # a resync enqueued from the command line is drained by the running daemon
        began = time.monotonic()
        asked = _syncd("resync", "--email", first, "--wait", "--json", "-c", str(config))
        assert asked.returncode == 0, asked.stderr
        done = json.loads(asked.stdout)
        assert done["state"] == "done" and done["result"]["read"] == {
            "hubspot": 1,
            "salesforce": 1,
        }
        assert time.monotonic() - began < 10
        status, health = daemon.scrape("/healthz")
        assert status == 200 and health.startswith("ok: active")
        _, metrics = daemon.scrape()
        samples = _samples(metrics)
        assert (
            samples['syncd_records_written_total{object="person",op="create",system="salesforce"}']
            == 2
        )
        assert samples['syncd_records_read_total{object="person",system="hubspot"}'] >= 2
        assert samples['syncd_api_calls_total{status="200",system="salesforce"}'] > 0
        assert samples["syncd_lease_held"] == 1 and samples["syncd_config_reload_failed"] == 0
        assert samples['syncd_seconds_since_last_cycle{object="person"}'] < 10
        assert samples['syncd_cycle_duration_seconds_count{object="deal"}'] >= 1
        assert samples['syncd_batch_split_calls{system="hubspot"}'] == 0  # nothing refused
        assert daemon.stop() == 0
    daemon.wait_for(lambda: daemon.notified("STOPPING=1"), seconds=5)
    events = [json.loads(line) for line in daemon.lines if line.startswith("{")]
    assert events and all({"time", "level", "logger", "message"} <= e.keys() for e in events)
    assert any(e["message"] == "stopped" for e in events)
    secrets = dict(
        line.split("=", 1) for line in (tmp_path / "config" / "secrets.env").read_text().split()
    )
    for name in ("HUBSPOT_ACCESS_TOKEN", "SALESFORCE_CLIENT_SECRET"):
        assert not any(secrets[name] in line for line in daemon.lines)


def test_sighup_keeps_the_old_config_when_the_new_one_is_broken(
    tmp_path: Path, start: Callable[[Path], Daemon]
) -> None:
    with _box(tmp_path) as box:
        config = box.config_path
        daemon = start(config)
        daemon.wait_for(lambda: daemon.notified("READY=1") and daemon.logged("active"))
        fields = config.parent / "fields.yaml"
        good = fields.read_text()
        fields.write_text(
            good.replace("    conflict: crm_wins\n  title:", "    conflict: maybe\n  title:")
        )
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda: daemon.logged("configuration not reloaded"))
        broken = next(line for line in daemon.lines if "configuration not reloaded" in line)
        assert "fields.yaml:" in broken and "person.company.conflict" in broken
        daemon.wait_for(lambda: daemon.notified("reload FAILED"))
        assert _samples(daemon.scrape()[1])["syncd_config_reload_failed"] == 1
        still = _person(box, 3)
        daemon.wait_for(lambda: len(_leads(box, still)) == 1, seconds=10)  # old config syncs
        fields.write_text(
            good.replace(
                "  title:\n    hubspot: jobtitle",
                "  title:\n    direction: to_marketing\n    hubspot: jobtitle",
            )
        )
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda: daemon.logged("configuration reloaded"))
        # the new rule holds: a HubSpot title no longer flows to Salesforce
        hubspot = box.emulators["hubspot"]
        contact = next(c for c in hubspot.contacts() if c["properties"]["email"] == still)
        hubspot.update_contact(contact["id"], {"jobtitle": "CEO", "phone": "+1 555 0100"})
        daemon.wait_for(lambda: _leads(box, still)[0].get("Phone") == "+1 555 0100", seconds=10)
        assert _leads(box, still)[0].get("Title") in (None, "")
        assert daemon.stop() == 0


def test_a_blocking_setup_problem_stops_the_cycles_until_the_admin_fixes_it(
    tmp_path: Path, start: Callable[[Path], Daemon]
) -> None:
    overrides = {**SETTINGS, "daemon": {**SETTINGS["daemon"], "preflight_retry_seconds": 1}}
    with sandbox.start(tmp_path / "config", sample=False, overrides=overrides) as box:
        salesforce = box.emulators["salesforce"]
        salesforce.drop_field("Lead", "Syncd_HubSpot_Id__c")
        waiting = _person(box, 4)
        daemon = start(box.config_path)
        daemon.wait_for(lambda: daemon.notified("READY=1") and daemon.logged("writes blocked"))
        problem = next(line for line in daemon.lines if "setup check:" in line)
        assert "systems.salesforce.partner_id_field" in problem and "Lead" in problem
        daemon.wait_for(lambda: daemon.notified("writes blocked by 1 setup problem"))
        status, health = daemon.scrape("/healthz")
        assert status == 503 and "writes blocked" in health
        time.sleep(2.5)  # a few cadences and checks: nothing cycles, nothing is written
        assert not daemon.logged("cycle of person") and salesforce.records("Lead") == []
        salesforce.reset_access()  # the admin creates the field: picked up without a restart
        daemon.wait_for(lambda: daemon.logged("setup checks passed"), seconds=10)
        daemon.wait_for(lambda: len(_leads(box, waiting)) == 1, seconds=10)
        status, _ = daemon.scrape("/healthz")
        assert status == 200
        # a reload that breaks the setup stops the cycles again
        salesforce.make_read_only("Lead", "Lead_Score__c")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for(lambda: daemon.logged("person.lead_score.salesforce"), seconds=10)
        daemon.wait_for(lambda: daemon.scrape("/healthz")[0] == 503, seconds=10)
        later = _person(box, 5)
        time.sleep(2.5)
        assert _leads(box, later) == []
        assert daemon.stop() == 0


def test_sigterm_mid_backfill_loses_and_duplicates_nothing(
    tmp_path: Path, start: Callable[[Path], Daemon]
) -> None:
    with _box(tmp_path) as box:
        box.emulators["hubspot"].seed_contacts(3000)
        box.emulators["salesforce"].set_latency(40)  # every write takes a while
        config = box.config_path
        daemon = start(config)
        salesforce = box.emulators["salesforce"]
        daemon.wait_for(lambda: len(salesforce.records("Lead")) > 0, seconds=30)
        assert daemon.stop() == 0
        written = len(salesforce.records("Lead"))
        assert 0 < written < 3000, written  # stopped in the middle, after a committed chunk
        salesforce.set_latency(0)
        again = start(config)
        again.wait_for(lambda: len(salesforce.records("Lead")) == 3000, seconds=60)
        time.sleep(2)  # a further cycle or two: nothing more may appear
        leads = salesforce.records("Lead")
        emails = [str(r["Email"]).lower() for r in leads]
        assert len(emails) == len(set(emails)) == 3000
        hubspot = box.emulators["hubspot"]
        # each lead names its contact (HubSpot learns the lead's id with its next update)
        named = {r["Syncd_HubSpot_Id__c"] for r in leads}
        assert named == {c["id"] for c in hubspot.contacts()}
        assert again.stop() == 0


def test_a_spent_budget_stops_the_calls_until_the_day_turns(
    tmp_path: Path, start: Callable[[Path], Daemon]
) -> None:
    with _box(tmp_path) as box:
        config = box.config_path
        text = config.read_text()
        # the emulator's HubSpot gets a budget of 40 calls a day from syncd
        config.write_text(text.replace("  hubspot:\n", "  hubspot:\n    daily_budget: 40\n", 1))
        hubspot = box.emulators["hubspot"]
        daemon = start(config)
        daemon.wait_for(lambda: daemon.logged("API budget spent"), seconds=30)
        spent = next(line for line in daemon.lines if "API budget spent" in line)
        assert "hubspot: 0 of 40 calls left today (SPENT)" in spent or "hubspot: -" in spent
        calls = sum(hubspot.calls().values())
        time.sleep(3)  # three more rounds at a one-second cadence
        assert sum(hubspot.calls().values()) == calls
        samples = _samples(daemon.scrape()[1])
        assert samples['syncd_api_budget_remaining{system="hubspot"}'] == 0
        daemon.wait_for(lambda: daemon.notified("budget spent"))
        assert daemon.stop() == 0


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_two_daemons_on_postgresql_one_active_the_other_takes_over(
    tmp_path: Path, start: Callable[[Path], Daemon], store_url: str
) -> None:
    with _box(tmp_path, store_url) as box:
        config = box.config_path
        first = start(config)
        first.wait_for(lambda: first.logged("active"))
        second = start(config)
        second.wait_for(lambda: second.logged("standby"))
        status = json.loads(_syncd("status", "--json", "-c", str(config)).stdout)
        assert status["lease"]["holder"].split(":")[1] == str(first.process.pid)
        first.process.kill()  # SIGKILL: no goodbye, no release
        first.process.wait(10)
        killed = time.monotonic()
        second.wait_for(lambda: second.logged("active"), seconds=10)
        assert time.monotonic() - killed < 5
        email = _person(box, 9)
        second.wait_for(lambda: len(_leads(box, email)) == 1, seconds=10)
        assert second.stop() == 0


def test_a_second_daemon_on_the_same_host_stands_by_and_serves_metrics_once_active(
    tmp_path: Path, start: Callable[[Path], Daemon]
) -> None:
    with socket.socket() as probe:  # a port free now, the same for both daemons
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = {**SETTINGS, "daemon": {**SETTINGS["daemon"], "metrics": f"127.0.0.1:{port}"}}
    with sandbox.start(tmp_path / "config", sample=False, overrides=settings) as box:
        first = start(box.config_path)
        first.wait_for(lambda: first.logged("active"))
        second = start(box.config_path)
        second.wait_for(lambda: second.logged("standby"))
        time.sleep(1)
        assert second.process.poll() is None, second.lines  # no crash on the port
        assert second.logged(f"metrics: 127.0.0.1:{port} (daemon.metrics) is in use")
        assert not second.logged("metrics at http://")
        assert not any("Traceback" in line for line in second.lines)
        assert first.scrape("/healthz")[0] == 200
        first.process.kill()  # SIGKILL: the port and, once expired, the lease are free
        first.process.wait(10)
        second.wait_for(lambda: second.logged("active"), seconds=15)
        second.wait_for(lambda: second.logged(f"metrics at http://127.0.0.1:{port}/metrics"))
        status, metrics = second.scrape()
        assert status == 200 and _samples(metrics)["syncd_lease_held"] == 1
        assert second.stop() == 0


def test_a_standby_that_becomes_active_while_its_port_is_taken_says_so_and_serves_later(
    tmp_path: Path, start: Callable[[Path], Daemon]
) -> None:
    """The active daemon dies, but another process still holds the standby's metrics
    port: the standby takes over the syncing, logs once that it is active without
    metrics, and serves them as soon as the port is free."""
    with socket.socket() as squatter:  # another program on the standby's metrics port
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with sandbox.start(tmp_path / "config", sample=False, overrides=SETTINGS) as box:
            first = start(box.config_path)  # metrics on a port of its own (127.0.0.1:0)
            first.wait_for(lambda: first.logged("active"))
            text = box.config_path.read_text(encoding="utf-8")
            assert "127.0.0.1:0" in text
            second_config = box.config_path.with_name("second.yaml")
            second_config.write_text(text.replace("127.0.0.1:0", f"127.0.0.1:{port}"), "utf-8")
            second = start(second_config)
            second.wait_for(lambda: second.logged("standby"))
            assert second.logged(f"metrics: 127.0.0.1:{port} (daemon.metrics) is in use")
            first.process.kill()
            first.process.wait(10)
            second.wait_for(lambda: second.logged("active"), seconds=15)
            second.wait_for(lambda: second.logged("active without metrics"), seconds=10)
            assert second.process.poll() is None, second.lines
            assert not second.logged("metrics at http://")
            squatter.close()  # the port is free: the active daemon takes it
            second.wait_for(lambda: second.logged(f"metrics at http://127.0.0.1:{port}/metrics"))
            status, metrics = second.scrape()
            assert status == 200 and _samples(metrics)["syncd_lease_held"] == 1
            assert sum("active without metrics" in line for line in second.lines) == 1
            assert second.stop() == 0
