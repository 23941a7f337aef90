"""Contact roles: the people of an opportunity (``OpportunityContactRole`` records).

Read with one query per 200 opportunities; written as inserts in sObject Collections of
up to 200. Roles are only ever added, never deleted.

An insert is not idempotent (the same contact can hold the same role twice), so a role
insert is never repeated blindly: when its answer is lost (a timeout, a dropped
connection, a 5xx), the next attempt first reads which of those roles exist (one query
per 200 opportunities) and inserts only the others. ``syncd.retry`` paces the attempts;
it never re-sends the POST itself. A role names a Contact: the
engine leaves out a person who is still a lead (``refers_to``), and adds them once the
lead is converted and the opportunity changes again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from simple_salesforce import Salesforce, format_soql

from connectors.salesforce.errors import SalesforceRequestError, worth_splitting
from syncd.model import Outcome, Record
from syncd.retry import RetryPolicy, call_with_retry
from syncd.sync.split import Refused, Splitter

ROLES = "OpportunityContactRole"
IDS_PER_QUERY = 200  # keeps ``OpportunityId IN (...)`` well under the URL length limit
Call = Callable[[Callable[[Salesforce], Any]], Any]
Role = tuple[int, dict[str, Any]]
"""(change index, the role's record body)."""


class ContactRoles:
    """Reads and adds contact roles through the connector's calls (retries, re-login)."""

    def __init__(
        self,
        call: Call,
        call_once: Call,
        pages: Callable[[str], Iterator[list[dict[str, Any]]]],
        batch_size: int,
        *,
        retry: RetryPolicy,
        splitter: Splitter,
        headers: Mapping[str, str],
    ) -> None:
        self._call, self._call_once, self._pages = call, call_once, pages
        self._batch_size, self._retry = batch_size, retry
        self._splitter, self._headers = splitter, dict(headers)

    def read(self, field: str, records: list[Record]) -> list[Record]:
        """Opportunities with their contacts (ascending ids, comma-joined) in ``field``.

        ``SELECT OpportunityId, ContactId FROM OpportunityContactRole WHERE IsDeleted =
        false AND OpportunityId IN (...)``: reads are queryAll, so deleted roles would come
        too.
        """
        ids = [r.ref.id for r in records if not r.deleted]
        rows = [
            row
            for start in range(0, len(ids), IDS_PER_QUERY)
            for page in self._pages(self.query(ids[start : start + IDS_PER_QUERY]))
            for row in page
        ]
        return self.from_rows(field, records, rows)

    @staticmethod
    def query(ids: Sequence[str]) -> str:
        """The roles of up to 200 opportunities (``read``'s query)."""
        return format_soql(
            "SELECT OpportunityId, ContactId FROM OpportunityContactRole"
            " WHERE IsDeleted = false AND OpportunityId IN {}",
            list(ids),
        )

    @staticmethod
    def from_rows(
        field: str, records: list[Record], rows: Sequence[Mapping[str, Any]]
    ) -> list[Record]:
        """``records`` with their contacts in ``field``, from role rows already read."""
        contacts: dict[str, set[str]] = {}
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
        bodies: list[Role] = [
            (index, {"attributes": {"type": ROLES}, "OpportunityId": opp, "ContactId": contact})
            for index, opp, contact_ids in wanted
            for contact in contact_ids
        ]
        for start in range(0, len(bodies), self._batch_size):
            chunk = bodies[start : start + self._batch_size]
            for sent in self._splitter.send(chunk, self._insert, SalesforceRequestError, _splits):
                if isinstance(sent, Refused):
                    error = sent.error
                    code = error.code if isinstance(error, SalesforceRequestError) else None
                    refusal = {"message": str(error), "statusCode": code}
                    answered: list[tuple[Role, dict[str, Any]]] = [
                        (sent.item, {"success": False, "errors": [refusal]})
                    ]
                else:
                    answered = list(zip(sent.items, sent.answer, strict=True))
                for (index, _), result in answered:
                    if not result.get("success"):
                        errors = result.get("errors") or [{}]
                        message = "; ".join(str(e.get("message", "rejected")) for e in errors)
                        outcomes[index] = replace(
                            outcomes[index],
                            ok=False,
                            error=f"contact role: {message}",
                            code=errors[0].get("statusCode"),
                        )

    def _insert(self, roles: list[Role]) -> list[dict[str, Any]]:
        """One save result per role: inserted once; after a lost answer, what landed is
        read before the rest is inserted again (see the module docstring)."""
        results: dict[int, dict[str, Any]] = {}
        pending = list(range(len(roles)))
        attempts = 0

        def attempt() -> None:
            nonlocal pending, attempts
            attempts += 1
            if attempts > 1:  # the last answer was lost: some roles may have landed
                landed = self._existing([roles[i][1] for i in pending])
                for i in pending:
                    found = landed.get(_pair(roles[i][1]))
                    if found is not None:
                        results[i] = {"id": found, "success": True, "errors": []}
                pending = [i for i in pending if i not in results]
            if not pending:
                return
            payload = {"allOrNone": False, "records": [roles[i][1] for i in pending]}
            answer = self._call_once(
                lambda sf: sf.restful(
                    "composite/sobjects", method="POST", json=payload, headers=self._headers
                )
            )
            for i, result in zip(pending, answer or [], strict=True):
                results[i] = result
            pending = []

        call_with_retry(self._retry, attempt)
        return [results[i] for i in range(len(roles))]

    def _existing(self, bodies: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
        """(opportunity, contact) -> role id of the live roles among those opportunities."""
        found: dict[tuple[str, str], str] = {}
        ids = sorted({str(b["OpportunityId"]) for b in bodies})
        for start in range(0, len(ids), IDS_PER_QUERY):
            soql = format_soql(
                "SELECT Id, OpportunityId, ContactId FROM OpportunityContactRole"
                " WHERE IsDeleted = false AND OpportunityId IN {}",
                ids[start : start + IDS_PER_QUERY],
            )
            for rows in self._pages(soql):
                for row in rows:
                    found[_pair(row)] = str(row["Id"])
        return found


def _pair(role: Mapping[str, Any]) -> tuple[str, str]:
    """A role's (opportunity, contact), as 15-character ids (case-sensitive ones)."""
    return (str(role["OpportunityId"])[:15], str(role["ContactId"])[:15])


def _splits(error: Exception, roles: list[Role]) -> bool:
    return worth_splitting(error, (body for _, body in roles))
