"""The emulated org's data: rows, the SystemModstamp index, external ids and query cursors.

Rows are replaced, never mutated, on every write, so that a query cursor holding row
references serves the snapshot it was opened on. All writes of one request share one
SystemModstamp (as one Salesforce transaction does); stamps increase strictly between
requests. Every public method takes the store's lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sortedcontainers import SortedList

from connectors.salesforce.emulator.rules import OrgRules
from connectors.salesforce.emulator.schema import (
    OBJECTS,
    PREFIXES,
    SOQL_TYPES,
    USERS,
    SObject,
    derive,
    error,
    lead_status_rows,
    make_id,
    stage_rows,
    user_rows,
)
from connectors.salesforce.emulator.schema import validate as validate_values
from connectors.salesforce.soql_tree import (
    Compare,
    InList,
    Junction,
    Query,
    format_datetime,
    sort_rows,
)

Row = Mapping[str, Any]
Result = dict[str, Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OPEN_CURSORS = 20  # Salesforce keeps a few per user and expires the oldest
_SETUP_STAMP = "2020-01-01T00:00:00.000+0000"  # when the org's setup data was made
_CASCADE = {
    "Account": (("Contact", "AccountId"), ("Opportunity", "AccountId")),
    "Lead": (("Task", "WhoId"), ("Event", "WhoId")),
    "Contact": (("OpportunityContactRole", "ContactId"), ("Task", "WhoId"), ("Event", "WhoId")),
    "Opportunity": (("OpportunityContactRole", "OpportunityId"),),
}
"""Per object, the (child object, reference field) rows deleted along with a record."""


class WriteError(ValueError):
    """A write refused as Salesforce refuses it; ``errors`` are its save-result errors."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['statusCode']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass
class QueryCursor:
    """A server-side query result: the matching rows as they were when it was opened."""

    obj: str
    fields: tuple[str, ...]
    rows: list[Row]
    batch: int


class _Batch:
    """The writes of one request, staged so that allOrNone can drop them together."""

    def __init__(self, store: Store, stamp: str) -> None:
        self.store, self.stamp = store, stamp
        self.rows: dict[tuple[str, str], Row] = {}
        self.external: dict[tuple[str, str], str | None] = {}

    def row(self, obj: str, id_: str) -> Row | None:
        return self.rows.get((obj, id_)) or self.store.rows[obj].get(id_)

    def owner(self, obj: str, key: str) -> str | None:
        if (obj, key) in self.external:
            return self.external[(obj, key)]
        return self.store.external[obj].get(key)

    def put(self, obj: str, row: Row) -> None:
        old = self.row(obj, row["Id"])
        for value, owner in ((_ext_key(old), None), (_ext_key(row), row["Id"])):
            if value is not None:
                self.external[(obj, value)] = owner
        self.rows[(obj, row["Id"])] = row

    def live_rows(self, obj: str) -> list[Row]:
        """Every live row of ``obj`` as this batch leaves it."""
        merged = dict(self.store.rows[obj])
        merged.update((i, r) for (o, i), r in self.rows.items() if o == obj)
        return [r for r in merged.values() if not r.get("IsDeleted")]

    def live(self, obj: str, field: str, value: str) -> list[Row]:
        """The live rows of ``obj`` (as this batch leaves them) whose ``field`` is ``value``."""
        merged = dict(self.store.rows[obj])
        merged.update((i, r) for (o, i), r in self.rows.items() if o == obj)
        return [r for r in merged.values() if not r.get("IsDeleted") and r.get(field) == value]


def _ext_key(row: Row | None) -> str | None:
    """The row's external id as the unique index holds it (case-insensitive, live rows)."""
    if row is None or row.get("IsDeleted") or not row.get("Syncd_HubSpot_Id__c"):
        return None
    return str(row["Syncd_HubSpot_Id__c"]).lower()


