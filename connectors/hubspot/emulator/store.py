"""The emulator's object stores: indexes, write rules and the batch endpoints' semantics.

One ``ObjectStore`` per object type (contacts, companies, deals), parameterised by its
``ObjectSchema``. Every write request takes one instant from a strictly increasing
clock, so records written by one batch share their modified date (``lastmodifieddate``
for contacts, ``hs_lastmodifieddate`` for the others: ties, as batch imports make in
HubSpot) and any two requests are ordered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from sortedcontainers import SortedDict, SortedList

from connectors.hubspot.emulator.schema import (
    CONTACTS,
    LIFECYCLE_RANK,
    MAX_BATCH,
    ObjectSchema,
    Problem,
    batch_answer,
    check_values,
    error_body,
    invalid_value,
    iso,
    now_ms,
    read_answer,
)

Answer = tuple[int, dict[str, Any] | None]
"""An HTTP status and its JSON body (None: no content)."""
PORTAL_ID = 62515
"""The emulated portal's id, as error messages name it."""
MULTI_STATUS = frozenset({"create"})
"""The batch writes that answer 207 with per-input errors when every input carries an
``objectWriteTraceId``; the others refuse the whole batch for one bad input (its status,
400, 404 or 409, and its error) and write nothing.

HubSpot documents multi-status only for "the object APIs' batch create endpoints"
(https://developers.hubspot.com/docs/api-reference/error-handling, "Multi-status
errors"); users report a whole batch refused for one bad input elsewhere
(https://github.com/HubSpot/hubspot-api-python/issues/51: batch create without trace
ids, one CONFLICT for the batch; https://github.com/Atlas-Authority/marketing-automation/issues/174:
batch upsert stopped by one invalid email). The reference pages of batch update and
upsert list ``objectWriteTraceId`` on inputs and an ``errors`` array in the answer
schema, but no page says they answer 207: not confirmed either way, so the emulator
takes the stricter reading and lets a test switch (``HubSpotEmulator.set_multi_status``).
"""


class Record:
    """One CRM object: stored properties plus the instants the portal keeps itself."""

    __slots__ = ("archived_ms", "created_ms", "id", "modified_ms", "props", "schema", "search_ms")

    def __init__(
        self, id_: int, props: dict[str, str], ms: int, schema: ObjectSchema = CONTACTS
    ) -> None:
        self.schema = schema
        self.id = id_
        self.props = props
        self.created_ms = ms
        self.modified_ms = ms
        self.archived_ms: int | None = None
        self.search_ms: int | None = ms
        """The modified instant search has indexed (None: not indexed yet)."""

    def value(self, name: str) -> str | None:
        if name == "hs_object_id":
            return str(self.id)
        if name == "createdate":
            return iso(self.created_ms)
        if name == self.schema.modified:
            return iso(self.modified_ms)
        return self.props.get(name)

    def to_json(self, names: Iterable[str] | None = None, **extra: Any) -> dict[str, Any]:
        """The object as the API returns it, with ``names`` (known ones) as properties."""
        schema = self.schema
        wanted = schema.default_returned if names is None else (*names, *schema.always_returned)
        body: dict[str, Any] = {
            "id": str(self.id),
            "properties": {n: self.value(n) for n in wanted if n in schema.properties},
            "createdAt": iso(self.created_ms),
            "updatedAt": iso(self.modified_ms),
            "archived": self.archived_ms is not None,
        }
        if self.archived_ms is not None:
            body["archivedAt"] = iso(self.archived_ms)
        body.update({k: v for k, v in extra.items() if v is not None})
        return body


Contact = Record
"""A contact is a record of the contacts schema."""
WriteCheck = Callable[[dict[str, str] | None, dict[str, str]], Problem | None]
"""A type's own write rule: (stored properties or None on create, values to write) ->
a refusal; it may add values (a deal's default pipeline)."""


