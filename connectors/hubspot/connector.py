"""``HubSpotConnector``: contacts through the official client (hubspot-api-client 12).

Reads are incremental searches on ``lastmodifieddate``; writes are batch upserts (keyed
on the partner-id property, so a replay finds what it created) and batch updates in
multi-status mode, so that one refused contact does not fail its batch. Every call
goes through ``syncd.retry`` after ``connectors.hubspot.errors.translate``.

The client builds, authenticates and sends every request; answers are read as JSON
(``_preload_content=False``) because the client's model deserialisation parses every
timestamp with dateutil: it took about 70% of a 100,000-contact scan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
from hubspot import HubSpot
from hubspot.crm.contacts import (
    BatchApi,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SearchApi,
)
from urllib3.util.retry import Retry

from connectors.hubspot.errors import SYSTEM, VENDOR_ERRORS, HubSpotRequestError, translate
from connectors.hubspot.mapping import KIND, ContactMapping, chunked, epoch_ms, seen
from syncd.errors import TransientError
from syncd.model import Change, Cursor, FieldMap, FieldType, Outcome, Page, Record, RecordRef
from syncd.retry import RetryPolicy, call_with_retry

CONTACTS = "/crm/v3/objects/contacts"
LIFECYCLE = "lifecyclestage"
DEFAULT_RETRY = RetryPolicy()
FIRST_SCAN_DELETION_MARGIN = timedelta(minutes=5)
"""A first scan reports contacts archived since shortly before it began (clock skew)."""
WRITE_MODELS: dict[str, type] = {
    "create": BatchInputSimplePublicObjectBatchInputForCreate,
    "update": BatchInputSimplePublicObjectBatchInput,
    "upsert": BatchInputSimplePublicObjectBatchInputUpsert,
}
Answer = dict[str, Any]


class HubSpotConnector:
    """HubSpot contacts as a ``syncd.abc.Connector``."""

    system = SYSTEM

    def __init__(
        self,
        *,
        host: str,
        access_token: str,
        field_map: FieldMap,
        field_types: Mapping[str, FieldType],
        stage_fields: Sequence[str] = ("lifecyclestage", "hs_lead_status"),
        partner_id_field: str = "syncd_salesforce_id",
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy = DEFAULT_RETRY,
        page_size: int = 200,
        batch_size: int = 100,
        settle: timedelta = timedelta(seconds=5),
    ) -> None:
        client = HubSpot(access_token=access_token, host=host.rstrip("/"), retry=Retry(0))
        # One ApiClient, so one connection pool, for the three contacts APIs.
        self._basic = client.crm.contacts.basic_api
        self._batch = BatchApi(self._basic.api_client)
        self._search = SearchApi(self._basic.api_client)
        self._properties = client.crm.properties.core_api
        self.mapping = ContactMapping(
            dict(field_map.get(KIND, {})), dict(field_types), tuple(stage_fields), partner_id_field
        )
        self._read = self.mapping.read_properties
        self._timeout, self._retry = timeout, retry
        self.page_size = max(1, min(page_size, 200))
        self.batch_size = max(1, min(batch_size, 100))
        self._calls: Counter[str] = Counter()
        self.settle = settle

    def _call(self, label: str, request: Callable[..., Any]) -> Answer:
        """One API call as parsed JSON, translated to syncd errors and retried per policy."""

        def attempt() -> Answer:
            self._calls[label] += 1
            try:
                response = request(_preload_content=False, _request_timeout=self._timeout)
                try:
                    raw = response.data
                finally:
                    response.release_conn()
            except VENDOR_ERRORS as exc:
                raise translate(exc) from exc
            try:
                answer = orjson.loads(raw) if raw else {}
            except ValueError as exc:
                raise TransientError(SYSTEM, f"unreadable answer to {label}: {exc}") from exc
            return answer if isinstance(answer, dict) else {}

        return call_with_retry(self._retry, attempt)

    def check(self) -> None:
        """One cheap authenticated call."""
        self._call(f"GET {CONTACTS}", partial(self._basic.get_page, limit=1, archived=False))

    def kinds(self, obj: str) -> Sequence[str]:
        return [KIND] if obj == "person" else []

    # -- reads ------------------------------------------------------------------------

    def changes(self, kind: str, cursor: Cursor) -> Iterator[Page]:
        """Contacts changed in one window from ``cursor.since``, then those archived in it.

        The window ends just after the newest change HubSpot holds (one search, newest
        first: the server's clock, not ours), and ``settle`` before now at the latest,
        because search is eventually consistent: a contact written a moment ago may not
        be indexed yet, and is read by the next scan instead of being lost.

        Inside the window, pages are keyed on ``hs_object_id`` (``id > last id``,
        ascending), never on ``after``: an offset window shifts when a contact already
        read is edited during the scan and loses an unread one, and offsets stop at the
        10,000-result cap; an id keyset does neither, and ties on the timestamp cost
        nothing. Only the last page carries the advanced cursor, so a scan cut short
        is read again whole (re-reading is harmless: the merge finds no change).
        """
        if kind != KIND:
            raise ValueError(f"the HubSpot connector reads {KIND}, not {kind!r}")
        began = datetime.now(UTC)
        since = []
        if cursor.since is not None:
            since = [
                {
                    "propertyName": "lastmodifieddate",
                    "operator": "GTE",
                    "value": str(epoch_ms(cursor.since)),
                }
            ]
        deleted = self._archived_since(cursor, began)
        newest = self._search_page(since, "lastmodifieddate", descending=True, limit=1)
        instants = [r.modified_at for r in map(self.mapping.record, newest.get("results") or [])]
        instants += [r.modified_at for r in deleted]
        if not instants:
            return
        upper = max(instants) + timedelta(milliseconds=1)
        if self.settle:
            upper = min(upper, began - self.settle)
        if cursor.since is not None and upper <= cursor.since:
            return
        window = [
            *since,
            {"propertyName": "lastmodifieddate", "operator": "LT", "value": str(epoch_ms(upper))},
        ]
        last_id, pending = "0", list[Record]()
        while True:
            filters = [
                *window,
                {"propertyName": "hs_object_id", "operator": "GT", "value": last_id},
            ]
            answer = self._search_page(filters, "hs_object_id")
            results = answer.get("results") or []
            if pending:
                yield Page(pending, cursor)
            pending = [r for r in map(self.mapping.record, results) if not seen(cursor, r)]
            if not results or not (answer.get("paging") or {}).get("next"):
                break
            last_id = str(results[-1]["id"])
        deleted = [r for r in deleted if r.modified_at < upper]
        yield Page([*pending, *deleted], Cursor(upper))

    def _search_page(
        self,
        filters: list[dict[str, str]],
        sort: str,
        *,
        descending: bool = False,
        limit: int | None = None,
    ) -> Answer:
        request = PublicObjectSearchRequest(
            filter_groups=[{"filters": filters}] if filters else [],
            sorts=[
                {"propertyName": sort, "direction": "DESCENDING" if descending else "ASCENDING"}
            ],
            properties=self._read,
            limit=limit or self.page_size,
        )
        return self._call(f"POST {CONTACTS}/search", partial(self._search.do_search, request))

    def _archived_since(self, cursor: Cursor, began: datetime) -> list[Record]:
        """Archived contacts changed since ``cursor``, ascending (list endpoint, 100 a call)."""
        since = cursor.since or (began - FIRST_SCAN_DELETION_MARGIN)
        found: list[Record] = []
        after: str | None = None
        while True:
            request = partial(
                self._basic.get_page, limit=100, after=after, properties=self._read, archived=True
            )
            answer = self._call(f"GET {CONTACTS}", request)
            for obj in answer.get("results") or []:
                record = self.mapping.record(obj, deleted=True)
                if record.modified_at > since or (
                    record.modified_at == since and record.ref.id not in cursor.tie_ids
                ):
                    found.append(record)
            after = ((answer.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return sorted(found, key=lambda r: (r.modified_at, int(r.ref.id)))

    def fetch(self, refs: Sequence[RecordRef]) -> list[Record]:
        """Contacts by id, 100 a call; unknown and archived ids are left out."""
        ids = list(dict.fromkeys(r.id for r in refs if r.kind == KIND))
        records: list[Record] = []
        for start in range(0, len(ids), 100):
            request = BatchReadInputSimplePublicObjectId(
                inputs=[{"id": i} for i in ids[start : start + 100]],
                properties=self._read,
                properties_with_history=[],
            )
            answer = self._call(
                f"POST {CONTACTS}/batch/read", partial(self._batch.read, request, archived=False)
            )
            records.extend(self.mapping.record(obj) for obj in answer.get("results") or [])
        order = {id_: n for n, id_ in enumerate(ids)}
        return sorted(records, key=lambda r: order.get(r.ref.id, len(order)))

    # -- writes -----------------------------------------------------------------------

    def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        """Upserts (creates) and updates, batched, multi-status; one outcome per change."""
        outcomes: dict[str, Outcome] = {}
        groups = (
            ("upsert", [c for c in changes if c.op == "create" and c.partner_id]),
            ("create", [c for c in changes if c.op == "create" and not c.partner_id]),
            ("update", [c for c in changes if c.op == "update"]),
        )
        for op, group in groups:
            for chunk in chunked(group, self.batch_size, lambda c: c.partner_id or c.id or c.key):
                outcomes.update(self._send(op, [self._input(op, c) for c in chunk]))
                # A portal may refuse a backward lifecycle move instead of keeping the old
                # stage: write the rest, and let _settle_stages clear and set the stage.
                refused = [
                    replace(c, stage={f: v for f, v in c.stage.items() if f != LIFECYCLE})
                    for c in chunk
                    if c.stage.get(LIFECYCLE) and _refused_stage(outcomes[c.key])
                ]
                if refused:
                    outcomes.update(self._send(op, [self._input(op, c) for c in refused]))
        self._settle_stages(changes, outcomes)
        missing = "HubSpot returned no result for this input"
        return [
            outcomes.get(c.key) or Outcome(c.key, False, c.id, error=missing, code="MISSING_RESULT")
            for c in changes
        ]

    def _input(self, op: str, change: Change) -> dict[str, Any]:
        item: dict[str, Any] = {
            "properties": self.mapping.properties(change),
            "objectWriteTraceId": change.key,
        }
        if op == "upsert":
            item.update(id=change.partner_id, idProperty=self.mapping.partner_field)
        elif op == "update":
            item["id"] = change.id
        else:
            item["associations"] = []
        return item

    def _send(self, op: str, inputs: list[dict[str, Any]]) -> dict[str, Outcome]:
        """One batch write; an outcome per input, keyed by its objectWriteTraceId."""
        body = WRITE_MODELS[op](inputs=inputs)
        try:
            answer = self._call(
                f"POST {CONTACTS}/batch/{op}", partial(getattr(self._batch, op), body)
            )
        except HubSpotRequestError as exc:  # refused as a whole: every input shares the error
            return {
                i["objectWriteTraceId"]: _refused(op, i, exc.detail, exc.category) for i in inputs
            }
        by_id = {str(i.get("id")): i["objectWriteTraceId"] for i in inputs}
        outcomes: dict[str, Outcome] = {}
        for result in answer.get("results") or []:
            props = result.get("properties") or {}
            matched = props.get(self.mapping.partner_field) if op == "upsert" else result.get("id")
            key = result.get("objectWriteTraceId") or by_id.get(str(matched))
            if key is not None:
                created = bool(result.get("new")) if op == "upsert" else op == "create"
                stage = self.mapping.stage_of(props)
                outcomes[key] = Outcome(key, True, str(result["id"]), created, stage=stage)
        items = {i["objectWriteTraceId"]: i for i in inputs}
        for error in answer.get("errors") or []:
            traces = (error.get("context") or {}).get("objectWriteTraceId") or [
                error.get("objectWriteTraceId")
            ]
            for key in traces:
                if key in items:
                    message = str(error.get("message") or "refused")
                    outcomes[key] = _refused(op, items[key], message, error.get("category"))
        return outcomes

    def _settle_stages(self, changes: Iterable[Change], outcomes: dict[str, Outcome]) -> None:
        """Move stages HubSpot kept (a lifecycle stage cannot go backwards): clear, then set."""
        stuck: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {}  # id, wanted, held
        for change in changes:
            outcome = outcomes.get(change.key)
            if outcome is None or not outcome.ok or outcome.id is None:
                continue
            wanted = {f: v for f, v in change.stage.items() if v and outcome.stage.get(f) != v}
            if wanted:
                held = {f: outcome.stage.get(f, "") for f in wanted}
                stuck[change.key] = (outcome.id, wanted, held)
        keys = list(stuck)
        for start in range(0, len(keys), self.batch_size):
            chunk = keys[start : start + self.batch_size]
            blank = [_stage_input(k, stuck[k][0], dict.fromkeys(stuck[k][1], "")) for k in chunk]
            cleared = self._send("update", blank)
            chunk = [k for k in chunk if _settled(k, cleared.get(k), outcomes, stuck[k][1])]
            if not chunk:
                continue
            moved = self._send("update", [_stage_input(k, *stuck[k][:2]) for k in chunk])
            lost = [k for k in chunk if not _settled(k, moved.get(k), outcomes, {})]
            if lost:  # put back what HubSpot held rather than leave the stage blank
                restore = [_stage_input(k, stuck[k][0], stuck[k][2]) for k in lost]
                for key, result in self._send("update", restore).items():
                    if result.ok:
                        stage = {**outcomes[key].stage, **result.stage}
                        outcomes[key] = replace(outcomes[key], stage=stage)

    # -- the rest ---------------------------------------------------------------------

    def picklists(self) -> Mapping[str, frozenset[str]]:
        """Options of every enumeration contact property (the stage fields among them)."""
        answer = self._call(
            "GET /crm/v3/properties/contacts", partial(self._properties.get_all, "contacts")
        )
        return {
            str(p["name"]): frozenset(str(o["value"]) for o in p.get("options") or [])
            for p in answer.get("results") or []
            if p.get("type") == "enumeration"
        }

    def api_calls(self) -> Mapping[str, int]:
        """HTTP requests sent (retries included), by "METHOD path"."""
        return dict(self._calls)

    def close(self) -> None:
        for api in (self._basic, self._properties):
            api.api_client.close()
            api.api_client.rest_client.pool_manager.clear()


def _refused_stage(outcome: Outcome | None) -> bool:
    """Whether HubSpot refused a write for its lifecycle stage (not for a bad option)."""
    error = outcome.error or "" if outcome and not outcome.ok else ""
    return LIFECYCLE in error and "allowed options" not in error


def _refused(op: str, item: Mapping[str, Any], message: str, code: str | None) -> Outcome:
    record_id = item.get("id") if op == "update" else None
    return Outcome(item["objectWriteTraceId"], False, record_id, error=message, code=code)


def _stage_input(key: str, id_: str, stage: Mapping[str, str]) -> dict[str, Any]:
    return {"id": id_, "objectWriteTraceId": key, "properties": dict(stage)}


def _settled(
    key: str, result: Outcome | None, outcomes: dict[str, Outcome], cleared: Mapping[str, str]
) -> bool:
    """Fold a stage write's result into the change's outcome; True if it landed."""
    before = outcomes[key]
    if result is not None and result.ok:
        stage = {f: v for f, v in {**before.stage, **result.stage}.items() if f not in cleared}
        outcomes[key] = Outcome(key, True, before.id, before.created, stage=stage)
        return True
    error = result.error if result else "HubSpot returned no result for the stage write"
    code = result.code if result else "MISSING_RESULT"
    outcomes[key] = Outcome(key, False, before.id, before.created, error, code, before.stage)
    return False
