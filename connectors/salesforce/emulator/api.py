"""The emulated REST API: describe, SOQL query/queryMore, sObject Collections and
single-record resources, answering with Salesforce's status codes and bodies.

The OAuth token endpoint and token expiry are ``emulator_auth.py``'s (what the real one
does, with the public references, is written there); the daily limit, injected failures
and latency are the server's (``emulator.py``); this module turns one authenticated
request into one answer.

sObject Collections (``allOrNone: false``) save what they can and answer 200 with one
save result per record: a record refused by a rule of the org (``emulator_rules``)
costs only itself. A request that cannot be read is refused as a whole, 400, nothing
saved ("If the request isn't well formed, the API returns a 400 Bad Request":
https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-sobjects-collections-create.html).
The emulator counts as unreadable a record naming a field the object does not have
(``INVALID_FIELD`` "No such column 'X' on sobject of type Lead") and a date, date-time or
number the JSON parser cannot turn into one (``JSON_PARSER_ERROR`` "Cannot deserialize
instance of date from VALUE_STRING value ..."). Which record contents fail the whole
request rather than the one record is not stated on a public page: these two are the
emulator's reading, taken from how the REST API deserializes a body before saving.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import parse_qs, unquote

from connectors.salesforce.emulator.access import FieldAccess
from connectors.salesforce.emulator.rules import allow_save
from connectors.salesforce.emulator.schema import (
    NUMERIC,
    OBJECTS,
    SObject,
    sobject,
)
from connectors.salesforce.emulator.store import Row, Store
from connectors.salesforce.soql import SoqlError, parse

MAX_COLLECTION = 200
MAX_SUBREQUESTS = 25
MAX_QUERY_SUBREQUESTS = 5
_DATA = re.compile(r"^/services/data/v(\d+\.\d)(?:/(.*))?$")


@dataclass
class Request:
    method: str
    path: str
    params: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Answer:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    lost: bool = False
    """Handled, then the answer is lost: the server closes the connection unanswered."""


def fault(status: int, code: str, message: str) -> Answer:
    """An error answer in Salesforce's shape: a list of {message, errorCode}."""
    return Answer(status, [{"message": message, "errorCode": code}])


NOT_FOUND = ("NOT_FOUND", "The requested resource does not exist")


def label(method: str, path: str) -> str:
    """The endpoint label calls are counted under (``GET query``, ``PATCH composite/sobjects``)."""
    if path.rstrip("/") == "/services/oauth2/token":
        return f"{method} oauth2/token"
    match = _DATA.match(path)
    if not match:
        return f"{method} other"
    parts = [p for p in (match.group(2) or "").split("/") if p]
    if parts[:1] in (["query"], ["queryAll"]):
        return f"{method} queryMore" if len(parts) > 1 else f"{method} {parts[0]}"
    if parts[:2] == ["composite", "sobjects"]:
        return f"{method} composite/sobjects" + (" upsert" if len(parts) == 4 else "")
    if parts[:1] == ["sobjects"]:
        if len(parts) == 3 and parts[2] == "describe":
            return f"{method} describe"
        return f"{method} sobjects" + (" upsert" if len(parts) == 4 else "")
    return f"{method} {'/'.join(parts[:1]) or 'resources'}"


