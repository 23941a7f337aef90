"""The HubSpot emulator over real HTTP, read through the official client where it parses."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
    PublicObjectSearchRequest,
)
from urllib3.util.retry import Retry

from connectors.hubspot.emulator import search as emulator_search
from connectors.hubspot.emulator.server import HubSpotEmulator
from connectors.hubspot.testing import running_emulator, sample_contact, sample_contacts

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def emulator() -> Iterator[HubSpotEmulator]:
    with running_emulator() as running:
        yield running


@pytest.fixture
def client(emulator: HubSpotEmulator) -> Any:
    return HubSpot(access_token=emulator.token, host=emulator.url, retry=Retry(0)).crm.contacts


def http(
    emulator: HubSpotEmulator,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = "default",
) -> tuple[int, Any, Any]:
    """(status, parsed JSON or None, headers) of one raw request."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {emulator.token if token == 'default' else token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(emulator.url + path, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw, status, answer_headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, answer_headers = error.read(), error.code, error.headers
    return status, json.loads(raw) if raw else None, answer_headers


def search(client: Any, *filters: dict[str, Any], **options: Any) -> Any:
    groups = options.pop("groups", None) or ([{"filters": list(filters)}] if filters else [])
    request = PublicObjectSearchRequest(filter_groups=groups, **options)
    return client.search_api.do_search(request)


def add_all(emulator: HubSpotEmulator, contacts: list[dict[str, str]]) -> list[str]:
    return [emulator.add_contact(c) for c in contacts]


def test_requests_without_the_token_are_refused_with_401(emulator: HubSpotEmulator) -> None:
    status, body, _ = http(emulator, "GET", "/crm/v3/objects/contacts", token=None)
    assert status == 401
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found")
    wrong = HubSpot(access_token="nope", host=emulator.url, retry=Retry(0)).crm.contacts
    with pytest.raises(ApiException) as raised:
        wrong.basic_api.get_page(limit=1)
    assert raised.value.status == 401


def test_list_pages_by_after_and_limits_page_size(emulator: HubSpotEmulator, client: Any) -> None:
    ids = emulator.seed_contacts(25)
    seen, after = [], None
    while True:
        page = client.basic_api.get_page(limit=10, after=after, properties=["email"])
        seen += [c.id for c in page.results]
        assert all(c.properties["email"] for c in page.results)
        if not page.paging:
            break
        after = page.paging.next.after
    assert seen == ids
    status, body, _ = http(emulator, "GET", "/crm/v3/objects/contacts?limit=101")
    assert status == 400 and body["category"] == "VALIDATION_ERROR"


def test_search_filters_operators_and_or_groups(emulator: HubSpotEmulator, client: Any) -> None:
    ada, grace, alan = add_all(
        emulator,
        [
            sample_contact(1, email="Ada@Example.com", lifecyclestage="customer", phone="1"),
            sample_contact(2, lifecyclestage="lead"),
            sample_contact(3, lifecyclestage="subscriber", hubspotscore="70"),
        ],
    )

    def ids(*filters: dict[str, Any], **options: Any) -> list[str]:
        return [c.id for c in search(client, *filters, **options).results]

    assert ids({"propertyName": "email", "operator": "EQ", "value": "ada@example.COM"}) == [ada]
    assert ids({"propertyName": "lifecyclestage", "operator": "NEQ", "value": "lead"}) == [
        ada,
        alan,
    ]
    assert ids(
        {"propertyName": "lifecyclestage", "operator": "IN", "values": ["lead", "subscriber"]}
    ) == [grace, alan]
    assert ids({"propertyName": "phone", "operator": "HAS_PROPERTY"}) == [ada]
    assert ids({"propertyName": "phone", "operator": "NOT_HAS_PROPERTY"}) == [grace, alan]
    assert ids({"propertyName": "hubspotscore", "operator": "GTE", "value": "70"}) == [alan]
    grace_modified = emulator.get_contact(grace)["updatedAt"]  # type: ignore[index]
    after_grace = {"propertyName": "lastmodifieddate", "operator": "GT", "value": grace_modified}
    assert ids(after_grace) == [alan]  # ISO accepted as well as epoch millis
    either = [
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "ADA@example.com"}]},
        {"filters": [{"propertyName": "hubspotscore", "operator": "LT", "value": "100"}]},
    ]
    assert ids(groups=either) == [ada, alan]
    status, body, _ = http(
        emulator,
        "POST",
        "/crm/v3/objects/contacts/search",
        {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE"}]}]},
    )
    assert status == 400 and body["category"] == "VALIDATION_ERROR"


def test_search_sorts_pages_and_leaves_archived_out(emulator: HubSpotEmulator, client: Any) -> None:
    ids = emulator.seed_contacts(30)
    emulator.archive_contact(ids[0])
    emulator.update_contact(ids[5], {"jobtitle": "Moved to the end"})
    newest_first = {"propertyName": "lastmodifieddate", "direction": "DESCENDING"}
    first = search(client, sorts=[newest_first], limit=10)
    assert first.total == 29
    assert first.results[0].id == ids[5]
    assert first.paging.next.after == "10"
    rest = search(client, sorts=[newest_first], limit=20, after="10")
    assert rest.paging is None
    listed = [c.id for c in first.results + rest.results]
    assert sorted(listed, key=int) == ids[1:]
    by_id = search(client, sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}])
    assert [c.id for c in by_id.results] == ids[1:11]


