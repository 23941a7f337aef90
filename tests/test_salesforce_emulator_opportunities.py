"""Accounts, opportunities, their stages and contact roles, and lead conversion in the
Salesforce emulator, over real HTTPS through simple-salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.salesforce.emulator.server import SalesforceEmulator
from connectors.salesforce.emulator.store import WriteError
from connectors.salesforce.testing import (
    client_for,
    running_emulator,
    sample_contact,
    sample_lead,
    session_for,
)

STAGES = [
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
]
NOON = datetime(2026, 11, 23, 12, tzinfo=UTC)


@pytest.fixture
def emulator() -> Iterator[SalesforceEmulator]:
    with running_emulator(clock=lambda: NOON) as emulator:
        yield emulator


@pytest.fixture
def sf(emulator: SalesforceEmulator) -> Salesforce:
    return client_for(emulator)


def create(sf: Salesforce, obj: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    body = {"allOrNone": False, "records": [{"attributes": {"type": obj}, **r} for r in records]}
    return list(sf.restful("composite/sobjects", method="POST", json=body) or [])


def rows(sf: Salesforce, soql: str, **values: Any) -> list[dict[str, Any]]:
    return list(sf.query_all(format_soql(soql, **values))["records"])


def deal(n: int, **fields: Any) -> dict[str, Any]:
    return {"Name": f"Deal {n}", "CloseDate": "2026-12-15", "StageName": "Prospecting", **fields}


def test_describe_shows_the_stage_picklist_and_the_opportunity_fields(sf) -> None:
    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    stage = fields["StageName"]
    assert [v["value"] for v in stage["picklistValues"]] == STAGES
    assert stage["restrictedPicklist"] and not stage["nillable"]
    assert (fields["CloseDate"]["type"], fields["CloseDate"]["nillable"]) == ("date", False)
    assert (fields["Amount"]["type"], fields["Amount"]["scale"]) == ("currency", 2)
    assert not fields["IsWon"]["createable"] and not fields["IsClosed"]["updateable"]
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["Syncd_HubSpot_Id__c"]["externalId"] and fields["Syncd_HubSpot_Id__c"]["unique"]
    account = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert account["Industry"]["type"] == "picklist" and account["NumberOfEmployees"]["type"] == (
        "int"
    )
    roles = {f["name"] for f in sf.OpportunityContactRole.describe()["fields"]}
    assert {"OpportunityId", "ContactId", "Role", "IsPrimary", "SystemModstamp"} <= roles


def test_opportunity_stages_are_queryable_and_match_the_picklist(sf) -> None:
    stages = rows(
        sf,
        "SELECT MasterLabel, ApiName, IsWon, IsClosed, SortOrder, DefaultProbability"
        " FROM OpportunityStage ORDER BY SortOrder",
    )
    assert [s["ApiName"] for s in stages] == STAGES == [s["MasterLabel"] for s in stages]
    assert [s["SortOrder"] for s in stages] == list(range(1, 9))
    by_name = {s["ApiName"]: s for s in stages}
    assert (by_name["Closed Won"]["IsWon"], by_name["Closed Won"]["IsClosed"]) == (True, True)
    assert (by_name["Closed Lost"]["IsWon"], by_name["Closed Lost"]["IsClosed"]) == (False, True)
    assert by_name["Negotiation/Review"]["DefaultProbability"] == 90.0
    closed = rows(sf, "SELECT ApiName FROM OpportunityStage WHERE IsClosed = true")
    assert sorted(s["ApiName"] for s in closed) == ["Closed Lost", "Closed Won"]
    (refused,) = create(sf, "OpportunityStage", [{"MasterLabel": "Won Big"}])
    assert not refused["success"]
    assert refused["errors"][0]["statusCode"] == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"


def test_collections_create_opportunities_with_per_record_errors(sf, emulator) -> None:
    account = emulator.add("Account", {"Name": "Acme", "Industry": "Technology"})
    results = create(
        sf,
        "Opportunity",
        [
            deal(1, AccountId=account, Amount=1200.5),
            deal(2, StageName="Won Somehow"),
            deal(3, StageName="Closed Won", Amount=99),
            deal(4, CloseDate=None),
            deal(5, IsWon=True),
        ],
    )
    assert [r["success"] for r in results] == [True, False, True, False, False]
    assert results[1]["errors"] == [
        {
            "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "message": "Stage: bad value for restricted picklist field: Won Somehow",
            "fields": ["StageName"],
        }
    ]
    assert results[3]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert results[4]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    landed = rows(
        sf,
        "SELECT Name, AccountId, Amount, IsWon, IsClosed, Probability, OwnerId FROM Opportunity"
        " ORDER BY SystemModstamp, Id",
    )
    assert [(o["Name"], o["IsWon"], o["IsClosed"], o["Probability"]) for o in landed] == [
        ("Deal 1", False, False, 10.0),
        ("Deal 3", True, True, 100.0),
    ]
    assert landed[0]["AccountId"] == account and landed[0]["Amount"] == 1200.5
    assert landed[0]["OwnerId"].startswith("005")
    big = rows(
        sf, "SELECT Name FROM Opportunity WHERE CloseDate <= 2026-12-31 AND Amount >= 1000.25"
    )
    assert [o["Name"] for o in big] == ["Deal 1"]
    later = rows(sf, "SELECT Name FROM Opportunity WHERE CloseDate > 2026-12-15")
    assert later == []


def test_a_new_stage_derives_is_won_is_closed_and_probability(sf, emulator) -> None:
    (made,) = create(sf, "Opportunity", [deal(1, Probability=35)])
    before = emulator.get("Opportunity", made["id"]) or {}
    assert (before["IsClosed"], before["Probability"]) == (False, 35.0)
    sf.Opportunity.update(made["id"], {"StageName": "Closed Lost", "LossReason__c": "Price"})
    after = emulator.get("Opportunity", made["id"]) or {}
    assert (after["IsWon"], after["IsClosed"], after["Probability"]) == (False, True, 0.0)
    assert after["SystemModstamp"] > before["SystemModstamp"]
    sf.Opportunity.update(made["id"], {"StageName": "Closed Won", "Probability": 95})
    won = emulator.get("Opportunity", made["id"]) or {}
    assert (won["IsWon"], won["IsClosed"], won["Probability"]) == (True, True, 95.0)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Opportunity.update(made["id"], {"IsClosed": False})
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_contact_roles_are_created_in_collections_and_queried_by_opportunity(sf) -> None:
    contacts = [r["id"] for r in create(sf, "Contact", [sample_contact(1), sample_contact(2)])]
    deals = [r["id"] for r in create(sf, "Opportunity", [deal(1), deal(2), deal(3)])]
    results = create(
        sf,
        "OpportunityContactRole",
        [
            {"OpportunityId": deals[0], "ContactId": contacts[0], "IsPrimary": True},
            {"OpportunityId": deals[1], "ContactId": contacts[1], "Role": "Economic Buyer"},
            {"OpportunityId": deals[2], "ContactId": "003000000000000AAA"},
            {"OpportunityId": deals[2], "ContactId": deals[0]},
        ],
    )
    assert [r["success"] for r in results] == [True, True, False, False]
    assert results[2]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert results[3]["errors"][0]["statusCode"] == "FIELD_INTEGRITY_EXCEPTION"
    found = rows(
        sf,
        "SELECT OpportunityId, ContactId, Role, IsPrimary FROM OpportunityContactRole"
        " WHERE OpportunityId IN {ids} ORDER BY SystemModstamp, Id",
        ids=deals[:2],
    )
    assert [(r["OpportunityId"], r["ContactId"], r["Role"], r["IsPrimary"]) for r in found] == [
        (deals[0], contacts[0], None, True),
        (deals[1], contacts[1], "Economic Buyer", False),
    ]
    stamp = rows(sf, "SELECT SystemModstamp FROM OpportunityContactRole")[0]["SystemModstamp"]
    # a second primary role on the same opportunity demotes the first, touching it
    create(sf, "OpportunityContactRole", [{**_role(deals[0], contacts[1]), "IsPrimary": True}])
    # format_soql would drop the milliseconds of a datetime: write the literal out
    changed = rows(
        sf,
        "SELECT ContactId, IsPrimary FROM OpportunityContactRole"
        f" WHERE SystemModstamp > {stamp[:23]}Z ORDER BY SystemModstamp, Id",
    )
    assert [(r["ContactId"], r["IsPrimary"]) for r in changed] == [
        (contacts[0], False),
        (contacts[1], True),
    ]


def _role(opportunity: str, contact: str) -> dict[str, Any]:
    return {"OpportunityId": opportunity, "ContactId": contact}


def test_lead_conversion_creates_account_contact_opportunity_and_role(sf, emulator) -> None:
    lead = emulator.add("Lead", sample_lead(1, Syncd_HubSpot_Id__c="hs-7", Company="Initech"))
    http = session_for(emulator)
    answer = http.post(
        f"{emulator.url}/_emulator/convert/{lead}", json={"opportunity_name": "Initech renewal"}
    )
    assert answer.status_code == 200
    ids = answer.json()
    (converted,) = rows(
        sf,
        "SELECT IsConverted, Status, ConvertedAccountId, ConvertedContactId,"
        " ConvertedOpportunityId, ConvertedDate, SystemModstamp FROM Lead WHERE Id = {id}",
        id=lead,
    )
    assert converted["IsConverted"] and converted["Status"] == "Closed - Converted"
    assert (
        converted["ConvertedAccountId"],
        converted["ConvertedContactId"],
        converted["ConvertedOpportunityId"],
    ) == (ids["accountId"], ids["contactId"], ids["opportunityId"])
    assert converted["ConvertedDate"] == "2026-11-23"
    (opportunity,) = rows(
        sf,
        "SELECT Name, AccountId, StageName, CloseDate, IsClosed, SystemModstamp FROM Opportunity",
    )
    assert opportunity["Name"] == "Initech renewal" and opportunity["AccountId"] == ids["accountId"]
    assert (opportunity["StageName"], opportunity["CloseDate"]) == ("Prospecting", "2026-12-23")
    (role,) = rows(
        sf,
        "SELECT ContactId, IsPrimary, SystemModstamp FROM OpportunityContactRole"
        " WHERE OpportunityId = {id}",
        id=ids["opportunityId"],
    )
    assert role["ContactId"] == ids["contactId"] and role["IsPrimary"] is True
    contact = emulator.get("Contact", ids["contactId"]) or {}
    account = emulator.get("Account", ids["accountId"]) or {}
    assert (contact["Syncd_HubSpot_Id__c"], account["Name"]) == ("hs-7", "Initech")
    stamps = {r["SystemModstamp"] for r in (converted, opportunity, role, contact, account)}
    assert len(stamps) == 1  # one transaction, one stamp on every record it touched
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Lead.update(lead, {"Title": "Later"})
    assert refused.value.content[0]["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    again = http.post(f"{emulator.url}/_emulator/convert/{lead}", json={})
    assert again.status_code == 400 and again.json()[0]["statusCode"] == "INVALID_STATUS"


def test_conversion_into_an_existing_account_without_an_opportunity(emulator) -> None:
    account = emulator.add("Account", {"Name": "Globex", "Website": "https://globex.example"})
    before = (emulator.get("Account", account) or {})["SystemModstamp"]
    lead = emulator.add("Lead", sample_lead(2))
    ids = emulator.convert_lead(lead, account_id=account, create_opportunity=False)
    assert ids["accountId"] == account and ids["opportunityId"] is None
    touched = emulator.get("Account", account) or {}
    assert touched["SystemModstamp"] > before and touched["Website"] == "https://globex.example"
    assert (emulator.get("Contact", ids["contactId"] or "") or {})["AccountId"] == account
    assert emulator.records("Opportunity") == [] and len(emulator.records("Account")) == 1
    with pytest.raises(WriteError, match="CANNOT_UPDATE_CONVERTED_LEAD"):
        emulator.update("Lead", lead, {"Title": "x"})
    other = emulator.add("Lead", sample_lead(3))
    emulator.delete("Account", account)
    with pytest.raises(WriteError, match="ENTITY_IS_DELETED"):
        emulator.convert_lead(other, account_id=account)
    assert not (emulator.get("Lead", other) or {})["IsConverted"]  # rolled back whole


def test_query_all_sees_a_deleted_opportunity_and_its_roles(sf, emulator) -> None:
    contact = emulator.add("Contact", sample_contact(1))
    kept, gone = (r["id"] for r in create(sf, "Opportunity", [deal(1), deal(2)]))
    create(sf, "OpportunityContactRole", [_role(gone, contact)])
    sf.Opportunity.delete(gone)
    live = rows(sf, "SELECT Id FROM Opportunity")
    assert [o["Id"] for o in live] == [kept]
    deleted = sf.query_all(
        "SELECT Id, IsDeleted, StageName FROM Opportunity WHERE IsDeleted = true",
        include_deleted=True,
    )["records"]
    assert [(o["Id"], o["IsDeleted"]) for o in deleted] == [(gone, True)]
    roles = sf.query_all(
        format_soql("SELECT IsDeleted FROM OpportunityContactRole WHERE OpportunityId = {}", gone),
        include_deleted=True,
    )["records"]
    assert [r["IsDeleted"] for r in roles] == [True]  # deleted along with its opportunity
    assert rows(sf, "SELECT Id FROM OpportunityContactRole") == []


def test_control_api_and_python_methods_cover_the_new_objects(emulator) -> None:
    http = session_for(emulator)
    base = f"{emulator.url}/_emulator/records"
    made = http.post(f"{base}/Opportunity", json=deal(1, Amount=10))
    assert made.status_code == 201 and made.json()["id"].startswith("006")
    opportunity = made.json()["id"]
    patched = http.patch(f"{base}/Opportunity/{opportunity}", json={"StageName": "Closed Won"})
    assert patched.status_code == 200
    assert http.get(f"{base}/Opportunity/{opportunity}").json()["IsWon"] is True
    bad = http.post(f"{base}/Opportunity", json=deal(2, CloseDate="23/11/2026"))
    assert bad.status_code == 400 and bad.json()[0]["fields"] == ["CloseDate"]
    account = emulator.add("Account", {"Name": "Hooli", "NumberOfEmployees": 250})
    assert (emulator.get("Account", account) or {})["NumberOfEmployees"] == 250
    emulator.add("Account", {"Name": "A", "Syncd_HubSpot_Id__c": "c-1"})
    with pytest.raises(WriteError, match="DUPLICATE_VALUE"):
        emulator.add("Account", {"Name": "B", "Syncd_HubSpot_Id__c": "C-1"})
    emulator.delete("Opportunity", opportunity)
    assert [o["IsDeleted"] for o in emulator.records("Opportunity")] == [True]
    assert len(http.get(f"{base}/OpportunityStage").json()) == 8
    assert emulator.calls() == {}  # the control API is not counted
    sf = client_for(emulator)
    sf.query("SELECT Id FROM OpportunityStage")
    sf.Opportunity.describe()
    assert emulator.calls() == {"POST oauth2/token": 1, "GET query": 1, "GET describe": 1}
