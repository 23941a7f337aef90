"""HubSpot contacts <-> syncd values: records from API objects, properties from changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.hubspot.errors import SYSTEM
from syncd.model import Change, Cursor, FieldType, Record, RecordRef, normalize

KIND = "contacts"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


@dataclass(frozen=True)
class ContactMapping:
    """Canonical fields, stage fields and the partner-id property of HubSpot contacts."""

    fields: Mapping[str, str]
    """Canonical name -> contact property."""
    types: Mapping[str, FieldType]
    stage_fields: Sequence[str]
    partner_field: str

    @property
    def read_properties(self) -> list[str]:
        """Every property a read asks for."""
        wanted = {*self.fields.values(), *self.stage_fields, self.partner_field}
        return sorted(wanted | {"lastmodifieddate"})

    def record(self, obj: Mapping[str, Any], *, deleted: bool = False) -> Record:
        """A record from a contact as the API returns it (parsed JSON)."""
        props: Mapping[str, Any] = obj.get("properties") or {}
        modified = (
            (parse_instant(obj.get("archivedAt")) if deleted else None)
            or parse_instant(props.get("lastmodifieddate"))
            or parse_instant(obj.get("updatedAt"))
        )
        if modified is None:
            raise ValueError(f"contact {obj.get('id')} has no modification time")
        return Record(
            ref=RecordRef(SYSTEM, KIND, str(obj["id"])),
            fields={
                canonical: normalize(props.get(native), self.types.get(canonical, "string"))
                for canonical, native in self.fields.items()
            },
            modified_at=modified,
            stage=self.stage_of(props),
            partner_id=props.get(self.partner_field) or None,
            deleted=deleted,
        )

    def stage_of(self, props: Mapping[str, Any]) -> dict[str, str]:
        """The non-blank stage values among ``props``."""
        return {f: str(props[f]) for f in self.stage_fields if str(props.get(f) or "").strip()}

    def properties(self, change: Change) -> dict[str, str]:
        """What a change writes: mapped fields (None clears: ""), stages, partner id."""
        props = {
            self.fields[name]: "" if value is None else value
            for name, value in change.fields.items()
            if name in self.fields
        }
        props.update(change.stage)
        if change.partner_id:
            props[self.partner_field] = change.partner_id
        return props