def test_search_refuses_paging_past_the_cap_and_big_pages(
    emulator: HubSpotEmulator, client: Any
) -> None:
    emulator.seed_contacts(60)
    emulator.set_search_cap(50)
    assert len(search(client, limit=10, after="40").results) == 10
    for limit, after in ((20, "40"), (201, None)):
        with pytest.raises(ApiException) as raised:
            search(client, limit=limit, after=after)
        assert raised.value.status == 400
        assert json.loads(raised.value.body)["category"] == "VALIDATION_ERROR"


def test_batch_create_answers_201_and_refuses_more_than_100(
    emulator: HubSpotEmulator, client: Any
) -> None:
    inputs = [{"properties": p} for p in sample_contacts(3)]
    created = client.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
    )
    assert isinstance(created, BatchResponseSimplePublicObject)
    assert [c.properties["email"] for c in created.results] == [
        "person1@example.com",
        "person2@example.com",
        "person3@example.com",
    ]
    assert created.results[0].created_at is not None
    too_many = [{"properties": p} for p in sample_contacts(101, start=10)]
    with pytest.raises(ApiException) as raised:
        client.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=too_many))
    assert raised.value.status == 400
    assert len(emulator.contacts()) == 3


def test_one_bad_input_fails_the_batch_unless_every_input_has_a_trace_id(
    emulator: HubSpotEmulator, client: Any
) -> None:
    existing = emulator.add_contact(sample_contact(1))
    inputs = [
        {"properties": sample_contact(2)},
        {"properties": sample_contact(3, email="PERSON1@example.com")},  # taken, in any case
    ]
    with pytest.raises(ApiException) as raised:
        client.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    assert raised.value.status == 409
    body = json.loads(raised.value.body)
    assert body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {existing}"
    assert len(emulator.contacts()) == 1  # nothing written

    traced = [dict(item, objectWriteTraceId=f"t{n}") for n, item in enumerate(inputs)]
    traced.append(
        {"properties": sample_contact(4, lifecyclestage="bogus"), "objectWriteTraceId": "t2"}
    )
    answer = client.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=traced))
    assert isinstance(answer, BatchResponseSimplePublicObjectWithErrors)
    assert answer.num_errors == 2
    assert [r.object_write_trace_id for r in answer.results] == ["t0"]
    errors = {e.context["objectWriteTraceId"][0]: e for e in answer.errors}
    assert errors["t1"].category == "CONFLICT"
    assert errors["t2"].category == "VALIDATION_ERROR"
    assert "bogus was not one of the allowed options" in errors["t2"].message
    assert len(emulator.contacts()) == 2


