"""HubSpotConnector against the emulator: real HTTP, the official client, no mocks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.emulator.server import HubSpotEmulator
from connectors.hubspot.testing import connector_for, running_emulator, sample_contact
from syncd.errors import AuthError, LimitExceededError, TransientError
from syncd.model import Change, Cursor, Page, RecordRef
from syncd.retry import RetryPolicy

SEARCH = "POST /crm/v3/objects/contacts/search"


@pytest.fixture
def emulator() -> Iterator[HubSpotEmulator]:
    with running_emulator() as running:
        yield running


@pytest.fixture
def waits() -> list[float]:
    """The sleeps the retry policy asked for (none are slept)."""
    return []


@pytest.fixture
def connector(emulator: HubSpotEmulator, waits: list[float]) -> Iterator[HubSpotConnector]:
    policy = RetryPolicy(attempts=4, initial=0.01, maximum=30, sleep=waits.append)
    connector = connector_for(emulator, retry=policy, page_size=10)
    yield connector
    connector.close()


def scan(connector: HubSpotConnector, cursor: Cursor | None = None) -> tuple[list[Page], Cursor]:
    cursor = cursor or Cursor()
    pages = list(connector.changes("contacts", cursor))
    return pages, pages[-1].cursor if pages else cursor


def ids(pages: list[Page]) -> list[str]:
    return [r.ref.id for page in pages for r in page.records]


def update(key: str, id_: str, **fields: Any) -> Change:
    stage = fields.pop("stage", {})
    return Change("update", "contacts", key, id_, fields, stage)


def test_incremental_scan_reads_ties_across_pages_once(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    everyone = emulator.seed_contacts(7) + emulator.seed_contacts(25, same_instant=True)
    everyone += emulator.seed_contacts(8)
    pages, end = scan(connector)
    assert ids(pages) == everyone  # none lost, none twice (in id order inside the window)
    assert all(len(p.records) <= 10 for p in pages)
    # Only the last page moves the cursor: a scan cut short is read again whole.
    assert all(p.cursor == Cursor() for p in pages[:-1])
    newest = max(r.modified_at for p in pages for r in p.records)
    assert end.since is not None and end.since > newest
    assert ids(scan(connector, Cursor.loads(end.dumps()))[0]) == []
    more = emulator.seed_contacts(3, same_instant=True)
    assert ids(scan(connector, end)[0]) == more


def test_scan_never_pages_toward_the_cap_even_through_a_big_tie_group(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    emulator.set_search_cap(30)  # any search asking past 30 results would be refused
    everyone = emulator.seed_contacts(12) + emulator.seed_contacts(45, same_instant=True)
    everyone += emulator.seed_contacts(40)
    emulator.reset_calls()
    pages, end = scan(connector)
    assert ids(pages) == everyone
    assert ids(scan(connector, end)[0]) == []
    # 10 a page: the tie group is read by id once a page holds it alone (one extra call).
    assert emulator.calls()[SEARCH] <= 14


def test_a_contact_edited_during_the_scan_shifts_no_unread_one_out(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    everyone = emulator.seed_contacts(30)
    scanning = connector.changes("contacts", Cursor())
    first = next(scanning)
    emulator.update_contact(first.records[0].ref.id, {"jobtitle": "Edited mid-scan"})
    rest = list(scanning)
    assert ids([first, *rest]) == everyone  # an offset window would lose one here
    again, _ = scan(connector, rest[-1].cursor)
    assert ids(again) == [everyone[0]]  # the edit comes with the next scan


def test_scan_pages_stay_full_and_cheap_on_distinct_instants(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    emulator.set_search_cap(30)  # a plain scan never pages far: each page re-anchors
    everyone = emulator.seed_contacts(95)
    emulator.reset_calls()
    pages, _ = scan(connector)
    assert ids(pages) == everyone
    assert emulator.calls()[SEARCH] == 11  # the newest page, then 10 full pages by id
    assert "GET /crm/v3/objects/contacts" not in emulator.calls()  # no archived list


def test_a_quiet_or_lightly_used_portal_costs_one_search_a_scan(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    everyone = emulator.seed_contacts(4)
    _, end = scan(connector)
    emulator.update_contact(everyone[2], {"jobtitle": "Lightly used"})
    emulator.reset_calls()
    pages, end = scan(connector, end)
    assert ids(pages) == [everyone[2]]
    pages, end = scan(connector, end)
    assert ids(pages) == []
    assert emulator.calls() == {SEARCH: 2}  # the first page held all there was, twice


def test_archived_contacts_are_found_by_their_ids_not_by_the_scan(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    everyone = emulator.seed_contacts(5)
    _, end = scan(connector)
    emulator.archive_contact(everyone[1])
    emulator.update_contact(everyone[3], {"phone": "+1 555 0100"})
    emulator.archive_contact(everyone[4])
    pages, end = scan(connector, end)
    assert [(r.ref.id, r.deleted) for p in pages for r in p.records] == [(everyone[3], False)]
    emulator.reset_calls()
    gone = connector.deletions("contacts", everyone)
    assert [(r.ref.id, r.deleted) for r in gone] == [(everyone[1], True), (everyone[4], True)]
    assert gone[0].fields["email"] is not None  # read as archived, with its values
    # One batch read of the ids (207 for the archived), one of the missing as archived.
    assert emulator.calls() == {"POST /crm/v3/objects/contacts/batch/read": 2}
    emulator.reset_calls()
    assert connector.deletions("contacts", [everyone[0], everyone[2]]) == []
    assert emulator.calls() == {"POST /crm/v3/objects/contacts/batch/read": 1}
    assert connector.sweep_slice("contacts", "deletions") == 100


def test_the_scan_search_checks_a_deletion_slice_at_no_call_of_its_own(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    everyone = emulator.seed_contacts(6)
    _, end = scan(connector)
    emulator.archive_contact(everyone[2])
    emulator.update_contact(everyone[5], {"phone": "+1 555 0100"})
    time.sleep(0.01)
    assert connector.prefetch("contacts", "deletions", everyone)
    assert not connector.prefetch("contacts", "associations", everyone)  # not in a search
    emulator.reset_calls()
    pages, end = scan(connector, end)
    # the probed ids ride in the search; only the change is read
    assert [r.ref.id for p in pages for r in p.records] == [everyone[5]]
    assert emulator.calls() == {SEARCH: 1}
    gone = connector.deletions("contacts", everyone)
    assert [(r.ref.id, r.deleted) for r in gone] == [(everyone[2], True)]
    # the missing one read as archived: the only call the check cost
    assert emulator.calls() == {SEARCH: 1, "POST /crm/v3/objects/contacts/batch/read": 1}
    # a quiet scan with the probe: one search, no record read, no call after it
    connector.prefetch("contacts", "deletions", everyone[:2])
    emulator.reset_calls()
    assert ids(scan(connector, end)[0]) == []
    assert connector.deletions("contacts", everyone[:2]) == []
    assert emulator.calls() == {SEARCH: 1}
    # an answer is for the ids probed only: others are read by batch read
    assert connector.deletions("contacts", everyone[3:5]) == []
    assert emulator.calls()["POST /crm/v3/objects/contacts/batch/read"] == 1


def test_records_carry_canonical_fields_stage_and_partner_id(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    contact = sample_contact(
        1, hubspotscore="42.0", lifecyclestage="customer", syncd_salesforce_id="00Q9", phone=""
    )
    contact_id = emulator.add_contact(contact)
    (record,) = connector.fetch([RecordRef("hubspot", "contacts", contact_id)])
    assert record.fields["lead_score"] == "42"
    assert record.fields["phone"] is None
    assert record.fields["email"] == "person1@example.com"
    assert record.stage == {"lifecyclestage": "customer"}
    assert record.partner_id == "00Q9"
    assert record.modified_at.tzinfo is not None


def test_fetch_batches_by_100_and_leaves_unknown_ids_out(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    everyone = emulator.seed_contacts(150)
    emulator.reset_calls()
    refs = [RecordRef("hubspot", "contacts", i) for i in [*everyone, "999999"]]
    assert [r.ref.id for r in connector.fetch(refs)] == everyone
    assert emulator.calls() == {"POST /crm/v3/objects/contacts/batch/read": 2}


def test_apply_lands_good_inputs_and_reports_hubspots_own_error(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    a, b, c = (emulator.add_contact(sample_contact(n)) for n in (1, 2, 3))
    emulator.reset_calls()
    outcomes = connector.apply(
        [
            update("k1", a, title="Boss"),
            update("k2", b, lead_source="Carrier pigeon"),
            update("k3", c, email="PERSON1@example.com"),
            Change(
                "create", "contacts", "k4", fields={"email": "new@example.com"}, partner_id="00Q4"
            ),
        ]
    )
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert outcomes[1].code == "VALIDATION_ERROR"
    assert "Carrier pigeon was not one of the allowed options" in (outcomes[1].error or "")
    assert outcomes[2].code == "CONFLICT"
    assert outcomes[2].error == f"Contact already exists. Existing ID: {a}"
    assert outcomes[3].created and outcomes[3].id
    assert emulator.get_contact(a)["properties"]["jobtitle"] == "Boss"  # type: ignore[index]
    assert emulator.get_contact(b)["properties"]["lead_source"] == "Web"  # type: ignore[index]
    # batch update refuses the whole batch: [k1 k2 k3] -> [k1] lands, [k2 k3] -> [k2], [k3]
    assert emulator.calls() == {
        "POST /crm/v3/objects/contacts/batch/update": 5,
        "POST /crm/v3/objects/contacts/batch/upsert": 1,
    }
    assert connector.split_calls() == 4


def test_replayed_create_finds_the_contact_it_created(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    create = Change(
        "create",
        "contacts",
        "plan:1",
        fields={"email": "ada@example.com", "first_name": "Ada", "phone": None},
        stage={"lifecyclestage": "lead"},
        partner_id="00Q000000000001",
    )
    (first,) = connector.apply([create])
    (replay,) = connector.apply([create])
    assert (first.ok, first.created, replay.ok, replay.created) == (True, True, True, False)
    assert first.id == replay.id
    assert first.stage == {"lifecyclestage": "lead"}
    (stored,) = emulator.contacts()
    assert stored["properties"]["syncd_salesforce_id"] == "00Q000000000001"


def test_backward_lifecycle_move_is_made_by_clearing_first(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    rejected = emulator.add_contact(sample_contact(1, lifecyclestage="salesqualifiedlead"))
    forward = emulator.add_contact(sample_contact(2, lifecyclestage="lead"))
    emulator.reset_calls()
    outcomes = connector.apply(
        [
            update(
                "back",
                rejected,
                title="Nurture",
                stage={"lifecyclestage": "lead", "hs_lead_status": "BAD_TIMING"},
            ),
            update("fwd", forward, stage={"lifecyclestage": "customer"}),
        ]
    )
    assert [o.ok for o in outcomes] == [True, True]
    assert outcomes[0].stage == {"lifecyclestage": "lead", "hs_lead_status": "BAD_TIMING"}
    assert outcomes[1].stage == {"lifecyclestage": "customer"}
    held = emulator.get_contact(rejected)["properties"]  # type: ignore[index]
    assert (held["lifecyclestage"], held["jobtitle"]) == ("lead", "Nurture")
    assert emulator.calls() == {"POST /crm/v3/objects/contacts/batch/update": 3}


def test_backward_lifecycle_move_when_the_portal_refuses_it_outright() -> None:
    with running_emulator(lifecycle_backward="refuse") as emulator:
        contact_id = emulator.add_contact(sample_contact(1, lifecyclestage="customer"))
        connector = connector_for(emulator)
        (outcome,) = connector.apply(
            [update("k", contact_id, title="Recycled", stage={"lifecyclestage": "lead"})]
        )
        assert outcome.ok, outcome.error
        assert outcome.stage == {"lifecyclestage": "lead"}
        held = emulator.get_contact(contact_id)["properties"]  # type: ignore[index]
        assert (held["lifecyclestage"], held["jobtitle"]) == ("lead", "Recycled")
        # refused, rest written, cleared, set
        assert emulator.calls() == {"POST /crm/v3/objects/contacts/batch/update": 4}


def test_a_failed_stage_move_puts_the_held_stage_back_and_bad_options_clear_nothing(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    contact_id = emulator.add_contact(sample_contact(1, lifecyclestage="customer"))
    emulator.reset_calls()
    emulator.fail_at_call(3, 400)  # write, clear, then the set fails
    (outcome,) = connector.apply([update("k", contact_id, stage={"lifecyclestage": "lead"})])
    assert not outcome.ok and outcome.error == "Injected failure 400"
    assert outcome.stage == {"lifecyclestage": "customer"}
    stage = emulator.get_contact(contact_id)["properties"]["lifecyclestage"]  # type: ignore[index]
    assert stage == "customer"
    assert emulator.calls() == {"POST /crm/v3/objects/contacts/batch/update": 4}

    emulator.reset_calls()
    (bogus,) = connector.apply([update("b", contact_id, stage={"lifecyclestage": "bogus"})])
    assert (bogus.ok, bogus.code) == (False, "VALIDATION_ERROR")
    assert emulator.calls() == {"POST /crm/v3/objects/contacts/batch/update": 1}
    stage = emulator.get_contact(contact_id)["properties"]["lifecyclestage"]  # type: ignore[index]
    assert stage == "customer"


def test_none_clears_and_hostile_values_are_stored_verbatim(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    contact_id = emulator.add_contact(sample_contact(1, phone="+1 555"))
    hostile = {
        "first_name": 'O\'Brien "Bob" \\ 😀',
        "last_name": "Ünïcødé 名前 \u200b\n'; DROP TABLE contacts; --",
        "company": '\\\\server\\share "quoted" {"json": true}',
        "phone": None,
    }
    (outcome,) = connector.apply([update("k", contact_id, **hostile)])
    assert outcome.ok, outcome.error
    (record,) = connector.fetch([RecordRef("hubspot", "contacts", contact_id)])
    assert {k: record.fields[k] for k in hostile} == hostile
    assert emulator.get_contact(contact_id)["properties"]["phone"] is None  # type: ignore[index]


def test_429_is_retried_after_the_time_hubspot_asks(
    emulator: HubSpotEmulator, connector: HubSpotConnector, waits: list[float]
) -> None:
    contact_id = emulator.add_contact(sample_contact(1))
    emulator.fail_next(429, retry_after=2, path_contains="batch/read")
    (record,) = connector.fetch([RecordRef("hubspot", "contacts", contact_id)])
    assert record.ref.id == contact_id
    assert len(waits) == 1 and waits[0] >= 2
    assert connector.api_calls() == {"POST /crm/v3/objects/contacts/batch/read": 2}


def test_search_429_without_headers_backs_off_and_the_scan_completes() -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # really waits: the search window must pass
        waits.append(seconds)
        time.sleep(seconds)

    with running_emulator(search_rate_limit=(1, 100)) as emulator:
        everyone = emulator.seed_contacts(25)
        policy = RetryPolicy(attempts=10, initial=0.05, maximum=0.2, sleep=sleep)
        pages, _ = scan(connector_for(emulator, page_size=10, retry=policy))
    assert ids(pages) == everyone
    assert waits and all(w <= 0.2 for w in waits)  # no Retry-After on search: backoff


def test_create_without_partner_id_uses_batch_create(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    emulator.reset_calls()
    (outcome,) = connector.apply(
        [Change("create", "contacts", "k", fields={"email": "solo@example.com", "title": None})]
    )
    assert outcome.ok and outcome.created
    assert emulator.get_contact(outcome.id or "")["properties"]["email"] == "solo@example.com"  # type: ignore[index]
    assert emulator.calls() == {"POST /crm/v3/objects/contacts/batch/create": 1}


def test_server_errors_are_retried_then_raised_as_transient(
    emulator: HubSpotEmulator, connector: HubSpotConnector, waits: list[float]
) -> None:
    emulator.fail_next(503, count=2)
    connector.check()
    assert len(waits) == 2
    emulator.fail_next(500, count=4)
    with pytest.raises(TransientError):
        connector.check()
    assert connector.api_calls() == {"GET /crm/v3/objects/contacts": 7}


def test_wrong_token_is_an_auth_error_without_retries(emulator: HubSpotEmulator) -> None:
    connector = connector_for(emulator, access_token="expired")
    with pytest.raises(AuthError) as raised:
        connector.check()
    assert raised.value.status == 401
    assert "Authentication credentials not found" in str(raised.value)
    assert connector.api_calls() == {"GET /crm/v3/objects/contacts": 1}


def test_daily_limit_is_reported_not_retried() -> None:
    with running_emulator(daily_limit=1) as emulator:
        connector = connector_for(emulator)
        connector.check()
        with pytest.raises(LimitExceededError):
            connector.picklists()
        assert connector.api_calls() == {
            "GET /crm/v3/objects/contacts": 1,
            "GET /crm/v3/properties/contacts": 1,
        }


def test_unreachable_host_is_transient() -> None:
    with running_emulator() as emulator:
        connector = HubSpotConnector(
            host=emulator.url,
            access_token=emulator.token,
            field_map={},
            field_types={},
            timeout=(0.5, 0.5),
            retry=RetryPolicy(attempts=2, initial=0.01, maximum=0.01),
        )
        connector.check()  # a pooled keep-alive connection is open now
    with pytest.raises(TransientError) as raised:
        connector.check()
    first, check, said = str(raised.value).splitlines()
    assert first.startswith("hubspot: could not connect to 127.0.0.1:")
    assert "connection was refused" in first
    assert check.strip().startswith("check host (systems.hubspot.host in syncd.yaml")
    assert said.strip() == "the error: [Errno 111] Connection refused"
    assert connector.api_calls() == {"GET /crm/v3/objects/contacts": 3}


def test_picklists_and_kinds(connector: HubSpotConnector) -> None:
    picklists = connector.picklists()
    assert "marketingqualifiedlead" in picklists["lifecyclestage"]
    assert "BAD_TIMING" in picklists["hs_lead_status"]
    assert "Webinar" in picklists["lead_source"]
    assert "email" not in picklists
    assert connector.kinds("person") == ["contacts"]
    assert connector.kinds("deal") == []


def test_writes_are_batched_at_the_batch_size(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    everyone = emulator.seed_contacts(250)
    emulator.reset_calls()
    outcomes = connector.apply([update(f"k{n}", i, title=f"T{n}") for n, i in enumerate(everyone)])
    assert all(o.ok for o in outcomes)
    assert [o.key for o in outcomes] == [f"k{n}" for n in range(250)]
    assert emulator.calls() == {"POST /crm/v3/objects/contacts/batch/update": 3}
    assert emulator.get_contact(everyone[-1])["properties"]["jobtitle"] == "T249"  # type: ignore[index]


def test_a_batch_refused_for_its_key_property_is_not_split(emulator: HubSpotEmulator) -> None:
    # every input shares the key property: no half would fare better, so one call
    connector = connector_for(emulator, partner_id_field="firstname")
    emulator.reset_calls()
    changes = [
        Change(
            "create",
            "contacts",
            f"k{n}",
            fields={"email": f"p{n}@example.com"},
            partner_id=f"00Q{n}",
        )
        for n in range(10)
    ]
    outcomes = connector.apply(changes)
    assert not any(o.ok for o in outcomes)
    assert "Unable to perform update/upsert by non-unique 0-1 property firstname" in (
        outcomes[0].error or ""
    )
    assert emulator.calls() == {"POST /crm/v3/objects/contacts/batch/upsert": 1}
    assert connector.split_calls() == 0
    connector.close()


def test_fetch_reads_a_404_for_a_batch_of_unknown_ids_as_none_found(
    emulator: HubSpotEmulator, connector: HubSpotConnector
) -> None:
    emulator.fail_next(404, path_contains="batch/read")
    assert connector.fetch([RecordRef("hubspot", "contacts", "999999")]) == []
