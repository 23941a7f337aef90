"""The emulators' lags (HubSpot search indexing, Salesforce commit lag), archived records
at scale, and the cursor's lookback window: plain values and the real clients."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import PublicObjectSearchRequest
from urllib3.util.retry import Retry

from connectors.hubspot.emulator.server import HubSpotEmulator
from connectors.salesforce.connector import parse_datetime
from connectors.salesforce.emulator.server import SalesforceEmulator
from connectors.salesforce.testing import client_for, running_emulator
from syncd.model import Cursor

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def test_the_lookback_window_follows_the_trail_and_round_trips() -> None:
    overlap = timedelta(minutes=5)
    assert Cursor().lookback(T0, overlap) is None  # a first scan reads everything anyway
    fresh = Cursor(T0 - timedelta(minutes=1))
    assert fresh.lookback(T0, overlap) == (T0 - timedelta(minutes=6), T0 - timedelta(minutes=5))
    assert fresh.lookback(T0, timedelta(0)) is None
    trailing = Cursor(T0 - timedelta(minutes=1), frozenset({"7"}), T0 - timedelta(minutes=8))
    assert trailing.lookback(T0, overlap) == (T0 - timedelta(minutes=8), T0 - timedelta(minutes=5))
    # Never past the cursor: what the scan has not read yet is not read "again".
    behind = Cursor(T0 - timedelta(minutes=30), trail=T0 - timedelta(minutes=40))
    assert behind.lookback(T0, overlap) == (T0 - timedelta(minutes=40), T0 - timedelta(minutes=30))
    assert Cursor.loads(trailing.dumps()) == trailing
    assert Cursor.loads(Cursor(T0).dumps()) == Cursor(T0)  # cursors stored before: no trail


@pytest.fixture
def hubspot() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator().start() as emulator:
        yield emulator


def _found(emulator: HubSpotEmulator, since_ms: int) -> list[str]:
    client = HubSpot(access_token=emulator.token, host=emulator.url, retry=Retry(0))
    request = PublicObjectSearchRequest(
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "lastmodifieddate", "operator": "GTE", "value": since_ms}
                ]
            }
        ],
        limit=100,
    )
    return [c.id for c in client.crm.contacts.search_api.do_search(request).results]


def test_hubspot_search_sees_a_write_only_after_the_indexing_lag(hubspot: HubSpotEmulator) -> None:
    old = hubspot.add_contact({"email": "old@example.com"})
    time.sleep(0.01)
    since = int(time.time() * 1000)
    time.sleep(0.01)
    hubspot.set_search_lag(400)
    new = hubspot.add_contact({"email": "new@example.com"})
    hubspot.update_contact(old, {"jobtitle": "CTO"})
    hubspot.set_search_lag(0)
    assert _found(hubspot, since) == []  # neither the new one nor the edit yet
    assert hubspot.get_contact(new) is not None  # reads by id see it at once
    time.sleep(0.5)
    assert sorted(_found(hubspot, since)) == sorted([old, new])


def test_hubspot_archived_contacts_are_seeded_cheaply_and_listed_apart(
    hubspot: HubSpotEmulator,
) -> None:
    ids = hubspot.seed_archived_contacts(2500)
    assert len(ids) == 2500 and hubspot.contacts() == []
    client = HubSpot(access_token=hubspot.token, host=hubspot.url, retry=Retry(0))
    page = client.crm.contacts.basic_api.get_page(limit=100, archived=True)
    assert len(page.results) == 100 and all(c.archived for c in page.results)
    assert page.paging.next.after is not None


@pytest.fixture
def salesforce() -> Iterator[SalesforceEmulator]:
    with running_emulator() as emulator:
        yield emulator


def test_salesforce_commit_lag_stamps_a_write_before_it_commits(
    salesforce: SalesforceEmulator,
) -> None:
    sf: Any = client_for(salesforce)
    lead = salesforce.add("Lead", {"LastName": "Hopper", "Company": "Navy"})
    salesforce.lag_commits(30)
    salesforce.update("Lead", lead, {"Phone": "+1 555 0142"})
    stamped = parse_datetime(salesforce.get("Lead", lead)["SystemModstamp"])
    assert datetime.now(UTC) - stamped >= timedelta(seconds=29)
    salesforce.update("Lead", lead, {"Title": "Admiral"})  # one transaction only
    assert datetime.now(UTC) - parse_datetime(salesforce.get("Lead", lead)["SystemModstamp"]) < (
        timedelta(seconds=5)
    )
    # The lookback's query form: an OR of a past window and the new changes.
    soql = (
        "SELECT Id FROM Lead WHERE (SystemModstamp >= 2020-01-01T00:00:00Z"
        " AND SystemModstamp < 2020-01-02T00:00:00Z) OR SystemModstamp >= 2020-01-03T00:00:00Z"
        " ORDER BY SystemModstamp, Id"
    )
    assert [r["Id"] for r in sf.query_all(soql, include_deleted=True)["records"]] == [lead]
