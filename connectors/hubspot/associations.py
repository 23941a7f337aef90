"""HubSpot associations (CRM v4) as the connector reads and adds them.

Reads: ``POST /crm/v4/associations/{from}/{to}/batch/read``, one call per 1,000 ids
(a scan page holds at most 200, a fetch batch 100), plus one for each further page of a
record's associations (HubSpot pages them: ``paging.next.after``, asked for again with
``{"id", "after"}``). Ids without associations, or gone since, are left out of the
answer (a 207 names them): they read as none.

Writes: ``POST /crm/v4/associations/{from}/{to}/batch/create`` with the default,
unlabeled ``HUBSPOT_DEFINED`` type of the pair, one call per 1,000 associations. A batch
refused as a whole for one bad input (a record gone since) is split until that input
stands alone (``syncd.sync.split``), so the others are created in the same call sequence.
HubSpot keeps one association per pair and type, so creating one that exists already
(a replayed change) changes nothing. Associations are never archived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from hubspot.crm.associations.v4 import (
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
)

from connectors.hubspot.errors import HubSpotRequestError
from connectors.hubspot.mapping import joined_ids
from syncd.model import Value
from syncd.sync.split import Refused, Splitter

V4 = "/crm/v4/associations"
CATEGORY = "HUBSPOT_DEFINED"
DEFAULT_TYPES: dict[tuple[str, str], int] = {
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
}
"""The unlabeled association type id from one object type to another."""
MAX_INPUTS = 1000
"""Inputs per v4 batch call (HubSpot's smallest documented v4 batch limit: batch read
takes at most 1,000 ids since 2025-02-10, larger requests are refused,
https://developers.hubspot.com/changelog/bug-fix-batch-read-limit-for-hubspot-associations-api)."""

Answer = dict[str, Any]
Call = Callable[[str, Callable[..., Any]], Answer]
"""The connector's way to make one API call: (label, request) -> parsed JSON."""
Pair = tuple[str, str]
"""(from id, to id)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why HubSpot did not create one association, in its own words."""

    message: str
    code: str | None


class Associations:
    """Batch reads and creates of associations through the official client's v4 batch API."""

    def __init__(self, batch_api: Any, call: Call, splitter: Splitter | None = None) -> None:
        self._batch = batch_api
        self._call = call
        self._splitter = splitter or Splitter()

    def read(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, Value]:
        """Per id, the ``to_type`` ids associated with it, joined (None when none)."""
        found: dict[str, list[str]] = {}
        pending: list[dict[str, str]] = [{"id": i} for i in dict.fromkeys(ids)]
        asked: set[tuple[str, str]] = set()
        label = f"POST {V4}/{from_type}/{to_type}/batch/read"
        while pending:
            chunk, pending = pending[:MAX_INPUTS], pending[MAX_INPUTS:]
            body = BatchInputPublicFetchAssociationsBatchRequest(inputs=chunk)
            answer = self._call(label, partial(self._batch.get_page, from_type, to_type, body))
            for result in answer.get("results") or []:
                from_id = str((result.get("from") or {}).get("id"))
                linked = found.setdefault(from_id, [])
                linked.extend(str(t.get("toObjectId")) for t in result.get("to") or [])
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after and (from_id, str(after)) not in asked:
                    asked.add((from_id, str(after)))
                    pending.append({"id": from_id, "after": str(after)})
        return {i: joined_ids(found.get(i, ())) for i in ids}

    def read_all(
        self, from_type: str, to_types: Iterable[str], ids: Sequence[str]
    ) -> dict[str, dict[str, Value]]:
        """``read`` for each associated type: to type -> id -> joined ids."""
        if not ids:
            return {}
        return {to_type: self.read(from_type, to_type, ids) for to_type in to_types}

    def add(self, from_type: str, to_type: str, pairs: Sequence[Pair]) -> dict[Pair, Refusal]:
        """Create the default association for each pair; those refused, with HubSpot's words."""
        spec = {"associationCategory": CATEGORY, "associationTypeId": type_id(from_type, to_type)}
        unique = list(dict.fromkeys(pairs))
        label = f"POST {V4}/{from_type}/{to_type}/batch/create"
        refused: dict[Pair, Refusal] = {}

        def send(part: list[Pair]) -> Answer:
            body = BatchInputPublicAssociationMultiPost(
                inputs=[{"from": {"id": f}, "to": {"id": t}, "types": [spec]} for f, t in part]
            )
            return self._call(label, partial(self._batch.create, from_type, to_type, body))

        for start in range(0, len(unique), MAX_INPUTS):
            chunk = unique[start : start + MAX_INPUTS]
            for sent in self._splitter.send(chunk, send, HubSpotRequestError):
                if isinstance(sent, Refused):
                    error = sent.error
                    assert isinstance(error, HubSpotRequestError)
                    refused[sent.item] = Refusal(error.detail, error.category)
                    continue
                errors = sent.answer.get("errors") or []
                if not errors:
                    continue
                made = {
                    (str(r.get("fromObjectId")), str(r.get("toObjectId")))
                    for r in sent.answer.get("results") or []
                }
                refused.update(
                    (pair, _refusal(pair, errors)) for pair in sent.items if pair not in made
                )
        return refused


def type_id(from_type: str, to_type: str) -> int:
    """The default association type id of a pair of object types."""
    found = DEFAULT_TYPES.get((from_type, to_type))
    if found is None:
        raise ValueError(f"no default HubSpot association from {from_type} to {to_type}")
    return found


def _refusal(pair: Pair, errors: Sequence[Mapping[str, Any]]) -> Refusal:
    """The error about ``pair``: v4 errors carry no input index, only ids in ``context``."""

    def naming(object_id: str) -> Mapping[str, Any] | None:
        for error in errors:
            values = (error.get("context") or {}).values()
            if any(object_id in (v if isinstance(v, list) else [v]) for v in values):
                return error
        return None

    error = naming(pair[1]) or naming(pair[0]) or (errors[0] if len(errors) == 1 else None)
    if error is None:
        messages = dict.fromkeys(str(e.get("message") or "refused") for e in errors)
        return Refusal("; ".join(messages), str(errors[0].get("category") or "") or None)
    return Refusal(str(error.get("message") or "refused"), error.get("category"))
