"""The Connector protocol: what the engine asks of every external system; the Fence
that keeps a daemon which lost its lease from writing.

Every method may raise the ``ConnectorError`` subclasses of ``syncd.errors``
(never a vendor exception): ``TransientError`` and ``RateLimitedError`` when a retry
may help (connectors retry those themselves with ``syncd.retry`` before giving up),
``AuthError`` when credentials fail, ``LimitExceededError`` when the daily API limit
is spent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from syncd.model import (
    Change,
    Cursor,
    Outcome,
    Page,
    Record,
    RecordRef,
    SchemaProblem,
    Value,
)

if TYPE_CHECKING:
    from sqlalchemy import Connection


class Connector(Protocol):
    """One external system (a marketing automation platform or a CRM)."""

    system: str
    """The system's name in configuration (``hubspot``, ``salesforce``)."""

    def check(self) -> None:
        """Authenticate and make one cheap call; raise if the system cannot be used."""

    def kinds(self, obj: str) -> Sequence[str]:
        """The native kinds holding a canonical object (``person`` -> ``Lead``, ``Contact``)."""

    def changes(self, kind: str, cursor: Cursor) -> Iterator[Page]:
        """Records of ``kind`` changed at or after ``cursor``, ascending, in full pages.

        Deleted (archived) records come with ``deleted=True``. Each page carries the
        cursor to store once the page is kept.
        """

    def sweep_slice(self, kind: str, sweep: str) -> int:
        """How many linked ids one call of a sweep of ``kind`` takes (0: none needed).

        ``deletions``: records the scan cannot see go (HubSpot's archived ones);
        ``associations``: associations whose change does not move the record's
        modified date (a contact added to a deal, a contact role added).
        """

    def deletions(self, kind: str, ids: Sequence[str]) -> list[Record]:
        """The records among ``ids`` the system has deleted, as ``deleted=True`` records."""

    def associations(self, kind: str, ids: Sequence[str]) -> Mapping[str, Mapping[str, Value]]:
        """Per id (those the system still holds), its association fields as they are now:
        canonical name -> native ids, joined."""

    def fetch(self, refs: Sequence[RecordRef]) -> list[Record]:
        """Read records by id, batched; unknown ids are left out of the answer."""

    def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        """Write changes in batches of the system's maximum size; one outcome per change.

        Creates are upserts on the partner-id field. A record the system refuses is an
        outcome with ``ok=False`` and the system's own message; the rest still land.
        """

    def id_problem(self, value: str) -> str | None:
        """Why ``value`` cannot be an id of this system (None: it can be one). Used on
        partner ids read from the other system, where a user may have typed anything."""

    def stage_fields(self, kind: str) -> Sequence[str]:
        """The native stage fields records of ``kind`` hold (a Salesforce contact: none)."""

    def refers_to(self, kind: str, field: str) -> frozenset[str] | None:
        """The native kinds a reference field of ``kind`` can point at (None: any).

        A Salesforce contact role names a Contact, never a Lead.
        """

    def picklists(self) -> Mapping[str, frozenset[str]]:
        """Allowed values of the native stage fields, by field name."""

    def stage_outcomes(self) -> Mapping[tuple[str, str], str]:
        """The stage values that close a deal: (field, value) -> "won" or "lost"."""

    def stage_values(self) -> Sequence[Mapping[str, str]]:
        """Every native stage value the live system offers, each with the fields that
        make it one (a HubSpot deal stage with its pipeline; a Salesforce Lead.Status or
        StageName value): stages.yaml must map or ignore each."""

    def unwritable_stages(self, kind: str) -> Mapping[str, frozenset[str]]:
        """Native stage values that must never be written to records of ``kind``, by
        field (a converted Lead.Status on a lead): syncd leaves those fields out."""

    def schema_problems(self, written: Mapping[str, Collection[str]]) -> list[SchemaProblem]:
        """What the live schema lacks for the configured mapping, read as the integration
        user sees it: mapped fields that do not exist on a kind, have an incompatible type,
        or cannot be written where ``written`` (native kind -> canonical fields syncd
        writes into this system) says they are written; the partner-id field missing,
        not unique or not writable on a synced kind. Empty when all is in order.
        """

    def api_calls(self) -> Mapping[str, int]:
        """API calls made so far, by endpoint label (for metrics and the benchmark)."""

    def api_usage(self) -> tuple[int, int] | None:
        """(calls used today, daily limit) as the system last reported them, if it does."""

    def api_statuses(self) -> Mapping[int, int]:
        """HTTP answers by status code, retries included (0: no answer at all)."""

    def split_calls(self) -> int:
        """Calls made so far beyond one per batch, splitting batches the system refused as
        a whole to find the refused records (``syncd.sync.split``)."""

    def close(self) -> None:
        """Release connections."""


@runtime_checkable
class Associating(Protocol):
    """A connector that can add references to its records apart from any other write
    (HubSpot: v4 associations). The closed loop uses it to associate a deal's attributed
    people with the marketing system's deal (``syncd.sync.outcomes``)."""

    def associate(
        self, kind: str, field: str, pairs: Sequence[tuple[str, str]]
    ) -> Mapping[tuple[str, str], tuple[str, str | None]]:
        """Add the reference field ``field`` of records of ``kind`` to the given records:
        (record id, referenced id) pairs, in batches. Adding one that exists changes
        nothing. Returns the pairs the system refused, with its message and code."""


class Fence(Protocol):
    """Proof that this process still holds the scheduler's lease (``syncd.daemon.lease``).

    The engine asks before each batch of remote writes and inside each commit of a
    chunk, so that a daemon which lost its lease writes nothing more, even mid-cycle.
    """

    def check(self) -> None:
        """Raise ``LeaseLostError`` unless the lease is still held (one cheap query)."""

    def check_in(self, connection: Connection) -> None:
        """The same inside a store transaction about to commit: raise ``LeaseLostError``
        (the transaction then rolls back) unless the lease row still names this process
        and the tenure (epoch) it took the lease in, and the lock is still held."""
