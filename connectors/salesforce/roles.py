"""Contact roles: the people of an opportunity (``OpportunityContactRole`` records).

Read with one query per 200 opportunities; written as inserts in sObject Collections of
up to 200. Roles are only ever added, never deleted. A role names a Contact: the
engine leaves out a person who is still a lead (``refers_to``), and adds them once the
lead is converted and the opportunity changes again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from simple_salesforce import Salesforce, format_soql

from connectors.salesforce.errors import SalesforceRequestError
from syncd.model import Outcome, Record

ROLES = "OpportunityContactRole"
IDS_PER_QUERY = 200  # keeps ``OpportunityId IN (...)`` well under the URL length limit


class ContactRoles:
    """Reads and adds contact roles through the connector's calls (retries, re-login)."""

    def __init__(
        self,
        call: Callable[[Callable[[Salesforce], Any]], Any],
        pages: Callable[[str], Iterator[list[dict[str, Any]]]],
        batch_size: int,
    ) -> None:
        self._call, self._pages, self._batch_size = call, pages, batch_size

    def read(self, field: str, records: list[Record]) -> list[Record]:
        """Opportunities with their contacts (ascending ids, comma-joined) in ``field``.

        ``SELECT OpportunityId, ContactId FROM OpportunityContactRole WHERE IsDeleted =
        false AND OpportunityId IN (...)``: reads are queryAll, so deleted roles would come
        too.
        """
        contacts: dict[str, set[str]] = {}
        ids = [r.ref.id for r in records if not r.deleted]
        for start in range(0, len(ids), IDS_PER_QUERY):
            soql = format_soql(
                "SELECT OpportunityId, ContactId FROM OpportunityContactRole"
                " WHERE IsDeleted = false AND OpportunityId IN {}",
                ids[start : start + IDS_PER_QUERY],
            )
            for rows in self._pages(soql):
                for row in rows:
                    contacts.setdefault(str(row["OpportunityId"]), set()).add(str(row["ContactId"]))
        return [
            replace(
                r, fields={**r.fields, field: ",".join(sorted(contacts.get(r.ref.id, ()))) or None}
            )
            for r in records
        ]

    def add(
        self, wanted: Sequence[tuple[int, str, list[str]]], outcomes: dict[int, Outcome]
    ) -> None:
        """Insert roles: (change index, opportunity id, contact ids) each.

        The opportunity write has landed either way; a refused role turns its change's
        outcome into a failure with Salesforce's message, so that it is tried again.
        """
        bodies = [
            (index, {"attributes": {"type": ROLES}, "OpportunityId": opp, "ContactId": contact})
            for index, opp, contact_ids in wanted
            for contact in contact_ids
        ]
        for start in range(0, len(bodies), self._batch_size):
            chunk = bodies[start : start + self._batch_size]
            payload = {"allOrNone": False, "records": [body for _, body in chunk]}

            def insert(sf: Salesforce, body: dict[str, Any] = payload) -> Any:
                return sf.restful("composite/sobjects", method="POST", json=body)

            try:
                results = self._call(insert)
            except SalesforceRequestError as exc:
                results = [{"success": False, "errors": [{"message": str(exc)}]}] * len(chunk)
            for (index, _), result in zip(chunk, results or [], strict=True):
                if not result.get("success"):
                    errors = result.get("errors") or [{}]
                    message = "; ".join(str(e.get("message", "rejected")) for e in errors)
                    outcomes[index] = replace(
                        outcomes[index],
                        ok=False,
                        error=f"contact role: {message}",
                        code=errors[0].get("statusCode"),
                    )
