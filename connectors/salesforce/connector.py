"""The Salesforce connector: leads and contacts over simple-salesforce.

Reads are SOQL ``queryAll`` scans on ``SystemModstamp >= cursor ORDER BY SystemModstamp,
Id`` paged by ``nextRecordsUrl``; the first queries of a cycle's kinds (Lead and Contact)
and a due contact-role sweep slice go in one ``/composite`` call (``scan_ahead``);
writes are sObject Collections of up to 200 records, creates as upserts on the
partner-id external id so that a replay finds what it wrote.
Authentication is OAuth client credentials or the JWT bearer flow (``auth.py``); a 401
on any call (query, queryMore, describe, collections, contact roles) gets one fresh token
and the call again, then AuthError; a refused renewal is an AuthError naming what to check.
Every call has a timeout and runs under ``syncd.retry``.

Every write carries ``Sforce-Duplicate-Rule-Header: allowSave=true|false`` (syncd.yaml
``duplicate_rule_allow_save``, default false): with true, records that an *alert*
duplicate rule flags are saved anyway; with false they are refused
(``DUPLICATES_DETECTED``) and dead-lettered. A collection refused as a whole (400: a
record Salesforce cannot read) is split in halves until the refused record stands alone
(``syncd.sync.split``); records refused one by one (validation rules, read-only fields...)
cost nothing more, as Salesforce saves the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import SalesforceError

from connectors.salesforce import activities
from connectors.salesforce.auth import ClientCredentials, Grant
from connectors.salesforce.errors import (
    SYSTEM,
    SalesforceRequestError,
    is_expired_session,
    translate,
    worth_splitting,
)
from connectors.salesforce.reminders import Reminders
from connectors.salesforce.roles import ROLES, ContactRoles
from connectors.salesforce.schema import problems as schema_problems
from connectors.salesforce.session import Meter, login, session
from syncd.daemon.pacing import Pacer
from syncd.errors import AuthError, ConfigError, ConfigProblem, ConnectorError, RateLimitedError
from syncd.model import (
    ActivityPage,
    Change,
    Cursor,
    FieldMap,
    FieldType,
    Outcome,
    Owner,
    Page,
    PartnerFields,
    Record,
    RecordRef,
    Reminder,
    SchemaProblem,
    Value,
    normalize,
    partner_field_of,
)
from syncd.retry import RetryPolicy, call_with_retry
from syncd.sync.split import Refused, Splitter

T = TypeVar("T")
Window = tuple[datetime, datetime] | None
KINDS = {"person": ("Lead", "Contact"), "company": ("Account",), "deal": ("Opportunity",)}

"""A field mapped to ``@OpportunityContactRole`` holds an opportunity's contacts."""
CONVERTED = {"person": "ConvertedContactId", "company": "ConvertedAccountId"}
CONVERTED |= {"deal": "ConvertedOpportunityId"}
CONVERTED_KINDS = {"person": "Contact", "company": "Account", "deal": "Opportunity"}
MAX_COLLECTION = 200  # sObject Collections take at most 200 records
DUPLICATE_RULE_HEADER = "Sforce-Duplicate-Rule-Header"
MAX_COMPOSITE_QUERIES = 5  # query operations one /composite call may hold
IDS_PER_QUERY = 200  # keeps ``Id IN (...)`` well under the URL length limit
_NUMERIC = frozenset({"double", "currency", "percent", "int", "long"})


@dataclass(frozen=True, slots=True)
class _Kind:
    """What describe told us about one object: its fields and what to select."""

    name: str
    fields: Mapping[str, Mapping[str, Any]]
    select: tuple[str, ...]
    stage_fields: tuple[str, ...]
    partner: str | None
    roles: str | None = None
    """The canonical field holding the contacts of an opportunity (contact roles)."""