class Store:
    """Rows per object, indexed by (SystemModstamp, Id) and by external id."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rows: dict[str, dict[str, Row]] = {name: {} for name in OBJECTS}
        self.by_stamp: dict[str, SortedList] = {name: SortedList() for name in OBJECTS}
        self.external: dict[str, dict[str, str]] = {name: {} for name in OBJECTS}
        self.numbers: dict[str, int] = {}
        self.cursors: OrderedDict[str, QueryCursor] = OrderedDict()
        self.rules = OrgRules()
        """The org's validation and duplicate rules, read-only and required fields."""
        self.last_ms = 0
        self.lagging: list[tuple[timedelta, int]] = []
        """Commit lag for the next transactions: (how long before now, how many)."""
        self.bulk_load("OpportunityStage", stage_rows(_SETUP_STAMP))
        self.numbers[PREFIXES["OpportunityStage"]] = len(self.rows["OpportunityStage"])
        self.bulk_load("LeadStatus", lead_status_rows(_SETUP_STAMP))
        self.bulk_load("User", user_rows(_SETUP_STAMP, USERS))
        self.numbers[PREFIXES["User"]] = len(USERS) - 1  # the API user's id is not counted

    # --- writes --------------------------------------------------------------------------

    def tick(self) -> str:
        """The next SystemModstamp: now, or 1 ms after the last one when the clock stood.

        With a commit lag pending (``lag_next``), the transaction's rows are stamped that
        long before now instead, as a long transaction's rows carry its start time.
        """
        with self.lock:
            now_ms = (self.clock() - _EPOCH) // timedelta(milliseconds=1)
            if self.lagging:
                lag, count = self.lagging[0]
                self.lagging = [(lag, count - 1)] if count > 1 else []
                return format_datetime(_EPOCH + timedelta(milliseconds=now_ms) - lag)
            self.last_ms = max(now_ms, self.last_ms + 1)
            return format_datetime(_EPOCH + timedelta(milliseconds=self.last_ms))

    def lag_next(self, lag: timedelta, count: int = 1) -> None:
        """Stamp the next ``count`` write transactions ``lag`` before their commit."""
        with self.lock:
            self.lagging = [(lag, count)] if count > 0 else []

    def next_id(self, prefix: str) -> str:
        self.numbers[prefix] = self.numbers.get(prefix, 0) + 1
        return make_id(prefix, self.numbers[prefix])

    def write(
        self,
        operations: Sequence[Callable[[_Batch], Result]],
        *,
        all_or_none: bool,
    ) -> list[Result]:
        """Run per-record operations in one transaction; one save result per operation."""
        with self.lock:
            batch = _Batch(self, self.tick())
            results = [operation(batch) for operation in operations]
            if all_or_none and not all(r["success"] for r in results):
                rolled_back = error(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request"
                    " was using AllOrNone header",
                )
                return [
                    r
                    if not r["success"]
                    else {"id": None, "success": False, "errors": [rolled_back]}
                    for r in results
                ]
            self._commit(batch)
            return results

    def _commit(self, batch: _Batch) -> None:
        for (obj, id_), row in batch.rows.items():
            old = self.rows[obj].get(id_)
            if old is not None:
                self.by_stamp[obj].remove((old["SystemModstamp"], id_))
            self.rows[obj][id_] = row
            self.by_stamp[obj].add((row["SystemModstamp"], id_))
        for (obj, key), owner in batch.external.items():
            if owner is None:
                self.external[obj].pop(key, None)
            else:
                self.external[obj][key] = owner

    def create(
        self, obj: SObject, values: Row, *, system: bool = False, allow_save: bool = False
    ) -> Callable[..., Result]:
        """An operation creating one record (``allow_save``: the duplicate rule header's)."""

        def run(batch: _Batch) -> Result:
            clean, errors = validate_values(obj, values, creating=True, system=system)
            errors += self.rules.field_errors(obj, values, creating=True, system=system)
            errors += _unique(batch, obj, clean, None) + self._references(batch, obj, clean)
            if errors:
                return {"success": False, "errors": errors}
            row: dict[str, Any] = dict.fromkeys(obj.fields)
            row.update(clean)
            row.update(Id=None, IsDeleted=False, CreatedDate=batch.stamp)
            row.update(LastModifiedDate=batch.stamp, SystemModstamp=batch.stamp)
            derive(obj, row, clean)
            if not system:
                errors = self.rules.row_errors(
                    obj.name, row, partial(batch.live_rows, obj.name), allow_save=allow_save
                )
                if errors:
                    return {"success": False, "errors": errors}
            row["Id"] = self.next_id(obj.prefix)
            batch.put(obj.name, row)
            self._one_primary(batch, obj, row)
            return {"id": row["Id"], "success": True, "errors": []}

        return run

    def update(
        self,
        obj: SObject,
        id_: Any,
        values: Row,
        *,
        system: bool = False,
        allow_save: bool = False,
    ) -> Callable[..., Result]:
        """An operation updating one record by id (``allow_save``: the duplicate rule
        header's)."""

        values = {k: v for k, v in values.items() if k.lower() != "id"}

        def run(batch: _Batch) -> Result:
            found, problem = self._live(batch, obj, id_)
            if problem:
                return {"id": id_, "success": False, "errors": [problem]}
            assert found is not None
            if found.get("IsConverted") and not system:
                problem = error("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")
                return {"id": id_, "success": False, "errors": [problem]}
            clean, errors = validate_values(obj, values, creating=False, system=system)
            errors += self.rules.field_errors(obj, values, creating=False, system=system)
            errors += _unique(batch, obj, clean, found["Id"]) + self._references(batch, obj, clean)
            if errors:
                return {"id": id_, "success": False, "errors": errors}
            row = {**found, **clean, "LastModifiedDate": batch.stamp}
            row["SystemModstamp"] = batch.stamp
            derive(obj, row, clean)
            if not system:
                errors = self.rules.row_errors(
                    obj.name, row, partial(batch.live_rows, obj.name), allow_save=allow_save
                )
                if errors:
                    return {"id": id_, "success": False, "errors": errors}
            batch.put(obj.name, row)
            self._one_primary(batch, obj, row)
            return {"id": found["Id"], "success": True, "errors": []}

        return run

    def upsert(
        self, obj: SObject, field: str, values: Row, *, allow_save: bool = False
    ) -> Callable[..., Result]:
        """An operation upserting one record keyed on the external id ``field``."""

        def run(batch: _Batch) -> Result:
            key = next((v for k, v in values.items() if k.lower() == field.lower()), None)
            if key in (None, ""):
                problem = error("MISSING_ARGUMENT", f"{field} not specified", [field])
                return {"success": False, "errors": [problem]}
            owner = batch.owner(obj.name, str(key).lower())
            if owner is None:
                return {**self.create(obj, values, allow_save=allow_save)(batch), "created": True}
            updated = self.update(obj, owner, values, allow_save=allow_save)(batch)
            return {**updated, "created": False}

        return run

    def delete(self, id_: Any) -> Callable[..., Result]:
        """An operation deleting one record (to the recycle bin: IsDeleted, queryAll sees it)."""

        def run(batch: _Batch) -> Result:
            obj = next((o for o in OBJECTS.values() if str(id_).startswith(o.prefix)), None)
            if obj is None:
                malformed = error("MALFORMED_ID", f"malformed id {id_}", ["Id"])
                return {"id": id_, "success": False, "errors": [malformed]}
            if not obj.createable:
                refused = error(
                    "INVALID_TYPE_FOR_OPERATION", f"entity type cannot be deleted: {obj.label}"
                )
                return {"id": id_, "success": False, "errors": [refused]}
            found, problem = self._live(batch, obj, id_)
            if problem:
                return {"id": id_, "success": False, "errors": [problem]}
            assert found is not None
            self._cascade(batch, obj.name, found)
            return {"id": found["Id"], "success": True, "errors": []}

        return run

    def _cascade(self, batch: _Batch, obj: str, row: Row) -> None:
        """Delete ``row`` and, as Salesforce does, the records that cannot live without it."""
        stamp = batch.stamp
        batch.put(
            obj, {**row, "IsDeleted": True, "SystemModstamp": stamp, "LastModifiedDate": stamp}
        )
        for child, field in _CASCADE.get(obj, ()):
            for found in batch.live(child, field, row["Id"]):
                self._cascade(batch, child, found)

    def _references(self, batch: _Batch, obj: SObject, clean: dict[str, Any]) -> list[Result]:
        """Errors for reference fields naming no live record; ids made 18 characters long."""
        errors: list[Result] = []
        for name, value in list(clean.items()):
            field = obj.fields[name]
            if field.references is None or value is None:
                continue
            text = str(value)
            target = next((OBJECTS[t] for t in field.targets if text.startswith(PREFIXES[t])), None)
            if len(text) not in (15, 18) or target is None:
                errors.append(
                    error(
                        "FIELD_INTEGRITY_EXCEPTION",
                        f"{field.label}: id value of incorrect type: {text}",
                        [name],
                    )
                )
                continue
            found, problem = self._live(batch, target, text)
            if problem is not None or found is None:
                errors.append({**(problem or {}), "fields": [name]})
            else:
                clean[name] = found["Id"]
        return errors

    def _one_primary(self, batch: _Batch, obj: SObject, row: Row) -> None:
        """A new primary contact role makes the opportunity's other roles non-primary."""
        if obj.name != "OpportunityContactRole" or not row["IsPrimary"]:
            return
        for other in batch.live(obj.name, "OpportunityId", row["OpportunityId"]):
            if other["IsPrimary"] and other["Id"] != row["Id"]:
                stamp = batch.stamp
                demoted = {**other, "IsPrimary": False, "SystemModstamp": stamp}
                batch.put(obj.name, {**demoted, "LastModifiedDate": stamp})

    def _live(self, batch: _Batch, obj: SObject, id_: Any) -> tuple[Row | None, Result | None]:
        text = str(id_ or "")
        if len(text) not in (15, 18) or not text.startswith(obj.prefix):
            return None, error(
                "MALFORMED_ID", f"{obj.label} ID: id value of incorrect type: {text}", ["Id"]
            )
        found = batch.row(obj.name, text)
        if found is None and len(text) == 15:
            full = next((i for i in self.rows[obj.name] if i.startswith(text)), None)
            found = batch.row(obj.name, full) if full else None
        if found is None:
            return None, error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if found["IsDeleted"]:
            return None, error("ENTITY_IS_DELETED", "entity is deleted")
        return found, None

    def bulk_load(self, obj: str, rows: list[dict[str, Any]]) -> None:
        """Add trusted rows (synthetic data) without validation, indexes updated in bulk."""
        with self.lock:
            table = self.rows[obj]
            for row in rows:
                table[row["Id"]] = row
                if (key := _ext_key(row)) is not None:
                    self.external[obj][key] = row["Id"]
            self.by_stamp[obj].update((row["SystemModstamp"], row["Id"]) for row in rows)

    # --- reads ---------------------------------------------------------------------------

    def select(self, query: Query, *, include_deleted: bool) -> list[Row]:
        """The rows matching ``query``, in its order, after OFFSET and LIMIT."""
        with self.lock:
            table = self.rows[query.object]
            ids = _id_candidates(query)
            if ids is not None:
                candidates: Any = (table[i] for i in ids if i in table)
            elif _stamp_ordered(query):
                candidates = (table[i] for _, i in self._stamp_range(query))
            else:
                candidates = table.values()
            rows = [
                row
                for row in candidates
                if (include_deleted or not row.get("IsDeleted")) and query.matches(row)
            ]
        if query.order and (ids is not None or not _stamp_ordered(query)):
            sort_rows(rows, query, SOQL_TYPES[query.object])
        end = None if query.limit is None else query.offset + query.limit
        return rows[query.offset : end]

    def _stamp_range(self, query: Query) -> Any:
        index = self.by_stamp[query.object]
        start = _stamp_start(index, query.where) if query.where is not None else None
        return index.islice(start or 0)

    def open_cursor(self, query: Query, rows: list[Row], batch: int) -> str:
        """Keep ``rows`` server-side for queryMore; returns the locator id."""
        with self.lock:
            locator = self.next_id("01g")
            self.cursors[locator] = QueryCursor(query.object, query.fields, rows, batch)
            while len(self.cursors) > _OPEN_CURSORS:
                self.cursors.popitem(last=False)
            return locator

    def cursor(self, locator: str) -> QueryCursor | None:
        with self.lock:
            return self.cursors.get(locator)

    def get(self, obj: str, id_: str) -> Row | None:
        with self.lock:
            return self.rows[obj].get(id_)

    def all(self, obj: str) -> list[Row]:
        with self.lock:
            return [self.rows[obj][i] for i in sorted(self.rows[obj])]


