"""The HubSpot emulator's companies, deals, pipelines and v4 associations, over real HTTP
through the official client (hubspot-api-client 12)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import ApiException as AssociationsApiException
from hubspot.crm.associations.v4 import (
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    BatchResponseLabelsBetweenObjectPair,
    BatchResponseLabelsBetweenObjectPairWithErrors,
    BatchResponsePublicAssociationMultiWithLabel,
    BatchResponsePublicAssociationMultiWithLabelWithErrors,
)
from hubspot.crm.companies import ApiException as CompanyApiException
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInputUpsert as CompanyUpsert,
)
from hubspot.crm.deals import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchReadInputSimplePublicObjectId,
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicObjectWithErrors,
    PublicObjectSearchRequest,
)
from urllib3.util.retry import Retry

from connectors.hubspot.emulator.server import HubSpotEmulator
from connectors.hubspot.testing import running_emulator


@pytest.fixture
def emulator() -> Iterator[HubSpotEmulator]:
    with running_emulator() as running:
        yield running


@pytest.fixture
def crm(emulator: HubSpotEmulator) -> Any:
    return HubSpot(access_token=emulator.token, host=emulator.url, retry=Retry(0)).crm


def deal(n: int, **properties: str) -> dict[str, str]:
    values = {"dealname": f"Deal {n}", "amount": str(1000 * n), "dealstage": "qualifiedtobuy"}
    values.update(properties)
    return values


def test_pipelines_list_stage_ids_with_closed_and_probability_metadata(crm: Any) -> None:
    pipelines = crm.pipelines.pipelines_api.get_all("deals").results
    default = next(p for p in pipelines if p.id == "default")
    assert default.label == "Sales Pipeline"
    stages = {s.id: s.metadata for s in default.stages}
    assert list(stages) == [
        "appointmentscheduled",
        "qualifiedtobuy",
        "presentationscheduled",
        "decisionmakerboughtin",
        "contractsent",
        "closedwon",
        "closedlost",
    ]
    assert stages["closedwon"] == {"isClosed": "true", "probability": "1.0"}
    assert stages["closedlost"]["isClosed"] == "true"
    assert stages["appointmentscheduled"] == {"isClosed": "false", "probability": "0.2"}
    other = next(p for p in pipelines if p.id != "default")
    assert all(s.id.isdigit() for s in other.stages)
    assert not set(stages) & {s.id for s in other.stages}
    one = crm.pipelines.pipelines_api.get_by_id("deals", other.id)
    assert [s.id for s in one.stages] == [s.id for s in other.stages]
    names = {p.name: p for p in crm.properties.core_api.get_all("deals").results}
    assert names["dealstage"].type == "enumeration"
    assert names["syncd_salesforce_id"].has_unique_value
    assert names["hs_lastmodifieddate"].modification_metadata.read_only_value


def test_deal_batch_create_201_and_a_stage_outside_the_pipeline(
    emulator: HubSpotEmulator, crm: Any
) -> None:
    renewal_stage = crm.pipelines.pipelines_api.get_by_id("deals", "renewals").stages[0].id
    created = crm.deals.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                {"properties": deal(1), "associations": []},
                {"properties": deal(2, pipeline="renewals", dealstage=renewal_stage)},
            ]
        )
    )
    assert isinstance(created, BatchResponseSimplePublicObject)  # 201 parsed
    assert [d.properties["pipeline"] for d in created.results] == ["default", "renewals"]
    assert created.results[0].properties["hs_lastmodifieddate"]

    bad = deal(3, pipeline="renewals", dealstage="closedwon")  # a default-pipeline stage
    with pytest.raises(ApiException) as raised:  # without trace ids: the whole batch fails
        crm.deals.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[{"properties": deal(4)}, {"properties": bad}]
            )
        )
    assert raised.value.status == 400
    body = json.loads(raised.value.body)
    assert body["category"] == "VALIDATION_ERROR" and "closedwon" in body["message"]
    assert len(emulator.deals()) == 2

    partial = crm.deals.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                {"properties": deal(4), "objectWriteTraceId": "t4"},
                {"properties": bad, "objectWriteTraceId": "t3"},
            ]
        )
    )
    assert isinstance(partial, BatchResponseSimplePublicObjectWithErrors)  # 207
    assert [d.properties["dealname"] for d in partial.results] == ["Deal 4"]
    assert partial.errors[0].context["propertyName"] == ["dealstage"]
    assert partial.errors[0].context["objectWriteTraceId"] == ["t3"]
    assert len(emulator.deals()) == 3


def test_deal_batch_update_checks_the_stage_against_the_stored_pipeline(
    emulator: HubSpotEmulator, crm: Any
) -> None:
    default_deal = emulator.add_deal(deal(1))
    renewal = emulator.add_deal(deal(2, pipeline="renewals", dealstage="71840211"))
    both = BatchInputSimplePublicObjectBatchInput(
        inputs=[
            {
                "id": default_deal,
                "properties": {"dealstage": "closedwon"},
                "objectWriteTraceId": "a",
            },
            {"id": renewal, "properties": {"dealstage": "closedlost"}, "objectWriteTraceId": "b"},
        ]
    )
    with pytest.raises(ApiException) as refused:  # batch update: all or nothing
        crm.deals.batch_api.update(both)
    assert refused.value.status == 400 and "closedlost" in refused.value.body
    assert emulator.get_deal(default_deal)["properties"]["dealstage"] != "closedwon"  # type: ignore[index]
    emulator.set_multi_status("create", "update")
    answer = crm.deals.batch_api.update(both)
    assert isinstance(answer, BatchResponseSimplePublicObjectWithErrors)
    assert [d.id for d in answer.results] == [default_deal]
    assert answer.errors[0].context["objectWriteTraceId"] == ["b"]
    assert emulator.get_deal(renewal)["properties"]["dealstage"] == "71840211"  # type: ignore[index]
    assert emulator.get_deal(default_deal)["properties"]["dealstage"] == "closedwon"  # type: ignore[index]
    ok = crm.deals.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                {"id": renewal, "properties": {"pipeline": "default", "dealstage": "closedlost"}}
            ]
        )
    )
    assert isinstance(ok, BatchResponseSimplePublicObject)
    assert ok.results[0].properties["pipeline"] == "default"
    with pytest.raises(ValueError, match="not a valid deal stage"):
        emulator.update_deal(renewal, {"pipeline": "renewals"})  # closedlost is not a renewal stage


def test_deal_search_on_hs_lastmodifieddate_pages_in_order(
    emulator: HubSpotEmulator, crm: Any
) -> None:
    emulator.seed_deals(5)
    since = emulator.get_deal(emulator.seed_deals(1)[0])["properties"]["hs_lastmodifieddate"]  # type: ignore[index]
    later = emulator.seed_deals(24)
    emulator.update_deal(later[0], {"amount": "5"})  # moves to the end of the scan
    expected = [*later[1:], later[0]]
    seen, after = [], None
    while True:
        page = crm.deals.search_api.do_search(
            PublicObjectSearchRequest(
                filter_groups=[
                    {
                        "filters": [
                            {
                                "propertyName": "hs_lastmodifieddate",
                                "operator": "GT",
                                "value": since,
                            }
                        ]
                    }
                ],
                sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
                properties=["dealname", "dealstage"],
                limit=10,
                after=after,
            )
        )
        assert page.total == 24
        seen += [d.id for d in page.results]
        assert all(d.properties["hs_lastmodifieddate"] > since for d in page.results)
        if not page.paging:
            break
        after = page.paging.next.after
    assert seen == expected
    keyset = crm.deals.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": "hs_object_id", "operator": "GT", "value": later[-3]}
                    ]
                }
            ],
            sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            limit=10,
        )
    )
    assert [d.id for d in keyset.results] == later[-2:]
    assert "POST /crm/v3/objects/deals/search" in emulator.calls()


def test_deal_batch_read_and_upsert_by_salesforce_id(emulator: HubSpotEmulator, crm: Any) -> None:
    known = emulator.add_deal(deal(1, syncd_salesforce_id="006A"))
    read = crm.deals.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": known}, {"id": "1"}], properties=["dealname"], properties_with_history=[]
        )
    )
    assert isinstance(read, BatchResponseSimplePublicObjectWithErrors)
    assert [d.id for d in read.results] == [known]
    assert read.errors[0].context["ids"] == ["1"] and "DEAL" in read.errors[0].message
    by_key = crm.deals.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": "006A"}],
            id_property="syncd_salesforce_id",
            properties=["dealname"],
            properties_with_history=[],
        )
    )
    assert [d.id for d in by_key.results] == [known]


def test_company_upsert_by_salesforce_id_creates_then_updates(
    emulator: HubSpotEmulator, crm: Any
) -> None:
    def upsert(name: str) -> Any:
        item = {"id": "001X", "idProperty": "syncd_salesforce_id", "properties": {"name": name}}
        return crm.companies.batch_api.upsert(CompanyUpsert(inputs=[item])).results[0]

    first, second = upsert("Acme"), upsert("Acme Corp")
    assert (first.new, second.new) == (True, False)
    assert first.id == second.id
    assert second.properties["name"] == "Acme Corp"
    assert second.properties["hs_lastmodifieddate"] > first.properties["hs_lastmodifieddate"]
    assert "lastmodifieddate" not in second.properties
    (stored,) = emulator.companies()
    assert stored["properties"]["syncd_salesforce_id"] == "001X"
    other = emulator.add_company({"name": "Globex", "domain": "globex.example"})
    with pytest.raises(CompanyApiException) as raised:
        crm.companies.basic_api.update(other, {"properties": {"syncd_salesforce_id": "001X"}})
    assert raised.value.status == 409
    assert "company with the value 001X" in json.loads(raised.value.body)["message"]
    page = crm.companies.basic_api.get_page(limit=1, properties=["domain"])
    assert page.results[0].properties["domain"] is None and page.paging.next.after


def test_associations_are_created_and_read_both_ways(emulator: HubSpotEmulator, crm: Any) -> None:
    contact = emulator.add_contact({"email": "ada@example.com"})
    company = emulator.add_company({"name": "Analytical Engines"})
    deal_id = emulator.add_deal(deal(1))
    batch = crm.associations.v4.batch_api
    spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}
    created = batch.create(
        "deals",
        "contacts",
        BatchInputPublicAssociationMultiPost(
            inputs=[{"from": {"id": deal_id}, "to": {"id": contact}, "types": [spec]}]
        ),
    )
    assert isinstance(created, BatchResponseLabelsBetweenObjectPair)  # 201
    assert created.results[0].from_object_type_id == "0-3"
    assert created.results[0].to_object_id == contact

    back = batch.get_page(
        "contacts", "deals", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": contact}])
    )
    assert isinstance(back, BatchResponsePublicAssociationMultiWithLabel)
    (result,) = back.results
    assert result._from.id == contact
    assert [t.to_object_id for t in result.to] == [deal_id]
    assert [(t.category, t.type_id) for t in result.to[0].association_types] == [
        ("HUBSPOT_DEFINED", 4)
    ]

    mixed_inputs = BatchInputPublicAssociationMultiPost(
        inputs=[
            {
                "from": {"id": deal_id},
                "to": {"id": company},
                "types": [{**spec, "associationTypeId": 341}],
            },
            {
                "from": {"id": deal_id},
                "to": {"id": "404"},
                "types": [{**spec, "associationTypeId": 341}],
            },
            # 3 is deal->contact, not a deal->company type
            {"from": {"id": deal_id}, "to": {"id": company}, "types": [spec]},
        ]
    )
    with pytest.raises(AssociationsApiException) as refused:  # one bad input: nothing made
        batch.create("deals", "companies", mixed_inputs)
    assert refused.value.status == 400 and "No companies with id 404" in refused.value.body
    assert emulator.associations("companies", company, "deals") == []
    emulator.set_multi_status("create", "associations")
    mixed = batch.create("deals", "companies", mixed_inputs)
    assert isinstance(mixed, BatchResponseLabelsBetweenObjectPairWithErrors)
    assert len(mixed.results) == 1 and len(mixed.errors) == 2
    assert emulator.associations("companies", company, "deals") == [deal_id]

    unknown = batch.get_page(
        "deals",
        "companies",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": deal_id}, {"id": "7"}]),
    )
    assert isinstance(unknown, BatchResponsePublicAssociationMultiWithLabelWithErrors)
    assert unknown.results[0].to[0].association_types[0].type_id == 341
    assert unknown.errors[0].context["ids"] == ["7"]

    assert (
        batch.archive(
            "contacts",
            "deals",
            BatchInputPublicAssociationMultiArchive(
                inputs=[{"from": {"id": contact}, "to": [{"id": deal_id}]}]
            ),
        )
        is None
    )
    assert emulator.associations("deals", deal_id, "contacts") == []
    assert emulator.associations("deals", deal_id, "companies") == [company]


def test_control_api_drives_companies_deals_and_associations(emulator: HubSpotEmulator) -> None:
    def control(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(emulator.url + "/_emulator/" + path, data, method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None

    status, seeded = control("POST", "seed", {"deals": 3, "companies": 2})
    assert status == 200 and seeded["deals"]["count"] == 3 and seeded["count"] == 0
    deal_id, company = seeded["deals"]["first"], seeded["companies"]["first"]
    status, created = control("POST", "deals", {"dealname": "Big", "dealstage": "contractsent"})
    assert status == 201 and created["properties"]["pipeline"] == "default"
    control("PATCH", f"deals/{deal_id}", {"properties": {"amount": "42"}})
    assert emulator.get_deal(deal_id)["properties"]["amount"] == "42"  # type: ignore[index]
    control(
        "POST",
        "associations",
        {"from_type": "companies", "from_id": company, "to_type": "deals", "to_id": deal_id},
    )
    status, linked = control("GET", f"associations/deals/{deal_id}/companies")
    assert linked == {"results": [company]}
    control("DELETE", f"companies/{company}")
    assert emulator.associations("deals", deal_id, "companies") == []  # archived: not returned
    assert len(control("GET", "deals")[1]["results"]) == 4
    assert emulator.calls() == {}  # control calls are not counted
