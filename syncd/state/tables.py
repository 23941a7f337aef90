"""The state store's tables (SQLAlchemy Core). Alembic migrations create them.

Values read from a system reach these columns in two ways, and neither may fail a
statement for everyone (PostgreSQL enforces ``String`` lengths and refuses NUL in text;
SQLite does neither, so both are checked before the store sees them):

- inside JSON text (``Text``): record payloads, bases, journal details, dead letters'
  changes. JSON holds any value, NUL escaped, any length: nothing to check.
- in bounded columns, compared and indexed: a record's id (``inbox.record_id``, and from
  it ``links.*_id``, ``journal.record_id``, ``dead_letters.source``/``target_id``,
  ``stage_history.source_record``), its partner id (``inbox.partner_id``) and matching
  key (``inbox.email_key``, ``links.email_key``, ``inbox.pair_key``). These stay
  bounded (an index entry has a size limit too) and ``syncd.sync.intake`` refuses a record
  whose value does not fit, before it reaches the inbox: that record alone is
  dead-lettered, with a message naming the field and why.
- a system's error message and code (``dead_letters.message``, ``code``): stored as the
  columns hold them (``syncd.sync.intake.printable``: NUL as ``\\x00``; the code cut to its
  length), on both stores alike.

Stage values, cycle ids, kinds and system names come from the configuration or from
syncd itself, not from records.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal,
    or_,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, TypeEngine

metadata = MetaData()

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


class Moment(TypeDecorator[datetime]):
    """A point in time, read back timezone-aware (UTC) from either store.

    PostgreSQL keeps it as ``timestamptz``. SQLite has no time type: SQLAlchemy's
    ``DateTime`` stores 26 characters of text there (``2026-12-04 14:50:09.467746``),
    five of them per synced person (link created and updated, base, journal, stage
    history) and one more in an index. Here it is an integer of microseconds since
    1970 (8 bytes), ordered and compared like the instants it stands for; migration
    0006 turned the text of older stores into it. A naive value is taken as UTC, as
    syncd writes only UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return (value - EPOCH) // MICROSECOND

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None or dialect.name != "sqlite":
            return value
        return EPOCH + value * MICROSECOND


COMPANY_FIELD = "account"
"""The person field that names the person's company (``bases.company_link``)."""

links = Table(
    "links",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("object", String(32), nullable=False),
    Column("marketing_kind", String(64)),
    Column("marketing_id", String(64)),
    Column("crm_kind", String(64)),
    Column("crm_id", String(64)),
    # The matching key of unlinked records: email for people, domain for companies.
    Column("email_key", String(320)),
    Column("created_at", Moment(), nullable=False),
    Column("updated_at", Moment(), nullable=False),
    Column("tombstoned_at", Moment()),
    Column("tombstone_reason", Text),
    UniqueConstraint("object", "marketing_id", name="uq_links_marketing"),
    UniqueConstraint("object", "crm_id", name="uq_links_crm"),
    Index("ix_links_email", "object", "email_key"),
)