def _unique(batch: _Batch, obj: SObject, clean: Row, own_id: str | None) -> list[dict[str, Any]]:
    value = clean.get("Syncd_HubSpot_Id__c")
    owner = batch.owner(obj.name, str(value).lower()) if value else None
    if owner is None or owner == own_id:
        return []
    return [
        error(
            "DUPLICATE_VALUE",
            f"duplicate value found: Syncd_HubSpot_Id__c duplicates value on record with id:"
            f" {owner}",
        )
    ]


def _stamp_start(index: SortedList, condition: Any) -> int | None:
    """Where in the (SystemModstamp, Id) index rows matching ``condition`` can start
    (None: anywhere); an OR of lower bounds (a scan with its lookback) starts at the
    lowest."""
    if isinstance(condition, Compare) and condition.field == "SystemModstamp" and condition.value:
        if condition.op == ">=":
            return int(index.bisect_left((condition.value, "")))
        if condition.op == ">":
            return int(index.bisect_right((condition.value, "\uffff")))
        return None
    if isinstance(condition, Junction):
        starts = [_stamp_start(index, item) for item in condition.items]
        if condition.op == "and":
            known = [s for s in starts if s is not None]
            return max(known) if known else None
        return None if any(s is None for s in starts) else min(s for s in starts if s is not None)
    return None


def _id_candidates(query: Query) -> list[str] | None:
    """Ids named by a top-level ``Id = x`` or ``Id IN (...)`` term (18-character ones)."""
    for term in query.conjuncts():
        if isinstance(term, InList) and term.field == "Id" and not term.negate:
            values = [v for v in term.values if v is not None]
        elif isinstance(term, Compare) and term.field == "Id" and term.op == "=":
            values = [term.value] if term.value is not None else []
        else:
            continue
        if all(len(v) == 18 for v in values):
            return list(dict.fromkeys(values))
    return None


def _stamp_ordered(query: Query) -> bool:
    """ORDER BY SystemModstamp [, Id] ascending: the (SystemModstamp, Id) index order."""
    order = [(o.field, o.descending) for o in query.order]
    return order in ([("SystemModstamp", False)], [("SystemModstamp", False), ("Id", False)])
