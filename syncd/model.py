"""Frozen value types shared by the engine and the connectors.

Connectors turn native objects into ``Record``s whose ``fields`` use canonical names
(from ``fields.yaml``) with values normalised to text by ``normalize``; the stage is
kept as the native values (``Record.stage``) and translated by the vocabulary.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal

Value = str | None
"""A canonical field value: text, or None for blank."""

FieldType = Literal["string", "email", "number", "date", "domain"]


def normalize(value: object, type_: FieldType = "string") -> Value:
    """Turn a native value into its canonical text so that both systems compare equal.

    Blank strings become None; numbers lose trailing zeros (``42.0`` -> ``"42"``);
    dates keep their first ten characters (``YYYY-MM-DD``); websites become their
    domain. Email keeps its case (it is
    matched case-insensitively, never rewritten).
    """
    if value is None:
        return None
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if text.strip() == "":
        return None
    if type_ == "number":
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            return text
        if number == number.to_integral_value():
            return str(number.quantize(Decimal(1)))
        return format(number.normalize(), "f")
    if type_ == "date":
        return text.strip()[:10]
    if type_ == "email":
        return text.strip()
    if type_ == "domain":
        return domain_of(text)
    return text


def domain_of(text: str) -> str | None:
    """A website or domain as its bare host: ``https://www.Acme.com/about`` -> ``acme.com``."""
    host = text.strip().lower()
    host = host.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
    host = host.removeprefix("www.")
    return host or None


def email_key(email: Value) -> str | None:
    """The case-insensitive matching key of an email address."""
    return email.strip().lower() if email else None


@dataclass(frozen=True, slots=True)
class RecordRef:
    """Where a record lives: system name, native kind (``contacts``, ``Lead``) and id."""

    system: str
    kind: str
    id: str

    def __str__(self) -> str:
        return f"{self.system}:{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class Record:
    """One native object as canonical fields, native stage values and change time."""

    ref: RecordRef
    fields: Mapping[str, Value]
    modified_at: datetime
    stage: Mapping[str, str] = field(default_factory=dict)
    partner_id: str | None = None
    """The other system's id as held in this record's partner-id field, if any."""
    deleted: bool = False
    converted: Mapping[str, RecordRef] = field(default_factory=dict)
    """What this record became, by object, when the system converted it (a Salesforce
    lead: its contact, account and opportunity). A converted record takes no writes."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """An incremental scan position: a closed start instant and the ids seen at it,
    and where the lookback (the overlap re-read) stands.

    A scan asks for ``modified >= since`` and skips ``tie_ids`` (already seen at exactly
    ``since``), so that records sharing one timestamp across a page boundary are
    neither lost nor read twice.

    ``trail``: the systems can show a change late, stamped with an instant the cursor has
    already passed (a Salesforce transaction commits rows stamped with its start; HubSpot
    search indexes a write seconds or minutes after it). A scan therefore reads the
    window ``[trail, min(now - overlap, since))`` a second time, and stores its end as
    the new ``trail``: every instant is read twice, the second time ``overlap`` after it.
    None: start that window at ``since - overlap``.
    """

    since: datetime | None = None
    tie_ids: frozenset[str] = frozenset()
    trail: datetime | None = None

    def lookback(self, now: datetime, overlap: timedelta) -> tuple[datetime, datetime] | None:
        """The ``[start, end)`` window to read again at ``now``; None when there is none."""
        if self.since is None or overlap <= timedelta(0):
            return None
        start = self.trail if self.trail is not None else self.since - overlap
        end = min(now - overlap, self.since)
        return (start, end) if start < end else None

    def advance(self, records: Sequence[Record]) -> Cursor:
        """The cursor after having read ``records`` (in ascending modified order)."""
        cursor = self
        for record in records:
            at = record.modified_at
            if cursor.since is None or at > cursor.since:
                cursor = Cursor(at, frozenset({record.ref.id}), self.trail)
            elif at == cursor.since:
                cursor = Cursor(at, cursor.tie_ids | {record.ref.id}, self.trail)
        return cursor

    def dumps(self) -> str:
        since = self.since.astimezone(UTC).isoformat() if self.since else None
        value: dict[str, object] = {"since": since, "tie_ids": sorted(self.tie_ids)}
        if self.trail is not None:
            value["trail"] = self.trail.astimezone(UTC).isoformat()
        return json.dumps(value)

    @classmethod
    def loads(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        raw = json.loads(text)
        since = datetime.fromisoformat(raw["since"]) if raw.get("since") else None
        trail = datetime.fromisoformat(raw["trail"]) if raw.get("trail") else None
        return cls(since, frozenset(raw.get("tie_ids", ())), trail)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of an incremental scan and the cursor to store once it is kept."""

    records: Sequence[Record]
    cursor: Cursor