class SalesforceConnector:
    """``syncd.abc.Connector`` for Salesforce leads and contacts."""

    system = SYSTEM

    def __init__(
        self,
        *,
        login_url: str,
        field_map: FieldMap,
        grant: Grant | None = None,
        client_id: str = "",
        client_secret: str = "",
        field_types: Mapping[str, Mapping[str, FieldType]],
        stage_fields: Mapping[str, Sequence[str]] | None = None,
        partner_id_field: PartnerFields = "Syncd_HubSpot_Id__c",
        api_version: str = "60.0",
        ca_bundle: str | None = None,
        connect_to: Mapping[str, str] | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RetryPolicy = RetryPolicy(),  # noqa: B008 (a frozen value, safe to share)
        page_size: int = 2000,
        batch_size: int = 200,
        allow_save: bool = False,
        overlap: timedelta = timedelta(minutes=10),
        pacer: Pacer | None = None,
    ) -> None:
        self.login_url = login_url.rstrip("/")
        self.pacer = pacer
        """Keeps the calls in flight under a cap (``syncd.daemon.pacing``); None: no cap."""
        self.grant = grant or ClientCredentials(client_id, client_secret)
        self.field_map, self.field_types = field_map, field_types
        self._stage_fields = {
            k: tuple(v) for k, v in (stage_fields or {"Lead": ["Status"]}).items()
        }
        self.partner_id_field = partner_id_field
        self._converted_statuses: frozenset[str] | None = None
        self.api_version = api_version
        self.retry = retry
        self.page_size = page_size
        self.overlap = overlap
        """How long after a scan its window is read again (``Cursor.trail``)."""
        self.batch_size = max(1, min(batch_size, MAX_COLLECTION))
        self._meter = Meter()
        self._session = session(ca_bundle, timeout, self._meter, connect_to, pacer)
        self._sf: Salesforce | None = None
        self.write_headers = {DUPLICATE_RULE_HEADER: f"allowSave={str(allow_save).lower()}"}
        """Headers of every write (the duplicate rule header)."""
        self._splitter = Splitter()
        self._roles = ContactRoles(
            self._call,
            self._attempt,
            self._pages,
            self.batch_size,
            retry=retry,
            splitter=self._splitter,
            headers=self.write_headers,
        )
        self._reminders = Reminders(self._attempt, self._pages)
        self._kinds: dict[str, _Kind] = {}
        self._describes: dict[str, dict[str, Any]] = {}
        self._ahead: dict[str, tuple[Cursor, str, Window, dict[str, Any], float]] = {}
        """Per kind, the first answer of its next scan (``scan_ahead``): (the cursor it
        was built on, the query, its lookback window, the answer, when it came:
        ``time.monotonic``)."""
        self._sweeps_due: dict[str, tuple[tuple[str, ...], str]] = {}
        """Per kind, a contact-role sweep slice to fold into the next composite."""
        self._swept: dict[str, tuple[tuple[str, ...], list[dict[str, Any]]]] = {}
        """Per kind, (the slice's ids, the role rows the composite read for them)."""
        self._activity_plan: dict[str, Cursor] = {}
        """Activity scans (kind -> cursor) whose first query rides in the next composite."""

    # --- the protocol --------------------------------------------------------------------

    def check(self) -> None:
        """Fetch a token and describe every mapped kind (once; describes are cached).

        A describe that lacks a mapped field is not an error here: ``schema_problems``
        reports it, with every other setup problem."""
        call_with_retry(self.retry, self._login)
        for kind in self.field_map:
            self._describe(kind)

    def schema_problems(self, written: Mapping[str, Collection[str]]) -> list[SchemaProblem]:
        """Mapped fields missing, or not createable/updateable for the integration user
        where syncd writes them; the partner-id field missing, not an External ID, not
        unique or not writable (``connectors.salesforce.schema`` has the rules).

        Describes are read afresh, so that an admin's fix shows without a restart."""
        self._describes.clear()
        self._kinds.clear()
        found: list[SchemaProblem] = []
        for kind, mapped in self.field_map.items():
            partner = partner_field_of(self.partner_id_field, kind)
            found += schema_problems(
                kind, self._describe(kind), mapped, written.get(kind, ()), partner
            )
        return found

    def kinds(self, obj: str) -> Sequence[str]:
        return [kind for kind in KINDS.get(obj, ()) if kind in self.field_map]

    def changes(self, kind: str, cursor: Cursor) -> Iterator[Page]:
        """Records changed since ``cursor`` (deleted ones too: queryAll), ascending by
        ``SystemModstamp, Id``, plus the lookback window read a second time.

        A long transaction commits rows stamped with its start, after a scan has passed
        that instant (Salesforce's replication guide: ``latestDateCovered``). So every
        window is read again ``overlap`` later, in the same query (one query per kind
        for a quiet org): ``(SystemModstamp >= :trail AND SystemModstamp < :end) OR
        SystemModstamp >= :since``. What a second read finds unchanged the engine
        settles against its base without a merge.
        """
        meta = self._kind(kind)
        ahead = self._ahead.pop(kind, None)
        first: dict[str, Any] | None = None
        if ahead is not None and ahead[0] == cursor and _fresh(ahead[3], ahead[4]):
            _, soql, window, first, _ = ahead
        else:
            soql, window = self._scan_query(kind, cursor)
        start = cursor
        trail = window[1] if window else cursor.trail
        moved = False
        for raw_records in self._pages(soql, first):
            records = [
                record
                for record in (self._record(meta, raw) for raw in raw_records)
                if _in(window, record) or not _seen(start, record)
            ]
            records = self._with_roles(meta, records)
            if records and (window is None or records[-1].modified_at >= window[1]):
                moved = True  # the lookback window is behind: its end may be stored
            if records:
                cursor = replace(cursor.advance(records), trail=trail if moved else cursor.trail)
                yield Page(records, cursor)
        if window is not None and cursor.trail != trail:
            yield Page([], replace(cursor, trail=trail))

    def _scan_query(self, kind: str, cursor: Cursor) -> tuple[str, Window]:
        """The query of a scan of ``kind`` from ``cursor`` and its lookback window."""
        meta = self._kind(kind)
        select = ", ".join(meta.select)
        window = cursor.lookback(datetime.now(UTC), self.overlap)
        if window is not None:
            # whole seconds, as format_soql writes them: the next window starts there too
            window = (window[0].replace(microsecond=0), window[1].replace(microsecond=0))
        if cursor.since is None:
            soql = format_soql(
                "SELECT {:literal} FROM {:literal} ORDER BY SystemModstamp, Id", select, kind
            )
        elif window is not None and window[0] < window[1]:
            soql = format_soql(
                "SELECT {:literal} FROM {:literal} WHERE (SystemModstamp >= {}"
                " AND SystemModstamp < {}) OR SystemModstamp >= {}"
                " ORDER BY SystemModstamp, Id",
                select,
                kind,
                window[0],
                window[1],
                cursor.since,
            )
        else:
            window = None
            # format_soql writes whole seconds: the few records between that second and
            # ``since`` come again and are skipped below, as are the ties already seen
            soql = format_soql(
                "SELECT {:literal} FROM {:literal} WHERE SystemModstamp >= {}"
                " ORDER BY SystemModstamp, Id",
                select,
                kind,
                cursor.since,
            )
        return soql, window

    def scan_ahead(self, cursors: Mapping[str, Cursor]) -> None:
        """Send the first query of each kind's next scan (``cursors``: kind -> cursor),
        and the contact-role query of a sweep slice handed to ``prefetch``, in one
        ``/composite`` call, when there are two or more: "the entire series of requests
        counts as a single call toward your API limits" (at most 25 subrequests, 5 of
        them queries:
        https://developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-composite-post.html).
        So a quiet person cycle (Lead and Contact) costs one call, and a deal cycle with
        a role sweep slice due one call too. ``changes`` and ``associations`` then start
        from these answers; further pages are queryMore calls as before. A subrequest
        that failed is left out: its scan sends its query itself and meets the error."""
        planned = [
            (kind, *self._scan_query(kind, cursor), cursor) for kind, cursor in cursors.items()
        ]
        sweeps = list(self._sweeps_due.items())
        self._sweeps_due.clear()
        plan, self._activity_plan = self._activity_plan, {}
        room = MAX_COMPOSITE_QUERIES - len(planned) - len(sweeps)
        now = datetime.now(UTC)
        for kind, cursor in list(plan.items())[: max(0, room)]:
            planned.append((kind, *activities.scan_query(kind, cursor, now, self.overlap), cursor))
        self._ahead.clear()
        self._swept.clear()
        soqls = [soql for _, soql, _, _ in planned] + [soql for _, (_, soql) in sweeps]
        if len(soqls) < 2 or len(soqls) > MAX_COMPOSITE_QUERIES:
            return
        answers = self._composite(soqls)
        at = time.monotonic()
        for (kind, soql, window, cursor), answer in zip(planned, answers, strict=False):
            if answer is not None:
                self._ahead[kind] = (cursor, soql, window, answer, at)
        for (kind, (ids, _)), answer in zip(sweeps, answers[len(planned) :], strict=True):
            if answer is not None:
                rows = list(answer["records"])
                rows += [row for page in self._more(answer) for row in page]
                self._swept[kind] = (ids, rows)

    def prefetch(self, kind: str, sweep: str, ids: Sequence[str]) -> bool:
        """Fold the contact-role query of an association sweep slice (``ids``, at most
        200 opportunities) into the next ``scan_ahead`` composite; True when it will.
        Deletions need no sweep here."""
        if sweep != "associations" or self.sweep_slice(kind, sweep) <= 0 or not ids:
            return False
        wanted = tuple(dict.fromkeys(ids))[:IDS_PER_QUERY]
        self._sweeps_due[kind] = (wanted, self._roles.query(wanted))
        self._swept.pop(kind, None)
        return True

    # --- activities (``syncd.sync.touches``; ``activities.py`` has the rules) ----------

    def activity_kinds(self) -> Sequence[str]:
        """The kinds whose records are sales activities on people (Task, Event)."""
        return activities.KINDS

    def plan_activities(self, cursors: Mapping[str, Cursor]) -> None:
        """Send the first queries of the next activity scans (kind -> cursor) in the next
        ``scan_ahead`` composite (the people's): a quiet org then reads its activities
        at no call of their own."""
        self._activity_plan = {k: c for k, c in cursors.items() if k in activities.KINDS}

    def activities(self, cursors: Mapping[str, Cursor]) -> Iterator[ActivityPage]:
        """Tasks and events on people changed since ``cursors`` (kind -> cursor), one
        kind after the other, ascending, in pages of up to ``page_size``: the first
        answers from the composite ``plan_activities`` asked for, else both first
        queries in one composite of their own, then queryMore."""
        now = datetime.now(UTC)
        plans: dict[str, tuple[Cursor, str, Window, dict[str, Any] | None]] = {}
        for kind in activities.KINDS:
            cursor = cursors.get(kind, Cursor())
            ahead = self._ahead.pop(kind, None)
            if ahead is not None and ahead[0] == cursor and _fresh(ahead[3], ahead[4]):
                plans[kind] = (cursor, ahead[1], ahead[2], ahead[3])
            else:
                plans[kind] = (
                    cursor,
                    *activities.scan_query(kind, cursor, now, self.overlap),
                    None,
                )
        unsent = [kind for kind, plan in plans.items() if plan[3] is None]
        if len(unsent) > 1:
            answers = self._composite([plans[kind][1] for kind in unsent])
            for kind, answer in zip(unsent, answers, strict=True):
                plans[kind] = (*plans[kind][:3], answer)
        for kind, (cursor, soql, window, first) in plans.items():
            yield from activities.pages(kind, cursor, window, self._pages(soql, first))

    def owners(self, ids: Sequence[str]) -> list[Owner]:
        """The users ``ids`` name (unknown ids left out): one query per 200."""
        found: list[Owner] = []
        for chunk in _chunks(list(dict.fromkeys(ids)), activities.USERS_PER_QUERY):
            for rows in self._pages(activities.owners_query(chunk)):
                found.extend(activities.owner(row) for row in rows)
        return found

    def person_owners(self, people: Sequence[RecordRef]) -> dict[str, str]:
        """Each lead's or contact's owner (``OwnerId``), by id (``syncd.sync.sla``)."""
        return self._reminders.owners(people)

    def write_reminders(self, reminders: Sequence[Reminder]) -> list[Outcome]:
        """SLA reminder tasks, each written once (``reminders.py``); one outcome each."""
        return self._reminders.write(reminders)

    def sweep_slice(self, kind: str, sweep: str) -> int:
        """Deletions need no sweep (``queryAll`` scans return deleted rows with a new
        ``SystemModstamp``); an opportunity's contact roles do: 200 opportunities a query
        (adding a role is not known to move the opportunity's ``SystemModstamp``)."""
        if sweep == "associations" and kind in self.field_map and self._kind(kind).roles:
            return IDS_PER_QUERY
        return 0

    def deletions(self, kind: str, ids: Sequence[str]) -> list[Record]:
        """None: deleted rows come with the scans."""
        return []

    def associations(self, kind: str, ids: Sequence[str]) -> dict[str, dict[str, Value]]:
        """Per opportunity, its contacts (contact roles): one query per 200 ids."""
        meta = self._kind(kind)
        if meta.roles is None or not ids:
            return {}
        at = datetime.now(UTC)
        bare = [Record(RecordRef(self.system, kind, i), {}, at) for i in ids]
        swept = self._swept.pop(kind, None)
        if swept is not None and swept[0] == tuple(dict.fromkeys(ids)):
            read = self._roles.from_rows(meta.roles, bare, swept[1])
        else:
            read = self._roles.read(meta.roles, bare)
        return {r.ref.id: {meta.roles: r.fields.get(meta.roles)} for r in read}

    def fetch(self, refs: Sequence[RecordRef]) -> list[Record]:
        ids: dict[str, list[str]] = {}
        for ref in refs:
            if ref.system == self.system:
                ids.setdefault(ref.kind, []).append(ref.id)
        found: list[Record] = []
        for kind, wanted in ids.items():
            meta = self._kind(kind)
            for chunk in _chunks(list(dict.fromkeys(wanted)), IDS_PER_QUERY):
                soql = format_soql(
                    "SELECT {:literal} FROM {:literal} WHERE Id IN {}",
                    ", ".join(meta.select),
                    kind,
                    chunk,
                )
                for raw_records in self._pages(soql):
                    found.extend(
                        self._with_roles(meta, [self._record(meta, raw) for raw in raw_records])
                    )
        return found

    def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        groups: dict[tuple[str, str], list[tuple[int, Change]]] = {}
        outcomes: dict[int, Outcome] = {}
        for index, change in enumerate(changes):
            meta = self._kind(change.kind)
            if change.op == "update":
                how = "update"
            elif meta.partner is None:
                # no plain insert instead: a crash between it and the commit would let the
                # next cycle create the record again (the preflight blocks this setup)
                outcomes[index] = Outcome(
                    change.key,
                    False,
                    None,
                    error=f"Salesforce {change.kind} has no partner-id field to upsert on",
                    code="PARTNER_FIELD_MISSING",
                )
                continue
            else:
                how = "upsert" if change.partner_id else "insert"
            groups.setdefault((how, change.kind), []).append((index, change))
        for (how, kind), items in groups.items():
            for chunk in _chunks(items, self.batch_size):
                outcomes.update(self._write(how, self._kind(kind), chunk))
        self._add_roles(changes, outcomes)
        return [outcomes[index] for index in range(len(changes))]

    def id_problem(self, value: str) -> str | None:
        """Why ``value`` cannot be a Salesforce id: ids are 15 (case-sensitive) or 18
        letters and digits (the "ID Field Type" of the SOAP API developer guide)."""
        if len(value) not in (15, 18):
            return f"{len(value)} characters, ids have 15 or 18"
        if not (value.isascii() and value.isalnum()):
            return "ids hold only the letters A-Z, a-z and digits"
        return None

    def stage_fields(self, kind: str) -> Sequence[str]:
        """The configured stage fields ``kind`` has (describe says which)."""
        return self._kind(kind).stage_fields

    def refers_to(self, kind: str, field: str) -> frozenset[str] | None:
        """Contact roles name Contacts; a lookup field names what describe says it does; a
        kind without the field (a lead's account) holds nothing."""
        native = self.field_map.get(kind, {}).get(field)
        if native is None:
            return frozenset()
        if native == "@" + ROLES:
            return frozenset({"Contact"})
        targets = self._kind(kind).fields.get(native, {}).get("referenceTo") or []
        return frozenset(targets) or None

    def picklists(self) -> Mapping[str, frozenset[str]]:
        values: dict[str, set[str]] = {}
        for kind in self.field_map:
            meta = self._kind(kind)
            for name in (*meta.stage_fields, *self.field_map[kind].values()):
                if name.startswith("@"):
                    continue
                field = meta.fields.get(name, {})
                if field.get("type") in ("picklist", "multipicklist"):
                    active = (v["value"] for v in field["picklistValues"] if v.get("active", True))
                    values.setdefault(name, set()).update(active)
        return {name: frozenset(found) for name, found in values.items()}

    def stage_outcomes(self) -> Mapping[tuple[str, str], str]:
        """Closed ``StageName`` values, won or lost, from the ``OpportunityStage`` object,
        by ``ApiName`` (API v36+), the value ``StageName`` holds."""
        if "Opportunity" not in self.field_map:
            return {}
        # StageName holds a stage's API name; its label (MasterLabel) can be renamed
        soql = "SELECT ApiName, IsClosed, IsWon FROM OpportunityStage WHERE IsActive = true"
        return {
            ("StageName", str(row["ApiName"])): "won" if row.get("IsWon") else "lost"
            for rows in self._pages(soql)
            for row in rows
            if row.get("IsClosed")
        }

    def stage_values(self) -> list[dict[str, str]]:
        """Every active value of every stage field of the synced kinds (Lead.Status,
        Opportunity.StageName), from describe."""
        found: list[dict[str, str]] = []
        for kind in self.field_map:
            meta = self._kind(kind)
            for name in meta.stage_fields:
                for value in meta.fields.get(name, {}).get("picklistValues") or []:
                    entry = {name: str(value["value"])}
                    if value.get("active", True) and entry not in found:
                        found.append(entry)
        return found

    def unwritable_stages(self, kind: str) -> Mapping[str, frozenset[str]]:
        """For leads, the converted statuses (``LeadStatus.IsConverted``, by ApiName).

        Conversion is not a write: an update that sets a converted status is accepted
        and leaves the lead unconverted (IsConverted false), a lead that only looks
        converted. One query, the first time a lead's stage is written.
        """
        if kind != "Lead":
            return {}
        if self._converted_statuses is None:
            soql = "SELECT ApiName FROM LeadStatus WHERE IsConverted = true"
            self._converted_statuses = frozenset(
                str(row["ApiName"]) for rows in self._pages(soql) for row in rows
            )
        return {"Status": self._converted_statuses}

    def api_calls(self) -> Mapping[str, int]:
        return dict(self._meter.calls)

    def api_statuses(self) -> Mapping[int, int]:
        """HTTP answers by status code."""
        return dict(self._meter.statuses)

    def api_usage(self) -> tuple[int, int] | None:
        """(API requests used, daily limit) from the last ``Sforce-Limit-Info`` seen."""
        return self._meter.usage

    def split_calls(self) -> int:
        """Calls made beyond one per collection, splitting collections Salesforce refused
        as a whole to find the refused records (``syncd.sync.split``)."""
        return self._splitter.extra_calls

    def close(self) -> None:
        self._session.close()
        if self.pacer is not None:
            self.pacer.close()

    # --- calls ---------------------------------------------------------------------------

    def _login(self) -> Salesforce:
        """A fresh token (by the configured grant) and a client built on it."""
        self._sf = login(self._session, self.login_url, self.grant, self.api_version)
        return self._sf

    def _call(self, fn: Callable[[Salesforce], T]) -> T:
        """``fn`` with retries (``_attempt`` under ``syncd.retry``)."""
        return call_with_retry(self.retry, lambda: self._attempt(fn))

    def _attempt(self, fn: Callable[[Salesforce], T]) -> T:
        """``fn`` once, errors translated; a 401 gets one fresh token, a second 401 is an
        AuthError. For writes that must not be repeated blindly (contact roles)."""
        try:
            try:
                return fn(self._sf or self._login())
            except SalesforceError as exc:
                if not is_expired_session(exc):
                    raise
            sf = self._login()
            try:
                return fn(sf)
            except SalesforceError as exc:
                if is_expired_session(exc):
                    raise AuthError(
                        SYSTEM, f"session refused right after a new token: {exc}", status=401
                    ) from exc
                raise
        except ConnectorError:
            raise
        except (SalesforceError, requests.RequestException) as exc:
            error = translate(exc)
            if isinstance(error, RateLimitedError) and self.pacer is not None:
                self.pacer.pause(error.retry_after)  # counted: a refusal pacing should prevent
            raise error from exc

    def _pages(
        self, soql: str, first: dict[str, Any] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """The records of a queryAll, one API page at a time (from ``first``, its first
        answer, when a composite read it already)."""
        headers = self._query_headers()
        if first is None:
            first = self._call(lambda sf: sf.query(soql, include_deleted=True, headers=headers))
        yield first["records"]
        yield from self._more(first)

    def _more(self, answer: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """The pages after ``answer``, by its ``nextRecordsUrl`` (queryMore)."""
        headers = self._query_headers()
        while True:
            next_url = answer.get("nextRecordsUrl")
            if answer.get("done", True) or not next_url:
                return

            def more(sf: Salesforce, url: str = next_url) -> Any:
                return sf.query_more(url, identifier_is_url=True, headers=headers)

            answer = self._call(more)
            yield answer["records"]

    def _query_headers(self) -> dict[str, str]:
        return {"Sforce-Query-Options": f"batchSize={self.page_size}"}

    def _composite(self, soqls: Sequence[str]) -> list[dict[str, Any] | None]:
        """The first answers of ``soqls`` (queryAll) from one ``/composite`` call; None
        for a subrequest that failed."""
        base = f"/services/data/v{self.api_version}/queryAll/?"
        payload = {
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": "GET",
                    "url": base + urlencode({"q": soql}),
                    "referenceId": f"q{index}",
                    "httpHeaders": self._query_headers(),
                }
                for index, soql in enumerate(soqls)
            ],
        }
        answer = self._call(lambda sf: sf.restful("composite", method="POST", json=payload))
        by_reference = {
            str(sub.get("referenceId")): sub for sub in (answer or {}).get("compositeResponse", [])
        }
        found: list[dict[str, Any] | None] = []
        for index in range(len(soqls)):
            sub = by_reference.get(f"q{index}") or {}
            body = sub.get("body")
            ok = sub.get("httpStatusCode") == 200 and isinstance(body, dict)
            found.append(body if ok and isinstance(body, dict) and "records" in body else None)
        return found

    # --- describe, records, writes -------------------------------------------------------

    def _describe(self, kind: str) -> dict[str, Any]:
        if kind not in self._describes:
            answer = self._call(lambda sf: sf.restful(f"sobjects/{kind}/describe")) or {}
            self._describes[kind] = answer
        return self._describes[kind]

    def _kind(self, kind: str) -> _Kind:
        if kind not in self._kinds:
            fields = {f["name"]: f for f in self._describe(kind)["fields"]}
            mapped = self.field_map.get(kind, {})
            roles = next((c for c, n in mapped.items() if n == "@" + ROLES), None)
            mapped = {c: n for c, n in mapped.items() if not n.startswith("@")}
            problems = [
                ConfigProblem(
                    "fields.yaml",
                    None,
                    f"{canonical}.salesforce",
                    f"Salesforce {kind} has no field {native!r}",
                )
                for canonical, native in mapped.items()
                if native not in fields
            ]
            if problems:
                raise ConfigError(problems)
            stage = tuple(f for f in self._stage_fields.get(kind, ()) if f in fields)
            partner = partner_field_of(self.partner_id_field, kind)
            partner = partner if partner in fields else None
            extra = [f for f in ("IsConverted", *CONVERTED.values()) if f in fields]
            select = [*mapped.values(), *stage, *([partner] if partner else [])]
            select += ["Id", "SystemModstamp", "IsDeleted", *extra]
            self._kinds[kind] = _Kind(
                kind, fields, tuple(dict.fromkeys(select)), stage, partner, roles
            )
        return self._kinds[kind]

    def _record(self, meta: _Kind, raw: Mapping[str, Any]) -> Record:
        mapped = self.field_map.get(meta.name, {})
        types = self.field_types.get(meta.name, {})
        partner = raw.get(meta.partner) if meta.partner else None
        converted = {}
        if raw.get("IsConverted"):
            converted = {
                obj: RecordRef(self.system, CONVERTED_KINDS[obj], str(raw[field]))
                for obj, field in CONVERTED.items()
                if raw.get(field)
            }
        return Record(
            ref=RecordRef(self.system, meta.name, str(raw["Id"])),
            fields={
                canonical: normalize(raw.get(native), types.get(canonical, "string"))
                for canonical, native in mapped.items()
                if not native.startswith("@")
            },
            modified_at=parse_datetime(str(raw["SystemModstamp"])),
            stage={f: str(raw[f]) for f in meta.stage_fields if raw.get(f) not in (None, "")},
            partner_id=str(partner) if partner else None,
            deleted=bool(raw.get("IsDeleted")),
            converted=converted,
        )

    def _with_roles(self, meta: _Kind, records: list[Record]) -> list[Record]:
        if meta.roles is None:
            return records
        return self._roles.read(meta.roles, records)

    def _add_roles(self, changes: Sequence[Change], outcomes: dict[int, Outcome]) -> None:
        wanted = []
        for index, change in enumerate(changes):
            roles = self._kind(change.kind).roles
            outcome = outcomes[index]
            adds = change.fields.get(roles) if roles else None
            if adds and outcome.ok and outcome.id:
                wanted.append((index, outcome.id, [c.strip() for c in adds.split(",")]))
        self._roles.add(wanted, outcomes)

    def _write(self, how: str, meta: _Kind, chunk: list[tuple[int, Change]]) -> dict[int, Outcome]:
        outcomes: dict[int, Outcome] = {}
        sent: list[tuple[int, Change, dict[str, str]]] = []
        bodies: list[dict[str, Any]] = []
        for index, change in chunk:
            body, stage, problem = self._body(meta, change)
            if problem is not None:
                outcomes[index] = Outcome(
                    change.key, False, change.id, error=problem[1], code=problem[0]
                )
                continue
            sent.append((index, change, stage))
            bodies.append(body)
        if not bodies:
            return outcomes
        path, method = {
            "upsert": (f"composite/sobjects/{meta.name}/{meta.partner}", "PATCH"),
            "insert": ("composite/sobjects", "POST"),
            "update": ("composite/sobjects", "PATCH"),
        }[how]
        items = [(entry, body) for entry, body in zip(sent, bodies, strict=True)]

        def send(part: list[tuple[tuple[int, Change, dict[str, str]], dict[str, Any]]]) -> Any:
            payload = {"allOrNone": False, "records": [body for _, body in part]}
            return self._call(
                lambda sf: sf.restful(path, method=method, json=payload, headers=self.write_headers)
            )

        def splits(error: Exception, part: list[Any]) -> bool:
            return worth_splitting(error, (body for _, body in part))

        for answered in self._splitter.send(items, send, SalesforceRequestError, splits):
            if isinstance(answered, Refused):  # refused alone, or a request refused as a whole
                (index, change, _), _body = answered.item
                error = answered.error
                code = error.code if isinstance(error, SalesforceRequestError) else None
                outcomes[index] = Outcome(change.key, False, change.id, error=str(error), code=code)
                continue
            part = [entry for entry, _ in answered.items]
            for (index, change, stage), result in zip(part, answered.answer or [], strict=True):
                outcomes[index] = _outcome(how, change, stage, result)
        return outcomes

    def _body(
        self, meta: _Kind, change: Change
    ) -> tuple[dict[str, Any], dict[str, str], tuple[str, str] | None]:
        """(record body, stage values written, (code, message) refused before sending)."""
        body: dict[str, Any] = {"attributes": {"type": meta.name}}
        if change.op == "update":
            body["Id"] = change.id
        mapped = self.field_map.get(meta.name, {})
        for canonical, value in change.fields.items():
            native = mapped.get(canonical)
            if native is None or native.startswith("@"):  # not a field of this kind, or roles
                continue
            field_type = str(meta.fields[native].get("type"))
            converted = _to_native(value, field_type)
            if converted is _INVALID:
                label = meta.fields[native].get("label", native)
                return (
                    body,
                    {},
                    (
                        "INVALID_TYPE_ON_FIELD_IN_RECORD",
                        f"{label}: value not of required type: {value}",
                    ),
                )
            body[native] = converted
        stage = {f: v for f, v in change.stage.items() if f in meta.fields}
        body.update(stage)
        if change.partner_id and meta.partner:
            body[meta.partner] = change.partner_id
        return body, stage, None


