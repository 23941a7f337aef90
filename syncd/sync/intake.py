"""The door of the inbox: a read record the store cannot hold or match on is refused
alone, before any statement could fail for everyone.

What is checked is what the store keeps outside the record's JSON payload, in columns
that are compared, indexed and bounded (``syncd.state.tables``): the record's id, its
partner id and its matching key (email for people, domain for companies). Every other
value travels inside the payload, JSON text that holds anything (NUL included, escaped),
and reaches the other system as it was read.

- id: at most as long as the inbox column, no NUL (no system hands out such ids; a
  broken one must still not stop the cycle);
- matching key: at most 320 characters (RFC 5321's 64 for the local part, "@", 255 for
  the domain), no NUL: a longer key cannot be matched, so the record is not synced;
- partner id: the other system says whether it can be one of its ids
  (``Connector.id_problem``); a user can type anything into that field.

A refusal becomes a dead letter of the record's own system, with a message naming the
field and why; the record's fixed version is read again when it changes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement

from syncd.model import Record, email_key
from syncd.state.tables import inbox


def column_length(column: ColumnElement[Any]) -> int:
    """The declared length of a string column (what PostgreSQL enforces)."""
    length = getattr(column.type, "length", None)
    assert isinstance(length, int), f"{column} has no length"
    return length


ID_LENGTH = column_length(inbox.c.record_id)
KEY_LENGTH = column_length(inbox.c.email_key)
PARTNER_LENGTH = column_length(inbox.c.partner_id)
SHOWN = 24
"""Characters of a refused value a message quotes."""

IdCheck = Callable[[str], str | None]
"""Why a text cannot be an id of one system (None: it can)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """A read record kept out of the inbox: which field, why, and a code to filter on."""

    record: Record
    field: str
    message: str
    code: str


def shown(value: str) -> str:
    """A value quoted in a message: its first characters, NUL and newlines visible."""
    head = value[:SHOWN] + ("…" if len(value) > SHOWN else "")
    return repr(head)


def printable(text: str) -> str:
    """A text as a store column holds it: PostgreSQL text refuses NUL, so it is written
    as the four characters ``\\x00`` (on SQLite too, so that both stores say the same)."""
    return text.replace("\x00", "\\x00")


def admit(
    records: Sequence[Record],
    *,
    match: str | None,
    partner: str,
    partner_id_problem: IdCheck | None,
) -> tuple[list[Record], list[Refusal]]:
    """Split read records into those the inbox takes and the refused ones.

    ``partner`` names the system whose ids the records' partner ids must be.
    """
    admitted: list[Record] = []
    refused: list[Refusal] = []
    for record in records:
        refusal = _refusal(record, match, partner, partner_id_problem)
        if refusal is None:
            admitted.append(record)
        else:
            refused.append(refusal)
    return admitted, refused


def _refusal(
    record: Record, match: str | None, partner: str, partner_id_problem: IdCheck | None
) -> Refusal | None:
    id_ = record.ref.id
    if len(id_) > ID_LENGTH or "\x00" in id_:
        size = f"{len(id_)} characters" if len(id_) > ID_LENGTH else "it holds a NUL character"
        return Refusal(
            record,
            "id",
            f"record id {shown(id_)} cannot be stored: {size} (at most {ID_LENGTH}, no NUL)",
            "SYNCD_BAD_ID",
        )
    key = email_key(record.fields.get(match)) if match else None
    if key is not None and match is not None:
        if len(key) > KEY_LENGTH:
            return Refusal(
                record,
                match,
                f"{match} longer than {KEY_LENGTH} characters cannot be matched:"
                f" {shown(key)} has {len(key)}",
                "SYNCD_KEY_TOO_LONG",
            )
        if "\x00" in key:
            return Refusal(
                record,
                match,
                f"{match} {shown(key)} holds a NUL character and cannot be matched",
                "SYNCD_KEY_NUL",
            )
    partner_id = record.partner_id
    if partner_id:
        why: str | None = partner_id_problem(partner_id) if partner_id_problem else None
        if why is None and "\x00" in partner_id:
            why = "it holds a NUL character"
        elif why is None and len(partner_id) > PARTNER_LENGTH:
            why = f"{len(partner_id)} characters, at most {PARTNER_LENGTH}"
        if why is not None:
            return Refusal(
                record,
                "partner id",
                f"partner id {shown(partner_id)} is not a {partner} id: {why}",
                "SYNCD_BAD_PARTNER_ID",
            )
    return None