@dataclass(frozen=True, slots=True)
class Change:
    """One write to one record of the target system.

    ``op="create"`` is an upsert keyed on the partner-id field (``partner_id``), so
    that replaying it after a crash finds the record it already created.
    ``fields`` maps canonical names to values (None clears the field); ``stage`` holds
    native stage values to set. ``key`` is a deterministic id to find the outcome by.
    """

    op: Literal["create", "update"]
    kind: str
    key: str
    id: str | None = None
    fields: Mapping[str, Value] = field(default_factory=dict)
    stage: Mapping[str, str] = field(default_factory=dict)
    partner_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one ``Change``: the record's id, or the system's own error."""

    key: str
    ok: bool
    id: str | None = None
    created: bool = False
    error: str | None = None
    code: str | None = None
    stage: Mapping[str, str] = field(default_factory=dict)
    """The native stage values the system holds after the write (verified)."""


FieldMap = Mapping[str, Mapping[str, str]]
"""Per native kind, canonical field name -> native field name."""


@dataclass(frozen=True, slots=True)
class SchemaProblem:
    """A live system is not set up as the configuration needs (``Connector.schema_problems``).

    ``field`` is the canonical field at fault, or None for the partner-id field; the
    message says what the admin must create or change in the system.
    """

    kind: str
    field: str | None
    message: str
    blocking: bool = True


PartnerFields = str | Mapping[str, str]
"""The partner-id field: one name for every native kind, or a name per kind."""


def partner_field_of(partner: PartnerFields, kind: str) -> str | None:
    """The partner-id field of ``kind`` (None: the mapping names none for it)."""
    return partner if isinstance(partner, str) else partner.get(kind)


@dataclass(frozen=True, slots=True)
class Activity:
    """Something sales did with a person in the CRM (a logged call or email, a meeting):
    the first one after a hand-off is its first touch (``syncd.sync.touches``)."""

    ref: RecordRef
    """The activity itself (a Salesforce Task or Event)."""
    person_id: str
    """The CRM person (lead or contact) it concerns."""
    owner_id: str | None
    """The CRM user it is assigned to: who did it."""
    at: datetime
    """When the person was touched."""
    channel: str
    """``call``, ``email``, ``meeting`` or ``task``."""
    modified_at: datetime


@dataclass(frozen=True, slots=True)
class ActivityPage:
    """One page of an activity scan of ``kind`` and the cursor to store once it is kept."""

    kind: str
    activities: Sequence[Activity]
    cursor: Cursor


@dataclass(frozen=True, slots=True)
class Owner:
    """A CRM user as the report names them."""

    id: str
    name: str
    email: str | None
    active: bool


@dataclass(frozen=True, slots=True)
class Reminder:
    """A task syncd writes in the CRM for the owner of a hand-off past its SLA."""

    key: str
    """Names the hand-off; the outcome of its write carries it."""
    person_id: str
    """The CRM person (lead or contact) the task is about."""
    owner_id: str | None
    """Who the task is for (None: the CRM's default, the integration user)."""
    subject: str
    due: date
    marker: str
    """Written into the task, and looked for before creating one: a task found with it
    is the one a crashed run wrote."""
