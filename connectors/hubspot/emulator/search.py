"""The emulator's read paths: CRM search (filters, sorts, offset paging, cap) and lists.

A search whose filter group bounds the type's modified date (``lastmodifieddate`` for
contacts, ``hs_lastmodifieddate`` for companies and deals) reads only that range of the
(modified, id) index, and one sorted on it with no other filter pages by index
arithmetic, so that incremental scans stay fast on 100,000 records.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from connectors.hubspot.emulator.schema import (
    QUERY_PROPERTIES,
    ObjectSchema,
    error_body,
    now_ms,
    parse_ms,
)
from connectors.hubspot.emulator.store import Answer, ObjectStore, Record

__all__ = [
    "MAX_LIST_LIMIT",
    "MAX_SEARCH_LIMIT",
    "QUERY_PROPERTIES",
    "list_page",
    "property_names",
    "search",
]

MAX_SEARCH_LIMIT = 200
MAX_LIST_LIMIT = 100
OPERATORS = frozenset(
    {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "IN",
        "NOT_IN",
        "HAS_PROPERTY",
        "NOT_HAS_PROPERTY",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
)


class BadSearch(Exception):
    """The request cannot be run; the message is HubSpot's 400 message."""


def _typed(schema: ObjectSchema, name: str, raw: object) -> Any:
    kind = schema.properties[name].type
    if kind == "datetime":
        value = parse_ms(raw)
        if value is None:
            raise BadSearch(f"{raw} is not a valid datetime value for {name}")
        return value
    if kind == "number":
        try:
            return float(str(raw))
        except ValueError:
            raise BadSearch(f"{raw} is not a valid number value for {name}") from None
    return str(raw).casefold()


def _stored(contact: Record, name: str) -> Any:
    if name == contact.schema.modified:
        return contact.search_ms  # as indexed: a write search has not seen yet is not there
    if name == "createdate":
        return contact.created_ms
    if name == "hs_object_id":
        return float(contact.id)
    raw = contact.props.get(name)
    return None if raw in (None, "") else _typed(contact.schema, name, raw)


class Filter:
    """One parsed filter: property, operator and typed operands."""

    __slots__ = ("high", "modified", "name", "op", "value", "values")

    def __init__(self, raw: Any, schema: ObjectSchema) -> None:
        if not isinstance(raw, dict):
            raise BadSearch("Each filter must be an object")
        self.name, self.op = str(raw.get("propertyName", "")), str(raw.get("operator", ""))
        if self.op not in OPERATORS:
            raise BadSearch(f"Invalid operator {self.op!r}")
        if self.name not in schema.properties:
            raise BadSearch(f"Property {self.name!r} does not exist")
        needs_value = self.op not in ("HAS_PROPERTY", "NOT_HAS_PROPERTY", "IN", "NOT_IN")
        if needs_value and raw.get("value") is None:
            raise BadSearch(f"Filter on {self.name} with operator {self.op} needs a value")
        token = self.op.endswith("CONTAINS_TOKEN")
        self.value = raw.get("value")
        if needs_value and not token:
            self.value = _typed(schema, self.name, self.value)
        elif token:
            self.value = str(self.value).casefold().strip("*")
        self.values = {_typed(schema, self.name, v) for v in raw.get("values") or ()}
        self.high = _typed(schema, self.name, raw["highValue"]) if self.op == "BETWEEN" else None
        self.modified = schema.modified

    def matches(self, contact: Record) -> bool:
        stored = _stored(contact, self.name)
        op = self.op
        if op == "HAS_PROPERTY":
            return stored is not None
        if op == "NOT_HAS_PROPERTY":
            return stored is None
        if stored is None:
            return op in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN")
        if op == "EQ":
            return bool(stored == self.value)
        if op == "NEQ":
            return bool(stored != self.value)
        if op == "GT":
            return bool(stored > self.value)
        if op == "GTE":
            return bool(stored >= self.value)
        if op == "LT":
            return bool(stored < self.value)
        if op == "LTE":
            return bool(stored <= self.value)
        if op == "BETWEEN":
            return bool(self.value <= stored <= self.high)
        if op == "IN":
            return stored in self.values
        if op == "NOT_IN":
            return stored not in self.values
        contains = str(self.value) in str(stored)
        return contains if op == "CONTAINS_TOKEN" else not contains

    def bounds(self) -> tuple[int | None, int | None] | None:
        """The modified-date range this filter keeps, if it is a plain range."""
        if self.name != self.modified:
            return None
        v = self.value
        return {
            "EQ": (v, v),
            "GT": (v + 1 if v is not None else None, None),
            "GTE": (v, None),
            "LT": (None, v - 1 if v is not None else None),
            "LTE": (None, v),
            "BETWEEN": (v, self.high),
        }.get(self.op)


