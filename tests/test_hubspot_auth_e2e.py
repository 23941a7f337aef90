"""End to end with HubSpot on an OAuth app: access tokens expiring in the middle of a cycle
(both stores), a refused refresh, and what ``syncd validate`` says of missing credentials."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from connectors.hubspot.testing import sample_contact, sample_contacts
from syncd.errors import AuthError
from tests.world import World, make_world

TOKEN = "POST /oauth/2026-03/token"
PEOPLE = 30


@pytest.fixture
def oauth_world(tmp_path: Path, store_url: str) -> Iterator[World]:
    """The world with HubSpot signed in as an OAuth app (client id, secret, refresh token)."""
    yield from make_world(tmp_path, store_url, hubspot={"auth": "oauth"})


def _people(world: World) -> None:
    for contact in sample_contacts(PEOPLE, lifecyclestage="lead"):
        world.hubspot.add_contact(contact)
    for n in range(3):
        world.salesforce.add(
            "Lead", {"Email": f"lead{n}@example.com", "LastName": f"Lead{n}", "Company": "Acme"}
        )


def test_tokens_expiring_mid_cycle_are_refreshed_and_nothing_is_lost(oauth_world: World) -> None:
    world = oauth_world
    _people(world)
    world.hubspot.reset_calls()
    for call in (4, 7):  # reads, then writes: each time the token in hand expires
        world.hubspot.expire_tokens(at_call=call)
    report = world.cycle()
    calls = world.hubspot.calls()
    assert calls[TOKEN] == 3  # the first login and one refresh per expiry
    assert sum(calls.values()) >= 7  # both expiries happened inside the cycle
    assert report.created == {"salesforce": PEOPLE, "hubspot": 3}
    leads = [r for r in world.salesforce.records("Lead") if r.get("Syncd_HubSpot_Id__c")]
    assert len(leads) == PEOPLE + 3
    assert len(world.hubspot.contacts()) == PEOPLE + 3
    assert world.store.counts().get("dead_letters", 0) == 0
    assert world.cycle().created == {}


def test_a_refused_refresh_stops_the_cycle_naming_the_credential(oauth_world: World) -> None:
    world = oauth_world
    _people(world)
    world.cycle()  # signed in
    world.hubspot.add_contact(sample_contact(99, email="late@example.com", lastname="Late"))
    world.hubspot.revoke_refresh_token()
    world.hubspot.expire_tokens()
    with pytest.raises(AuthError, match="check HUBSPOT_REFRESH_TOKEN"):
        world.cycle()
    assert not [r for r in world.salesforce.records("Lead") if r.get("Email") == "late@example.com"]
    world.hubspot.tokens.refresh_token = "emulator-refresh-token"  # the admin reinstalled
    world.cycle()
    assert world.person("late@example.com")["LastName"] == "Late"


def test_validate_names_each_missing_oauth_credential_on_one_line(tmp_path: Path) -> None:
    from syncd.harness import sandbox

    with sandbox.start(tmp_path, sample=False) as box:
        yaml = YAML(typ="safe", pure=True)
        settings = yaml.load(box.config_path.read_text("utf-8"))
        settings["systems"]["hubspot"]["auth"] = "oauth"
        with box.config_path.open("w", encoding="utf-8") as out:
            yaml.dump(settings, out)
        secrets = tmp_path / "secrets.env"
        kept = [line for line in secrets.read_text().splitlines() if "HUBSPOT_REFRESH" not in line]
        secrets.write_text("\n".join(kept) + "\n")
        command = [sys.executable, "-c", "from syncd.cli.app import main; main()", "validate"]
        answer = subprocess.run(
            [*command, "--config", str(box.config_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        )
    assert answer.returncode == 2, answer.stdout + answer.stderr
    lines = [line for line in answer.stderr.splitlines() if "HUBSPOT_" in line]
    assert len(lines) == 1, answer.stderr
    assert "systems.hubspot.refresh_token_env" in lines[0]
    assert "HUBSPOT_REFRESH_TOKEN is neither in the environment nor in the secrets file" in lines[0]
