"""Speed to lead from what sales did: the first touch after each hand-off.

A hand-off is a person's transition into ``report.handoff_stage`` in the stage history.
A touch is a sales activity on that person in the CRM (a logged call or email, a
meeting; the connector says which of its records are: ``ActivitySource``), by whoever
owns the activity. The first touch of a hand-off is the earliest activity at or after
it and before the person's next hand-off; a later one never replaces it, an earlier one
read later (an activity logged after the fact) does.

The person cycle reads activities after its own merge, so that hand-offs it has just
recorded are there to be matched: ``plan`` before the cycle's reads asks the connector
to fold the first activity queries into the people's first call, ``read`` after the
merge pages them from their stored cursors (``activity:<kind>``), keeping each page's
touches and its cursor in one transaction. Then the owners not yet known are read by
name, once (one query per 200 ids).

Limits: an activity on a person whose hand-off syncd records only later (the marketing
system showing the stage change late) is matched only if the scan's lookback window
reads it again after that (``overlap_minutes``); an activity deleted after it was kept
stays kept (history is history); an owner renamed keeps the name first read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from syncd.model import ActivityPage, Cursor, Owner
from syncd.state import sla as breaches
from syncd.state import touches as stored
from syncd.state.store import Store
from syncd.sync import killpoints

log = logging.getLogger(__name__)


class ActivitySource(Protocol):
    """A CRM connector that reads sales activities (``connectors.salesforce``)."""

    system: str

    def activity_kinds(self) -> Sequence[str]:
        """The native kinds holding activities (Task, Event)."""

    def plan_activities(self, cursors: Mapping[str, Cursor]) -> None:
        """Fold the first queries of the next ``activities`` call into the next scan's."""

    def activities(self, cursors: Mapping[str, Cursor]) -> Iterator[ActivityPage]:
        """Activities on people changed since ``cursors`` (kind -> cursor), in pages."""

    def owners(self, ids: Sequence[str]) -> list[Owner]:
        """The users ``ids`` name."""


def source(connector: object) -> ActivitySource | None:
    """``connector`` as an activity source, if it reads activities."""
    if callable(getattr(connector, "activities", None)):
        return connector  # type: ignore[return-value]
    return None


def cursors(store: Store, crm: ActivitySource) -> dict[str, Cursor]:
    """The stored cursor of each activity kind."""
    return {
        kind: store.cursor(crm.system, stored.ACTIVITY_CURSOR + kind)
        for kind in crm.activity_kinds()
    }


def plan(store: Store, crm: ActivitySource) -> None:
    """Ask the connector to read the first activity pages with the people's first call."""
    crm.plan_activities(cursors(store, crm))


def read(store: Store, crm: ActivitySource, handoff_stage: str, now: datetime) -> tuple[int, int]:
    """Read activities from their cursors and keep first touches: (activities read,
    touches kept or made earlier). Counts only: a backlog's touches are not held in
    memory past their page."""
    read_count = kept = 0
    for page in crm.activities(cursors(store, crm)):
        with store.engine.begin() as connection:
            found = stored.keep(connection, page.activities, handoff_stage, now)
            breaches.touched(connection, found)
            kept += len(found)
            store.save_cursor(
                connection, crm.system, stored.ACTIVITY_CURSOR + page.kind, page.cursor
            )
        killpoints.reached("touch.page")
        read_count += len(page.activities)
    name_owners(store, crm, now)
    return read_count, kept


def name_owners(store: Store, crm: ActivitySource, now: datetime) -> None:
    """Read the names of the owners the store holds only by id."""
    unknown = stored.unknown_owners(store.engine, crm.system)
    if unknown:
        stored.save_owners(store.engine, crm.system, crm.owners(unknown), now)