def _parse_groups(raw: Any, schema: ObjectSchema) -> list[list[Filter]]:
    groups = raw or []
    if not isinstance(groups, list) or len(groups) > 5:
        raise BadSearch("A search may have at most 5 filterGroups")
    parsed = [[Filter(f, schema) for f in (g or {}).get("filters") or []] for g in groups]
    if any(len(g) > 6 for g in parsed) or sum(len(g) for g in parsed) > 18:
        raise BadSearch("At most 6 filters per group and 18 filters in all")
    return [g for g in parsed if g]


def _parse_sort(raw: Any, schema: ObjectSchema) -> tuple[str, bool]:
    """(property, descending) of the first sort; HubSpot applies one sort rule."""
    if not raw:
        return ("hs_object_id", False)
    first = raw[0]
    if isinstance(first, str):
        name, descending = first.lstrip("-"), first.startswith("-")
    else:
        name = str(first.get("propertyName", ""))
        descending = str(first.get("direction", "ASCENDING")).upper() == "DESCENDING"
    if name not in schema.properties:
        raise BadSearch(f"Cannot sort on unknown property {name!r}")
    return name, descending


def search(store: ObjectStore, request: Any, cap: int) -> Answer:
    """``POST /crm/v3/objects/{type}/search``."""
    try:
        if not isinstance(request, dict):
            raise BadSearch("Invalid input JSON")
        limit, after = int(request.get("limit") or 10), int(request.get("after") or 0)
        if limit > MAX_SEARCH_LIMIT or limit < 1:
            raise BadSearch(f"limit must be between 1 and {MAX_SEARCH_LIMIT}, got {limit}")
        if after + limit > cap:
            raise BadSearch(
                f"The search cannot page past {cap} results (after={after}, limit={limit}): "
                "narrow the filters and start a new search"
            )
        groups = _parse_groups(request.get("filterGroups"), store.schema)
        sort = _parse_sort(request.get("sorts"), store.schema)
        query = str(request.get("query") or "").casefold()
    except (BadSearch, ValueError, TypeError, AttributeError) as exc:
        return 400, error_body("VALIDATION_ERROR", str(exc))
    names = request.get("properties") or None
    with store.lock:
        store.reindex(now_ms())
        total, page = _select(store, groups, sort, after, limit, query)
        results = [c.to_json(names) for c in page]
    body: dict[str, Any] = {"total": total, "results": results}
    if after + len(results) < total:
        body["paging"] = {"next": {"after": str(after + len(results))}}
    return 200, body