class ObjectStore:
    """In-memory records of one type, guarded by a re-entrant lock (``lock``, shareable)."""

    def __init__(
        self,
        schema: ObjectSchema = CONTACTS,
        *,
        lock: threading.RLock | None = None,
        first_id: int = 1001,
        check: WriteCheck | None = None,
    ) -> None:
        self.schema = schema
        self.lock = lock or threading.RLock()
        self.live: SortedDict = SortedDict()  # int id -> Record
        self.archived: dict[int, Record] = {}
        self.by_modified: SortedList = SortedList()  # (modified_ms, id) of live records
        self.index: dict[tuple[str, str], int] = {}  # (identifying prop, value) -> id
        self.next_id = first_id
        self.last_ms = 0
        self.search_lag_ms = 0
        """How long after a write search sees it (``set_search_lag``)."""
        self.unindexed: list[tuple[int, int]] = []
        """(due instant, id) of writes search does not see yet, in due order."""
        self.check = check
        self.refuse_backward = False
        """Refuse a backward lifecycle move with a 400 instead of keeping the old stage."""
        self.multi_status: frozenset[str] = MULTI_STATUS
        """The batch writes answering 207 per input (see ``MULTI_STATUS``)."""
        self._keys = frozenset(schema.keys)
        self._folded = frozenset(schema.folded)

    def set_schema(self, schema: ObjectSchema) -> None:
        """Replace the type's schema (a property deleted or changed by an admin)."""
        with self.lock:
            self.schema = schema
            self._keys = frozenset(schema.keys)

    def _key(self, name: str, value: str) -> tuple[str, str]:
        return (name, value.lower() if name in self._folded else value)

    # -- primitives (callers hold the lock) -------------------------------------------

    def tick(self) -> int:
        """A new instant, later than every one handed out before."""
        self.last_ms = max(now_ms(), self.last_ms + 1)
        return self.last_ms

    def reserve_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def find(self, id_text: str, id_property: str | None = None) -> Record | None:
        """A live record by id, or by the value of an identifying property."""
        if id_property in (None, "", "hs_object_id"):
            return self.live.get(int(id_text)) if id_text.isdigit() else None
        found = self.index.get(self._key(str(id_property), id_text))
        return self.live.get(found) if found is not None else None

    def insert(self, props: dict[str, str], ms: int, id_: int | None = None) -> Record:
        kept = {k: v for k, v in props.items() if v}
        contact = Record(id_ or self.reserve_id(), kept, ms, self.schema)
        self.live[contact.id] = contact
        if self.search_lag_ms:
            contact.search_ms = None
            self.unindexed.append((ms + self.search_lag_ms, contact.id))
            self.unindexed.sort()
        else:
            self.by_modified.add((ms, contact.id))
        self._index(contact, contact.props)
        return contact

    def reindex(self, now: int) -> None:
        """Let search see the writes whose indexing lag has passed (caller holds the lock)."""
        while self.unindexed and self.unindexed[0][0] <= now:
            _, id_ = self.unindexed.pop(0)
            record = self.live.get(id_)
            if record is None or record.search_ms == record.modified_ms:
                continue
            if record.search_ms is not None:
                self.by_modified.discard((record.search_ms, id_))
            record.search_ms = record.modified_ms
            self.by_modified.add((record.modified_ms, id_))

    def modify(self, contact: Record, props: dict[str, str], ms: int, *, api: bool) -> None:
        """Write ``props``; through the API, lifecyclestage keeps an older value silently."""
        if api and _moves_back(contact, props):
            props = {k: v for k, v in props.items() if k != "lifecyclestage"}
        changed = {k: v for k, v in props.items() if contact.props.get(k, "") != v}
        if not changed:
            return
        self._unindex(contact, changed)
        for name, value in changed.items():
            if value:
                contact.props[name] = value
            else:
                contact.props.pop(name, None)
        self._index(contact, changed)
        contact.modified_ms = ms
        if self.search_lag_ms:  # search keeps the record where it was, for now
            self.unindexed.append((ms + self.search_lag_ms, contact.id))
            self.unindexed.sort()
            return
        if contact.search_ms is not None:
            self.by_modified.discard((contact.search_ms, contact.id))
        contact.search_ms = ms
        self.by_modified.add((ms, contact.id))

    def archive(self, contact: Record, ms: int) -> None:
        self._unindex(contact, contact.props)
        if contact.search_ms is not None:
            self.by_modified.discard((contact.search_ms, contact.id))
        contact.search_ms = None
        del self.live[contact.id]
        contact.modified_ms = contact.archived_ms = ms
        self.archived[contact.id] = contact

    def _index(self, contact: Record, names: Iterable[str]) -> None:
        for name in names:
            value = contact.props.get(name)
            if value and name in self._keys:
                self.index[self._key(name, value)] = contact.id

    def _unindex(self, contact: Record, names: Iterable[str]) -> None:
        for name in names:
            value = contact.props.get(name)
            if value and name in self._keys:
                self.index.pop(self._key(name, value), None)

    def rules(self, record: Record | None, props: dict[str, str]) -> Problem | None:
        """The type's own write rules: lifecycle moves, a deal's stage in its pipeline."""
        problem = self.backward(record, props)
        if problem is None and self.check is not None:
            problem = self.check(None if record is None else record.props, props)
        return problem

    def backward(self, contact: Record | None, props: dict[str, str]) -> Problem | None:
        """The refusal of a backward lifecycle move, when the portal refuses them."""
        if not (self.refuse_backward and contact and _moves_back(contact, props)):
            return None
        old, new = contact.props["lifecyclestage"], props["lifecyclestage"]
        message = f"The lifecycle stage cannot move backward from {old} to {new}: clear it first"
        return invalid_value("lifecyclestage", new, "LIFECYCLE_STAGE_BACKWARD", message)

    def conflict(
        self, props: dict[str, str], own_id: int, claims: dict[tuple[str, str], int]
    ) -> Problem | None:
        """A refusal if ``props`` takes an email or unique value another record holds."""
        for name, value in props.items():
            if not value or name not in self._keys:
                continue
            key = self._key(name, value)
            holder = self.index.get(key, claims.get(key))
            if holder is not None and holder != own_id:
                if name == "email":
                    message = f"Contact already exists. Existing ID: {holder}"
                else:
                    message = (
                        f"A {self.schema.singular} with the value {value} for the unique "
                        f"property {name} already exists. Existing ID: {holder}"
                    )
                return Problem(409, "CONFLICT", message, {"id": [str(holder)]})
        for name, value in props.items():
            if value and name in self._keys:
                claims[self._key(name, value)] = own_id
        return None

    # -- batch endpoints --------------------------------------------------------------

    def batch_create(self, inputs: list[Any]) -> Answer:
        def plan(item: dict[str, Any], claims: dict[tuple[str, str], int]) -> Planned:
            props, problem = check_values(item.get("properties") or {}, self.schema)
            problem = problem or self.rules(None, props)
            if problem:
                return problem
            new_id = self.reserve_id()
            problem = self.conflict(props, new_id, claims)
            if problem:
                return problem
            return lambda ms: self.insert(props, ms, new_id).to_json(props)

        return self._batch("create", inputs, plan, 201)

    def batch_update(self, inputs: list[Any]) -> Answer:
        def plan(item: dict[str, Any], claims: dict[tuple[str, str], int]) -> Planned:
            contact = self.find(str(item.get("id", "")), item.get("idProperty"))
            if contact is None:
                return _not_found(str(item.get("id", "")))
            props, problem = check_values(item.get("properties") or {}, self.schema)
            problem = (
                problem or self.rules(contact, props) or self.conflict(props, contact.id, claims)
            )
            if problem:
                return problem

            def write(ms: int) -> dict[str, Any]:
                self.modify(contact, props, ms, api=True)
                return contact.to_json(props)

            return write

        return self._batch("update", inputs, plan, 200, duplicates=lambda i: str(i.get("id")))

    def batch_upsert(self, inputs: list[Any]) -> Answer:
        def plan(item: dict[str, Any], claims: dict[tuple[str, str], int]) -> Planned:
            key_property, id_text = item.get("idProperty"), str(item.get("id", ""))
            if key_property not in self._keys:
                # HubSpot's words, as reported in segmentio/action-destinations#3957 and
                # HubSpot/hubspot-api-nodejs#548 (the type id, then the property)
                message = (
                    f"Unable to perform update/upsert by non-unique {self.schema.type_id} "
                    f"property {key_property} in portal ID {PORTAL_ID}"
                )
                return Problem(400, "VALIDATION_ERROR", message)
            props, problem = check_values(
                {**(item.get("properties") or {}), key_property: id_text}, self.schema
            )
            existing = self.find(id_text, key_property)
            own_id = existing.id if existing else self.reserve_id()
            problem = problem or self.rules(existing, props) or self.conflict(props, own_id, claims)
            if problem:
                return problem

            def write(ms: int) -> dict[str, Any]:
                if existing is None:
                    return self.insert(props, ms, own_id).to_json(props, new=True)
                self.modify(existing, props, ms, api=True)
                return existing.to_json(props, new=False)

            return write

        def key(item: dict[str, Any]) -> str:
            return str(self._key(str(item.get("idProperty")), str(item.get("id"))))

        return self._batch("upsert", inputs, plan, 200, duplicates=key)

    def batch_read(self, body: dict[str, Any], archived: bool) -> Answer:
        """200 with every record found, or 207 with ``errors`` naming the ids not found
        (https://github.com/HubSpot/hubspot-api-php/issues/619, with ``idProperty``).
        A third party reports 404 when *no* id is found
        (https://github.com/bruin-data/ingestr/pull/1203): not confirmed, not modelled
        (the emulator answers 207 with no results); the connector takes both."""
        inputs = body.get("inputs") or []
        if len(inputs) > MAX_BATCH:
            return _too_many(len(inputs))
        started, found, missing = iso(now_ms()), [], []
        with self.lock:
            for item in inputs:
                id_text = str(item.get("id", ""))
                contact = self.find(id_text, body.get("idProperty"))
                if archived and id_text.isdigit():
                    contact = self.archived.get(int(id_text))
                if contact is None:
                    missing.append(id_text)
                else:
                    found.append(contact.to_json(body.get("properties")))
        message = (
            f"Could not get some {self.schema.singular.upper()} objects, they may be deleted "
            "or not exist. Check that ids are valid."
        )
        return read_answer(found, missing, started, message)

    def batch_archive(self, inputs: list[Any]) -> Answer:
        if len(inputs) > MAX_BATCH:
            return _too_many(len(inputs))
        with self.lock:
            contacts = [self.find(str(item.get("id", ""))) for item in inputs]
            if any(contacts):
                ms = self.tick()
                for contact in contacts:
                    if contact is not None and contact.id in self.live:
                        self.archive(contact, ms)
        return 204, None

    def _batch(
        self,
        action: str,
        inputs: list[Any],
        plan: Callable[[dict[str, Any], dict[tuple[str, str], int]], Planned],
        ok_status: int,
        duplicates: Callable[[dict[str, Any]], str] | None = None,
    ) -> Answer:
        """Validate every input, then write: all or nothing, or per input (multi-status,
        for the actions in ``multi_status`` when every input carries a trace id)."""
        if len(inputs) > MAX_BATCH:
            return _too_many(len(inputs))
        if not all(isinstance(item, dict) for item in inputs):
            return 400, error_body("VALIDATION_ERROR", "Invalid input JSON: inputs must be objects")
        if duplicates is not None:
            keys = [duplicates(item) for item in inputs]
            repeated = sorted({k for k in keys if keys.count(k) > 1})
            if repeated:
                message = f"Duplicate IDs found in batch input: {repeated}. IDs must be unique"
                return 400, error_body("VALIDATION_ERROR", message)
        traced = bool(inputs) and all(item.get("objectWriteTraceId") for item in inputs)
        multi = traced and action in self.multi_status
        started = iso(now_ms())
        with self.lock:
            claims: dict[tuple[str, str], int] = {}
            writes: list[tuple[dict[str, Any], Callable[[int], dict[str, Any]]]] = []
            errors: list[dict[str, Any]] = []
            for item in inputs:
                planned = plan(item, claims)
                if isinstance(planned, Problem):
                    if not multi:
                        return planned.status, planned.body()
                    errors.append(planned.batch_error(str(item["objectWriteTraceId"])))
                else:
                    writes.append((item, planned))
            ms = self.tick() if writes else 0
            results = []
            for item, write in writes:
                result = write(ms)
                if item.get("objectWriteTraceId"):
                    result["objectWriteTraceId"] = str(item["objectWriteTraceId"])
                results.append(result)
        return batch_answer(results, errors, started, ok_status)


Planned = Problem | Callable[[int], dict[str, Any]]
"""An input's refusal, or the write to perform at the request's instant."""


class ContactStore(ObjectStore):
    """The store of contacts."""

    def __init__(self, *, lock: threading.RLock | None = None) -> None:
        super().__init__(CONTACTS, lock=lock)


def _moves_back(contact: Record, props: dict[str, str]) -> bool:
    new, old = props.get("lifecyclestage"), contact.props.get("lifecyclestage")
    return bool(new and old) and LIFECYCLE_RANK.get(new or "", 0) < LIFECYCLE_RANK.get(old or "", 0)


def _not_found(id_text: str) -> Problem:
    return Problem(
        404,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
        {"id": [id_text]},
    )


def _too_many(count: int) -> Answer:
    message = f"Batch input must not contain more than {MAX_BATCH} inputs, got {count}"
    return 400, error_body("VALIDATION_ERROR", message, context={"inputs": [str(count)]})
