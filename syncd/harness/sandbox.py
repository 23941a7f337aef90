"""Both emulators with sample data, and a ready configuration pointing at them.

Used by ``syncd demo``, ``syncd emulate``, the benchmark and the end-to-end tests.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from syncd import registry
from syncd.config import init as init_config
from syncd.config.yamlfile import plain

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
SAMPLE_CONVERSION = ("katherine@example.com", "NASA trajectory analysis")
"""The lead sales converts, and the opportunity the conversion makes."""
SAMPLE_WON = {"StageName": "Closed Won", "Amount": 120000}
SAMPLE_LOST = {"StageName": "Closed Lost", "LossReason__c": "No Budget"}
SAMPLE_SALESFORCE_OPPORTUNITY = {
    "Name": "Structured programming course",
    "StageName": "Proposal/Price Quote",
    "Amount": 8000,
    "CloseDate": "2026-12-31",
    "LeadSource": "Web",
}
"""Sales' own open deal with Edsger (his contact role), which ``seed_funnel`` loses."""


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
    seed: Callable[[dict[str, Any]], object] | None = None,
    copy_ca: bool = False,
) -> Sandbox:
    """Start both emulators on loopback and write syncd.yaml, fields, stages and secrets;
    ``overrides`` replace top-level settings of syncd.yaml (``cadence_seconds``, ...).
    The emulators get ``seed``'s data, else (``sample``) ``seed_sample``'s people;
    ``copy_ca``: the configuration outlives them (see ``write_config``)."""
    emulators = registry.start_emulators()
    if seed is not None:
        seed(emulators)
    elif sample:
        seed_sample(emulators)
    write_config(config_dir, emulators, store=store, overrides=overrides, copy_ca=copy_ca)
    return Sandbox(emulators, config_dir)


def write_config(
    config_dir: Path,
    emulators: dict[str, Any],
    *,
    store: str | None = None,
    overrides: dict[str, Any] | None = None,
    copy_ca: bool = False,
) -> Path:
    """Write a configuration for running emulators (in this process or another).

    ``copy_ca``: the emulators' CA files are copied beside the configuration, so that it
    still loads once they stopped (and took their CA files along): ``syncd demo --keep``.
    """
    config_dir.mkdir(parents=True, exist_ok=True)
    # The shipped files as package data (``syncd init``'s templates): an install that is
    # not a checkout has no config/ folder.
    for name in ("fields.yaml", "stages.yaml"):
        (config_dir / name).write_text(init_config.template(name), encoding="utf-8")
    secrets, systems = registry.emulator_settings(emulators)
    for name, system in systems.items() if copy_ca else ():
        if system.get("ca_bundle"):
            copied = f"{name}-emulator-ca.pem"
            shutil.copy(system["ca_bundle"], config_dir / copied)
            system["ca_bundle"] = copied
    (config_dir / "secrets.env").write_text(
        "".join(f"{k}={v}\n" for k, v in secrets.items()), encoding="utf-8"
    )
    # The shipped settings (people, deals, report ...), pointed at the emulators.
    settings = plain(YAML(typ="rt").load(init_config.template("syncd.yaml")))
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


SAMPLE_HANDOFFS = [
    {
        "email": "mary@example.com",
        "firstname": "Mary",
        "lastname": "Jackson",
        "company": "Langley",
        "lifecyclestage": "marketingqualifiedlead",
        "lead_source": "Webinar",
        "hubspotscore": "72",
    },
    {
        "email": "dorothy@example.com",
        "firstname": "Dorothy",
        "lastname": "Vaughan",
        "company": "Langley",
        "lifecyclestage": "marketingqualifiedlead",
        "lead_source": "Trade Show",
        "hubspotscore": "45",
    },
]
"""Two people marketing hands to sales at once (``syncd demo``'s speed-to-lead stories)."""


SALES_REP = "Stone"
"""The last name of the Salesforce emulator's sales rep (Avery Stone), who owns the
sample hand-offs."""


def sales_rep(salesforce: Any) -> dict[str, Any]:
    """The emulator's sales rep: the User the demo and the kill sweep assign leads to."""
    return dict(next(u for u in salesforce.records("User") if u.get("LastName") == SALES_REP))


def log_call(salesforce: Any, who: str, owner: str) -> str:
    """A rep logs a completed call on lead or contact ``who`` (a Salesforce Task, as the
    Log a Call action makes one); return the task's id."""
    fields = {"WhoId": who, "OwnerId": owner, "Subject": "Call", "TaskSubtype": "Call"}
    return str(salesforce.add("Task", {**fields, "Status": "Completed"}))


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


def convert_sample_lead(salesforce: Any) -> dict[str, str | None]:
    """Sales converts Katherine's lead: a contact, an account (NASA) and an opportunity;
    return the ids Salesforce answers (``contactId``, ``accountId``, ``opportunityId``)."""
    email, opportunity = SAMPLE_CONVERSION
    lead = next(
        r
        for r in salesforce.records("Lead", include_deleted=False)
        if str(r.get("Email") or "").lower() == email and not r.get("IsConverted")
    )
    ids: dict[str, str | None] = salesforce.convert_lead(lead["Id"], opportunity_name=opportunity)
    return ids


def close_sample_deals(salesforce: Any, won: str, lost: str) -> None:
    """Sales wins opportunity ``won`` (120,000, closing today) and loses ``lost`` (reason:
    No Budget)."""
    today = datetime.now(UTC).date().isoformat()
    salesforce.update("Opportunity", won, {**SAMPLE_WON, "CloseDate": today})
    salesforce.update("Opportunity", lost, SAMPLE_LOST)


def seed_funnel(emulators: dict[str, Any]) -> None:
    """The whole funnel, before any sync: ``seed_sample``'s people, ``seed_sample_deals``'
    companies and deal, Katherine's lead converted and its opportunity won, and Edsger's
    opportunity lost (``syncd emulate``)."""
    seed_sample(emulators)
    seed_sample_deals(emulators)
    salesforce = emulators["salesforce"]
    won = convert_sample_lead(salesforce)["opportunityId"]
    edsger = next(
        r["Id"]
        for r in salesforce.records("Contact", include_deleted=False)
        if r.get("Email") == "edsger@example.com"
    )
    lost = salesforce.add("Opportunity", SAMPLE_SALESFORCE_OPPORTUNITY)
    salesforce.add(
        "OpportunityContactRole", {"OpportunityId": lost, "ContactId": edsger, "IsPrimary": True}
    )
    close_sample_deals(salesforce, str(won), lost)
