"""HubSpot objects <-> syncd values: records from API objects, properties from changes.

One ``ObjectMapping`` per synced object type (contacts, companies, deals). A native
name starting with "@" is no property but an association to that object type: its
canonical field reads as the associated ids, ascending, joined by "," (None when there
are none), and a change's value for it holds ids to associate (never to dissociate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from connectors.hubspot.errors import SYSTEM
from syncd.model import Change, Cursor, FieldType, Record, RecordRef, Value, normalize

OBJECT_TYPES = ("contacts", "companies", "deals")
"""The object types the connector syncs, in the order it reads and writes them."""
MODIFIED = {"contacts": "lastmodifieddate", "companies": "hs_lastmodifieddate"}
"""Each type's modified-date property (deals: ``hs_lastmodifieddate`` too)."""
LINK = "@"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def modified_property(object_type: str) -> str:
    return MODIFIED.get(object_type, "hs_lastmodifieddate")


def epoch_ms(moment: datetime) -> int:
    """An aware instant as epoch milliseconds (HubSpot's filter value for dates)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def parse_instant(raw: object) -> datetime | None:
    """A HubSpot instant (ISO-8601 or epoch millis) as an aware UTC datetime."""
    if raw is None or raw == "":
        return None
    text = str(raw).strip()
    if text.isdigit():
        return EPOCH + timedelta(milliseconds=int(text))
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def seen(cursor: Cursor, record: Record) -> bool:
    """Whether ``record`` was read already at the cursor's instant."""
    return record.modified_at == cursor.since and record.ref.id in cursor.tie_ids


def chunked(
    changes: Sequence[Change], size: int, key: Callable[[Change], object]
) -> Iterator[list[Change]]:
    """Batches of at most ``size`` in which no record appears twice (HubSpot refuses that)."""
    chunk: list[Change] = []
    keys: set[object] = set()
    for change in changes:
        if len(chunk) >= size or key(change) in keys:
            yield chunk
            chunk, keys = [], set()
        chunk.append(change)
        keys.add(key(change))
    if chunk:
        yield chunk


def id_list(value: Value) -> list[str]:
    """Comma-joined ids as a list without blanks or repeats: "3, 1,3" -> ["3", "1"]."""
    ids = (part.strip() for part in (value or "").split(","))
    return list(dict.fromkeys(i for i in ids if i))


def joined_ids(ids: Iterable[str]) -> Value:
    """Ids ascending numerically (non-numeric ones last), joined by ","; None when none."""
    unique = sorted(set(ids), key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))
    return ",".join(unique) or None


@dataclass(frozen=True)
class ObjectMapping:
    """Canonical fields, associations, stage fields and partner-id property of one type."""

    kind: str
    """The object type as paths spell it: ``contacts``, ``companies``, ``deals``."""
    fields: Mapping[str, str]
    """Canonical name -> property, or "@" + object type for an association."""
    types: Mapping[str, FieldType]
    stage_fields: Sequence[str]
    partner_field: str

    @property
    def modified(self) -> str:
        return modified_property(self.kind)

    @cached_property
    def links(self) -> dict[str, str]:
        """Canonical name -> associated object type, for the association fields."""
        return {c: n.removeprefix(LINK) for c, n in self.fields.items() if n.startswith(LINK)}

    @cached_property
    def link_types(self) -> list[str]:
        """The associated object types, each once (one association read per type)."""
        return list(dict.fromkeys(self.links.values()))

    @cached_property
    def read_properties(self) -> list[str]:
        """Every property a read asks for."""
        native = {n for n in self.fields.values() if not n.startswith(LINK)}
        return sorted({*native, *self.stage_fields, self.partner_field, self.modified} - {""})

    def record(self, obj: Mapping[str, Any], *, deleted: bool = False) -> Record:
        """A record from an object as the API returns it (parsed JSON); association
        fields are None until ``with_links`` fills them."""
        props: Mapping[str, Any] = obj.get("properties") or {}
        modified = (
            (parse_instant(obj.get("archivedAt")) if deleted else None)
            or parse_instant(props.get(self.modified))
            or parse_instant(obj.get("updatedAt"))
        )
        if modified is None:
            raise ValueError(f"{self.kind} {obj.get('id')} has no modification time")
        return Record(
            ref=RecordRef(SYSTEM, self.kind, str(obj["id"])),
            fields={
                canonical: None
                if native.startswith(LINK)
                else normalize(props.get(native), self.types.get(canonical, "string"))
                for canonical, native in self.fields.items()
            },
            modified_at=modified,
            stage=self.stage_of(props),
            partner_id=props.get(self.partner_field) or None,
            deleted=deleted,
        )

    def with_links(self, record: Record, linked: Mapping[str, Mapping[str, Value]]) -> Record:
        """``record`` with its association fields from ``linked`` (type -> id -> ids)."""
        links = {c: linked.get(t, {}).get(record.ref.id) for c, t in self.links.items()}
        return replace(record, fields={**record.fields, **links}) if links else record

    def stage_of(self, props: Mapping[str, Any]) -> dict[str, str]:
        """The non-blank stage values among ``props``."""
        return {f: str(props[f]) for f in self.stage_fields if str(props.get(f) or "").strip()}

    def properties(self, change: Change) -> dict[str, str]:
        """What a change writes: mapped fields (None clears: ""), stages, partner id."""
        props = {
            self.fields[name]: "" if value is None else value
            for name, value in change.fields.items()
            if name in self.fields and not self.fields[name].startswith(LINK)
        }
        props.update(change.stage)
        if change.partner_id:
            props[self.partner_field] = change.partner_id
        return props

    def links_to_add(self, change: Change) -> dict[str, list[str]]:
        """Associated object type -> ids a change associates (never removes any)."""
        wanted: dict[str, list[str]] = {}
        for canonical, target in self.links.items():
            ids = id_list(change.fields.get(canonical))
            if ids:
                known = wanted.setdefault(target, [])
                known.extend(i for i in ids if i not in known)
        return wanted
