"""The emulated org's rules through simple-salesforce: validation and duplicate rules,
read-only and required fields, whole requests it cannot read, and lost answers."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connectors.salesforce.emulator.server import SalesforceEmulator
from connectors.salesforce.testing import client_for, running_emulator, sample_lead

HEADER = {"Sforce-Duplicate-Rule-Header": "allowSave=true; includeRecordDetails=false"}


@pytest.fixture
def emulator() -> Iterator[SalesforceEmulator]:
    with running_emulator() as emulator:
        yield emulator


@pytest.fixture
def sf(emulator: SalesforceEmulator) -> Salesforce:
    return client_for(emulator)


def create(sf: Salesforce, records: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    body = {"allOrNone": False, "records": [{"attributes": {"type": "Lead"}, **r} for r in records]}
    return list(sf.restful("composite/sobjects", method="POST", json=body, **kwargs) or [])


def test_a_validation_rule_refuses_only_its_record_with_its_message(sf, emulator) -> None:
    emulator.add_validation_rule("Lead", "Title", "(?i)intern", "Interns are not leads")
    results = create(sf, [sample_lead(1, Title="Intern"), sample_lead(2, Title="CTO")])
    assert [r["success"] for r in results] == [False, True]
    assert results[0]["errors"] == [
        {
            "statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "message": "Interns are not leads",
            "fields": ["Title"],
        }
    ]
    emulator.clear_rules()
    assert create(sf, [sample_lead(1, Title="Intern")])[0]["success"]


def test_a_duplicate_rule_blocks_without_allow_save_and_yields_with_it(sf, emulator) -> None:
    emulator.add("Lead", sample_lead(1, Email="ada@example.com"))
    emulator.add_duplicate_rule("Lead", ["Email"])
    (blocked,) = create(sf, [sample_lead(2, Email="ADA@example.com")])
    error = blocked["errors"][0]
    assert (error["statusCode"], error["message"]) == (
        "DUPLICATES_DETECTED",
        "Use one of these records?",
    )
    assert error["duplicateResult"]["duplicateRuleEntityType"] == "Lead"
    (saved,) = create(sf, [sample_lead(2, Email="ADA@example.com")], headers=HEADER)
    assert saved["success"]
    emulator.add_duplicate_rule("Lead", ["LastName"], action="block")
    (never,) = create(sf, [sample_lead(3, LastName=sample_lead(1)["LastName"])], headers=HEADER)
    assert never["errors"][0]["statusCode"] == "DUPLICATES_DETECTED"


def test_read_only_and_required_fields_show_in_describe_and_refuse_writes(sf, emulator) -> None:
    emulator.set_read_only("Lead", "Recycle_Reason__c")
    emulator.set_required("Lead", "Phone")
    fields = {f["name"]: f for f in sf.restful("sobjects/Lead/describe")["fields"]}
    locked_field = fields["Recycle_Reason__c"]
    assert (locked_field["createable"], locked_field["updateable"]) == (False, False)
    assert fields["Phone"]["nillable"] is False
    locked, missing, fine = create(
        sf,
        [
            sample_lead(1, Recycle_Reason__c="Timing", Phone="1"),
            {**sample_lead(2), "Phone": None},
            sample_lead(3, Phone="3"),
        ],
    )
    assert locked["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert locked["errors"][0]["fields"] == ["Recycle_Reason__c"]
    assert missing["errors"][0] == {
        "statusCode": "REQUIRED_FIELD_MISSING",
        "message": "Required fields are missing: [Phone]",
        "fields": ["Phone"],
    }
    assert fine["success"] and len(emulator.records("Lead")) == 1


@pytest.mark.parametrize(
    ("bad", "code"),
    [({"Shoe_Size__c": 44}, "INVALID_FIELD"), ({"NumberOfEmployees": "many"}, None)],
)
def test_a_collection_it_cannot_read_is_refused_whole(sf, emulator, bad, code) -> None:
    if code is None:  # a number the JSON parser cannot read, on an Account
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "A"},
                {"attributes": {"type": "Account"}, "Name": "B", **bad},
            ],
        }
        code = "JSON_PARSER_ERROR"
    else:
        body = {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Lead"}, **sample_lead(1)},
                {"attributes": {"type": "Lead"}, **sample_lead(2), **bad},
            ],
        }
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.restful("composite/sobjects", method="POST", json=body)
    assert refused.value.status == 400 and refused.value.content[0]["errorCode"] == code
    assert emulator.records("Lead") == [] and emulator.records("Account") == []


def test_a_write_can_land_and_lose_its_answer(sf, emulator) -> None:
    emulator.land_then_drop("composite/sobjects")
    with pytest.raises(requests.ConnectionError):
        create(sf, [sample_lead(1)])
    assert len(emulator.records("Lead")) == 1  # it landed
    assert create(sf, [sample_lead(2)])[0]["success"]  # the next answer arrives


def test_rules_are_switched_from_the_control_api(emulator) -> None:
    rules = {
        "validation": [{"object": "Lead", "field": "Title", "pattern": "", "message": "Title!"}],
        "duplicate": [{"object": "Lead", "fields": ["Email"], "action": "alert"}],
        "read_only": [["Lead", "Phone"]],
        "required": [["Lead", "Company"]],
    }
    _control(emulator, "POST", "/_emulator/rules", rules)
    assert emulator.store.rules.validation[0].message == "Title!"
    assert emulator.store.rules.duplicates[0].fields == ("Email",)
    assert ("Lead", "phone") in emulator.api.access.locked
    _control(emulator, "DELETE", "/_emulator/rules", None)
    assert emulator.store.rules.validation == [] and not emulator.store.rules.required
    assert not emulator.api.access.locked
    _control(emulator, "POST", "/_emulator/land_then_drop", {"path_contains": "x"})


def _control(emulator: SalesforceEmulator, method: str, path: str, body: Any) -> None:
    import ssl

    context = ssl.create_default_context(cafile=emulator.ca_pem_path)
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(emulator.url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, context=context) as answer:
        assert answer.status == 200
