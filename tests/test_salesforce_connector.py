"""SalesforceConnector against the emulator: real HTTPS, real simple-salesforce, no mocks
(``responses`` only for the error translation around requests, at the end)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
import responses

from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.emulator.server import SalesforceEmulator
from connectors.salesforce.errors import SalesforceRequestError, translate, worth_splitting
from connectors.salesforce.testing import (
    PERSON_FIELDS,
    connector_for,
    running_emulator,
    sample_contact,
    sample_lead,
)
from syncd.errors import (
    AuthError,
    ConfigError,
    LimitExceededError,
    RateLimitedError,
    TransientError,
)
from syncd.model import Change, Cursor, Record, RecordRef
from syncd.retry import RetryPolicy

HOSTILE = "O'Brien \\' OR Name != '' -- \"quoted\" \\\\ end\n\tÜñíçødé 😀"


@pytest.fixture
def emulator() -> Iterator[SalesforceEmulator]:
    with running_emulator(batch_min=1) as emulator:
        yield emulator


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def sf(emulator: SalesforceEmulator, sleeps: list[float]) -> Iterator[SalesforceConnector]:
    policy = RetryPolicy(attempts=4, initial=0.01, maximum=0.05, sleep=sleeps.append)
    connector = connector_for(emulator, page_size=5, retry=policy)
    yield connector
    connector.close()


def create(key: str, partner: str | None = None, **fields: str | None) -> Change:
    return Change("create", "Lead", key, None, fields, {}, partner_id=partner or f"hs-{key}")


def scan(sf: SalesforceConnector, kind: str, cursor: Cursor) -> tuple[list[Record], Cursor]:
    records: list[Record] = []
    for page in sf.changes(kind, cursor):
        records.extend(page.records)
        cursor = page.cursor
    return records, cursor


def test_check_describes_each_kind_once_and_reads_picklists(sf, emulator) -> None:
    sf.check()
    sf.check()
    assert emulator.calls()["GET describe"] == 2  # Lead and Contact, cached after
    assert emulator.calls()["POST oauth2/token"] == 2  # check() proves the credentials
    picklists = sf.picklists()
    assert {"Nurture", "Closed - Converted"} <= picklists["Status"]
    assert "Webinar" in picklists["LeadSource"]
    assert sf.kinds("person") == ["Lead", "Contact"] and sf.kinds("deal") == []


def test_a_first_scan_reads_everything_normalized(sf, emulator) -> None:
    lead = emulator.add("Lead", sample_lead(1, Lead_Score__c=87, Syncd_HubSpot_Id__c="hs-1"))
    emulator.add("Contact", sample_contact(1, Email="Edsger@Example.com"))
    (record,), _ = scan(sf, "Lead", Cursor())
    assert record.ref == RecordRef("salesforce", "Lead", lead)
    assert record.fields["lead_score"] == "87" and record.fields["company"] == "Company 1"
    assert record.stage == {"Status": "Open - Not Contacted"}
    assert record.partner_id == "hs-1" and not record.deleted
    assert (
        record.modified_at.tzinfo is not None
        and record.modified_at.utcoffset() == UTC.utcoffset(None)
    )
    (contact,), _ = scan(sf, "Contact", Cursor())
    assert contact.fields["email"] == "Edsger@Example.com" and "company" not in contact.fields
    assert contact.stage == {} and contact.partner_id is None


def test_ties_across_page_boundaries_are_neither_lost_nor_read_twice(sf, emulator) -> None:
    # one collection call: twelve leads sharing one SystemModstamp, pages of five
    outcomes = sf.apply([create(f"k{n}", last_name=f"L{n}", company="Acme") for n in range(12)])
    assert all(o.ok for o in outcomes)
    stamps = {r["SystemModstamp"] for r in emulator.records("Lead")}
    assert len(stamps) == 1
    pages = list(sf.changes("Lead", Cursor()))
    assert [len(p.records) for p in pages] == [5, 5, 2]
    # the process stops after keeping the first page: the next scan starts at its cursor
    rest, cursor = scan(sf, "Lead", pages[0].cursor)
    first = {r.ref.id for r in pages[0].records}
    assert len(rest) == 7 and not first & {r.ref.id for r in rest}
    assert first | {r.ref.id for r in rest} == {o.id for o in outcomes}
    assert scan(sf, "Lead", cursor)[0] == []  # nothing new: nothing read
    emulator.update("Lead", outcomes[3].id or "", {"Title": "CTO"})
    changed, _ = scan(sf, "Lead", cursor)
    assert [(r.ref.id, r.fields["title"]) for r in changed] == [(outcomes[3].id, "CTO")]


def test_records_earlier_in_the_cursors_second_are_not_read_again() -> None:
    # format_soql writes whole seconds, so the query returns them; the connector skips them
    frozen = datetime(2026, 11, 23, 12, tzinfo=UTC)
    with running_emulator(clock=lambda: frozen) as emulator:
        connector = connector_for(emulator)
        emulator.add("Lead", sample_lead(1))  # .000
        emulator.add("Lead", sample_lead(2))  # .001
        _, cursor = scan(connector, "Lead", Cursor())
        latest = emulator.add("Lead", sample_lead(3))  # .002
        records, _ = scan(connector, "Lead", cursor)
        connector.close()
    assert cursor.since == frozen + timedelta(milliseconds=1)
    assert [r.ref.id for r in records] == [latest]


def test_pages_follow_next_records_url_without_running_the_query_again(sf, emulator) -> None:
    emulator.seed_leads(23)
    emulator.reset_calls()
    records, _ = scan(sf, "Lead", Cursor())
    assert len({r.ref.id for r in records}) == 23
    calls = emulator.calls()
    assert calls["GET queryAll"] == 1 and calls["GET queryMore"] == 4


def test_deletions_come_as_deleted_records(sf, emulator) -> None:
    lead = emulator.add("Lead", sample_lead(1))
    _, cursor = scan(sf, "Lead", Cursor())
    emulator.delete("Lead", lead)
    (record,), _ = scan(sf, "Lead", cursor)
    assert record.ref.id == lead and record.deleted


def test_fetch_reads_by_id_in_one_query_per_kind(sf, emulator) -> None:
    leads = [emulator.add("Lead", sample_lead(n)) for n in range(3)]
    contact = emulator.add("Contact", sample_contact(1))
    sf.check()
    emulator.reset_calls()
    refs = [RecordRef("salesforce", "Lead", i) for i in leads]
    refs += [
        RecordRef("salesforce", "Contact", contact),
        RecordRef("salesforce", "Lead", "00Q000000000000AAA"),
    ]
    found = sf.fetch(refs)
    assert sorted(r.ref.id for r in found) == sorted([*leads, contact])
    assert emulator.calls() == {"GET queryAll": 2}


def test_a_bad_record_is_an_outcome_and_the_others_land(sf, emulator) -> None:
    outcomes = sf.apply(
        [
            create("a", last_name="Fine", company="Acme", email="a@example.com"),
            create("b", company="Acme", email="b@example.com"),  # no last name
            create("c", last_name="Also", company="Acme", lead_score="12.50"),
        ]
    )
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].code == "REQUIRED_FIELD_MISSING"
    assert outcomes[1].error == "Required fields are missing: [LastName]"
    assert sorted(r["LastName"] for r in emulator.records("Lead")) == ["Also", "Fine"]
    assert emulator.get("Lead", outcomes[2].id or "")["Lead_Score__c"] == 12.5
    assert emulator.calls()["PATCH composite/sobjects upsert"] == 1


def test_a_value_salesforce_cannot_take_is_refused_before_sending(sf, emulator) -> None:
    (outcome,) = sf.apply([create("n", last_name="N", company="X", lead_score="lots")])
    assert not outcome.ok and outcome.code == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert "lots" in (outcome.error or "") and emulator.records("Lead") == []


def test_replaying_a_create_updates_instead_of_duplicating(sf, emulator) -> None:
    change = create("k1", "hs-42", last_name="Lovelace", company="Engines")
    (first,) = sf.apply([change])
    (again,) = sf.apply([change])
    assert first.ok and first.created and again.ok and not again.created
    assert again.id == first.id
    assert [r["Syncd_HubSpot_Id__c"] for r in emulator.records("Lead")] == ["hs-42"]


def test_updates_write_fields_stage_and_partner_id_and_none_clears(sf, emulator) -> None:
    lead = emulator.add("Lead", sample_lead(1, Title="Old", Phone="123"))
    contact = emulator.add("Contact", sample_contact(1))
    outcomes = sf.apply(
        [
            Change(
                "update",
                "Lead",
                "u1",
                lead,
                {"title": "New", "phone": None},
                {"Status": "Marketing Qualified"},
                partner_id="hs-7",
            ),
            Change(
                "update",
                "Contact",
                "u2",
                contact,
                {"company": "ignored", "title": "Boss"},
                {"Status": "Qualified"},
            ),
        ]
    )
    assert [o.ok for o in outcomes] == [True, True]
    assert outcomes[0].stage == {"Status": "Marketing Qualified"} and outcomes[1].stage == {}
    stored = emulator.get("Lead", lead) or {}
    assert (stored["Title"], stored["Phone"], stored["Status"], stored["Syncd_HubSpot_Id__c"]) == (
        "New",
        None,
        "Marketing Qualified",
        "hs-7",
    )
    assert (emulator.get("Contact", contact) or {})["Title"] == "Boss"


def test_hostile_values_are_stored_and_read_verbatim(sf, emulator) -> None:
    (outcome,) = sf.apply([create("h", "hs-' OR 'x", last_name=HOSTILE, company="Acme'; DELETE")])
    assert outcome.ok
    stored = emulator.get("Lead", outcome.id or "") or {}
    assert stored["LastName"] == HOSTILE and stored["Company"] == "Acme'; DELETE"
    (record,) = sf.fetch([RecordRef("salesforce", "Lead", outcome.id or "")])
    assert record.fields["last_name"] == HOSTILE and record.partner_id == "hs-' OR 'x"
    injected = RecordRef("salesforce", "Lead", "x' OR Id != '")
    assert sf.fetch([injected]) == []


def test_an_expired_token_is_renewed_transparently(sf, emulator) -> None:
    emulator.add("Lead", sample_lead(1))
    sf.check()
    emulator.expire_tokens()
    records, _ = scan(sf, "Lead", Cursor())
    assert len(records) == 1
    assert emulator.calls()["POST oauth2/token"] == 2


def test_a_second_401_after_a_new_token_is_an_auth_error(sf, emulator, sleeps) -> None:
    sf.check()
    emulator.fail_next(401, count=2, path_contains="/services/data/")
    with pytest.raises(AuthError):
        scan(sf, "Lead", Cursor())
    assert sleeps == []  # not retried


def test_bad_credentials_are_an_auth_error(emulator) -> None:
    connector = connector_for(emulator, client_secret="wrong")
    with pytest.raises(AuthError, match="invalid_client"):
        connector.check()


def test_5xx_is_retried_with_the_injected_sleep(sf, emulator, sleeps) -> None:
    sf.check()
    emulator.fail_next(503, count=2)
    (outcome,) = sf.apply([create("r", last_name="Retry", company="X")])
    assert outcome.ok and len(sleeps) == 2
    assert emulator.calls()["PATCH composite/sobjects upsert"] == 3
    emulator.fail_next(500, count=10)
    with pytest.raises(TransientError):
        sf.fetch([RecordRef("salesforce", "Lead", outcome.id or "")])
    assert len(sleeps) == 2 + 3  # four attempts in all


def test_the_daily_limit_is_a_limit_error_not_retried(sf, emulator, sleeps) -> None:
    sf.check()
    used, limit = sf.api_usage() or (0, 0)
    assert (used, limit) == (2, 15000)  # two describes
    emulator.set_daily_limit(used)
    with pytest.raises(LimitExceededError, match="TotalRequests Limit exceeded"):
        scan(sf, "Lead", Cursor())
    assert sleeps == []


def test_a_timeout_and_a_refused_connection_are_transient(emulator, sleeps) -> None:
    policy = RetryPolicy(attempts=2, initial=0.01, maximum=0.01, sleep=sleeps.append)
    slow = connector_for(emulator, timeout=(1.0, 0.05), retry=policy)
    emulator.set_latency(200)
    with pytest.raises(TransientError, match="Timeout"):
        slow.check()
    emulator.set_latency(0)
    url = emulator.url
    emulator.stop()
    gone = connector_for(emulator, login_url=url, retry=policy, ca_bundle=None)
    with pytest.raises(TransientError):
        gone.check()
    assert len(sleeps) == 2


def test_a_mapped_field_salesforce_lacks_is_a_setup_problem_and_a_config_error(emulator) -> None:
    field_map = {**PERSON_FIELDS, "Contact": {**PERSON_FIELDS["Contact"], "score": "Score__c"}}
    connector = connector_for(emulator, field_map=field_map)
    connector.check()  # reachable: the preflight reports the field with the other problems
    (problem,) = connector.schema_problems({"Contact": {"score"}})
    assert (problem.kind, problem.field) == ("Contact", "score")
    assert "no field 'Score__c'" in problem.message and problem.blocking
    with pytest.raises(ConfigError, match="Score__c"):  # a read never selects it silently
        scan(connector, "Contact", Cursor())


def test_a_converted_lead_shows_its_contact_with_the_partner_id(sf, emulator) -> None:
    lead = emulator.add("Lead", sample_lead(1, Syncd_HubSpot_Id__c="hs-9"))
    _, lead_cursor = scan(sf, "Lead", Cursor())
    ids = emulator.convert_lead(lead)
    (converted,), _ = scan(sf, "Lead", lead_cursor)
    assert converted.stage == {"Status": "Closed - Converted"}
    (contact,), _ = scan(sf, "Contact", Cursor())
    assert contact.ref.id == ids["contactId"] and contact.partner_id == "hs-9"
    (refused,) = sf.apply([Change("update", "Lead", "x", lead, {"title": "T"})])
    assert refused.code == "CANNOT_UPDATE_CONVERTED_LEAD"


def test_api_calls_are_counted_by_endpoint(sf) -> None:
    sf.apply([create("a", last_name="A", company="X")])
    assert sf.api_calls() == {
        "POST oauth2/token": 1,
        "GET describe": 1,
        "PATCH composite/sobjects upsert": 1,
    }


# --- error translation around requests (unit tests) -------------------------------------


@responses.activate
def test_token_errors_translate_by_status() -> None:
    url = "https://login.example.test/services/oauth2/token"
    responses.post(url, json={"error": "invalid_client", "error_description": "bad"}, status=400)
    responses.post(url, body="<html>Bad Gateway</html>", status=502)
    responses.post(url, body=requests.ConnectionError("reset by peer"))
    connector = SalesforceConnector(
        login_url="https://login.example.test",
        client_id="a",
        client_secret="b",
        field_map=PERSON_FIELDS,
        field_types={},
        retry=RetryPolicy(attempts=1),
    )
    with pytest.raises(AuthError):
        connector.check()
    with pytest.raises(TransientError, match="Bad Gateway"):
        connector.check()
    with pytest.raises(TransientError, match="reset by peer"):
        connector.check()


def test_simple_salesforce_errors_translate_by_status_and_code() -> None:
    from simple_salesforce.exceptions import (
        SalesforceGeneralError,
        SalesforceMalformedRequest,
        SalesforceRefusedRequest,
    )

    body = json.dumps([{"message": "no such column", "errorCode": "INVALID_FIELD"}]).encode()
    malformed = translate(SalesforceMalformedRequest("u", 400, "query", body))
    assert isinstance(malformed, SalesforceRequestError) and malformed.code == "INVALID_FIELD"
    refused = json.dumps([{"message": "no access", "errorCode": "INSUFFICIENT_ACCESS"}]).encode()
    assert (
        type(translate(SalesforceRefusedRequest("u", 403, "q", refused))) is SalesforceRequestError
    )
    assert isinstance(translate(SalesforceGeneralError("u", 503, "q", b"down")), TransientError)
    assert isinstance(translate(SalesforceGeneralError("u", 429, "q", b"")), RateLimitedError)
    assert isinstance(translate(requests.exceptions.SSLError("bad cert")), SalesforceRequestError)


def test_a_collection_refused_for_a_field_every_record_carries_is_not_split() -> None:
    hidden = SalesforceRequestError(
        "composite/sobjects: INVALID_FIELD: No such column 'Lead_Score__c' on sobject of type Lead",
        code="INVALID_FIELD",
        status=400,
    )
    assert not worth_splitting(hidden, [{"Lead_Score__c": 1}, {"lead_score__c": None}])
    assert worth_splitting(hidden, [{"Lead_Score__c": 1}, {"LastName": "Lovelace"}])
    unreadable = SalesforceRequestError("JSON_PARSER_ERROR: ...", code="x", status=400)
    assert worth_splitting(unreadable, [{}, {}])
    assert not worth_splitting(SalesforceRequestError("gone", code=None, status=404), [{}, {}])
