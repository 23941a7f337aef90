"""Sales activities (Task and Event) read incrementally, and the users who own them.

A touch is what a rep did with a lead or contact: a closed Task (a logged call or email,
``IsClosed = true``) or an Event (a meeting), whose ``WhoId`` names the person. An open
task is a plan, not a touch; syncd's own SLA reminder is one. Each kind is scanned like
the people (``SystemModstamp`` from a stored cursor, the lookback window read again):
one SOQL query, then ``queryMore`` pages of up to 2,000, the filter in SOQL so that
activities on accounts or opportunities alone cost nothing. The two first queries ride
in the people's ``/composite`` when the engine planned them (``plan``), or go together
in one of their own: a quiet org costs one call at most.

When a touch happened: a task's ``CompletedDateTime`` ("the date and time the task was
saved with a Closed status", API 46+), else its ``CreatedDate``; an event's
``StartDateTime`` when it lies before its ``CreatedDate`` (a meeting logged afterwards),
else its ``CreatedDate`` (booking the meeting was the touch). ``ActivityDate`` is a
date without a time ("doesn't represent the time of the activity"), unused. Fields from
the object reference:
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm
and https://developer.salesforce.com/docs/platform/object-reference/references/standard-objects/object-event.html
(the Task page's CompletedDateTime wording is taken from the ActivityHistory field
table; ``TaskSubtype`` values Call, Email, ListEmail, Cadence, LinkedIn are not
confirmed from a public page here).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from simple_salesforce import format_soql

from syncd.model import Activity, ActivityPage, Cursor, Owner, RecordRef

KINDS = ("Task", "Event")
SELECT = {
    "Task": (
        "Id",
        "WhoId",
        "OwnerId",
        "TaskSubtype",
        "Type",
        "CompletedDateTime",
        "CreatedDate",
        "SystemModstamp",
    ),
    "Event": ("Id", "WhoId", "OwnerId", "Type", "StartDateTime", "CreatedDate", "SystemModstamp"),
}
FILTER = {
    "Task": "WhoId != null AND IsClosed = true AND IsDeleted = false",
    "Event": "WhoId != null AND IsDeleted = false",
}
"""Only activities on a person; only done tasks (an open one is a to-do)."""
USERS_PER_QUERY = 200
Window = tuple[datetime, datetime] | None


def scan_query(kind: str, cursor: Cursor, now: datetime, overlap: timedelta) -> tuple[str, Window]:
    """The query of a scan of ``kind`` from ``cursor`` and its lookback window (as the
    people's scans: ``SalesforceConnector.changes``)."""
    select = ", ".join(SELECT[kind])
    window = cursor.lookback(now, overlap)
    if window is not None:
        window = (window[0].replace(microsecond=0), window[1].replace(microsecond=0))
    head = format_soql("SELECT {:literal} FROM {:literal} WHERE ", select, kind) + FILTER[kind]
    if cursor.since is None:
        return head + " ORDER BY SystemModstamp, Id", None
    if window is not None and window[0] < window[1]:
        stamps = format_soql(
            " AND ((SystemModstamp >= {} AND SystemModstamp < {}) OR SystemModstamp >= {})",
            window[0],
            window[1],
            cursor.since,
        )
        return head + stamps + " ORDER BY SystemModstamp, Id", window
    stamps = format_soql(" AND SystemModstamp >= {}", cursor.since)
    return head + stamps + " ORDER BY SystemModstamp, Id", None


def owners_query(ids: Sequence[str]) -> str:
    return format_soql("SELECT Id, Name, Email, IsActive FROM User WHERE Id IN {}", list(ids))


def owner(raw: Mapping[str, Any]) -> Owner:
    return Owner(
        str(raw["Id"]),
        str(raw.get("Name") or raw["Id"]),
        raw.get("Email") or None,
        bool(raw.get("IsActive")),
    )


def activity(kind: str, raw: Mapping[str, Any]) -> Activity:
    """One Task or Event row as an ``Activity``."""
    created = _datetime(raw["CreatedDate"])
    if kind == "Task":
        done = raw.get("CompletedDateTime")
        at = _datetime(done) if done else created
        subtype = str(raw.get("TaskSubtype") or raw.get("Type") or "task").lower()
        channel = subtype if subtype in ("call", "email") else "task"
    else:
        start = raw.get("StartDateTime")
        at = min(created, _datetime(start)) if start else created
        channel = "meeting"
    return Activity(
        ref=RecordRef("salesforce", kind, str(raw["Id"])),
        person_id=str(raw["WhoId"]),
        owner_id=str(raw["OwnerId"]) if raw.get("OwnerId") else None,
        at=at,
        channel=channel,
        modified_at=_datetime(raw["SystemModstamp"]),
    )


def pages(
    kind: str, cursor: Cursor, window: Window, answers: Iterator[list[dict[str, Any]]]
) -> Iterator[ActivityPage]:
    """The scan's pages as activity pages: rows read before (below the cursor, or tie
    ids at its instant) are left out unless inside the lookback window; the cursor
    advances over each page, and the window's end becomes its ``trail`` once passed."""
    start = cursor
    trail = window[1] if window else cursor.trail
    moved = False
    for rows in answers:
        found = [activity(kind, raw) for raw in rows]
        found = [a for a in found if _in(window, a) or not _seen(start, a)]
        if found and (window is None or found[-1].modified_at >= window[1]):
            moved = True
        if found:
            cursor = _advance(cursor, found, trail if moved else cursor.trail)
            yield ActivityPage(kind, found, cursor)
    if window is not None and cursor.trail != trail:
        yield ActivityPage(kind, [], Cursor(cursor.since, cursor.tie_ids, trail))


def _advance(cursor: Cursor, found: Sequence[Activity], trail: datetime | None) -> Cursor:
    since, ties = cursor.since, set(cursor.tie_ids)
    for item in found:
        if since is None or item.modified_at > since:
            since, ties = item.modified_at, {item.ref.id}
        elif item.modified_at == since:
            ties.add(item.ref.id)
    return Cursor(since, frozenset(ties), trail)


def _in(window: Window, item: Activity) -> bool:
    return window is not None and window[0] <= item.modified_at < window[1]


def _seen(start: Cursor, item: Activity) -> bool:
    if start.since is None:
        return False
    return item.modified_at < start.since or (
        item.modified_at == start.since and item.ref.id in start.tie_ids
    )


def _datetime(text: Any) -> datetime:
    """A Salesforce datetime (``2026-11-23T12:00:00.123+0000``) as an aware UTC one."""
    return datetime.fromisoformat(str(text).replace("Z", "+00:00")).astimezone(UTC)