def _select(
    store: ObjectStore,
    groups: list[list[Filter]],
    sort: tuple[str, bool],
    after: int,
    limit: int,
    query: str,
) -> tuple[int, list[Record]]:
    prop, descending = sort
    modified = store.schema.modified
    window: tuple[int | None, int | None, list[Filter]] | None = None
    if not groups and prop == modified:
        window = (None, None, [])
    elif len(groups) == 1:
        window = _window(groups[0])
    if window is not None:
        lo, hi, rest = window
        index = store.by_modified
        i = index.bisect_left((lo, -1)) if lo is not None else 0
        j = index.bisect_left((hi + 1, -1)) if hi is not None else len(index)
        j = max(i, j)
        if prop == modified and not rest and not query:
            total = j - i
            if descending:
                keys = index.islice(max(i, j - after - limit), max(i, j - after), reverse=True)
            else:
                keys = index.islice(i + after, min(j, i + after + limit))
            return total, [store.live[key[1]] for key in keys]
        keyset = _id_keyset(rest) if prop == "hs_object_id" and not descending else None
        if keyset is not None and not query and (j - i) * 4 >= len(store.live):
            # Paging a time window by id (id > last): walk the ids, not the window.
            # Counting exactly would walk the whole window on every page; the ids after
            # the keyset bound the total (exact when the window holds every contact).
            total = min(j - i, len(store.live) - store.live.bisect_right(keyset))
            found = []
            for key in store.live.irange(minimum=keyset, inclusive=(False, True)):
                contact = store.live[key]
                indexed = contact.search_ms
                if indexed is None:
                    continue
                if lo is not None and indexed < lo:
                    continue
                if hi is not None and indexed > hi:
                    continue
                found.append(contact)
                if len(found) == after + limit:
                    break
            return total, found[after:]
        candidates: Iterable[Record] = (
            store.live[key[1]] for key in index.islice(i, j, reverse=descending)
        )
        groups = [rest] if rest else []
        ordered = prop == modified
    elif groups and all(_window(g) is not None or _id_set(g) is not None for g in groups):
        walked = _walk_ids(store, groups, sort, after, limit, query)
        if walked is not None:
            return walked
        # OR'ed time windows (a scan and its lookback) and id lists (a scan's deletion
        # check): only the records in them
        spans = []
        ids = set()
        for group in groups:
            listed = _id_set(group)
            if listed is not None:
                ids |= {i for i in listed if i in store.live}
                continue
            lo, hi, _ = _window(group) or (None, None, [])
            i = index_start(store, lo) if lo is not None else 0
            spans.append((i, max(i, index_start(store, hi + 1 if hi is not None else None))))
        ids |= {key[1] for i, j in spans for key in store.by_modified.islice(i, j)}
        candidates = (store.live[i] for i in sorted(ids) if store.live[i].search_ms is not None)
        ordered = prop == "hs_object_id" and not descending
    else:
        candidates = (c for c in store.live.values() if c.search_ms is not None)
        ordered = prop == "hs_object_id" and not descending
    matches = list(_filtered(candidates, groups, query, store.schema.query_properties))
    if not ordered:
        matches.sort(key=_sort_key(prop), reverse=descending)
    return len(matches), matches[after : after + limit]


def _walk_ids(
    store: ObjectStore,
    groups: list[list[Filter]],
    sort: tuple[str, bool],
    after: int,
    limit: int,
    query: str,
) -> tuple[int, list[Record]] | None:
    """OR'ed time windows paged by id (a scan and its lookback, each ``id > last``), when
    they hold a good share of the records: walk the ids from the lowest keyset and stop
    one match past the page, instead of gathering, sorting and filtering every record of
    the windows for every page (a backfill's lookback reads back a million records: that
    made each page cost a second). None: not such a search.

    ``total`` is exact when the walk reached the last id; otherwise it is a bound, at
    least one more than the page (so ``paging.next`` is there exactly when a match
    follows), as the single-window walk above answers it."""
    prop, descending = sort
    if prop != "hs_object_id" or descending or query:
        return None
    starts: list[int] = []
    size = 0
    for group in groups:
        window = _window(group)
        keyset = _id_keyset([f for f in window[2] if f.name == "hs_object_id"]) if window else None
        if window is None or keyset is None:
            return None
        lo, hi, _ = window
        start = index_start(store, lo) if lo is not None else 0
        size += max(0, index_start(store, hi + 1 if hi is not None else None) - start)
        starts.append(keyset)
    if size * 4 < len(store.live):
        return None
    found: list[Record] = []
    for key in store.live.irange(minimum=min(starts), inclusive=(False, True)):
        contact = store.live[key]
        if contact.search_ms is None:
            continue
        if any(all(f.matches(contact) for f in g) for g in groups):
            found.append(contact)
            if len(found) > after + limit:
                return max(size, len(found)), found[after : after + limit]
    return len(found), found[after : after + limit]


