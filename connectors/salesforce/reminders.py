"""SLA reminder tasks: the owner of each person, and a Task for them, written once.

A reminder is an open Task (``Status`` Not Started) on the lead or contact (``WhoId``),
assigned to the person's owner (``OwnerId``; the object reference:
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm),
due on ``ActivityDate``. Before creating, the tasks with the reminder's subject on those
people are read, deleted ones too (``queryAll``: a rep who deleted the reminder does not
get it again), and a task whose ``Description`` holds the reminder's marker is taken as
already written: the match before create that keeps a crash between the write and
syncd's commit from writing it twice. ``Description`` is a long text area, which SOQL
cannot filter on, so the marker is looked for in the rows the subject selects.
Creates are sObject Collections of up to 200 records, ``allOrNone: false``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from simple_salesforce import Salesforce, format_soql

from syncd.model import Outcome, RecordRef, Reminder

IDS_PER_QUERY = 200
MAX_COLLECTION = 200
OPEN_STATUS = "Not Started"

Call = Callable[[Callable[[Salesforce], Any]], Any]
Pages = Callable[[str], Iterator[list[dict[str, Any]]]]


class Reminders:
    """Reads owners and writes reminder tasks through the connector's calls."""

    def __init__(self, attempt: Call, pages: Pages) -> None:
        self._attempt, self._pages = attempt, pages
        """``attempt``: one try, no retry: a create whose answer was lost is found by
        its marker next time, where a blind retry would write it twice."""

    def owners(self, people: Sequence[RecordRef]) -> dict[str, str]:
        """Each lead's or contact's ``OwnerId``: one query per kind and 200 ids."""
        found: dict[str, str] = {}
        by_kind: dict[str, list[str]] = {}
        for ref in people:
            by_kind.setdefault(ref.kind, []).append(ref.id)
        for kind, ids in by_kind.items():
            for chunk in _chunks(sorted(set(ids)), IDS_PER_QUERY):
                soql = format_soql("SELECT Id, OwnerId FROM {:literal} WHERE Id IN {}", kind, chunk)
                for rows in self._pages(soql):
                    found.update(
                        {str(r["Id"]): str(r["OwnerId"]) for r in rows if r.get("OwnerId")}
                    )
        return found

    def write(self, reminders: Sequence[Reminder]) -> list[Outcome]:
        """Create each reminder unless a task with its marker exists; an outcome per
        reminder (its key), with the task's id."""
        existing = self._existing(reminders)
        outcomes = {
            r.key: Outcome(r.key, True, existing[r.marker])
            for r in reminders
            if r.marker in existing
        }
        missing = [r for r in reminders if r.key not in outcomes]
        for chunk in _chunks(missing, MAX_COLLECTION):
            payload = {"allOrNone": False, "records": [_body(r) for r in chunk]}
            answer = self._attempt(_create(payload))
            for reminder, result in zip(chunk, answer or [], strict=False):
                if result.get("success"):
                    outcomes[reminder.key] = Outcome(reminder.key, True, str(result["id"]), True)
                else:
                    errors = result.get("errors") or [{}]
                    message = "; ".join(str(e.get("message", "refused")) for e in errors)
                    code = errors[0].get("statusCode")
                    outcomes[reminder.key] = Outcome(
                        reminder.key, False, None, error=message, code=code
                    )
        return [
            outcomes.get(r.key) or Outcome(r.key, False, None, error="no answer") for r in reminders
        ]

    def _existing(self, reminders: Sequence[Reminder]) -> dict[str, str]:
        """Marker -> task id, for the reminders already written."""
        markers = {r.marker for r in reminders}
        found: dict[str, str] = {}
        by_subject: dict[str, list[str]] = {}
        for r in reminders:
            by_subject.setdefault(r.subject[:255], []).append(r.person_id)
        for subject, ids in by_subject.items():
            for chunk in _chunks(sorted(set(ids)), IDS_PER_QUERY):
                soql = format_soql(
                    "SELECT Id, Description FROM Task WHERE WhoId IN {} AND Subject = {}",
                    chunk,
                    subject,
                )
                for rows in self._pages(soql):
                    for row in rows:
                        text = str(row.get("Description") or "")
                        for marker in markers:
                            if marker in text:
                                found[marker] = str(row["Id"])
        return found


def _create(payload: dict[str, Any]) -> Callable[[Salesforce], Any]:
    def create(sf: Salesforce) -> Any:
        return sf.restful("composite/sobjects", method="POST", json=payload)

    return create


def _body(reminder: Reminder) -> dict[str, Any]:
    body: dict[str, Any] = {
        "attributes": {"type": "Task"},
        "WhoId": reminder.person_id,
        "Subject": reminder.subject[:255],
        "ActivityDate": reminder.due.isoformat(),
        "Status": OPEN_STATUS,
        "Description": "A hand-off from marketing has waited past its follow-up SLA with"
        f" no call, email or meeting logged. {reminder.marker}",
    }
    if reminder.owner_id:
        body["OwnerId"] = reminder.owner_id
    return body


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
