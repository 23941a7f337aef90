"""``schema_problems`` of both connectors, through the real clients against the emulators
as an admin's setup changes them; and the emulators' switches themselves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from connectors.hubspot import testing as hs
from connectors.hubspot.emulator.server import HubSpotEmulator
from connectors.hubspot.mapping import ObjectMapping
from connectors.hubspot.schema import problems as hubspot_problems
from connectors.salesforce import testing as sft
from connectors.salesforce.emulator.server import SalesforceEmulator
from syncd import preflight, registry
from syncd.config.load import load_config
from syncd.config.yamlfile import plain
from syncd.harness import sandbox
from syncd.model import Change


@pytest.fixture
def salesforce() -> Iterator[SalesforceEmulator]:
    with sft.running_emulator(batch_min=1) as emulator:
        yield emulator


@pytest.fixture
def hubspot() -> Iterator[HubSpotEmulator]:
    with hs.running_emulator() as emulator:
        yield emulator


# -- Salesforce -------------------------------------------------------------------------


def test_describe_answers_as_the_integration_user_sees_the_fields(salesforce) -> None:
    client = sft.client_for(salesforce)

    def field(obj: str, name: str) -> dict | None:
        fields = client.restful(f"sobjects/{obj}/describe")["fields"]
        return next((f for f in fields if f["name"] == name), None)

    partner = field("Contact", "Syncd_HubSpot_Id__c")
    assert partner is not None
    assert partner["externalId"] and partner["unique"] and partner["createable"]
    assert partner["updateable"]
    salesforce.make_not_unique("Contact", "Syncd_HubSpot_Id__c")
    salesforce.make_read_only("Lead", "Title")
    salesforce.drop_field("Account", "Syncd_HubSpot_Id__c")
    assert field("Contact", "Syncd_HubSpot_Id__c")["unique"] is False
    title = field("Lead", "Title")
    assert title is not None and not title["createable"] and not title["updateable"]
    assert field("Account", "Syncd_HubSpot_Id__c") is None
    # writes and reads follow what describe says
    (refused,) = client.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Lead"}, "LastName": "X", "Company": "Y", "Title": "Z"}
            ],
        },
    )
    assert refused["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_FIELD"):
        client.query("SELECT Id, Syncd_HubSpot_Id__c FROM Account")
    with pytest.raises(SalesforceResourceNotFound):
        client.restful(
            "composite/sobjects/Account/Syncd_HubSpot_Id__c",
            method="PATCH",
            json={
                "allOrNone": False,
                "records": [{"attributes": {"type": "Account"}, "Name": "A"}],
            },
        )
    assert salesforce.records("Lead") == [] and salesforce.records("Account") == []
    salesforce.reset_access()
    assert field("Account", "Syncd_HubSpot_Id__c") is not None


def test_a_renamed_stage_keeps_its_api_name(salesforce) -> None:
    salesforce.relabel_stage("Closed Won", "Won (signed)")
    client = sft.client_for(salesforce)
    rows = client.query("SELECT MasterLabel, ApiName, IsWon FROM OpportunityStage")["records"]
    won = [r for r in rows if r["IsWon"]]
    assert [(r["ApiName"], r["MasterLabel"]) for r in won] == [("Closed Won", "Won (signed)")]
    fields = client.restful("sobjects/Opportunity/describe")["fields"]
    stage = next(f for f in fields if f["name"] == "StageName")
    entry = next(v for v in stage["picklistValues"] if v["value"] == "Closed Won")
    assert entry["label"] == "Won (signed)"


def test_salesforce_schema_problems_name_the_kind_field_and_what_to_do(salesforce) -> None:
    connector = sft.connector_for(salesforce)
    written = {"Lead": {"title", "lead_score"}, "Contact": {"title"}}
    assert connector.schema_problems(written) == []
    salesforce.make_read_only("Lead", "Lead_Score__c")  # flows to_crm: written
    salesforce.make_read_only("Contact", "Phone")  # not written by this mapping: fine
    salesforce.make_not_unique("Contact", "Syncd_HubSpot_Id__c")
    found = {(p.kind, p.field): p.message for p in connector.schema_problems(written)}
    assert found.keys() == {("Lead", "lead_score"), ("Contact", None)}
    assert "Lead.Lead_Score__c is not createable and updateable" in found[("Lead", "lead_score")]
    assert "is not Unique" in found[("Contact", None)]
    connector.close()


def test_no_partner_field_means_no_write_instead_of_a_plain_insert(salesforce) -> None:
    salesforce.drop_field("Lead", "Syncd_HubSpot_Id__c")
    connector = sft.connector_for(salesforce)
    (problem,) = connector.schema_problems({})
    assert problem.kind == "Lead" and problem.field is None
    assert "create a text field 'Syncd_HubSpot_Id__c' on Lead" in problem.message
    change = Change("create", "Lead", "k1", None, {"last_name": "X", "company": "Y"}, {}, "hs-1")
    (outcome,) = connector.apply([change])
    assert not outcome.ok and outcome.code == "PARTNER_FIELD_MISSING"
    assert salesforce.records("Lead") == []
    connector.close()


def test_a_partner_field_per_kind(salesforce) -> None:
    partners = {"Lead": "Syncd_HubSpot_Id__c"}  # Contact names none
    connector = sft.connector_for(salesforce, partner_id_field=partners)
    (problem,) = connector.schema_problems({})
    assert (problem.kind, problem.field) == ("Contact", None)
    assert "no partner-id field is configured for Salesforce Contact" in problem.message
    connector.close()


# -- HubSpot ----------------------------------------------------------------------------


def test_the_properties_api_answers_like_hubspots(hubspot) -> None:
    connector = hs.connector_for(hubspot)
    answer = connector._call(  # the client's own call, as the connector makes it
        "GET /crm/v3/properties/contacts",
        lambda **kw: connector._properties.get_all("contacts", **kw),
    )
    by_name = {p["name"]: p for p in answer["results"]}
    partner = by_name["syncd_salesforce_id"]
    assert (partner["type"], partner["fieldType"], partner["hasUniqueValue"]) == (
        "string",
        "text",
        True,
    )
    assert by_name["createdate"]["modificationMetadata"]["readOnlyValue"] is True
    assert by_name["lifecyclestage"]["type"] == "enumeration"
    hubspot.change_property("contacts", "syncd_salesforce_id", unique=False)
    hubspot.change_property("contacts", "jobtitle", drop=True)
    assert connector.schema_problems({"contacts": {"title"}}) != []
    with pytest.raises(ValueError, match=r"jobtitle.*does not exist"):
        hubspot.add_contact({"email": "a@example.com", "jobtitle": "CTO"})
    connector.close()


def test_hubspot_schema_problems_follow_the_compatibility_table(hubspot) -> None:
    connector = hs.connector_for(hubspot, kinds=hs.ALL_KINDS)
    everything = {k: set(hs.FIELD_MAP[k]) for k in hs.ALL_KINDS}
    assert connector.schema_problems(everything) == []
    connector.close()
    properties = [
        {"name": "amount", "type": "string"},
        {"name": "closedate", "type": "datetime"},
        {
            "name": "hs_createdate",
            "type": "datetime",
            "modificationMetadata": {"readOnlyValue": True},
        },
        {"name": "pid", "type": "string", "hasUniqueValue": True},
    ]
    mapping = ObjectMapping(
        "deals",
        {"amount": "amount", "close_date": "closedate", "created": "hs_createdate"},
        {"amount": "number", "close_date": "date", "created": "date"},
        (),
        "pid",
    )
    found = {p.field: p.message for p in hubspot_problems(mapping, properties, {"created"})}
    assert found.keys() == {"amount", "created"}
    assert "of type string, which cannot hold a number field" in found["amount"]
    assert "is read-only (readOnlyValue)" in found["created"]
    # the same read-only property, only read (not written): no problem with it
    assert [p.field for p in hubspot_problems(mapping, properties, ())] == ["amount"]


# -- per-kind partner fields in syncd.yaml ----------------------------------------------


def test_syncd_yaml_accepts_a_partner_field_per_kind(tmp_path: Path) -> None:
    from ruamel.yaml import YAML

    with sandbox.start(tmp_path, sample=False) as box:
        yaml = YAML(typ="safe", pure=True)
        settings = plain(yaml.load(box.config_path.read_text()))
        per_kind = {k: "Syncd_HubSpot_Id__c" for k in ("Lead", "Contact", "Account")}
        settings["systems"]["salesforce"]["partner_id_field"] = per_kind  # no Opportunity
        settings["systems"]["hubspot"]["partner_id_field"] = {
            k: "syncd_salesforce_id" for k in ("contacts", "companies", "deals")
        }
        with box.config_path.open("w") as out:
            yaml.dump(settings, out)
        config = load_config(box.config_path)
        connectors = [registry.connector(config, n) for n in ("hubspot", "salesforce")]
        result = preflight.check(config, connectors)
        for connector in connectors:
            connector.close()
    (problem,) = result.problems
    assert problem.key == "systems.salesforce.partner_id_field.Opportunity"
    assert problem.file == str(box.config_path) and problem.line
    assert "partner_id_field" in box.config_path.read_text().splitlines()[problem.line - 1]
    assert json.loads(json.dumps(problem.as_dict()))["blocking"] is True


# -- the switches from another process: the control endpoints ---------------------------


def test_the_salesforce_switches_answer_on_the_control_api(salesforce) -> None:
    http = sft.session_for(salesforce)
    for path, body in (
        ("drop_field", {"object": "Opportunity", "field": "Syncd_HubSpot_Id__c"}),
        ("read_only_field", {"object": "Lead", "field": "Lead_Score__c"}),
        ("not_unique_field", {"object": "Contact", "field": "Syncd_HubSpot_Id__c"}),
        ("relabel_stage", {"api_name": "Closed Won", "label": "Won (signed)"}),
    ):
        answer = http.post(f"{salesforce.url}/_emulator/{path}", json=body)
        assert answer.status_code == 200, answer.text
    connector = sft.connector_for(
        salesforce,
        field_map={**sft.PERSON_FIELDS, "Opportunity": {"name": "Name"}},
    )
    found = {(p.kind, p.field) for p in connector.schema_problems({"Lead": {"lead_score"}})}
    assert found == {("Opportunity", None), ("Lead", "lead_score"), ("Contact", None)}
    assert connector.stage_outcomes()[("StageName", "Closed Won")] == "won"
    assert http.post(f"{salesforce.url}/_emulator/reset_access").status_code == 200
    assert connector.schema_problems({"Lead": {"lead_score"}}) == []
    connector.close()


def test_the_hubspot_switch_answers_on_the_control_api(hubspot) -> None:
    import urllib.request

    request = urllib.request.Request(
        f"{hubspot.url}/_emulator/property",
        data=json.dumps(
            {"object_type": "deals", "name": "syncd_salesforce_id", "unique": False}
        ).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
    connector = hs.connector_for(hubspot, kinds=("deals",))
    (problem,) = connector.schema_problems({})
    assert (problem.kind, problem.field) == ("deals", None) and "hasUniqueValue" in problem.message
    connector.close()
