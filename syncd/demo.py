"""``syncd demo``: both emulators, sample people, three cycles, printed as they happen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from syncd import registry, sandbox
from syncd.engine import CycleReport, Engine
from syncd.settings import load_config
from syncd.state.store import Store


def run_demo(
    directory: Path, console: Console, report_table: Callable[[str, CycleReport], Table]
) -> None:
    console.rule("syncd demo")
    with sandbox.start(directory) as box:
        hubspot, salesforce = box.emulators["hubspot"], box.emulators["salesforce"]
        console.print(f"HubSpot emulator at {hubspot.url}, Salesforce emulator at {salesforce.url}")
        console.print("Sample data: 3 HubSpot contacts, 2 Salesforce leads, 1 Salesforce contact;")
        console.print(
            "Alan Turing is in both (emails differ in case) and must not be duplicated.\n"
        )
        config = load_config(box.config_path)
        store = Store.open(config.store_url)
        marketing = registry.connector(config, "hubspot")
        crm = registry.connector(config, "salesforce")
        engine = Engine(
            store,
            marketing,
            crm,
            registry.rules(config),
            attribution=config.syncd.deals.attribution,
        )
        try:
            console.print(report_table("Cycle 1: first sync, both ways", engine.run_once()))
            _people(console, store, hubspot, salesforce)

            ada = _find(hubspot.contacts(), "email", "ada@example.com")
            hubspot.update_contact(ada, {"jobtitle": "Chief Scientist"})
            katherine = _find(salesforce.records("Lead"), "Email", "Katherine@Example.com")
            salesforce.update(
                "Lead", katherine, {"Status": "Qualified", "Phone": "+1 757 864 1000"}
            )
            console.print(
                "\nMarketing edits Ada's title in HubSpot; sales qualifies Katherine in Salesforce."
            )
            console.print(report_table("Cycle 2: edits on each side", engine.run_once()))
            console.print(
                report_table("Cycle 3: nothing changed, nothing echoed", engine.run_once())
            )
            _people(console, store, hubspot, salesforce)
            counts = store.counts()
            console.print(
                f"\nStore: {counts['links']} linked people, "
                f"{counts['stage_history']} stage transitions recorded, "
                f"{counts['dead_letters']} dead letters."
            )
        finally:
            marketing.close()
            crm.close()
            store.close()


def _find(records: Any, field: str, value: str) -> str:
    for record in records:
        props = record.get("properties", record)
        if str(props.get(field, "")).lower() == value.lower():
            return str(record.get("id") or record.get("Id"))
    raise LookupError(value)


def _people(console: Console, store: Store, hubspot: Any, salesforce: Any) -> None:
    table = Table(title="People as each system now shows them")
    for column in ("email", "HubSpot lifecycle / lead status", "Salesforce", "title", "phone"):
        table.add_column(column)
    sf = {
        str(r.get("Email", "")).lower(): r
        for kind in ("Lead", "Contact")
        for r in salesforce.records(kind)
    }
    for contact in hubspot.contacts():
        props = contact.get("properties", contact)
        email = str(props.get("email") or "").lower()
        partner = sf.get(email, {})
        sf_label = (
            f"{partner.get('attributes', {}).get('type', '')} {partner.get('Status') or ''}"
        ).strip() or "-"
        table.add_row(
            email,
            f"{props.get('lifecyclestage') or ''} / {props.get('hs_lead_status') or ''}",
            sf_label,
            str(props.get("jobtitle") or ""),
            str(partner.get("Phone") or props.get("phone") or ""),
        )
    console.print(table)