def test_lifecycle_stage_cannot_move_backwards_through_the_api_until_cleared(
    emulator: HubSpotEmulator, client: Any
) -> None:
    contact_id = emulator.add_contact(sample_contact(1, lifecyclestage="salesqualifiedlead"))

    def update(**props: str) -> dict[str, str]:
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": contact_id, "properties": props}]
        )
        return dict(client.batch_api.update(body).results[0].properties)

    back = update(lifecyclestage="lead", jobtitle="CTO")
    assert back["lifecyclestage"] == "salesqualifiedlead"  # kept, silently
    assert back["jobtitle"] == "CTO"  # the rest of the write lands
    assert update(lifecyclestage="customer")["lifecyclestage"] == "customer"
    update(lifecyclestage="")
    assert update(lifecyclestage="lead")["lifecyclestage"] == "lead"
    emulator.update_contact(contact_id, {"lifecyclestage": "subscriber"})  # the UI may
    assert emulator.get_contact(contact_id)["properties"]["lifecyclestage"] == "subscriber"  # type: ignore[index]


def test_a_portal_may_refuse_backward_lifecycle_moves_instead() -> None:
    with running_emulator(lifecycle_backward="refuse") as emulator:
        client = HubSpot(access_token=emulator.token, host=emulator.url, retry=Retry(0))
        contact_id = emulator.add_contact(sample_contact(1, lifecyclestage="customer"))
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": contact_id, "properties": {"lifecyclestage": "lead"}}]
        )
        with pytest.raises(ApiException) as raised:
            client.crm.contacts.batch_api.update(body)
        assert raised.value.status == 400
        assert (
            "cannot move backward from customer to lead" in json.loads(raised.value.body)["message"]
        )


def test_upsert_reports_new_and_finds_the_same_contact_on_replay(
    emulator: HubSpotEmulator, client: Any
) -> None:
    def upsert() -> Any:
        item = {"id": "00Q1", "idProperty": "syncd_salesforce_id", "properties": sample_contact(1)}
        return client.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[item]))

    first, second = upsert().results[0], upsert().results[0]
    assert (first.new, second.new) == (True, False)
    assert first.id == second.id
    assert first.properties["syncd_salesforce_id"] == "00Q1"
    assert len(emulator.contacts()) == 1


def test_batch_read_reports_unknown_ids_as_207(emulator: HubSpotEmulator, client: Any) -> None:
    known = emulator.add_contact(sample_contact(1))
    request = BatchReadInputSimplePublicObjectId(
        inputs=[{"id": known}, {"id": "999999"}], properties=["email"], properties_with_history=[]
    )
    answer = client.batch_api.read(request)
    assert isinstance(answer, BatchResponseSimplePublicObjectWithErrors)
    assert [c.id for c in answer.results] == [known]
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    assert answer.errors[0].context["ids"] == ["999999"]


def test_batch_archive_answers_204_and_lists_archived_apart(
    emulator: HubSpotEmulator, client: Any
) -> None:
    ids = emulator.seed_contacts(3)
    assert client.batch_api.archive(BatchInputSimplePublicObjectId(inputs=[{"id": ids[1]}])) is None
    assert [c.id for c in client.basic_api.get_page().results] == [ids[0], ids[2]]
    archived = client.basic_api.get_page(archived=True).results
    assert [c.id for c in archived] == [ids[1]] and archived[0].archived
    assert archived[0].archived_at is not None


def test_lastmodifieddate_strictly_increases_across_writes(emulator: HubSpotEmulator) -> None:
    first = emulator.add_contact(sample_contact(1))
    second = emulator.add_contact(sample_contact(2))
    emulator.update_contact(first, {"jobtitle": "CEO"})
    stamps = [emulator.get_contact(i)["properties"]["lastmodifieddate"] for i in (second, first)]  # type: ignore[index]
    assert stamps[0] < stamps[1]
    tied = emulator.seed_contacts(5, same_instant=True)
    assert len({emulator.get_contact(i)["updatedAt"] for i in tied}) == 1  # type: ignore[index]