_INVALID = object()


def _outcome(how: str, change: Change, stage: dict[str, str], result: Mapping[str, Any]) -> Outcome:
    """The outcome of one record from its save result."""
    if result.get("success"):
        created = bool(result.get("created", how == "insert"))
        return Outcome(
            change.key, True, result.get("id") or change.id, created=created, stage=stage
        )
    errors = result.get("errors") or [{}]
    return Outcome(
        change.key,
        False,
        change.id,
        error="; ".join(str(e.get("message", "rejected")) for e in errors),
        code=errors[0].get("statusCode"),
    )


def _to_native(value: str | None, field_type: str) -> Any:
    """A canonical text value as Salesforce's JSON wants it for a field of ``field_type``."""
    if value is None:
        return None
    if field_type in _NUMERIC:
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return _INVALID
        return int(number) if number == number.to_integral_value() else float(number)
    if field_type == "boolean":
        return value.strip().lower() == "true"
    return value


def parse_datetime(text: str) -> datetime:
    """A Salesforce datetime (``2026-11-23T12:00:00.123+0000``) as an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


LOCATOR_WAIT = 600.0
"""Seconds a first answer read ahead may wait for its scan when more pages follow: a
query locator "expires automatically after 15 minutes of inactivity" (SOAP API guide,
QueryLocator:
https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_querymore_querylocator.htm;
a help article says two days: 000004410). Past it the scan sends its query again."""


def _fresh(answer: Mapping[str, Any], at: float) -> bool:
    """Whether a first answer read ahead at ``at`` can still be paged on."""
    return bool(answer.get("done", True)) or time.monotonic() - at < LOCATOR_WAIT


def _in(window: tuple[datetime, datetime] | None, record: Record) -> bool:
    """Inside the lookback window (read again on purpose)."""
    return window is not None and window[0] <= record.modified_at < window[1]


def _seen(start: Cursor, record: Record) -> bool:
    """Read by an earlier scan: before the cursor, or at its instant with a tie id."""
    if start.since is None:
        return False
    return record.modified_at < start.since or (
        record.modified_at == start.since and record.ref.id in start.tie_ids
    )


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for offset in range(0, len(items), size):
        yield items[offset : offset + size]
