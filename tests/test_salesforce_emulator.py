"""The Salesforce emulator over real HTTPS, driven by requests and simple-salesforce."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from connectors.salesforce.emulator.server import SalesforceEmulator
from connectors.salesforce.emulator.store import WriteError
from connectors.salesforce.session import session
from connectors.salesforce.testing import (
    client_for,
    running_emulator,
    sample_contact,
    sample_lead,
    session_for,
)

FORM = {
    "grant_type": "client_credentials",
    "client_id": "syncd",
    "client_secret": "emulator-secret",
}


def error_code(error: Any) -> str:
    """The errorCode of a simple-salesforce exception (its content is the parsed body)."""
    return str(error.content[0]["errorCode"])


@pytest.fixture
def emulator() -> Iterator[SalesforceEmulator]:
    with running_emulator() as emulator:
        yield emulator


@pytest.fixture
def sf(emulator: SalesforceEmulator) -> Salesforce:
    return client_for(emulator)


def collection(
    sf: Salesforce,
    method: str,
    records: list[dict[str, Any]],
    *,
    path: str = "composite/sobjects",
    all_or_none: bool = False,
) -> list[dict]:
    body = {
        "allOrNone": all_or_none,
        "records": [{"attributes": {"type": "Lead"}, **r} for r in records],
    }
    return list(sf.restful(path, method=method, json=body) or [])


def test_the_token_endpoint_grants_client_credentials_at_the_my_domain(emulator) -> None:
    http = session_for(emulator)
    answer = http.post(f"{emulator.my_domain_url}/services/oauth2/token", data=FORM)
    token = answer.json()
    assert answer.status_code == 200 and token["instance_url"] == emulator.my_domain_url
    assert emulator.my_domain_url.startswith("https://syncd-emulator.my.salesforce.com:")
    assert token["token_type"] == "Bearer" and token["issued_at"].isdigit()
    assert {"access_token", "signature"} <= token.keys()
    wrong = http.post(
        f"{emulator.my_domain_url}/services/oauth2/token", data={**FORM, "client_secret": "nope"}
    )
    assert wrong.status_code == 400
    assert wrong.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }
    assert emulator.calls() == {"POST oauth2/token": 2}
    anonymous = http.get(f"{emulator.my_domain_url}/services/data/v60.0/sobjects/Lead/describe")
    assert anonymous.status_code == 401 and anonymous.headers["Sforce-Limit-Info"] == (
        "api-usage=0/15000"
    )
    assert anonymous.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def test_the_token_endpoint_refuses_a_host_that_is_not_the_my_domain(emulator) -> None:
    """As login.salesforce.com and test.salesforce.com refuse client credentials."""
    http = session_for(emulator)
    for url in (emulator.url, emulator.url.replace("127.0.0.1", "localhost")):
        answer = http.post(f"{url}/services/oauth2/token", data=FORM)
        assert answer.status_code == 400
        assert answer.json() == {
            "error": "invalid_grant",
            "error_description": "request not supported on this domain",
        }
    # the Host header decides, not the address connected to
    spoofed = http.post(
        f"{emulator.url}/services/oauth2/token",
        data=FORM,
        headers={"Host": emulator.my_domain_url.removeprefix("https://")},
    )
    assert spoofed.status_code == 200


def test_the_my_domain_certificate_is_checked(emulator) -> None:
    """connect_to keeps TLS verification for the My Domain name: a name the certificate
    does not carry fails, although it connects to the same address."""
    port = emulator.url.rsplit(":", 1)[1]
    http = session(
        emulator.ca_pem_path,
        (5.0, 5.0),
        connect_to={f"other.my.salesforce.com:{port}": f"127.0.0.1:{port}"},
    )
    with pytest.raises(requests.exceptions.SSLError):
        http.post(f"https://other.my.salesforce.com:{port}/services/oauth2/token", data=FORM)


def test_tokens_expire_on_the_clock(emulator) -> None:
    now = [0.0]
    emulator.auth.clock = lambda: now[0]
    emulator.set_token_ttl(60)
    sf = client_for(emulator)
    assert sf.query("SELECT Id FROM Lead")["done"]
    now[0] = 59.9
    assert sf.query("SELECT Id FROM Lead")["done"]
    now[0] = 60.0
    with pytest.raises(SalesforceExpiredSession, match="INVALID_SESSION_ID"):
        sf.query("SELECT Id FROM Lead")
    assert client_for(emulator).query("SELECT Id FROM Lead")["done"]  # a new one works
    fresh = client_for(emulator)
    emulator.set_token_ttl(None)
    now[0] = 1e9
    assert fresh.query("SELECT Id FROM Lead")["done"]


def test_describe_lists_fields_picklists_and_the_external_id(sf) -> None:
    fields = {f["name"]: f for f in sf.restful("sobjects/Lead/describe")["fields"]}
    statuses = [v["value"] for v in fields["Status"]["picklistValues"]]
    assert statuses[0] == "Open - Not Contacted" and "Closed - Not Converted" in statuses
    assert fields["Status"]["picklistValues"][0]["defaultValue"] is True
    partner = fields["Syncd_HubSpot_Id__c"]
    assert partner["externalId"] and partner["unique"] and partner["idLookup"]
    assert not fields["LastName"]["nillable"] and not fields["Id"]["createable"]
    assert (
        fields["SystemModstamp"]["type"] == "datetime" and not fields["IsConverted"]["updateable"]
    )
    contact = {f["name"] for f in sf.restful("sobjects/Contact/describe")["fields"]}
    assert "AccountId" in contact and "Status" not in contact


def test_query_pages_through_a_server_side_cursor(sf, emulator) -> None:
    emulator.seed_leads(450)
    soql = "SELECT Id, SystemModstamp FROM Lead ORDER BY SystemModstamp, Id"
    first = sf.query(soql, headers={"Sforce-Query-Options": "batchSize=200"})
    assert (first["totalSize"], first["done"], len(first["records"])) == (450, False, 200)
    assert first["nextRecordsUrl"].startswith("/services/data/v60.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-200")
    record = first["records"][0]
    assert record["attributes"] == {
        "type": "Lead",
        "url": f"/services/data/v60.0/sobjects/Lead/{record['Id']}",
    }
    emulator.add("Lead", sample_lead(1))  # a cursor is a snapshot: the new lead is not in it
    pages = [first]
    while not pages[-1]["done"]:
        pages.append(sf.query_more(pages[-1]["nextRecordsUrl"], identifier_is_url=True))
    ids = [r["Id"] for p in pages for r in p["records"]]
    assert [len(p["records"]) for p in pages] == [200, 200, 50] and len(set(ids)) == 450
    assert [(r["SystemModstamp"], r["Id"]) for p in pages for r in p["records"]] == sorted(
        (r["SystemModstamp"], r["Id"]) for p in pages for r in p["records"]
    )
    assert emulator.calls()["GET query"] == 1 and emulator.calls()["GET queryMore"] == 2
    small = sf.query(soql, headers={"Sforce-Query-Options": "batchSize=5"})
    assert len(small["records"]) == 200  # the minimum is 200, as in Salesforce
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_QUERY_LOCATOR"):
        sf.query_more("/services/data/v60.0/query/01gNOPE-200", identifier_is_url=True)


def test_query_all_includes_deleted_records(sf, emulator) -> None:
    kept, gone = emulator.add("Lead", sample_lead(1)), emulator.add("Lead", sample_lead(2))
    emulator.delete("Lead", gone)
    live = sf.query("SELECT Id, IsDeleted FROM Lead")
    every = sf.query_all("SELECT Id, IsDeleted FROM Lead", include_deleted=True)
    assert [r["Id"] for r in live["records"]] == [kept]
    assert {(r["Id"], r["IsDeleted"]) for r in every["records"]} == {(kept, False), (gone, True)}
    assert emulator.calls()["GET queryAll"] == 1


def test_bad_soql_answers_400_with_salesforce_codes(sf) -> None:
    for soql, code in [
        (
            "SELECT Id FROM Lead WHERE Email = 'a' AND Company = 'b' OR Title = 'c'",
            "MALFORMED_QUERY",
        ),
        ("SELECT Nope FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Nope", "INVALID_TYPE"),
    ]:
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.query(soql)
        assert error_code(caught.value) == code


def test_collections_report_each_record_and_keep_the_valid_ones(sf, emulator) -> None:
    results = collection(
        sf,
        "POST",
        [
            sample_lead(1),
            {**sample_lead(2), "LastName": None},
            {**sample_lead(3), "Email": "not an email"},
            {**sample_lead(4), "Status": "Thinking about it"},
            {**sample_lead(5), "Title": "x" * 129},
            {**sample_lead(7), "IsConverted": True},
        ],
    )
    assert [r["success"] for r in results] == [True] + [False] * 5
    codes = [r["errors"][0]["statusCode"] for r in results[1:]]
    assert codes == [
        "REQUIRED_FIELD_MISSING",
        "INVALID_EMAIL_ADDRESS",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "STRING_TOO_LONG",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
    ]
    assert results[1]["errors"][0] == {
        "statusCode": "REQUIRED_FIELD_MISSING",
        "message": "Required fields are missing: [LastName]",
        "fields": ["LastName"],
    }
    assert [r["Id"] for r in emulator.records("Lead")] == [results[0]["id"]]
    assert results[0]["id"].startswith("00Q") and len(results[0]["id"]) == 18


def test_all_or_none_rolls_everything_back(sf, emulator) -> None:
    results = collection(
        sf, "POST", [sample_lead(1), {**sample_lead(2), "Company": ""}], all_or_none=True
    )
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert emulator.records("Lead") == []


def test_update_and_upsert_by_external_id(sf, emulator) -> None:
    lead = emulator.add("Lead", sample_lead(1))
    updated = collection(
        sf,
        "PATCH",
        [{"Id": lead, "Title": "CTO"}, {"Id": "00Q5g000000zzzzAAA", "Title": "x"}, {"Title": "y"}],
    )
    assert [r["success"] for r in updated] == [True, False, False]
    assert (emulator.get("Lead", lead) or {})["Title"] == "CTO"
    upsert = "composite/sobjects/Lead/Syncd_HubSpot_Id__c"
    first = collection(sf, "PATCH", [sample_lead(2, Syncd_HubSpot_Id__c="hs-1")], path=upsert)
    again = collection(
        sf, "PATCH", [sample_lead(2, Syncd_HubSpot_Id__c="HS-1", Title="VP")], path=upsert
    )
    assert first[0]["created"] is True and again[0]["created"] is False
    assert again[0]["id"] == first[0]["id"] and len(emulator.records("Lead")) == 2
    duplicate = collection(sf, "POST", [sample_lead(3, Syncd_HubSpot_Id__c="hs-1")])
    assert duplicate[0]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
    assert emulator.calls()["PATCH composite/sobjects upsert"] == 2


def test_more_than_200_records_are_refused(sf) -> None:
    with pytest.raises(SalesforceMalformedRequest, match="EXCEEDED_ID_LIMIT"):
        collection(sf, "POST", [sample_lead(n) for n in range(201)])


def test_delete_collection_and_single_record_resources(sf, emulator) -> None:
    a, b = emulator.add("Lead", sample_lead(1)), emulator.add("Lead", sample_lead(2))
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{a},{a}"})
    assert [r["success"] for r in deleted or []] == [True, False]
    assert sf.Lead.get(b)["Email"] == "lead2@example.com"
    assert sf.Lead.update(b, {"Title": "Boss"}) == 204
    with pytest.raises(SalesforceMalformedRequest, match="INVALID_EMAIL_ADDRESS"):
        sf.Lead.update(b, {"Email": "nope"})
    created = sf.Lead.create(sample_lead(3))
    assert created["success"] and sf.Lead.delete(created["id"]) == 204
    assert sf.Lead.upsert("Syncd_HubSpot_Id__c/hs-9", sample_lead(4)) == 201
    assert sf.Lead.upsert("Syncd_HubSpot_Id__c/hs-9", {"Title": "Again"}) == 200


def test_every_answer_carries_the_api_usage_and_the_limit_is_403(sf, emulator) -> None:
    sf.query("SELECT Id FROM Lead")
    assert sf.api_usage["api-usage"].used == 1 and sf.api_usage["api-usage"].total == 15000
    sf.query("SELECT Id FROM Lead")
    emulator.set_daily_limit(2)
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM Lead")
    assert caught.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert emulator.api_usage() == (2, 2)


def test_expired_tokens_answer_401(sf, emulator) -> None:
    sf.query("SELECT Id FROM Lead")
    emulator.expire_tokens()
    with pytest.raises(SalesforceExpiredSession, match="INVALID_SESSION_ID"):
        sf.query("SELECT Id FROM Lead")
    assert client_for(emulator).query("SELECT Id FROM Lead")["totalSize"] == 0


def test_injected_failures_and_latency(sf, emulator) -> None:
    emulator.fail_next(503, count=1, path_contains="/describe")
    assert sf.query("SELECT Id FROM Lead")["done"]  # not a describe: unaffected
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.restful("sobjects/Lead/describe")
    assert caught.value.status == 503
    assert error_code(caught.value) == "SERVER_UNAVAILABLE"
    emulator.fail_at_call(2, 500)
    sf.query("SELECT Id FROM Lead")
    with pytest.raises(SalesforceGeneralError, match="UNKNOWN_EXCEPTION"):
        sf.query("SELECT Id FROM Lead")
    emulator.set_latency(120)
    started = time.perf_counter()
    sf.query("SELECT Id FROM Lead")
    assert time.perf_counter() - started >= 0.12


def test_modstamps_increase_per_write_and_are_shared_within_one() -> None:
    frozen = datetime(2026, 11, 23, 12, tzinfo=UTC)
    with running_emulator(clock=lambda: frozen) as emulator:
        first = emulator.add("Lead", sample_lead(1))
        client = client_for(emulator)
        collection(client, "POST", [sample_lead(2), sample_lead(3)])
        emulator.update("Lead", first, {"Title": "Later"})
        stamps = [r["SystemModstamp"] for r in emulator.records("Lead")]
    assert stamps == [
        "2026-11-23T12:00:00.002+0000",
        "2026-11-23T12:00:00.001+0000",
        "2026-11-23T12:00:00.001+0000",
    ]


def test_lead_conversion_creates_account_and_contact(emulator) -> None:
    lead = emulator.add("Lead", sample_lead(1, Syncd_HubSpot_Id__c="hs-5", Phone="42"))
    ids = emulator.convert_lead(lead)
    converted = emulator.get("Lead", lead) or {}
    assert converted["IsConverted"] and converted["Status"] == "Closed - Converted"
    assert converted["ConvertedContactId"] == ids["contactId"] and converted["ConvertedDate"]
    contact = emulator.get("Contact", ids["contactId"] or "") or {}
    assert (contact["Syncd_HubSpot_Id__c"], contact["Phone"], contact["AccountId"]) == (
        "hs-5",
        "42",
        ids["accountId"],
    )
    assert (emulator.get("Account", ids["accountId"] or "") or {})["Name"] == "Company 1"
    with pytest.raises(WriteError, match="CANNOT_UPDATE_CONVERTED_LEAD"):
        emulator.update("Lead", lead, {"Title": "x"})


def test_the_control_api_needs_no_auth_and_is_not_counted(emulator) -> None:
    http = session_for(emulator)

    def control(method: str, path: str, body: Any = None) -> Any:
        answer = http.request(method, f"{emulator.url}/_emulator/{path}", json=body)
        return answer.status_code, answer.json()

    status, created = control("POST", "records/Contact", sample_contact(1))
    assert status == 201 and created["id"].startswith("003")
    assert control("PATCH", f"records/Contact/{created['id']}", {"Title": "Chief"})[0] == 200
    assert control("POST", "records/Lead", {"Company": "X"})[1][0]["statusCode"] == (
        "REQUIRED_FIELD_MISSING"
    )
    assert control("POST", "seed", {"leads": 3}) == (200, {})
    lead = control("GET", "records/Lead")[1][0]["Id"]
    assert control("POST", f"convert/{lead}")[1]["contactId"].startswith("003")
    assert control("POST", "fail", {"status": 503, "count": 1})[0] == 200
    assert control("POST", "latency", {"ms": 0})[0] == 200
    assert control("POST", "expire_tokens")[0] == 200
    contacts = control("GET", "records/Contact")[1]
    assert [c["Title"] for c in contacts] == ["Chief", "CTO"]  # the seeded lead's title
    assert control("GET", "calls") == (200, {})
    assert control("POST", "token_ttl", {"seconds": 3600}) == (200, {})
    assert emulator.auth.ttl == 3600
    assert control("POST", "client_secret", {"secret": "rotated"}) == (200, {})
    assert emulator.client_secret == "rotated"
    token_url = f"{emulator.my_domain_url}/services/oauth2/token"
    assert http.post(token_url, data=FORM).status_code == 503
    assert control("GET", "calls") == (200, {"POST oauth2/token": 1})
    assert control("POST", "reset_calls")[0] == 200 and emulator.calls() == {}


def test_main_runs_in_the_foreground_and_prints_url_then_ca() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.salesforce.emulator",
            "--port",
            "0",
            "--seed-leads",
            "7",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url, ca, my_domain = (process.stdout.readline().strip() for _ in range(3))
        http = requests.Session()
        http.verify, http.trust_env = ca, False
        assert url.startswith("https://127.0.0.1:")
        assert my_domain == "https://syncd-emulator.my.salesforce.com:" + url.rsplit(":", 1)[1]
        assert len(http.get(f"{url}/_emulator/records/Lead").json()) == 7
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_a_large_org_is_scanned_incrementally_without_sorting_it(sf, emulator) -> None:
    emulator.seed_leads(100_000)
    last = emulator.add("Lead", sample_lead(1))
    stamp = (emulator.get("Lead", last) or {})["SystemModstamp"]  # 2026-...T12:00:00.123+0000
    soql = f"SELECT Id FROM Lead WHERE SystemModstamp >= {stamp[:23]}Z ORDER BY SystemModstamp, Id"
    started = time.perf_counter()
    for _ in range(20):
        assert [r["Id"] for r in sf.query_all(soql, include_deleted=True)["records"]] == [last]
    assert time.perf_counter() - started < 1.5  # an index range, not a sort of 100,000 rows