def test_rate_limit_answers_429_with_retry_after_and_headers() -> None:
    with running_emulator(rate_limit=(2, 10_000)) as emulator:
        status, _, headers = http(emulator, "GET", "/crm/v3/objects/contacts")
        assert status == 200
        assert headers["X-HubSpot-RateLimit-Max"] == "2"
        assert headers["X-HubSpot-RateLimit-Remaining"] == "1"
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        assert "X-HubSpot-RateLimit-Daily-Remaining" in headers
        status, _, headers = http(emulator, "POST", "/crm/v3/objects/contacts/search", {})
        assert status == 200 and "X-HubSpot-RateLimit-Max" not in headers  # search: none
        http(emulator, "GET", "/crm/v3/objects/contacts")
        status, body, headers = http(emulator, "GET", "/crm/v3/objects/contacts")
        assert status == 429
        assert body["errorType"] == "RATE_LIMIT"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert 1 <= int(headers["Retry-After"]) <= 10
        assert headers["X-HubSpot-RateLimit-Remaining"] == "0"
    with running_emulator(daily_limit=1) as emulator:
        http(emulator, "GET", "/crm/v3/objects/contacts")
        status, body, headers = http(emulator, "GET", "/crm/v3/objects/contacts")
        assert (status, body["policyName"]) == (429, "DAILY")
        assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


def test_search_has_its_own_limit_and_no_rate_limit_headers(emulator: HubSpotEmulator) -> None:
    answer = http(
        emulator,
        "POST",
        "/_emulator/rate_limit",
        {"search_max": 1, "search_interval_ms": 60_000},
        token=None,
    )
    assert answer[0] == 200
    assert http(emulator, "POST", "/crm/v3/objects/contacts/search", {})[0] == 200
    status, body, headers = http(emulator, "POST", "/crm/v3/objects/contacts/search", {})
    assert (status, body["policyName"]) == (429, "SECONDLY")
    assert "Retry-After" not in headers and "X-HubSpot-RateLimit-Max" not in headers
    assert http(emulator, "GET", "/crm/v3/objects/contacts")[0] == 200  # other calls unaffected


def test_injected_failures_and_call_counts(emulator: HubSpotEmulator, client: Any) -> None:
    emulator.fail_next(503, count=2, path_contains="search")
    emulator.fail_at_call(4, 500)
    statuses = [http(emulator, "POST", "/crm/v3/objects/contacts/search", {})[0] for _ in range(3)]
    statuses.append(http(emulator, "GET", "/crm/v3/objects/contacts")[0])
    statuses.append(http(emulator, "GET", "/crm/v3/objects/contacts")[0])
    assert statuses == [503, 503, 200, 500, 200]
    emulator.fail_next(429, retry_after=3)
    with pytest.raises(ApiException) as raised:
        client.basic_api.get_page()
    assert raised.value.status == 429 and raised.value.headers["Retry-After"] == "3"
    assert emulator.calls() == {
        "POST /crm/v3/objects/contacts/search": 3,
        "GET /crm/v3/objects/contacts": 3,
    }
    emulator.reset_calls()
    client.basic_api.get_by_id(emulator.add_contact(sample_contact(1)))
    assert emulator.calls() == {"GET /crm/v3/objects/contacts/{contactId}": 1}


def test_properties_api_lists_picklists_for_the_client(
    client: Any, emulator: HubSpotEmulator
) -> None:
    properties = HubSpot(access_token=emulator.token, host=emulator.url).crm.properties
    listed = {p.name: p for p in properties.core_api.get_all("contacts").results}
    assert [o.value for o in listed["lifecyclestage"].options][:2] == ["subscriber", "lead"]
    assert "BAD_TIMING" in {o.value for o in listed["hs_lead_status"].options}
    assert "Trade Show" in {o.value for o in listed["lead_source"].options}
    assert listed["syncd_salesforce_id"].has_unique_value is True
    assert listed["email"].type == "string"


