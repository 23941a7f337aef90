"""Both emulators with sample data, and a ready configuration pointing at them.

Used by ``syncd demo``, ``syncd emulate``, the benchmark and the end-to-end tests.
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from syncd import registry
from syncd.yamlfile import plain

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
"""The example configuration shipped with the project (fields and stages are copied)."""

SAMPLE_HUBSPOT = [
    {
        "email": "ada@example.com",
        "firstname": "Ada",
        "lastname": "Lovelace",
        "company": "Analytical Engines",
        "jobtitle": "CTO",
        "lifecyclestage": "marketingqualifiedlead",
        "lead_source": "Webinar",
        "hubspotscore": "87",
    },
    {
        "email": "grace@example.com",
        "firstname": "Grace",
        "lastname": "Hopper",
        "company": "Navy",
        "jobtitle": "Rear Admiral",
        "lifecyclestage": "lead",
        "lead_source": "Web",
    },
    {
        "email": "alan@example.com",
        "firstname": "Alan",
        "lastname": "Turing",
        "company": "Bletchley",
        "lifecyclestage": "subscriber",
        "lead_source": "Trade Show",
    },
]
SAMPLE_SALESFORCE_LEADS = [
    {
        "Email": "Katherine@Example.com",
        "FirstName": "Katherine",
        "LastName": "Johnson",
        "Company": "NASA",
        "Title": "Mathematician",
        "Status": "Working - Contacted",
        "LeadSource": "Partner",
    },
    {
        "Email": "ALAN@example.com",
        "FirstName": "Alan",
        "LastName": "Turing",
        "Company": "Bletchley Park",
        "Phone": "+44 1908 640404",
        "Status": "Open - Not Contacted",
    },
]
SAMPLE_SALESFORCE_CONTACTS = [
    {
        "Email": "edsger@example.com",
        "FirstName": "Edsger",
        "LastName": "Dijkstra",
        "Title": "Professor",
    },
]

SAMPLE_HUBSPOT_COMPANIES = [
    {"name": "Analytical Engines", "domain": "analyticalengines.com", "numberofemployees": "12"},
    {"name": "US Navy", "domain": "navy.mil"},
]
SAMPLE_SALESFORCE_ACCOUNTS = [
    # the same company as HubSpot's analyticalengines.com: matched by domain, not created
    {"Name": "Analytical Engines Ltd", "Website": "https://www.analyticalengines.com/"},
    {"Name": "Bletchley Park", "Website": "bletchleypark.org.uk"},
]
SAMPLE_HUBSPOT_DEAL = {
    "dealname": "Difference Engine No. 2",
    "amount": "25000",
    "closedate": "2026-12-15T00:00:00.000Z",
    "pipeline": "default",
    "dealstage": "presentationscheduled",
}
"""Marketing's deal, associated with Ada and with Analytical Engines."""


@dataclass
class Sandbox:
    """Running emulators and the directory holding a configuration for them."""

    emulators: dict[str, Any]
    config_dir: Path

    @property
    def config_path(self) -> Path:
        return self.config_dir / "syncd.yaml"

    def stop(self) -> None:
        for emulator in self.emulators.values():
            emulator.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start(
    config_dir: Path,
    *,
    sample: bool = True,
    store: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Sandbox:
    """Start both emulators on loopback and write syncd.yaml, fields, stages and secrets;
    ``overrides`` replace top-level settings of syncd.yaml (``cadence_seconds``, ...)."""
    emulators = registry.start_emulators()
    if sample:
        seed_sample(emulators)
    write_config(config_dir, emulators, store=store, overrides=overrides)
    return Sandbox(emulators, config_dir)


def write_config(
    config_dir: Path,
    emulators: dict[str, Any],
    *,
    store: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Write a configuration for running emulators (in this process or another)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in ("fields.yaml", "stages.yaml"):
        shutil.copy(CONFIG_DIR / name, config_dir / name)
    secrets, systems = registry.emulator_settings(emulators)
    (config_dir / "secrets.env").write_text(
        "".join(f"{k}={v}\n" for k, v in secrets.items()), encoding="utf-8"
    )
    # The shipped settings (people, deals, report ...), pointed at the emulators.
    settings = plain(YAML(typ="rt").load((CONFIG_DIR / "syncd.yaml").read_text("utf-8")))
    settings.update(
        store=store or "sqlite:///syncd.db",
        secrets_file="secrets.env",
        cadence_seconds={"company": 10, "person": 10, "deal": 10},
        systems=systems,
    )
    settings.update(overrides or {})
    text = io.StringIO()
    dumper = YAML(typ="safe", pure=True)
    dumper.default_flow_style, dumper.width = False, 100
    dumper.dump(settings, text)
    path = config_dir / "syncd.yaml"
    path.write_text("# Written by syncd for its emulators.\n" + text.getvalue(), encoding="utf-8")
    return path


def seed_sample(emulators: dict[str, Any]) -> None:
    """A few people on each side, one of them on both (matched by email, any case)."""
    for props in SAMPLE_HUBSPOT:
        emulators["hubspot"].add_contact(props)
    for fields in SAMPLE_SALESFORCE_LEADS:
        emulators["salesforce"].add("Lead", fields)
    for fields in SAMPLE_SALESFORCE_CONTACTS:
        emulators["salesforce"].add("Contact", fields)


def seed_sample_deals(emulators: dict[str, Any]) -> None:
    """Companies on each side (one on both, matched by domain) and Ada's deal in HubSpot.

    Needs ``seed_sample``'s people first.
    """
    hubspot = emulators["hubspot"]
    companies = {p["domain"]: hubspot.add_company(p) for p in SAMPLE_HUBSPOT_COMPANIES}
    for fields in SAMPLE_SALESFORCE_ACCOUNTS:
        emulators["salesforce"].add("Account", fields)
    ada = next(
        str(c["id"]) for c in hubspot.contacts() if c["properties"]["email"] == "ada@example.com"
    )
    deal = hubspot.add_deal(SAMPLE_HUBSPOT_DEAL)
    hubspot.associate("deals", deal, "contacts", ada)
    hubspot.associate("deals", deal, "companies", companies["analyticalengines.com"])
