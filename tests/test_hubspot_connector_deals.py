"""HubSpotConnector's companies, deals and v4 associations against the emulator: real
HTTP through the official client, no mocks."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.emulator.crm import ALL_STAGES
from connectors.hubspot.emulator.server import HubSpotEmulator
from connectors.hubspot.mapping import joined_ids
from connectors.hubspot.testing import (
    ALL_KINDS,
    connector_for,
    running_emulator,
    sample_company,
    sample_contact,
    sample_deal,
)
from syncd.errors import AuthError, TransientError
from syncd.model import Change, Cursor, Page, RecordRef

DEALS = "/crm/v3/objects/deals"
V4 = "/crm/v4/associations/deals"
PAGE = 10


@pytest.fixture
def emulator() -> Iterator[HubSpotEmulator]:
    with running_emulator() as running:
        yield running


@pytest.fixture
def connector(emulator: HubSpotEmulator) -> Iterator[HubSpotConnector]:
    connector = connector_for(emulator, kinds=ALL_KINDS, page_size=PAGE)
    yield connector
    connector.close()


@pytest.fixture
def people(emulator: HubSpotEmulator) -> list[str]:
    return [emulator.add_contact(sample_contact(n)) for n in (1, 2, 3)]


@pytest.fixture
def company(emulator: HubSpotEmulator) -> str:
    return emulator.add_company(sample_company(1, numberofemployees="250.0"))


def scan(
    connector: HubSpotConnector, kind: str, cursor: Cursor | None = None
) -> tuple[list[Page], Cursor]:
    cursor = cursor or Cursor()
    pages = list(connector.changes(kind, cursor))
    return pages, pages[-1].cursor if pages else cursor


def deal_change(key: str, op: str = "create", id_: str | None = None, **fields: Any) -> Change:
    stage = fields.pop("stage", {})
    partner_id = fields.pop("partner_id", None)
    return Change(op, "deals", key, id_, fields, stage, partner_id)  # type: ignore[arg-type]


def properties(emulator: HubSpotEmulator, deal_id: str) -> dict[str, Any]:
    deal = emulator.get_deal(deal_id)
    assert deal is not None
    return dict(deal["properties"])


def test_ids_join_ascending_numerically() -> None:
    assert joined_ids(["205", "1000", "99", "205"]) == "99,205,1000"
    assert joined_ids([]) is None


def test_a_company_and_a_deal_are_scanned_incrementally_with_their_associations(
    emulator: HubSpotEmulator, connector: HubSpotConnector, company: str, people: list[str]
) -> None:
    pages, companies_end = scan(connector, "companies")
    (record,) = [r for p in pages for r in p.records]
    assert record.ref == RecordRef("hubspot", "companies", company)
    assert record.fields == {
        "name": "Company 1",
        "domain": "company1.example.com",
        "employees": "250",
    }
    assert record.stage == {} and record.partner_id is None

    deal_id = emulator.add_deal(sample_deal(1, syncd_salesforce_id="006A"))
    emulator.associate("deals", deal_id, "companies", company)
    for person in (people[2], people[0]):
        emulator.associate("deals", deal_id, "contacts", person)
    pages, end = scan(connector, "deals")
    (deal,) = [r for p in pages for r in p.records]
    assert deal.fields == {
        "name": "Deal 1",
        "amount": "1000",
        "close_date": None,
        "lost_reason": None,
        "company": company,
        "contacts": f"{people[0]},{people[2]}",
    }
    assert deal.stage == {"dealstage": "qualifiedtobuy", "pipeline": "default"}
    assert deal.partner_id == "006A"

    assert [r for p in scan(connector, "deals", end)[0] for r in p.records] == []
    emulator.update_deal(deal_id, {"amount": "1500", "closedate": "2026-03-31"})
    lonely = emulator.add_deal(sample_deal(2))
    pages, end = scan(connector, "deals", end)
    again, other = [r for p in pages for r in p.records]
    assert (again.ref.id, again.fields["amount"], again.fields["close_date"]) == (
        deal_id,
        "1500",
        "2026-03-31",
    )
    assert again.fields["contacts"] == f"{people[0]},{people[2]}"
    assert (other.ref.id, other.fields["company"], other.fields["contacts"]) == (lonely, None, None)
    assert [r for p in scan(connector, "companies", companies_end)[0] for r in p.records] == []


def test_scan_reads_associations_once_per_page_and_type(
    emulator: HubSpotEmulator, company: str, people: list[str]
) -> None:
    end = Cursor()
    for count in (7, 25):  # one page, then several
        deals = emulator.seed_deals(count)
        for deal_id in deals:
            emulator.associate("deals", deal_id, "companies", company)
            emulator.associate("deals", deal_id, "contacts", people[0])
        emulator.reset_calls()
        connector = connector_for(emulator, kinds=ALL_KINDS, page_size=PAGE)
        pages, end = scan(connector, "deals", end)
        records = [r for p in pages for r in p.records]
        assert [r.ref.id for r in records] == deals
        assert all(r.fields["company"] == company for r in records)
        pages_read = math.ceil(count / PAGE)
        # The call pattern of the connector's docstring: the newest page (the whole scan
        # when it holds them all), then one search per page by id, one association read
        # per page and associated type.
        expected = {
            f"POST {DEALS}/search": 1 + pages_read if count > PAGE else 1,
            f"POST {V4}/companies/batch/read": pages_read,
            f"POST {V4}/contacts/batch/read": pages_read,
        }
        assert emulator.calls() == expected
        assert connector.api_calls() == expected
    assert sum(expected.values()) == 1 + 3 + 3 * 2


def test_a_deal_gone_before_its_associations_are_read_reads_as_unassociated(
    emulator: HubSpotEmulator, connector: HubSpotConnector, company: str
) -> None:
    deals = emulator.seed_deals(15)
    for deal_id in deals:
        emulator.associate("deals", deal_id, "companies", company)
    scanning = connector.changes("deals", Cursor())
    first = next(scanning)  # the second page's search is made, its associations not yet
    emulator.archive_deal(deals[-1])
    emulator.reset_calls()
    (second,) = list(scanning)
    assert [r.fields["company"] for r in first.records] == [company] * PAGE
    companies = [r.fields["company"] for r in second.records if not r.deleted]
    assert companies == [company] * 4 + [None]  # the 207 left it out: no associations
    assert emulator.calls()[f"POST {V4}/companies/batch/read"] == 1


def test_archived_deals_come_as_deleted_records_without_association_reads(
    emulator: HubSpotEmulator, connector: HubSpotConnector, company: str
) -> None:
    deal_id = emulator.add_deal(sample_deal(1))
    emulator.associate("deals", deal_id, "companies", company)
    scan(connector, "deals")
    emulator.archive_deal(deal_id)
    emulator.reset_calls()
    (record,) = connector.deletions("deals", [deal_id])
    assert (record.ref.id, record.deleted, record.fields["company"]) == (deal_id, True, None)
    assert emulator.calls() == {f"POST {DEALS}/batch/read": 2}


def test_associations_are_read_by_id_for_the_sweep(
    emulator: HubSpotEmulator, connector: HubSpotConnector, company: str, people: list[str]
) -> None:
    deal_id = emulator.add_deal(sample_deal(1))
    emulator.associate("deals", deal_id, "contacts", people[1])
    emulator.reset_calls()
    assert connector.associations("deals", [deal_id]) == {
        deal_id: {"company": None, "contacts": people[1]}
    }
    assert sorted(emulator.calls()) == [
        f"POST {V4}/companies/batch/read",
        f"POST {V4}/contacts/batch/read",
    ]
    assert connector.sweep_slice("deals", "associations") == 1000


def test_fetch_reads_each_type_and_the_deals_associations_in_batches(
    emulator: HubSpotEmulator, connector: HubSpotConnector, company: str, people: list[str]
) -> None:
    deal_id = emulator.add_deal(sample_deal(1))
    emulator.associate("deals", deal_id, "contacts", people[1])
    emulator.reset_calls()
    refs = [
        RecordRef("hubspot", "deals", deal_id),
        RecordRef("hubspot", "contacts", people[0]),
        RecordRef("hubspot", "companies", company),
        RecordRef("hubspot", "deals", "404"),
    ]
    records = connector.fetch(refs)
    assert [(r.ref.kind, r.ref.id) for r in records] == [(r.kind, r.id) for r in refs[:3]]
    assert (records[0].fields["contacts"], records[0].fields["company"]) == (people[1], None)
    assert emulator.calls() == {
        "POST /crm/v3/objects/contacts/batch/read": 1,
        "POST /crm/v3/objects/companies/batch/read": 1,
        f"POST {DEALS}/batch/read": 1,
        f"POST {V4}/companies/batch/read": 1,
        f"POST {V4}/contacts/batch/read": 1,
    }


def test_apply_creates_a_deal_with_its_company_and_contacts(
    emulator: HubSpotEmulator, connector: HubSpotConnector, company: str, people: list[str]
) -> None:
    create = deal_change(
        "deal:1",
        name="Big deal",
        amount="5000",
        close_date="2026-06-30",
        company=company,
        contacts=f"{people[1]},{people[0]}",
        stage={"dealstage": "contractsent", "pipeline": "default"},
        partner_id="006B",
    )
    emulator.reset_calls()
    (outcome,) = connector.apply([create])
    assert (outcome.ok, outcome.created) == (True, True), outcome.error
    assert outcome.stage == {"dealstage": "contractsent", "pipeline": "default"}
    deal_id = outcome.id or ""
    held = properties(emulator, deal_id)
    assert (held["dealname"], held["amount"], held["syncd_salesforce_id"]) == (
        "Big deal",
        "5000",
        "006B",
    )
    assert (held["dealstage"], held["pipeline"]) == ("contractsent", "default")
    assert held["closedate"].startswith("2026-06-30")
    assert emulator.associations("deals", deal_id, "companies") == [company]
    assert emulator.associations("deals", deal_id, "contacts") == people[:2]
    assert emulator.associations("contacts", people[0], "deals") == [deal_id]
    expected = {
        f"POST {DEALS}/batch/upsert": 1,
        f"POST {V4}/companies/batch/create": 1,
        f"POST {V4}/contacts/batch/create": 1,
    }
    assert emulator.calls() == expected and connector.api_calls() == expected

    (replay,) = connector.apply([create])  # after a crash: finds the deal, adds nothing new
    assert (replay.ok, replay.created, replay.id) == (True, False, deal_id)
    assert emulator.associations("deals", deal_id, "contacts") == people[:2]
    assert len(emulator.deals()) == 1


def test_an_update_adds_one_more_contact_and_removes_none(
    emulator: HubSpotEmulator, connector: HubSpotConnector, company: str, people: list[str]
) -> None:
    deal_id = emulator.add_deal(sample_deal(1))
    emulator.associate("deals", deal_id, "contacts", people[0])
    emulator.associate("deals", deal_id, "companies", company)
    emulator.reset_calls()
    (outcome,) = connector.apply(
        [deal_change("u", "update", deal_id, contacts=people[2], company="", amount="7")]
    )
    assert outcome.ok and not outcome.created, outcome.error
    assert emulator.associations("deals", deal_id, "contacts") == [people[0], people[2]]
    assert emulator.associations("deals", deal_id, "companies") == [company]
    assert properties(emulator, deal_id)["amount"] == "7"
    assert emulator.calls() == {
        f"POST {DEALS}/batch/update": 1,
        f"POST {V4}/contacts/batch/create": 1,
    }
    emulator.reset_calls()
    (nothing,) = connector.apply([deal_change("n", "update", deal_id, contacts=None)])
    assert nothing.ok
    assert emulator.calls() == {f"POST {DEALS}/batch/update": 1}  # no ids: no v4 call


def test_a_refused_association_fails_its_change_after_the_deal_landed(
    emulator: HubSpotEmulator, connector: HubSpotConnector, company: str, people: list[str]
) -> None:
    emulator.reset_calls()
    bad, good = connector.apply(
        [
            deal_change("bad", name="Ghost", company=company, contacts=f"{people[0]},424242"),
            deal_change("good", name="Real", contacts=people[1], partner_id="006G"),
        ]
    )
    assert (bad.ok, bad.created, bad.code) == (False, True, "VALIDATION_ERROR")
    assert bad.error == "No contacts with id 424242 exists"  # HubSpot's (the emulator's) words
    assert bad.id and properties(emulator, bad.id)["dealname"] == "Ghost"
    assert emulator.associations("deals", bad.id, "companies") == [company]
    assert emulator.associations("deals", bad.id, "contacts") == [people[0]]
    assert good.ok and emulator.associations("deals", good.id or "", "contacts") == [people[1]]
    assert emulator.calls() == {
        f"POST {DEALS}/batch/upsert": 1,
        f"POST {DEALS}/batch/create": 1,
        f"POST {V4}/companies/batch/create": 1,
        # one call for both deals' contacts, refused as a whole, then split:
        # [(bad p0) (bad 424242) (good p1)] -> [(bad p0)], [(bad 424242) (good p1)] -> ...
        f"POST {V4}/contacts/batch/create": 5,
    }
    assert connector.split_calls() == 4


def test_a_refused_deal_write_makes_no_association_call(
    emulator: HubSpotEmulator, connector: HubSpotConnector, company: str
) -> None:
    emulator.reset_calls()
    (outcome,) = connector.apply(
        [
            deal_change(
                "k",
                company=company,
                stage={"dealstage": "71840211", "pipeline": "default"},
                partner_id="006C",
            )
        ]
    )
    assert (outcome.ok, outcome.code) == (False, "VALIDATION_ERROR")
    assert "not a valid deal stage for pipeline default" in (outcome.error or "")
    assert emulator.deals() == []
    assert emulator.calls() == {f"POST {DEALS}/batch/upsert": 1}


def test_stage_outcomes_and_picklists_for_deals(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    assert connector.stage_outcomes() == {
        ("dealstage", "closedwon"): "won",
        ("dealstage", "closedlost"): "lost",
        ("dealstage", "71840213"): "won",
        ("dealstage", "71840214"): "lost",
    }
    picklists = connector.picklists()
    assert picklists["dealstage"] == {s.id for s in ALL_STAGES}
    assert picklists["pipeline"] == {"default", "renewals"}
    assert "COMPUTER_SOFTWARE" in picklists["industry"]  # a company property
    assert "marketingqualifiedlead" in picklists["lifecyclestage"]
    assert "dealname" not in picklists
    assert connector.kinds("deal") == ["deals"]
    assert connector.kinds("company") == ["companies"]
    assert connector.api_calls() == {
        "GET /crm/v3/pipelines/deals": 2,
        "GET /crm/v3/properties/contacts": 1,
        "GET /crm/v3/properties/companies": 1,
        "GET /crm/v3/properties/deals": 1,
    }
    people_only = connector_for(emulator)
    assert people_only.stage_outcomes() == {} and people_only.api_calls() == {}
    assert people_only.kinds("deal") == []


def test_an_association_to_a_type_without_a_default_type_is_refused_at_start(
    emulator: HubSpotEmulator,
) -> None:
    with pytest.raises(ValueError, match="no default HubSpot association from companies"):
        HubSpotConnector(
            host=emulator.url,
            access_token=emulator.token,
            field_map={"companies": {"parent": "@companies"}},
            field_types={},
        )


def test_failures_of_the_deal_v4_and_pipeline_apis_are_translated_and_retried(
    emulator: HubSpotEmulator, connector: HubSpotConnector, company: str
) -> None:
    deal_id = emulator.add_deal(sample_deal(1))
    emulator.associate("deals", deal_id, "companies", company)
    emulator.fail_next(503, path_contains="/crm/v4/associations/deals/companies/batch/read")
    emulator.fail_next(503, path_contains=f"{DEALS}/batch/read")
    (record,) = connector.fetch([RecordRef("hubspot", "deals", deal_id)])
    assert record.fields["company"] == company
    assert connector.api_calls() == {
        f"POST {DEALS}/batch/read": 2,
        f"POST {V4}/companies/batch/read": 2,
        f"POST {V4}/contacts/batch/read": 1,
    }
    emulator.fail_next(500, count=3, path_contains="pipelines")
    with pytest.raises(TransientError):
        connector.stage_outcomes()
    emulator.fail_next(401, path_contains="pipelines")
    with pytest.raises(AuthError):
        connector.picklists()


def test_an_association_batch_refused_as_a_whole_fails_each_of_its_changes(
    emulator: HubSpotEmulator, connector: HubSpotConnector, company: str, people: list[str]
) -> None:
    # refused as a whole, then each half alone: every call answers 400
    emulator.fail_next(400, count=3, path_contains="/contacts/batch/create")
    first, second = connector.apply(
        [
            deal_change("a", name="A", company=company, contacts=people[0]),
            deal_change("b", name="B", contacts=people[1]),
        ]
    )
    for outcome in (first, second):
        assert (outcome.ok, outcome.created, outcome.error) == (
            False,
            True,
            "Injected failure 400",
        )
    assert emulator.associations("deals", first.id or "", "companies") == [company]
    assert emulator.associations("deals", second.id or "", "contacts") == []


def test_one_bad_association_in_a_batch_of_100_costs_only_its_deal(
    emulator: HubSpotEmulator, connector: HubSpotConnector, people: list[str]
) -> None:
    changes = [
        deal_change(f"k{n}", name=f"Deal {n}", contacts="424242" if n == 42 else people[n % 3])
        for n in range(100)
    ]
    emulator.reset_calls()
    outcomes = connector.apply(changes)
    assert [n for n, o in enumerate(outcomes) if not o.ok] == [42]
    assert outcomes[42].error == "No contacts with id 424242 exists"  # HubSpot's own words
    linked = [emulator.associations("deals", o.id or "", "contacts") for o in outcomes]
    assert sum(1 for ids in linked if ids) == 99
    extra = emulator.calls()[f"POST {V4}/contacts/batch/create"] - 1
    assert extra == connector.split_calls() and 0 < extra <= 2 * math.ceil(math.log2(100))