def test_control_api_drives_the_emulator_without_a_token(emulator: HubSpotEmulator) -> None:
    assert http(emulator, "POST", "/_emulator/seed", {"contacts": 4}, token=None)[1]["count"] == 4
    status, added, _ = http(emulator, "POST", "/_emulator/contacts", sample_contact(9), token=None)
    assert status == 201 and added["properties"]["email"] == "person9@example.com"
    path = f"/_emulator/contacts/{added['id']}"
    changed = http(emulator, "PATCH", path, {"properties": {"jobtitle": "Boss"}}, token=None)[1]
    assert changed["properties"]["jobtitle"] == "Boss"
    assert len(http(emulator, "GET", "/_emulator/contacts", token=None)[1]["results"]) == 5
    http(emulator, "POST", "/_emulator/fail", {"status": 502}, token=None)
    http(emulator, "POST", "/_emulator/latency", {"ms": 1}, token=None)
    assert http(emulator, "GET", "/crm/v3/objects/contacts")[0] == 502
    assert emulator.latency_ms == 1
    assert http(emulator, "GET", "/_emulator/calls", token=None)[1] == {
        "GET /crm/v3/objects/contacts": 1
    }
    http(emulator, "POST", "/_emulator/reset_calls", token=None)
    assert emulator.calls() == {}
    refused = http(emulator, "POST", "/_emulator/contacts", sample_contact(9), token=None)
    assert refused[0] == 400 and "already exists" in refused[1]["message"]


def test_module_runs_in_the_foreground_and_prints_its_url_first() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.hubspot.emulator",
            "--port",
            "0",
            "--seed-contacts",
            "7",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/_emulator/contacts", timeout=5) as response:
            assert len(json.load(response)["results"]) == 7
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_which_batch_writes_answer_per_input_is_switched_from_the_control_api(
    emulator: HubSpotEmulator,
) -> None:
    assert emulator.store.multi_status == frozenset({"create"})  # HubSpot's documented one
    body = {"endpoints": ["create", "update", "associations"]}
    assert http(emulator, "POST", "/_emulator/multi_status", body, token=None)[0] == 200
    assert emulator.store.multi_status == frozenset({"create", "update"})
    assert emulator.links.multi_status
    refused = http(emulator, "POST", "/_emulator/multi_status", {"endpoints": ["x"]}, token=None)
    assert refused[0] == 400


def _paged_by_id(client: Any, groups: list[dict[str, Any]]) -> list[tuple[list[str], bool]]:
    """Each page of an id-keyset scan (ids, whether paging.next was there), to the end."""
    pages, last = [], "0"
    by_id = [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
    while True:
        keyed = [
            {
                "filters": [
                    *g["filters"],
                    {"propertyName": "hs_object_id", "operator": "GT", "value": last},
                ]
            }
            for g in groups
        ]
        answer = search(client, groups=keyed, sorts=by_id, limit=7)
        ids = [c.id for c in answer.results]
        pages.append((ids, answer.paging is not None))
        if not ids or answer.paging is None:
            return pages
        last = ids[-1]


def test_or_windows_paged_by_id_walk_the_ids_and_answer_as_the_full_search(
    emulator: HubSpotEmulator, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = emulator.seed_contacts(60)
    for i in ids[10:20] + ids[40:45]:
        emulator.update_contact(i, {"jobtitle": "Edited"})
    edited = emulator.contacts()
    stamp = {str(c["id"]): c["properties"]["lastmodifieddate"] for c in edited}
    cut = stamp[ids[39]]  # the seed's window and the edits' window, OR'ed (a scan, a lookback)
    groups = [
        {"filters": [{"propertyName": "lastmodifieddate", "operator": "LTE", "value": cut}]},
        {"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": cut}]},
    ]
    calls = []
    walk = emulator_search._walk_ids
    monkeypatch.setattr(
        emulator_search, "_walk_ids", lambda *a: calls.append(walk(*a)) or calls[-1]
    )
    walked = _paged_by_id(client, groups)
    assert len(calls) == 9 and all(c is not None for c in calls)  # every page was walked
    monkeypatch.setattr(emulator_search, "_walk_ids", lambda *_: None)  # gather, sort, filter
    assert walked == _paged_by_id(client, groups)
    assert [i for page, _ in walked for i in page] == sorted(ids, key=int)
    assert [more for _, more in walked] == [True] * 8 + [False]  # 60 = 8 x 7 + 4: no extra call
