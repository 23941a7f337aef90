"""fields.yaml's commented example of marketing engagement for sales: uncommented, it
validates against both emulators' schemas and copies HubSpot's engagement to Salesforce
(and to Salesforce only); a misspelt property is named by file, line and key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from syncd import registry
from syncd.config.load import load_config
from syncd.harness import sandbox
from syncd.retry import RetryPolicy
from syncd.state.store import Store
from syncd.sync.engine import Engine
from tests.factories import syncd_cli

ROOT = Path(__file__).resolve().parents[1]
FIRST = "  # hubspot_score:"
ENGAGEMENT = {
    "hubspot_score": ("hubspotscore", "HubSpot_Score__c"),
    "recent_conversion": ("recent_conversion_event_name", "HubSpot_Recent_Conversion__c"),
    "recent_conversion_date": ("recent_conversion_date", "HubSpot_Recent_Conversion_Date__c"),
    "last_email_click": ("hs_email_last_click_date", "HubSpot_Last_Email_Click__c"),
    "last_visit": ("hs_analytics_last_visit_timestamp", "HubSpot_Last_Visit__c"),
    "visits": ("hs_analytics_num_visits", "HubSpot_Visits__c"),
}


def uncommented(text: str) -> str:
    """fields.yaml with the engagement example's block uncommented."""
    lines = text.splitlines()
    start = lines.index(FIRST)
    end = start
    while end < len(lines) and lines[end].startswith("  # "):
        lines[end] = "  " + lines[end][4:]
        end += 1
    return "\n".join(lines) + "\n"


def _validate(folder: Path) -> Any:
    checked = syncd_cli("validate", "--json", "--config", str(folder / "syncd.yaml"))
    return checked.returncode, json.loads(checked.stdout)


def test_the_shipped_files_hold_the_example_commented_out() -> None:
    for path in (ROOT / "config" / "fields.yaml", ROOT / "syncd/config/templates/fields.yaml"):
        text = path.read_text("utf-8")
        assert FIRST in text
        block = uncommented(text)
        for name, (hubspot, salesforce) in ENGAGEMENT.items():
            assert f"  {name}:\n    hubspot: {hubspot}\n    salesforce: {salesforce}\n" in block


def test_uncommented_it_validates_and_copies_engagement_to_salesforce_only(
    tmp_path: Path,
) -> None:
    with sandbox.start(tmp_path, sample=False) as box:
        fields = tmp_path / "fields.yaml"
        fields.write_text(uncommented(fields.read_text("utf-8")), "utf-8")
        code, answer = _validate(tmp_path)
        assert code == 0 and answer["ok"] is True, answer["problems"]
        config = load_config(box.config_path)
        assert all(config.fields["person"][n].direction == "to_crm" for n in ENGAGEMENT)
        hubspot, salesforce = box.emulators["hubspot"], box.emulators["salesforce"]
        contact = hubspot.add_contact(
            {
                "email": "ada@example.com",
                "lastname": "Lovelace",
                "company": "Engines",
                "lifecyclestage": "marketingqualifiedlead",
                "hubspotscore": "72",
                "recent_conversion_event_name": "Pricing page: demo request",
                "recent_conversion_date": "2026-11-30T10:15:00.000Z",
                "hs_email_last_click_date": "2026-12-01T08:00:00.000Z",
                "hs_analytics_last_visit_timestamp": "2026-12-02T17:45:00.000Z",
                "hs_analytics_num_visits": "14",
            }
        )
        store = Store.open(config.store_url)
        policy = RetryPolicy(attempts=2, initial=0.01, maximum=1, sleep=lambda _: None)
        marketing = registry.connector(config, "hubspot", policy)
        crm = registry.connector(config, "salesforce", policy)
        try:
            engine = Engine.for_config(config, store, marketing, crm)
            assert engine.run_once().created == {"salesforce": 1}
            (lead,) = [r for r in salesforce.records("Lead") if r["Email"] == "ada@example.com"]
            salesforce.update("Lead", lead["Id"], {"HubSpot_Visits__c": 99})
            engine.run_once()
            after = hubspot.get_contact(contact)["properties"]
        finally:
            marketing.close()
            crm.close()
            store.close()
    assert lead["HubSpot_Score__c"] == 72 and lead["HubSpot_Visits__c"] == 14
    assert lead["HubSpot_Recent_Conversion__c"] == "Pricing page: demo request"
    assert lead["HubSpot_Recent_Conversion_Date__c"] == "2026-11-30"
    assert lead["HubSpot_Last_Email_Click__c"] == "2026-12-01"
    assert lead["HubSpot_Last_Visit__c"] == "2026-12-02"
    assert after["hs_analytics_num_visits"] == "14"  # to_crm: never written back


def test_a_mapping_to_a_property_hubspot_lacks_is_reported_with_file_line_and_key(
    tmp_path: Path,
) -> None:
    with sandbox.start(tmp_path, sample=False):
        fields = tmp_path / "fields.yaml"
        text = uncommented(fields.read_text("utf-8"))
        fields.write_text(text.replace("hs_analytics_num_visits", "hs_analytics_num_visitz"))
        code, answer = _validate(tmp_path)
    assert code == 1
    (problem,) = [p for p in answer["problems"] if p["key"] == "person.visits.hubspot"]
    assert "no property 'hs_analytics_num_visitz'" in problem["message"]
    assert problem["file"].endswith("fields.yaml")
    line = fields.read_text("utf-8").splitlines()[problem["line"] - 1]
    assert "hs_analytics_num_visitz" in line
