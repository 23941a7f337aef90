"""The pure three-way merge, with plain values and hypothesis."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from syncd.config.settings import FieldRule
from syncd.model import RecordRef, normalize
from syncd.sync.closed_loop import plan_stage_move
from syncd.sync.reconcile import (
    CRM,
    KEPT_STAGE,
    UNMAPPED,
    LinkState,
    at_base,
    join_ids,
    pair_group,
    plan_pair,
    same_base,
    settles,
    split_ids,
    stage_text,
    union,
)
from tests.factories import T0, hubspot, rules, salesforce

LINK = LinkState(
    7,
    RecordRef("hubspot", "contacts", "1"),
    RecordRef("salesforce", "Lead", "00Q1"),
    {"email": "a@x.com", "first_name": "Ann", "phone": "1", "title": "CTO", "lead_source": "Web"},
    "mql",
)
SYNCED = {
    "email": "a@x.com",
    "first_name": "Ann",
    "phone": "1",
    "title": "CTO",
    "lead_source": "Web",
}
HS_MQL = {"lifecyclestage": "marketingqualifiedlead"}
SF_MQL = {"Status": "Marketing Qualified"}


def test_a_change_on_one_side_flows_to_the_other_only() -> None:
    m = hubspot("1", 5, HS_MQL, "00Q1", **{**SYNCED, "title": "CEO"})
    plan = plan_pair("k", LINK, m, None, rules())
    assert plan.crm_change is not None and plan.crm_change.fields == {"title": "CEO"}
    assert plan.crm_change.id == "00Q1" and plan.crm_change.op == "update"
    assert plan.marketing_change is None
    assert plan.base["title"] == "CEO"


def test_edits_to_different_fields_on_both_sides_both_survive() -> None:
    m = hubspot("1", 5, HS_MQL, "00Q1", **{**SYNCED, "title": "CEO"})
    c = salesforce("00Q1", 6, SF_MQL, "1", **{**SYNCED, "phone": "2"})
    plan = plan_pair("k", LINK, m, c, rules())
    assert plan.crm_change is not None and plan.crm_change.fields == {"title": "CEO"}
    assert plan.marketing_change is not None and plan.marketing_change.fields == {"phone": "2"}
    assert not plan.conflicts


def test_same_field_conflict_follows_each_rule() -> None:
    # phone: crm wins; lead_source: marketing wins; title: latest change wins (crm is later)
    m = hubspot(
        "1",
        5,
        HS_MQL,
        "00Q1",
        **{**SYNCED, "phone": "m", "lead_source": "Webinar", "title": "m-title"},
    )
    c = salesforce(
        "00Q1",
        9,
        SF_MQL,
        "1",
        **{**SYNCED, "phone": "c", "lead_source": "Partner", "title": "c-title"},
    )
    plan = plan_pair("k", LINK, m, c, rules())
    winners = {x.field: x.winner for x in plan.conflicts}
    assert winners == {"phone": "crm", "lead_source": "marketing", "title": "crm"}
    assert plan.base["phone"] == "c" and plan.base["lead_source"] == "Webinar"
    assert plan.base["title"] == "c-title"
    assert plan.crm_change is not None and plan.crm_change.fields == {"lead_source": "Webinar"}
    assert plan.marketing_change is not None
    assert plan.marketing_change.fields == {"phone": "c", "title": "c-title"}


def test_latest_rule_picks_the_later_marketing_edit() -> None:
    m = hubspot("1", 30, HS_MQL, "00Q1", **{**SYNCED, "title": "late"})
    c = salesforce("00Q1", 10, SF_MQL, "1", **{**SYNCED, "title": "early"})
    plan = plan_pair("k", LINK, m, c, rules())
    assert plan.base["title"] == "late"
    assert plan.crm_change is not None and plan.crm_change.fields == {"title": "late"}


def test_a_blank_does_not_overwrite_unless_allowed() -> None:
    m = hubspot("1", 5, HS_MQL, "00Q1", **{**SYNCED, "phone": None})
    plan = plan_pair("k", LINK, m, None, rules())
    assert plan.crm_change is None and plan.base["phone"] == "1"
    allowed = rules(phone=FieldRule(blank_overwrites=True))
    plan = plan_pair("k", LINK, m, None, allowed)
    assert plan.crm_change is not None and plan.crm_change.fields == {"phone": None}


def test_direction_keeps_a_field_from_flowing_back() -> None:
    link = LinkState(7, LINK.marketing, LINK.crm, {**SYNCED, "score": "10"}, "mql")
    c = salesforce("00Q1", 5, SF_MQL, "1", **{**SYNCED, "score": "99"})
    assert plan_pair("k", link, None, c, rules()).marketing_change is None
    m = hubspot("1", 5, HS_MQL, "00Q1", **{**SYNCED, "score": "50"})
    plan = plan_pair("k", link, m, None, rules())
    assert plan.crm_change is not None and plan.crm_change.fields == {"score": "50"}


def test_a_new_marketing_person_is_created_in_the_crm_keyed_on_its_id() -> None:
    m = hubspot("42", 0, HS_MQL, None, email="new@x.com", first_name="Nu", phone=None)
    plan = plan_pair("k", LinkState(None, m.ref, None), m, None, rules())
    change = plan.crm_change
    assert change is not None and change.op == "create" and change.kind == "Lead"
    assert change.partner_id == "42"
    assert change.fields == {"email": "new@x.com", "first_name": "Nu"}  # no blank sent
    assert change.stage == {"Status": "Marketing Qualified"}
    assert [t.to_stage for t in plan.transitions] == ["mql"]


def test_stage_moves_forward_but_not_backward() -> None:
    forward = plan_pair(
        "k", LINK, None, salesforce("00Q1", 5, {"Status": "Qualified"}, "1", **SYNCED), rules()
    )
    assert forward.stage == "sql"
    assert forward.marketing_change is not None
    assert forward.marketing_change.stage == {
        "lifecyclestage": "salesqualifiedlead",
        "hs_lead_status": "",
    }
    backward = plan_pair(
        "k",
        LINK,
        None,
        salesforce("00Q1", 5, {"Status": "Open - Not Contacted"}, "1", **SYNCED),
        rules(),
    )
    assert backward.stage == "mql" and backward.marketing_change is None
    assert any("refused" in note for note in backward.notes)


def test_a_recycle_stage_may_be_entered_and_left() -> None:
    recycled = plan_pair(
        "k", LINK, None, salesforce("00Q1", 5, {"Status": "Nurture"}, "1", **SYNCED), rules()
    )
    assert recycled.stage == "nurture"
    assert recycled.marketing_change is not None
    assert recycled.marketing_change.stage == {
        "lifecyclestage": "lead",
        "hs_lead_status": "BAD_TIMING",
    }
    nurtured = LinkState(7, LINK.marketing, LINK.crm, SYNCED, "nurture")
    requalified = plan_pair(
        "k",
        nurtured,
        None,
        salesforce("00Q1", 9, {"Status": "Marketing Qualified"}, "1", **SYNCED),
        rules(),
    )
    assert requalified.stage == "mql"
    assert [(t.from_stage, t.to_stage) for t in requalified.transitions] == [("nurture", "mql")]


def test_a_deleted_record_or_tombstoned_link_writes_nothing() -> None:
    gone = salesforce("00Q1", 5, SF_MQL, "1", **SYNCED)
    gone = type(gone)(gone.ref, gone.fields, gone.modified_at, gone.stage, gone.partner_id, True)
    assert plan_pair("k", LINK, None, gone, rules()).skip == "deleted in salesforce"
    tomb = LinkState(7, LINK.marketing, LINK.crm, SYNCED, "mql", tombstoned=True)
    plan = plan_pair("k", tomb, hubspot("1", 5, HS_MQL, **SYNCED), None, rules())
    assert plan.skip == "link tombstoned" and not plan.changes


def test_pairing_keeps_the_oldest_and_reports_the_rest_as_duplicates() -> None:
    a, b = salesforce("00Q1", 1, email="x@x.com"), salesforce("00Q2", 2, email="X@x.com")
    m = hubspot("1", 3, email="x@x.com")
    pairs, duplicates = pair_group([m], [b, a], None)
    assert pairs == [(m, a)] and duplicates == [b]
    pairs, duplicates = pair_group([m], [], LINK)
    assert pairs == [] and duplicates == [m]


values = st.one_of(st.none(), st.text(max_size=5))
NAMES = ["first_name", "phone", "title", "lead_source"]
sides = st.fixed_dictionaries({n: values for n in NAMES})


@given(base=sides, m=sides, c=sides, m_minutes=st.integers(0, 60), c_minutes=st.integers(0, 60))
def test_replaying_the_outcome_plans_no_writes(base, m, c, m_minutes, c_minutes) -> None:
    """Once both sides hold what the plan wrote, a second run writes nothing."""
    link = LinkState(7, LINK.marketing, LINK.crm, {**base, "email": "a@x.com"}, "mql")
    m_rec = hubspot("1", m_minutes, HS_MQL, "00Q1", email="a@x.com", **m)
    c_rec = salesforce("00Q1", c_minutes, SF_MQL, "1", email="a@x.com", **c)
    plan = plan_pair("k", link, m_rec, c_rec, rules())
    m_after = {**m, **(plan.marketing_change.fields if plan.marketing_change else {})}
    c_after = {**c, **(plan.crm_change.fields if plan.crm_change else {})}
    again = plan_pair(
        "k",
        LinkState(7, LINK.marketing, LINK.crm, plan.base, plan.stage),
        hubspot("1", 90, HS_MQL, "00Q1", email="a@x.com", **m_after),
        salesforce("00Q1", 91, SF_MQL, "1", email="a@x.com", **c_after),
        rules(),
    )
    assert again.changes == []
    assert not again.conflicts


@given(
    base=st.text(min_size=1, max_size=4),
    m_new=st.text(min_size=1, max_size=4),
    c_new=st.text(min_size=1, max_size=4),
)
def test_edits_to_different_fields_both_survive(base, m_new, c_new) -> None:
    link = LinkState(
        7, LINK.marketing, LINK.crm, {"email": "a@x.com", "title": base, "first_name": base}, "mql"
    )
    m = hubspot("1", 1, HS_MQL, "00Q1", email="a@x.com", title=m_new, first_name=base)
    c = salesforce("00Q1", 2, SF_MQL, "1", email="a@x.com", title=base, first_name=c_new)
    plan = plan_pair("k", link, m, c, rules())
    assert plan.base["title"] == m_new and plan.base["first_name"] == c_new
    assert not plan.conflicts


def test_a_new_pair_sharing_a_native_value_is_no_stage_conflict() -> None:
    shared = rules()
    m = hubspot("1", 9, {"lifecyclestage": "lead"}, None, email="a@x.com")
    c = salesforce("00Q1", 1, {"Status": "Open - Not Contacted"}, None, email="a@x.com")
    plan = plan_pair("k", LinkState(None, m.ref, c.ref), m, c, shared)
    assert plan.stage == "lead" and not plan.notes
    assert plan.crm_change is not None and plan.crm_change.stage == {}


def test_a_native_stage_outside_the_vocabulary_is_never_overwritten() -> None:
    m = hubspot("1", 1, {"lifecyclestage": "customer"}, None, email="a@x.com")
    c = salesforce("00Q1", 2, {"Status": "Open - Not Contacted"}, "1", email="a@x.com")
    plan = plan_pair("k", LinkState(None, m.ref, c.ref), m, c, rules())
    assert plan.marketing_change is None or plan.marketing_change.stage == {}
    assert plan.crm_change is None or plan.crm_change.stage == {}
    assert plan.transitions == () and plan.stage == UNMAPPED
    assert any("no stage of the vocabulary" in note for note in plan.notes)
    # Later, the CRM side read alone (its echo, say) must not overwrite that stage.
    link = LinkState(3, m.ref, c.ref, plan.base, plan.stage)
    alone = plan_pair(
        "k",
        link,
        None,
        salesforce("00Q1", 9, {"Status": "Qualified"}, "1", email="a@x.com"),
        rules(),
    )
    assert alone.marketing_change is None and alone.stage == UNMAPPED
    # Both read together once HubSpot holds a known stage again: stages merge anew.
    both = plan_pair(
        "k",
        link,
        hubspot("1", 10, HS_MQL, "00Q1", email="a@x.com"),
        salesforce("00Q1", 9, {"Status": "Qualified"}, "1", email="a@x.com"),
        rules(),
    )
    assert both.stage in {"mql", "sql"} and both.transitions


STAGE_VALUES = st.sampled_from(
    [
        {},
        HS_MQL,
        {"lifecyclestage": "lead"},
        {"lifecyclestage": "customer"},
        {"lifecyclestage": "lead", "hs_lead_status": "BAD_TIMING"},
    ]
)


@given(
    base=sides,
    held=sides,
    stage=STAGE_VALUES,
    link_stage=st.sampled_from([None, "mql", "lead", "nurture", UNMAPPED]),
    partner=st.sampled_from(["00Q1", None, "00Q2"]),
)
def test_the_quick_at_base_test_never_disagrees_with_the_merge(
    base, held, stage, link_stage, partner
) -> None:
    """Where ``at_base`` says a record changes nothing, the full merge agrees."""
    link = LinkState(7, LINK.marketing, LINK.crm, {**base, "email": "a@x.com"}, link_stage)
    record = hubspot("1", 5, stage, partner, email="a@x.com", **held)
    if at_base(record, link, rules()):
        plan = plan_pair("k", link, record, None, rules())
        assert plan.changes == [] and plan.transitions == ()
        assert same_base(plan.base, link.base) and plan.stage == link.stage


@given(
    base=sides,
    held=sides,
    stage=STAGE_VALUES,
    link_stage=st.sampled_from([None, "mql", "lead", "nurture", UNMAPPED]),
    partner=st.sampled_from(["00Q1", None, "00Q2"]),
)
def test_at_base_agrees_with_the_merge_where_hubspot_waits_for_the_next_update(
    base, held, stage, link_stage, partner
) -> None:
    link = LinkState(7, LINK.marketing, LINK.crm, {**base, "email": "a@x.com"}, link_stage)
    record = hubspot("1", 5, stage, partner, email="a@x.com", **held)
    waits = replace(rules(), deferred=frozenset({"hubspot"}))
    if at_base(record, link, waits):
        plan = plan_pair("k", link, record, None, waits)
        assert plan.changes == [] and plan.transitions == ()
        assert same_base(plan.base, link.base) and plan.stage == link.stage


def test_a_record_naming_no_partner_settles_where_its_system_waits() -> None:
    waits = replace(rules(), deferred=frozenset({"hubspot"}))
    unnamed = hubspot("1", 5, HS_MQL, None, **SYNCED)
    assert at_base(unnamed, LINK, waits) and settles(waits, unnamed, LINK, "marketing")
    assert not settles(rules(), unnamed, LINK, "marketing")  # immediate: it is told
    told = plan_pair("k", LINK, unnamed, None, rules()).marketing_change
    assert told is not None and (told.fields, told.partner_id) == ({}, "00Q1")
    assert plan_pair("k", LINK, unnamed, None, waits).changes == []
    # a Salesforce record naming no partner is still told: only HubSpot waits
    lead = salesforce("00Q1", 5, SF_MQL, None, **SYNCED)
    assert not at_base(lead, LINK, waits) and not settles(waits, lead, LINK, "crm")


def test_a_wrong_partner_id_is_corrected_even_where_the_system_waits() -> None:
    waits = replace(rules(), deferred=frozenset({"hubspot"}))
    stale = hubspot("1", 5, HS_MQL, "00Q9", **SYNCED)  # e.g. the lead before a conversion
    assert not at_base(stale, LINK, waits)
    change = plan_pair("k", LINK, stale, None, waits).marketing_change
    assert change is not None and change.partner_id == "00Q1"


def test_an_update_made_anyway_carries_the_partner_id_that_waited() -> None:
    waits = replace(rules(), deferred=frozenset({"hubspot"}))
    unnamed = hubspot("1", 5, HS_MQL, None, **SYNCED)
    edited = salesforce("00Q1", 6, SF_MQL, "1", **{**SYNCED, "phone": "2"})
    change = plan_pair("k", LINK, unnamed, edited, waits).marketing_change
    assert change is not None and (change.fields, change.partner_id) == ({"phone": "2"}, "00Q1")


def test_at_base_recognises_an_echo_and_nothing_else() -> None:
    echo = hubspot("1", 5, HS_MQL, "00Q1", **SYNCED)
    assert at_base(echo, LINK, rules())
    assert not at_base(hubspot("1", 5, HS_MQL, "00Q1", **{**SYNCED, "title": "CEO"}), LINK, rules())
    assert not at_base(hubspot("1", 5, HS_MQL, None, **SYNCED), LINK, rules())  # no partner id
    assert not at_base(
        hubspot("1", 5, {"lifecyclestage": "salesqualifiedlead"}, "00Q1", **SYNCED), LINK, rules()
    )


def test_a_record_already_holding_its_stage_gets_no_stage_write() -> None:
    """A HubSpot lead with lead status NEW is a lead: no write clears its status."""
    m = hubspot("1", 0, {"lifecyclestage": "lead", "hs_lead_status": "NEW"}, None, email="a@x.com")
    plan = plan_pair("k", LinkState(None, m.ref, None), m, None, rules())
    assert plan.stage == "lead" and plan.marketing_change is None
    assert plan.crm_change is not None
    assert plan.crm_change.stage == {"Status": "Open - Not Contacted"}


@given(st.sets(st.integers(1, 50)), st.sets(st.integers(1, 50)), st.sets(st.integers(1, 50)))
def test_associations_merge_as_the_union_of_both_sides(
    base: set[int], m: set[int], c: set[int]
) -> None:
    contacts = FieldRule(type="refs", target="person")
    link = LinkState(7, LINK.marketing, LINK.crm, {"contacts": join_ids(map(str, base))}, "mql")
    marketing = hubspot("1", 5, HS_MQL, "00Q1", contacts=join_ids(map(str, m)))
    crm = salesforce("00Q1", 5, SF_MQL, "1", contacts=join_ids(map(str, c)))
    plan = plan_pair("k", link, marketing, crm, rules(contacts=contacts))
    assert plan.base["contacts"] == join_ids(str(i) for i in m | c)
    for change, side in ((plan.marketing_change, m), (plan.crm_change, c)):
        wanted = change.fields.get("contacts") if change else None
        assert wanted == (join_ids(str(i) for i in m | c) if side != m | c else None)


def test_ids_join_in_numeric_order_without_repeats() -> None:
    assert join_ids(["10", "9", "10", "100"]) == "9,10,100"
    assert split_ids(union("3,1", None, "2,3")) == ["1", "2", "3"] and union(None, "") is None


def test_a_stage_move_by_rule_writes_both_sides_and_records_its_reason() -> None:
    source = RecordRef("salesforce", "Opportunity", "006A")
    plan = plan_stage_move("loop:7", LINK, "nurture", T0, source, rules(), "deal lost: Price")
    assert plan.marketing_change is not None and plan.crm_change is not None
    assert plan.marketing_change.stage == {"lifecyclestage": "lead", "hs_lead_status": "BAD_TIMING"}
    assert plan.crm_change.stage == {"Status": "Nurture"}
    (transition,) = plan.transitions
    assert (transition.from_stage, transition.to_stage, transition.reason) == (
        "mql",
        "nurture",
        "deal lost: Price",
    )
    assert plan.stage == "nurture" and plan.base == LINK.base


def test_a_stage_move_by_rule_never_undoes_a_later_stage() -> None:
    source = RecordRef("salesforce", "Opportunity", "006A")
    customer = LinkState(7, LINK.marketing, LINK.crm, LINK.base, "sql")
    kept = plan_stage_move("k", customer, "nurture", T0, source, rules(), "lost", keep_from="sql")
    assert kept.changes == [] and kept.stage == "sql" and not kept.transitions
    backwards = plan_stage_move("k", customer, "mql", T0, source, rules(), "odd")
    assert backwards.changes == [] and backwards.stage == "sql"
    there = plan_stage_move("k", LINK, "mql", T0, source, rules(), "same")
    assert there.changes == [] and not there.transitions


def test_websites_read_as_their_domain() -> None:
    assert normalize("https://www.Acme.com/about?x=1", "domain") == "acme.com"
    assert normalize("acme.com:8443", "domain") == "acme.com"
    assert normalize("  ", "domain") is None and normalize("WWW.globex.io", "domain") == "globex.io"


def test_a_stage_the_crm_could_not_be_given_leaves_its_stale_value_unread() -> None:
    """The lead kept "Nurture" when its pair moved on (a converted status is never
    written to a lead): reading that value again is no move back into nurture."""
    kept = {**SYNCED, KEPT_STAGE[CRM]: stage_text({"Status": "Nurture"})}
    link = LinkState(7, LINK.marketing, LINK.crm, kept, "sql")
    stale = salesforce("00Q1", 5, {"Status": "Nurture"}, "1", **{**SYNCED, "phone": "2"})
    plan = plan_pair("k", link, None, stale, rules())
    assert plan.stage == "sql" and plan.transitions == ()
    assert plan.marketing_change is not None and plan.marketing_change.stage == {}
    assert at_base(salesforce("00Q1", 5, {"Status": "Nurture"}, "1", **SYNCED), link, rules())
    # a new value the CRM side sets is read again
    moved = salesforce("00Q1", 6, {"Status": "Nurture"}, "1", **SYNCED)
    fresh = LinkState(7, LINK.marketing, LINK.crm, SYNCED, "sql")
    assert plan_pair("k", fresh, None, moved, rules()).stage == "nurture"