class RestApi:
    """The REST resources of one emulated org."""

    def __init__(self, store: Store, *, batch_min: int) -> None:
        self.store = store
        self.batch_min = batch_min
        self.access = FieldAccess()
        """What the integration user may see and edit (describe, SOQL, writes)."""

    # --- data ----------------------------------------------------------------------------

    def handle(self, request: Request) -> Answer:
        match = _DATA.match(request.path)
        if not match:
            return fault(404, *NOT_FOUND)
        version = match.group(1)
        parts = [unquote(p) for p in (match.group(2) or "").split("/") if p]
        method = request.method
        try:
            if parts[:1] in (["query"], ["queryAll"]) and method == "GET":
                if len(parts) == 1:
                    return self.query(request, version, include_deleted=parts[0] == "queryAll")
                return self.query_more(request, version, parts[1])
            if parts[:2] == ["composite", "sobjects"]:
                return self.collection(request, parts[2:])
            if parts == ["composite"] and method == "POST":
                return self.composite(request)
            if parts[:1] == ["sobjects"] and len(parts) >= 2:
                return self.single(request, version, parts[1:])
            if parts == ["sobjects"] and method == "GET":
                return Answer(
                    200,
                    {
                        "sobjects": [
                            {"name": o.name, "label": o.label, "keyPrefix": o.prefix}
                            for o in OBJECTS.values()
                        ]
                    },
                )
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError) as exc:
            return fault(400, "JSON_PARSER_ERROR", f"Unexpected request body: {exc}")
        return fault(404, *NOT_FOUND)

    def query(self, request: Request, version: str, *, include_deleted: bool) -> Answer:
        text = (request.params.get("q") or [""])[-1]
        try:
            query = parse(text, self.access.soql_types())
        except SoqlError as exc:
            return fault(400, exc.code, exc.message)
        rows = self.store.select(query, include_deleted=include_deleted)
        batch = self._batch_size(request, 2000)
        locator = self.store.open_cursor(query, rows, batch) if len(rows) > batch else ""
        return Answer(200, self._page(version, query.object, query.fields, rows, 0, batch, locator))

    def query_more(self, request: Request, version: str, position: str) -> Answer:
        locator, _, offset = position.rpartition("-")
        cursor = self.store.cursor(locator)
        if cursor is None or not offset.isdigit():
            return fault(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        batch = self._batch_size(request, cursor.batch)
        return Answer(
            200,
            self._page(
                version, cursor.obj, cursor.fields, cursor.rows, int(offset), batch, locator
            ),
        )

    def _batch_size(self, request: Request, default: int) -> int:
        options = request.headers.get("Sforce-Query-Options", "")
        match = re.search(r"batchSize\s*=\s*(\d+)", options)
        return min(max(int(match.group(1)), self.batch_min), 2000) if match else default

    def _page(
        self,
        version: str,
        obj: str,
        fields: tuple[str, ...],
        rows: list[Row],
        offset: int,
        batch: int,
        locator: str,
    ) -> dict[str, Any]:
        end = offset + batch
        answer: dict[str, Any] = {
            "totalSize": len(rows),
            "done": end >= len(rows),
            "records": [self.render(version, obj, row, fields) for row in rows[offset:end]],
        }
        if end < len(rows):
            answer["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        return answer

    @staticmethod
    def render(
        version: str, obj: str, row: Row, fields: tuple[str, ...] | None = None
    ) -> dict[str, Any]:
        """A row as the API shows it: ``attributes`` first, then the fields asked for."""
        url = f"/services/data/v{version}/sobjects/{obj}/{row['Id']}"
        record: dict[str, Any] = {"attributes": {"type": obj, "url": url}}
        record.update((f, row.get(f)) for f in (fields or OBJECTS[obj].fields))
        return record

    def composite(self, request: Request) -> Answer:
        """``POST /services/data/vXX.X/composite``: up to 25 subrequests in one call, at
        most 5 of them query operations (query, queryAll, queryMore); the answer is
        ``{"compositeResponse": [{body, httpHeaders, httpStatusCode, referenceId}]}`` in
        request order, and "the entire series of requests counts as a single call toward
        your API limits" (the server counts it once, ``Sforce-Limit-Info`` too):
        https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-composite-post.html
        and the response body:
        https://developer.salesforce.com/docs/platform/api-rest/guide/responses-composite.html

        Each subrequest's ``httpHeaders`` go with it (``Sforce-Query-Options`` included;
        whether the real API honours that one inside a composite is not confirmed). Not
        emulated: references between subrequests (``@{ref.id}``, refused here with 400)
        and ``allOrNone`` rollback (subrequests here are reads or independent writes);
        the error code of a request past the limits is not stated on the public page
        (``INVALID_BATCH_REQUEST`` here is the emulator's choice)."""
        body = request.json()
        subrequests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(subrequests, list) or not subrequests:
            return fault(400, "JSON_PARSER_ERROR", "The request body must contain compositeRequest")
        queries = sum(1 for s in subrequests if _is_query(str((s or {}).get("url", ""))))
        if len(subrequests) > MAX_SUBREQUESTS or queries > MAX_QUERY_SUBREQUESTS:
            return fault(
                400,
                "INVALID_BATCH_REQUEST",
                f"A composite request takes at most {MAX_SUBREQUESTS} subrequests, at most"
                f" {MAX_QUERY_SUBREQUESTS} of them query operations",
            )
        answers = []
        for sub in subrequests:
            url = str(sub.get("url", ""))
            reference = str(sub.get("referenceId", ""))
            if "@{" in url or "@{" in json.dumps(sub.get("body")):
                answer = fault(400, "INVALID_OPERATION", "references are not emulated")
            else:
                path, _, query = url.partition("?")
                payload = sub.get("body")
                answer = self.handle(
                    Request(
                        str(sub.get("method", "GET")).upper(),
                        path,
                        parse_qs(query, keep_blank_values=True),
                        {str(k): str(v) for k, v in (sub.get("httpHeaders") or {}).items()},
                        json.dumps(payload).encode() if payload is not None else b"",
                    )
                )
            answers.append(
                {
                    "body": answer.body,
                    "httpHeaders": answer.headers,
                    "httpStatusCode": answer.status,
                    "referenceId": reference,
                }
            )
        return Answer(200, {"compositeResponse": answers})

    # --- writes --------------------------------------------------------------------------

    def collection(self, request: Request, rest: list[str]) -> Answer:
        method = request.method
        if method == "DELETE" and not rest:
            ids = [i for i in ",".join(request.params.get("ids", [])).split(",") if i]
            all_or_none = (request.params.get("allOrNone") or ["false"])[-1] == "true"
            if len(ids) > MAX_COLLECTION:
                return _too_many()
            return Answer(
                200, self.store.write([self.store.delete(i) for i in ids], all_or_none=all_or_none)
            )
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            return fault(400, "JSON_PARSER_ERROR", "The request body must contain records")
        records: list[dict[str, Any]] = body["records"]
        if len(records) > MAX_COLLECTION:
            return _too_many()
        types = []
        for record in records:
            obj = sobject(str((record.get("attributes") or {}).get("type", "")))
            if obj is None:
                return fault(400, "INVALID_TYPE", "Each record must have a valid type attribute")
            types.append(obj)
        for obj, record in zip(types, records, strict=True):
            unreadable = _unreadable(obj, record)
            if unreadable is not None:
                return unreadable
        save = allow_save(request.headers)
        if method == "PATCH" and len(rest) == 2 and not self.access.visible(rest[0], rest[1]):
            return fault(
                404, "NOT_FOUND", f"The requested resource does not exist: {rest[0]}/{rest[1]}"
            )
        if method == "POST" and not rest:
            operations = [
                self._create(obj, record, save) for obj, record in zip(types, records, strict=True)
            ]
        elif method == "PATCH" and not rest:
            operations = [
                self.store.update(obj, _get(record, "Id"), record, allow_save=save)
                if _get(record, "Id")
                else _missing_id
                for obj, record in zip(types, records, strict=True)
            ]
        elif method == "PATCH" and len(rest) == 2:
            target = sobject(rest[0])
            if target is None:
                return fault(404, "NOT_FOUND", f"The requested resource does not exist: {rest[0]}")
            ext = target.field(rest[1])
            if ext is None or not ext.external_id:
                return fault(
                    400,
                    "INVALID_FIELD",
                    f"Field name provided, {rest[1]} is not an "
                    f"External ID or indexed field for {target.name}",
                )
            operations = [
                self.store.upsert(target, ext.name, record, allow_save=save) for record in records
            ]
        else:
            return _method_not_allowed(method)
        operations = [
            self._allowed(obj, record, operation)
            for obj, record, operation in zip(types, records, operations, strict=True)
        ]
        return Answer(200, self.store.write(operations, all_or_none=bool(body.get("allOrNone"))))

    def _allowed(self, obj: SObject, record: dict[str, Any], operation: Any) -> Any:
        """``operation``, or its refusal when it writes a field the user may not write."""
        refusals = self.access.refusals(obj, {k: v for k, v in record.items() if k != "attributes"})
        if not refusals:
            return operation
        return lambda _batch: {"id": None, "success": False, "errors": refusals}

    def _create(self, obj: SObject, record: dict[str, Any], save: bool) -> Any:
        if _get(record, "Id"):
            return lambda _batch: {
                "success": False,
                "errors": [
                    {
                        "statusCode": "INVALID_FIELD",
                        "message": "cannot specify Id in an insert call",
                        "fields": ["Id"],
                    }
                ],
            }
        return self.store.create(obj, record, allow_save=save)

    def single(self, request: Request, version: str, parts: list[str]) -> Answer:
        obj = sobject(parts[0])
        if obj is None:
            return fault(404, *NOT_FOUND)
        method = request.method
        if parts[1:] == ["describe"] and method == "GET":
            with self.store.lock:
                answer = self.store.rules.describe(
                    obj.name, self.access.describe(obj, obj.describe(version))
                )
            return Answer(200, self._stage_labels(answer) if obj.name == "Opportunity" else answer)
        if len(parts) == 1 and method == "POST":
            return _single_answer(
                self.store.write([self.store.create(obj, request.json())], all_or_none=True)[0], 201
            )
        if len(parts) == 3:
            ext = obj.field(parts[1])
            if ext is None or not ext.external_id:
                return fault(404, *NOT_FOUND)
            with self.store.lock:
                owner = self.store.external[obj.name].get(parts[2].lower())
            if method == "PATCH":
                values = {**(request.json() or {}), ext.name: parts[2]}
                result = self.store.write(
                    [self.store.upsert(obj, ext.name, values)], all_or_none=True
                )[0]
                return _single_answer(result, 201 if result.get("created") else 200)
            parts = [parts[0], owner or ""]
        if len(parts) != 2:
            return fault(404, *NOT_FOUND)
        row = self.store.get(obj.name, parts[1])
        if row is None:
            return fault(404, *NOT_FOUND)
        if method == "GET":
            if row["IsDeleted"]:
                return fault(404, "ENTITY_IS_DELETED", "entity is deleted")
            wanted = (request.params.get("fields") or [""])[-1]
            names = tuple(f.name for n in wanted.split(",") if n and (f := obj.field(n)))
            return Answer(200, self.render(version, obj.name, row, names or None))
        if method in ("PATCH", "DELETE"):
            operation = (
                self.store.update(obj, row["Id"], request.json() or {})
                if method == "PATCH"
                else self.store.delete(row["Id"])
            )
            result = self.store.write([operation], all_or_none=True)[0]
            return _single_answer(result, 204)
        return _method_not_allowed(method)

    def _stage_labels(self, answer: dict[str, Any]) -> dict[str, Any]:
        """``StageName``'s picklist entries carry each stage's current label (MasterLabel)
        and, as ``value``, its API name: what a record's StageName holds."""
        with self.store.lock:
            labels = {
                str(r["ApiName"]): str(r["MasterLabel"])
                for r in self.store.rows["OpportunityStage"].values()
            }
        fields = []
        for described in answer["fields"]:
            if described["name"] == "StageName":
                entries = [
                    {**v, "label": labels.get(v["value"], v["label"])}
                    for v in described["picklistValues"]
                ]
                described = {**described, "picklistValues": entries}
            fields.append(described)
        return {**answer, "fields": fields}


def _is_query(url: str) -> bool:
    """A query operation (query, queryAll or queryMore) by its subrequest URL."""
    match = _DATA.match(url.partition("?")[0])
    return match is not None and (match.group(2) or "").split("/")[0] in ("query", "queryAll")


def _unreadable(obj: SObject, record: Mapping[str, Any]) -> Answer | None:
    """The 400 refusing a whole collection for a record it cannot read, if any."""
    for name, value in record.items():
        if name == "attributes":
            continue
        field = obj.field(name)
        if field is None:
            return fault(
                400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}"
            )
        if value is None or value == "":
            continue
        kind = "double" if field.kind in NUMERIC else field.kind
        if kind in ("date", "datetime", "double") and not _parses(kind, value):
            return fault(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {kind} from VALUE_STRING value {value} or"
                " request may be missing a required field",
            )
    return None


def _parses(kind: str, value: Any) -> bool:
    if kind == "double":
        if isinstance(value, bool):
            return False
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return True
    text = str(value)
    pattern = (
        r"\d{4}-\d{2}-\d{2}"
        if kind == "date"
        else r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})?"
    )
    if not re.fullmatch(pattern, text):
        return False
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        return False
    return True


def _get(record: Mapping[str, Any], name: str) -> Any:
    return next((v for k, v in record.items() if k.lower() == name.lower()), None)


def _missing_id(_batch: Any) -> dict[str, Any]:
    problem = {
        "statusCode": "MISSING_ARGUMENT",
        "message": "Id not specified in an update call",
        "fields": [],
    }
    return {"id": None, "success": False, "errors": [problem]}


def _too_many() -> Answer:
    return fault(
        400,
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {MAX_COLLECTION} records into this call",
    )


def _method_not_allowed(method: str) -> Answer:
    return fault(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed.")


def _single_answer(result: dict[str, Any], status: int) -> Answer:
    """A single-record write: the save result, or its errors as a 400 (404 when gone)."""
    if result["success"]:
        return Answer(status, None if status == 204 else result)
    errors = [
        {"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]}
        for e in result["errors"]
    ]
    gone = errors[0]["errorCode"] in ("ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY")
    return Answer(404 if gone else 400, errors)