def index_start(store: ObjectStore, ms: int | None) -> int:
    """The position of instant ``ms`` in the (modified, id) index (None: its end)."""
    index = store.by_modified
    return int(index.bisect_left((ms, -1))) if ms is not None else len(index)


def _id_keyset(rest: list[Filter]) -> int | None:
    """The id a lone ``hs_object_id > id`` filter starts after, if that is all there is."""
    if len(rest) == 1 and rest[0].name == "hs_object_id" and rest[0].op in ("GT", "GTE"):
        value = int(float(str(rest[0].value)))
        return value if rest[0].op == "GT" else value - 1
    return None


def _id_set(group: list[Filter]) -> set[int] | None:
    """The ids of a group that is one ``hs_object_id IN (...)`` filter, if it is that
    (read by id, not by walking every record). ``IN`` takes a ``values`` list
    (https://developers.hubspot.com/docs/guides/api/crm/search, "Filter search
    results"); how many values HubSpot accepts is not stated there: unconfirmed, and not
    enforced here."""
    if len(group) == 1 and group[0].name == "hs_object_id" and group[0].op == "IN":
        return {int(v) for v in group[0].values}
    return None


def _window(group: list[Filter]) -> tuple[int | None, int | None, list[Filter]] | None:
    """The modified-date range a group bounds and its other filters (None: unbounded)."""
    lo: int | None = None
    hi: int | None = None
    rest: list[Filter] = []
    ranged = False
    for f in group:
        bounds = f.bounds()
        if bounds is None:
            rest.append(f)
            continue
        ranged = True
        if bounds[0] is not None:
            lo = bounds[0] if lo is None else max(lo, bounds[0])
        if bounds[1] is not None:
            hi = bounds[1] if hi is None else min(hi, bounds[1])
    return (lo, hi, rest) if ranged else None


def _filtered(
    candidates: Iterable[Record],
    groups: list[list[Filter]],
    query: str,
    query_properties: tuple[str, ...],
) -> Iterator[Record]:
    for contact in candidates:
        if groups and not any(all(f.matches(contact) for f in g) for g in groups):
            continue
        if query and not any(
            query in (contact.props.get(p) or "").casefold() for p in query_properties
        ):
            continue
        yield contact


def _sort_key(prop: str) -> Any:
    def key(contact: Record) -> tuple[int, Any, int]:
        value = _stored(contact, prop)
        return (value is None, value if value is not None else 0, contact.id)

    return key


def list_page(store: ObjectStore, params: dict[str, list[str]]) -> Answer:
    """``GET /crm/v3/objects/{type}``: by id, ``after`` being the next id to return."""
    try:
        limit = int((params.get("limit") or ["10"])[0])
        after = int((params.get("after") or ["0"])[0])
    except ValueError:
        return 400, error_body("VALIDATION_ERROR", "limit and after must be integers")
    if limit > MAX_LIST_LIMIT or limit < 1:
        return 400, error_body("VALIDATION_ERROR", f"limit must be between 1 and {MAX_LIST_LIMIT}")
    archived = (params.get("archived") or ["false"])[0].lower() == "true"
    names = property_names(params)
    with store.lock:
        if archived:
            ids = sorted(i for i in store.archived if i >= after)[: limit + 1]
            page = [store.archived[i] for i in ids]
        else:
            page = []
            for i in store.live.irange(minimum=after):
                page.append(store.live[i])
                if len(page) > limit:
                    break
        results = [c.to_json(names) for c in page[:limit]]
    body: dict[str, Any] = {"results": results}
    if len(page) > limit:
        body["paging"] = {"next": {"after": str(page[limit].id)}}
    return 200, body


def property_names(params: dict[str, list[str]]) -> list[str] | None:
    """``properties`` given repeated or comma-separated, or None when absent."""
    raw = params.get("properties")
    if not raw:
        return None
    return [name for value in raw for name in value.split(",") if name]
