"""/composite: the emulator's endpoint (one call in its counters and in Sforce-Limit-Info)
and the connector's scans of several kinds in one call, over real HTTPS and the real
simple-salesforce."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from simple_salesforce import Salesforce

from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.emulator.server import SalesforceEmulator
from connectors.salesforce.testing import (
    client_for,
    connector_for,
    running_emulator,
    sample_contact,
    sample_lead,
)
from syncd.model import Cursor, Record

V = "/services/data/v60.0"


@pytest.fixture
def emulator() -> Iterator[SalesforceEmulator]:
    with running_emulator(batch_min=1) as emulator:
        yield emulator


def _query(soql: str, reference: str, batch: int = 2000) -> dict[str, Any]:
    return {
        "method": "GET",
        "url": f"{V}/queryAll/?" + urlencode({"q": soql}),
        "referenceId": reference,
        "httpHeaders": {"Sforce-Query-Options": f"batchSize={batch}"},
    }


def test_a_composite_is_one_call_and_answers_each_query_as_alone(emulator) -> None:
    for n in range(7):
        emulator.add("Lead", sample_lead(n))
    for n in range(3):
        emulator.add("Contact", sample_contact(n))
    sf: Salesforce = client_for(emulator)
    leads, contacts = "SELECT Id, Email FROM Lead", "SELECT Id, Email FROM Contact"
    emulator.reset_calls()
    used = emulator.api_usage()[0]
    body = {"compositeRequest": [_query(leads, "leads", 5), _query(contacts, "contacts")]}
    answer = sf.restful("composite", method="POST", json=body)
    assert emulator.calls() == {"POST composite": 1}
    assert emulator.api_usage()[0] == used + 1  # one call toward the limit
    assert sf.api_usage["api-usage"].used == used + 1  # Sforce-Limit-Info says so too
    first, second = answer["compositeResponse"]
    assert (first["referenceId"], first["httpStatusCode"]) == ("leads", 200)
    assert (second["referenceId"], second["httpStatusCode"]) == ("contacts", 200)
    alone = sf.query_all(contacts, include_deleted=True)
    assert second["body"]["records"] == alone["records"]
    # the first answer pages on by queryMore, as a query of its own would
    assert (len(first["body"]["records"]), first["body"]["done"]) == (5, False)
    rest = sf.query_more(first["body"]["nextRecordsUrl"], identifier_is_url=True)
    emails = {r["Email"] for r in first["body"]["records"] + rest["records"]}
    assert emails == {f"lead{n}@example.com" for n in range(7)}


def test_a_composite_past_its_limits_is_refused_and_a_bad_subrequest_answers_alone(
    emulator,
) -> None:
    sf: Salesforce = client_for(emulator)
    six = {"compositeRequest": [_query("SELECT Id FROM Lead", f"q{n}") for n in range(6)]}
    with pytest.raises(Exception, match="INVALID_BATCH_REQUEST"):
        sf.restful("composite", method="POST", json=six)
    mixed = {
        "compositeRequest": [
            _query("SELECT Id FROM Lead", "good"),
            _query("SELECT Nope__c FROM Lead", "bad"),
        ]
    }
    good, bad = sf.restful("composite", method="POST", json=mixed)["compositeResponse"]
    assert good["httpStatusCode"] == 200
    assert bad["httpStatusCode"] == 400 and bad["body"][0]["errorCode"] == "INVALID_FIELD"


def _scan(sf: SalesforceConnector, kind: str, cursor: Cursor) -> tuple[list[Record], Cursor]:
    records: list[Record] = []
    for page in sf.changes(kind, cursor):
        records.extend(page.records)
        cursor = page.cursor
    return records, cursor


def test_a_composite_scan_reads_what_separate_queries_read(emulator) -> None:
    for n in range(12):
        emulator.add("Lead", sample_lead(n))
    for n in range(7):
        emulator.add("Contact", sample_contact(n))
    alone, folded = connector_for(emulator, page_size=5), connector_for(emulator, page_size=5)
    try:
        start = {"Lead": Cursor(), "Contact": Cursor()}
        expected = {kind: _scan(alone, kind, cursor) for kind, cursor in start.items()}
        alone.check()
        folded.check()
        emulator.reset_calls()
        folded.scan_ahead(start)
        found = {kind: _scan(folded, kind, cursor) for kind, cursor in start.items()}
        assert found == expected
        assert [len(found[k][0]) for k in ("Lead", "Contact")] == [12, 7]
        # one composite for both first pages, then queryMore: 2 more leads, 1 contact page
        assert emulator.calls() == {"POST composite": 1, "GET queryMore": 3}
        # from the cursors reached: nothing new; both first pages in one call (the rows
        # of the cursor's whole second come again and are skipped, paged by queryMore)
        emulator.reset_calls()
        cursors = {kind: cursor for kind, (_, cursor) in found.items()}
        folded.scan_ahead(cursors)
        assert all(_scan(folded, kind, c)[0] == [] for kind, c in cursors.items())
        assert emulator.calls()["POST composite"] == 1 and "GET queryAll" not in emulator.calls()
        # an edit after the composite: the scan starting from its answer misses nothing
        # later (the next cycle's scan reads it), and a cursor that moved meanwhile is
        # not answered from a stale first page
        folded.scan_ahead(cursors)
        moved = {"Lead": Cursor(), "Contact": cursors["Contact"]}
        emulator.reset_calls()
        assert len(_scan(folded, "Lead", moved["Lead"])[0]) == 12
        assert emulator.calls()["GET queryAll"] == 1
    finally:
        alone.close()
        folded.close()


def test_a_first_page_read_ahead_too_long_ago_is_read_again(emulator, monkeypatch) -> None:
    for n in range(12):
        emulator.add("Lead", sample_lead(n))
    emulator.add("Contact", sample_contact(1))
    folded = connector_for(emulator, page_size=5)
    try:
        folded.check()
        start = {"Lead": Cursor(), "Contact": Cursor()}
        folded.scan_ahead(start)
        # its query locator may have expired meanwhile: the scan asks again
        monkeypatch.setattr("connectors.salesforce.connector.LOCATOR_WAIT", 0.0)
        emulator.reset_calls()
        assert len(_scan(folded, "Lead", start["Lead"])[0]) == 12
        assert emulator.calls() == {"GET queryAll": 1, "GET queryMore": 2}
        # a first answer that holds every row has no locator to expire: used as it is
        emulator.reset_calls()
        assert len(_scan(folded, "Contact", start["Contact"])[0]) == 1
        assert emulator.calls() == {}
    finally:
        folded.close()