bases = Table(
    "bases",
    metadata,
    Column("link_id", Integer, ForeignKey("links.id", ondelete="CASCADE"), primary_key=True),
    Column("fields", Text, nullable=False),
    Column("stage", String(64)),
    Column("synced_at", Moment(), nullable=False),
    # A person's company (the link id its ``account`` field names), for the closed loop's
    # account-contacts rule: an indexed lookup, not a scan of every person's fields.
    Column("company_link", String(64)),
    Index("ix_bases_company", "company_link"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("kind", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Moment(), nullable=False),
)

inbox = Table(
    "inbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("object", String(32), nullable=False),
    Column("system", String(64), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("link_id", Integer),
    Column("email_key", String(320)),
    Column("partner_id", String(64)),
    Column("pair_key", String(400)),
    Column("modified_at", Moment(), nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", Moment()),
    Column("converted", Text),
    UniqueConstraint("system", "kind", "record_id", name="uq_inbox_record"),
    # Chunks are read in key order per object: these serve "object = ? AND key > ?".
    Index("ix_inbox_link", "object", "link_id"),
    Index("ix_inbox_pair", "object", "pair_key"),
    Index("ix_inbox_partner", "object", "system", "partner_id"),
    Index("ix_inbox_record", "object", "system", "record_id"),
)
"""Records read from a system and not yet reconciled: the durable queue between reads
and writes (and the retry queue of dead-lettered records)."""

journal = Table(
    "journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Moment(), nullable=False),
    Column("cycle_id", String(64), nullable=False),
    Column("link_id", Integer),
    Column("system", String(64)),
    Column("record_id", String(64)),
    Column("action", String(32), nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_journal_link", "link_id"),
)

LOOKED_UP_ACTIONS = ("closed_loop", "converted_deal", "converted", "conversion left alone")
"""The journal actions syncd finds by ``record_id``: the closed loop's done marks, the
people a deal was converted from, the records a link moved away from. The index holds
only these: a ``create`` journaled per record would otherwise put one entry per record
in it (5 MB of a 100 MB store at 100,000 people) that nothing reads."""
LOOKED_UP_WHERE = " OR ".join(f"action = '{a}'" for a in LOOKED_UP_ACTIONS)
"""The partial index's condition as OR'ed equalities: SQLite uses a partial index only
when a term of the query's WHERE is one of the condition's terms (see
https://sqlite.org/partialindex.html, "Queries Using Partial Indexes"), so queries name
each action with ``=`` (``journal_action``), not ``IN``."""
Index(
    "ix_journal_action_record",
    journal.c.action,
    journal.c.record_id,
    sqlite_where=text(LOOKED_UP_WHERE),
    postgresql_where=text(LOOKED_UP_WHERE),
)


def journal_action(*actions: str) -> ColumnElement[bool]:
    """The journal rows of these actions, in a form the partial index serves: one
    equality per action, the value inlined so that a plan PostgreSQL keeps for the
    statement still knows it (a generic plan's ``$1`` could not prove the condition)."""
    unknown = set(actions) - set(LOOKED_UP_ACTIONS)
    if unknown:
        raise ValueError(f"journal actions not indexed by record: {sorted(unknown)}")
    return or_(*(journal.c.action == literal(a, literal_execute=True) for a in actions))


dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("object", String(32), nullable=False),
    Column("system", String(64), nullable=False),
    Column("source", String(200), nullable=False),
    Column("target_id", String(64)),
    Column("change", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("code", String(100)),
    Column("attempts", Integer, nullable=False),
    Column("first_at", Moment(), nullable=False),
    Column("last_at", Moment(), nullable=False),
    Column("resolved_at", Moment()),
    Column("dismissed_at", Moment()),
    Column("dismissed_reason", Text),
    UniqueConstraint("system", "source", name="uq_dead_letter_source"),
)

stage_history = Table(
    "stage_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("link_id", Integer, nullable=False),
    Column("object", String(32), nullable=False),
    Column("from_stage", String(64)),
    Column("to_stage", String(64), nullable=False),
    Column("at", Moment(), nullable=False),
    Column("source_system", String(64), nullable=False),
    Column("source_record", String(200), nullable=False),
    Column("reason", Text),
    # JSON: what marketing knew at a hand-off (score, grade, source by field name), kept
    # on the transition into the hand-off stage only (syncd.report.quality).
    Column("snapshot", Text),
    # Its index (link, stage, time) also serves the lookups by link.
    UniqueConstraint("link_id", "to_stage", "at", name="uq_stage_transition"),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("acquired_at", Moment(), nullable=False),
    Column("expires_at", Moment(), nullable=False),
)
"""Who runs the scheduler of this store (SQLite: the lease itself; PostgreSQL: a note
beside the advisory lock, for status)."""

pauses = Table(
    "pauses",
    metadata,
    Column("scope", String(100), primary_key=True),
    Column("paused_at", Moment(), nullable=False),
    Column("reason", Text),
)
"""Paused systems and objects ("system:hubspot", "object:deal"); they survive restarts."""

resync_requests = Table(
    "resync_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Moment(), nullable=False),
    Column("object", String(32), nullable=False),
    Column("selector", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("started_at", Moment()),
    Column("finished_at", Moment()),
    Column("result", Text),
    Index("ix_resync_state", "state", "id"),
)
"""Manual resyncs: queued by the CLI, drained by the daemon (or run with --now)."""

cycles = Table(
    "cycles",
    metadata,
    Column("object", String(32), primary_key=True),
    Column("cycle_id", String(64), nullable=False),
    Column("started_at", Moment(), nullable=False),
    Column("finished_at", Moment(), nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("result", Text, nullable=False),
)
"""The last cycle of each object: when, whether it went well, and its counts."""

api_usage = Table(
    "api_usage",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("calls", Integer, nullable=False),
    Column("waits", Integer, nullable=False, server_default="0"),
    Column("wait_ms", BigInteger, nullable=False, server_default="0"),
    Column("http_429", Integer, nullable=False, server_default="0"),
)
"""API calls syncd made per system and UTC day (``YYYY-MM-DD``), for the daily budget; of
them, those that waited for the pacing (``syncd.daemon.pacing``), how long, and the answers 429."""

gate_held = Table(
    "gate_held",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("object", String(32), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("email_key", String(320)),
    Column("reason", Text, nullable=False),
    Column("at", Moment(), nullable=False),
    Index("ix_gate_held_email", "email_key"),
)
"""Marketing people the gate keeps out of the CRM (``syncd.sync.gate``), with why, as the
last cycle that read them found: ``syncd status`` counts them, ``syncd explain`` tells
why. A person leaves it when a link is made for them."""
first_touches = Table(
    "first_touches",
    metadata,
    Column("link_id", Integer, primary_key=True),
    Column("handoff_at", Moment(), primary_key=True),
    Column("touched_at", Moment(), nullable=False),
    Column("system", String(64), nullable=False),
    Column("activity_kind", String(64), nullable=False),
    Column("activity_id", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("owner_id", String(64)),
    Column("read_at", Moment(), nullable=False),
)
"""Per hand-off (a person's transition into ``report.handoff_stage``), the first sales
activity on that person at or after it: when, which, what kind, by whom
(``syncd.sync.touches``)."""

crm_owners = Table(
    "crm_owners",
    metadata,
    Column("system", String(64), primary_key=True),
    Column("owner_id", String(64), primary_key=True),
    Column("name", String(255), nullable=False),
    Column("email", String(320)),
    Column("active", Boolean, nullable=False),
    Column("read_at", Moment(), nullable=False),
)
"""The CRM users who own activities, by id: the report names owners, not ids."""

sla_breaches = Table(
    "sla_breaches",
    metadata,
    Column("link_id", Integer, primary_key=True),
    Column("handoff_at", Moment(), primary_key=True),
    Column("breached_at", Moment(), nullable=False),
    Column("crm_id", String(64)),
    Column("marketing_id", String(64)),
    Column("owner_id", String(64)),
    Column("task_state", String(16), nullable=False),
    Column("task_id", String(64)),
    Column("flag_state", String(16), nullable=False),
    Column("touched_at", Moment()),
    Column("updated_at", Moment(), nullable=False),
)
"""Hand-offs that passed ``report.speed_to_lead_sla_hours`` untouched, and what syncd
wrote back about each (``syncd.sync.sla``): the CRM task (``task_state``: off, intent,
written) and the marketing flag (``flag_state``: off, intent, written, clearing,
cleared). An ``intent`` is stored before the remote write, so that a crash between the
write and its commit is found again, never written twice."""

derived_refs = Table(
    "derived_refs",
    metadata,
    Column("object", String(32), primary_key=True),
    Column("system", String(64), primary_key=True),
    Column("record_id", String(64), primary_key=True),
    Column("field", String(64), primary_key=True),
    Column("ref_link", Integer, primary_key=True),
    Column("ref_id", String(64), nullable=False),
    Column("link_id", Integer, nullable=False),
    Column("rule", String(32), nullable=False),
    Column("at", Moment(), nullable=False),
)
"""References syncd added to one system on its own (``syncd.sync.outcomes``: a deal's
attributed people, associated with the marketing system's deal): added once, never carried
to the other system by the merge, never removed. By record (object, system, record id),
then field and the referenced link."""
