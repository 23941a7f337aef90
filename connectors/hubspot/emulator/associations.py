"""The emulator's associations (CRM v4): default, unlabeled types between contacts,
companies and deals, stored both ways.

POST /crm/v4/associations/{from}/{to}/batch/create    201; one bad input refuses the batch
                                                      (400, nothing written), or, with
                                                      ``multi_status``, 207 per input
POST /crm/v4/associations/{from}/{to}/batch/read      200, or 207 for unknown ids
POST /crm/v4/associations/{from}/{to}/batch/archive   204

Whether a v4 batch create with one bad input (an id that does not exist) answers 207 or
refuses the whole batch is not documented: the reference page of the batch association
create lists an ``errors`` array in its answer schema
(https://developers.hubspot.com/docs/api-reference/latest/crm/associations/associate-records/batch/create-associations),
and the python client maps both 201 and 207 to models
(https://github.com/HubSpot/hubspot-api-python/issues/448, v3). Not confirmed; the
emulator refuses the whole batch by default (the reading that costs a sync most) and
answers 207 when ``multi_status`` is set.

Creating deal→contact (type 3) also makes contact→deal (type 4) visible, as HubSpot
does; archiving one direction removes both. Only live records can be associated and
only live records are returned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.hubspot.emulator.schema import (
    Problem,
    batch_answer,
    error_body,
    iso,
    now_ms,
    read_answer,
)

if TYPE_CHECKING:
    from connectors.hubspot.emulator.store import Answer, ObjectStore

DEFAULT_TYPES: dict[tuple[str, str], int] = {
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "companies"): 341,
    ("companies", "deals"): 342,
}
"""HubSpot-defined, unlabeled association type ids."""
PRIMARY_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 1,
    ("companies", "contacts"): 2,
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
}
"""The "Primary" company labels (HUBSPOT_DEFINED too)."""
INVERSE = {3: 4, 4: 3, 279: 280, 280: 279, 341: 342, 342: 341, 1: 2, 2: 1, 5: 6, 6: 5}
MAX_CREATE = 2000
MAX_READ = 1000
CATEGORY = "HUBSPOT_DEFINED"


def type_ids(from_type: str, to_type: str) -> set[int]:
    """The HUBSPOT_DEFINED type ids valid from ``from_type`` to ``to_type``."""
    pair = (from_type, to_type)
    return {i for i in (DEFAULT_TYPES.get(pair), PRIMARY_TYPES.get(pair)) if i is not None}


def _label(type_id: int) -> str | None:
    return "Primary" if type_id in (1, 2, 5, 6) else None


class Associations:
    """Links between records: (from type, from id, to type) -> {to id: {type ids}}.

    The caller holds the stores' (shared) lock.
    """

    def __init__(self, stores: dict[str, ObjectStore]) -> None:
        self.stores = stores
        self.multi_status = False
        """Answer a batch create with bad inputs 207 per input instead of refusing it."""
        self.links: dict[tuple[str, int, str], dict[int, set[int]]] = {}

    def add(self, from_type: str, from_id: int, to_type: str, to_id: int, type_id: int) -> None:
        self.links.setdefault((from_type, from_id, to_type), {}).setdefault(to_id, set()).add(
            type_id
        )
        back = self.links.setdefault((to_type, to_id, from_type), {})
        back.setdefault(from_id, set()).add(INVERSE[type_id])

    def remove(self, from_type: str, from_id: int, to_type: str, to_id: int) -> None:
        self.links.get((from_type, from_id, to_type), {}).pop(to_id, None)
        self.links.get((to_type, to_id, from_type), {}).pop(from_id, None)

    def of(self, from_type: str, from_id: int, to_type: str) -> dict[int, set[int]]:
        """Live records associated with one record, with their type ids, by id."""
        live = self.stores[to_type].live
        found = self.links.get((from_type, from_id, to_type), {})
        return {i: found[i] for i in sorted(found) if i in live}

    def live_id(self, object_type: str, raw: Any) -> int | None:
        text = str(raw.get("id", "") if isinstance(raw, dict) else raw or "")
        return int(text) if text.isdigit() and int(text) in self.stores[object_type].live else None

    # -- endpoints --------------------------------------------------------------------

    def route(self, from_type: str, to_type: str, action: str, body: Any) -> Answer:
        if from_type not in self.stores or to_type not in self.stores:
            unknown = from_type if from_type not in self.stores else to_type
            return 400, error_body("VALIDATION_ERROR", f"Unknown object type {unknown}")
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            return 400, error_body("VALIDATION_ERROR", "Invalid input JSON: inputs is required")
        limit = MAX_READ if action == "read" else MAX_CREATE
        if len(inputs) > limit:
            message = f"Batch input must not contain more than {limit} inputs, got {len(inputs)}"
            return 400, error_body("VALIDATION_ERROR", message)
        if action == "create":
            return self.batch_create(from_type, to_type, inputs)
        if action == "read":
            return self.batch_read(from_type, to_type, inputs)
        if action == "archive":
            return self.batch_archive(from_type, to_type, inputs)
        return 404, error_body("OBJECT_NOT_FOUND", f"No route for batch/{action}")

    def batch_create(self, from_type: str, to_type: str, inputs: list[dict[str, Any]]) -> Answer:
        started = iso(now_ms())
        allowed = type_ids(from_type, to_type)
        results, errors = [], []
        planned: list[tuple[int, int, list[dict[str, Any]]]] = []
        for item in inputs:
            from_id = self.live_id(from_type, item.get("from"))
            to_id = self.live_id(to_type, item.get("to"))
            types = item.get("types") or []
            problem = None
            if from_id is None or to_id is None:
                missing = item.get("from") if from_id is None else item.get("to")
                missing_id = str(missing.get("id") if isinstance(missing, dict) else missing)
                kind = from_type if from_id is None else to_type
                problem = Problem(
                    400,
                    "VALIDATION_ERROR",
                    f"No {kind} with id {missing_id} exists",
                    {"id": [missing_id]},
                )
            elif not types or not all(
                isinstance(t, dict)
                and t.get("associationCategory") == CATEGORY
                and t.get("associationTypeId") in allowed
                for t in types
            ):
                problem = Problem(
                    400,
                    "VALIDATION_ERROR",
                    f"Invalid association types {types} from {from_type} to {to_type}: "
                    f"use category {CATEGORY} with one of {sorted(allowed)}",
                    {"types": [str(t) for t in types]},
                )
            if problem is not None:
                if not self.multi_status:
                    return problem.status, problem.body()
                errors.append(problem.standard_error())
                continue
            assert from_id is not None and to_id is not None
            planned.append((from_id, to_id, types))
        for from_id, to_id, types in planned:
            for spec in types:
                self.add(from_type, from_id, to_type, to_id, int(spec["associationTypeId"]))
            labels = [_label(int(t["associationTypeId"])) for t in types]
            results.append(
                {
                    "fromObjectTypeId": self.stores[from_type].schema.type_id,
                    "fromObjectId": from_id,
                    "toObjectTypeId": self.stores[to_type].schema.type_id,
                    "toObjectId": to_id,
                    "labels": [label for label in labels if label],
                }
            )
        return batch_answer(results, errors, started, 201)

    def batch_read(self, from_type: str, to_type: str, inputs: list[dict[str, Any]]) -> Answer:
        started = iso(now_ms())
        results, missing = [], []
        for item in inputs:
            from_id = self.live_id(from_type, item)
            if from_id is None:
                missing.append(str(item.get("id", "")))
                continue
            linked = self.of(from_type, from_id, to_type)
            results.append(
                {
                    "from": {"id": str(from_id)},
                    "to": [
                        {
                            "toObjectId": to_id,
                            "associationTypes": [
                                {"category": CATEGORY, "typeId": t, "label": _label(t)}
                                for t in sorted(types)
                            ],
                        }
                        for to_id, types in linked.items()
                    ],
                }
            )
        message = (
            f"Could not get associations of some {from_type} objects, they may be deleted "
            "or not exist."
        )
        return read_answer(results, missing, started, message)

    def batch_archive(self, from_type: str, to_type: str, inputs: list[dict[str, Any]]) -> Answer:
        for item in inputs:
            raw_from = item.get("from")
            from_text = str(raw_from.get("id", "") if isinstance(raw_from, dict) else "")
            if not from_text.isdigit():
                continue
            for target in item.get("to") or []:
                to_text = str(target.get("id", "") if isinstance(target, dict) else "")
                if to_text.isdigit():
                    self.remove(from_type, int(from_text), to_type, int(to_text))
        return 204, None
