"""The person fields of ``syncd.sync.outcomes`` with plain values: what is written to a
person's marketing record beside (or instead of) its closed-loop stage move."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from syncd.model import Change, RecordRef
from syncd.sync import outcomes
from syncd.sync.reconcile import LinkState, PairPlan

AT = datetime(2026, 11, 20, 12, tzinfo=UTC)
LINK = LinkState(
    7, RecordRef("", "contacts", "101"), RecordRef("", "Contact", "003X"), {}, "customer"
)


def _stays(link: LinkState = LINK) -> PairPlan:
    return PairPlan("loop:7", link, None, None, base=link.base, stage=link.stage)


def test_a_person_who_stays_gets_an_update_of_the_outcome_fields_alone() -> None:
    plan = outcomes.with_person_fields(
        _stays(), LINK, {outcomes.REVENUE: "3500.5"}, outcomes.LastOutcome("won", AT)
    )
    change = plan.marketing_change
    assert change is not None and (change.op, change.kind, change.id) == (
        "update",
        "contacts",
        "101",
    )
    assert change.fields == {outcomes.REVENUE: "3500.5", outcomes.LAST_OUTCOME: "won"}
    assert change.partner_id == "003X" and plan.crm_change is None
    assert plan.base[outcomes.LAST_AT] == AT.isoformat()


def test_the_fields_join_the_stage_move_in_one_change() -> None:
    move = Change("update", "contacts", "loop:7", "101", stage={"lifecyclestage": "customer"})
    plan = PairPlan("loop:7", LINK, None, None, move, None, {}, "customer")
    plan = outcomes.with_person_fields(plan, LINK, {outcomes.REVENUE: "10"}, None)
    assert plan.marketing_change is not None
    assert plan.marketing_change.stage == {"lifecyclestage": "customer"}
    assert plan.marketing_change.fields == {outcomes.REVENUE: "10"}


def test_what_the_base_says_was_written_is_not_written_again() -> None:
    written = {
        outcomes.REVENUE: "10",
        outcomes.LAST_OUTCOME: "won",
        outcomes.LAST_AT: AT.isoformat(),
    }
    link = LinkState(7, LINK.marketing, LINK.crm, written, "customer")
    plan = outcomes.with_person_fields(
        _stays(link), link, {outcomes.REVENUE: "10"}, outcomes.LastOutcome("won", AT)
    )
    assert plan.marketing_change is None


def test_an_older_outcome_does_not_replace_a_newer_one() -> None:
    newer = {outcomes.LAST_OUTCOME: "won", outcomes.LAST_AT: AT.isoformat()}
    link = LinkState(7, LINK.marketing, LINK.crm, newer, "customer")
    older = outcomes.LastOutcome("lost", AT.replace(month=10))
    assert outcomes.with_person_fields(_stays(link), link, {}, older).marketing_change is None
    later = outcomes.LastOutcome("lost", AT.replace(month=12))
    plan = outcomes.with_person_fields(_stays(link), link, {}, later)
    assert plan.marketing_change is not None
    assert plan.marketing_change.fields == {outcomes.LAST_OUTCOME: "lost"}


def test_a_tombstoned_or_marketing_less_person_is_not_written() -> None:
    gone = LinkState(7, LINK.marketing, LINK.crm, {}, "customer", tombstoned=True)
    crm_only = LinkState(7, None, LINK.crm, {}, "customer")
    for link in (gone, crm_only):
        skipped = PairPlan("loop:7", link, None, None, skip="no stage to move")
        plan = outcomes.with_person_fields(skipped, link, {outcomes.REVENUE: "1"}, None)
        assert plan is skipped


def test_a_person_whose_stage_cannot_move_still_gets_the_fields() -> None:
    skipped = PairPlan("loop:7", LINK, None, None, skip="no stage to move")
    plan = outcomes.with_person_fields(skipped, LINK, {outcomes.REVENUE: "1"}, None)
    assert plan.skip is None and plan.stage == "customer"
    assert plan.marketing_change is not None and plan.marketing_change.fields == {
        outcomes.REVENUE: "1"
    }


def test_sums_read_as_plain_numbers() -> None:
    assert outcomes.number_text(Decimal("1000") + Decimal("2500.50")) == "3500.5"
    assert outcomes.number_text(Decimal("30000")) == "30000"
    assert outcomes.number_text(Decimal("0")) == "0"
