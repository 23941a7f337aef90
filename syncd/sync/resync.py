"""Manual resyncs: re-read chosen records from both systems and merge them again.

``syncd resync`` records a request in the store and returns; the daemon drains the
queue within seconds (or ``--now`` runs it in the foreground). A request names an
object and one selector:

- ``emails``: the linked records with these emails, and the people the gate on the CRM
  holds back with them (``syncd.sync.gate``: read again, they are asked again);
- ``ids``: records by either system's id (``00Q...``, ``1001``, or ``system:kind:id``),
  their partners too when linked;
- ``since``/``until``: every record the systems changed in that range;
- ``all``: every record of the object.

Emails and ids may be given together (both are read); a scan (``since``/``until``,
``all``) reads by date and would ignore them, so ``conflict`` refuses the mix, and
``unmatched`` names what the store cannot find before the request is queued.

The records are read again whatever the cursors say (the cursors do not move), put in
the inbox with their links, and merged like any cycle's, every one of them (none is
settled as an echo first). Writes are the merge's, so a resync creates nothing twice
and adds stage history only for real transitions.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from syncd.abc import Connector
from syncd.errors import LeaseLostError, SyncdError
from syncd.model import Cursor, Record, RecordRef, email_key
from syncd.state import gated
from syncd.state.store import Store, aware
from syncd.state.tables import resync_requests
from syncd.sync.cycle import counts_fields, counts_text
from syncd.sync.reconcile import CRM, MARKETING, LinkState

if TYPE_CHECKING:
    from syncd.sync.cycle import CycleReport
    from syncd.sync.engine import Engine

log = logging.getLogger("syncd.resync")
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


def enqueue(store: Store, obj: str, selector: Mapping[str, Any], now: datetime) -> int:
    """Record a request; its id."""
    with store.engine.begin() as connection:
        connection.execute(
            resync_requests.insert().values(
                created_at=now,
                object=obj,
                selector=orjson.dumps(selector, default=str).decode(),
                state=QUEUED,
            )
        )
        return int(
            connection.scalar(select(resync_requests.c.id).order_by(resync_requests.c.id.desc()))
            or 0
        )


def requests(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """The newest requests with their state and result."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(resync_requests).order_by(resync_requests.c.id.desc()).limit(limit)
        )
        return [
            {
                "id": r.id,
                "object": r.object,
                "selector": orjson.loads(r.selector),
                "state": r.state,
                "created_at": aware(r.created_at),
                "started_at": aware(r.started_at),
                "finished_at": aware(r.finished_at),
                "result": orjson.loads(r.result) if r.result else None,
            }
            for r in rows
        ]


def drain(engine: Engine, *, only: int | None = None, quiet: bool = False) -> int:
    """Run queued requests, oldest first (or request ``only``); how many ran.

    A failure is stored as the request's result and logged: one line for syncd's own
    errors (a system refused, the store failed), with the traceback for anything else.
    ``quiet``: the caller tells the outcome itself (``syncd resync --now``); no log."""
    ran = 0
    while not engine.stopping.is_set():
        request = _claim(engine.store, only)
        if request is None:
            return ran
        ran += 1
        try:
            report = run(engine, request["object"], request["selector"])
        except LeaseLostError:  # not failed: the daemon that holds the lease runs it again
            _requeue(engine.store, request["id"])
            raise
        except Exception as error:  # the request fails; the daemon goes on and says so
            if quiet:
                pass
            elif isinstance(error, SyncdError):
                log.error("resync %s failed: %s", request["id"], error)
            else:
                log.exception("resync %s failed", request["id"])
            _finish(engine.store, request["id"], FAILED, {"error": str(error)})
        else:
            _finish(engine.store, request["id"], DONE, report.as_dict())
            if not quiet:
                result = report.as_dict()
                log.info(
                    "resync %s done: %s",
                    request["id"],
                    counts_text(result),
                    extra={
                        "resync": request["id"],
                        "cycle_id": report.cycle_id,
                        **counts_fields(result),
                    },
                )
        if only is not None:
            return ran
    return ran


def run(engine: Engine, obj: str, selector: Mapping[str, Any]) -> CycleReport:
    """Read the selected records of ``obj`` again from both systems and merge them."""
    if obj not in engine.rules:
        raise ValueError(f"{obj!r} is not a synced object")
    scan = bool(selector.get("all") or selector.get("since") or selector.get("until"))
    named = [] if scan else _named(engine.store, obj, selector)
    batches: dict[tuple[str, str], list[Record]] = {}
    for role, connector in ((MARKETING, engine.marketing), (CRM, engine.crm)):
        found = _scan(obj, selector, connector) if scan else _fetch(role, connector, named)
        for record in found:
            batches.setdefault((connector.system, record.ref.kind), []).append(record)
    return engine.remerge(obj, list(batches.values()))


def _scan(obj: str, selector: Mapping[str, Any], connector: Connector) -> Iterator[Record]:
    """Every record of ``obj`` the system changed in the selector's range."""
    since = datetime.fromisoformat(selector["since"]) if selector.get("since") else None
    until = datetime.fromisoformat(selector["until"]) if selector.get("until") else None
    for kind in connector.kinds(obj):
        for page in connector.changes(kind, Cursor(since)):
            yield from (r for r in page.records if until is None or r.modified_at < until)


def _named(store: Store, obj: str, selector: Mapping[str, Any]) -> list[LinkState | RecordRef]:
    """The links a selector of emails or ids names, and the unlinked records it names.

    A linked record is found by either side's id (both sides are read); a record not
    linked yet is read where it lives when named ``system:kind:id``.
    """
    emails = [k for k in (email_key(e) for e in selector.get("emails") or ()) if k]
    named: list[LinkState | RecordRef] = list(store.links_by_email(obj, emails).values())
    with store.engine.connect() as connection:  # held back by the gate: asked again
        named.extend(gated.held_by_email(connection, obj, emails))
        if selector.get("held"):  # everyone it holds: after the gate changed
            named.extend(gated.held_refs(connection, obj))
    for raw in selector.get("ids") or ():
        text = str(raw)
        parts = text.split(":", 2) if text.count(":") == 2 else None
        wanted = parts[2] if parts else text
        linked = [link for side in (MARKETING, CRM) if (link := store.find_link(obj, side, wanted))]
        named.extend(linked)
        if not linked and parts:
            named.append(RecordRef(parts[0], parts[1], wanted))
    return named


def _fetch(role: str, connector: Connector, named: Sequence[LinkState | RecordRef]) -> list[Record]:
    """One side's records among ``named``, read by id."""
    refs: list[RecordRef] = []
    for item in named:
        if isinstance(item, RecordRef):
            if item.system == connector.system:
                refs.append(item)
            continue
        side = item.marketing if role == MARKETING else item.crm
        if side is not None:
            refs.append(RecordRef(connector.system, side.kind, side.id))
    refs = list(dict.fromkeys(refs))
    return connector.fetch(refs) if refs else []


def _claim(store: Store, only: int | None) -> dict[str, Any] | None:
    with store.engine.begin() as connection:
        query = select(resync_requests).where(resync_requests.c.state == QUEUED)
        if only is not None:
            query = query.where(resync_requests.c.id == only)
        row = connection.execute(query.order_by(resync_requests.c.id).limit(1)).first()
        if row is None:
            return None
        claimed = connection.execute(
            update(resync_requests)
            .where(resync_requests.c.id == row.id, resync_requests.c.state == QUEUED)
            .values(state=RUNNING, started_at=datetime.now(UTC))
        )
        if not claimed.rowcount:
            return None
    return {"id": row.id, "object": row.object, "selector": orjson.loads(row.selector)}


def _requeue(store: Store, request_id: int) -> None:
    """Put a claimed request back in the queue (best effort: the store may be down)."""
    with contextlib.suppress(SQLAlchemyError), store.engine.begin() as connection:
        connection.execute(
            update(resync_requests)
            .where(resync_requests.c.id == request_id, resync_requests.c.state == RUNNING)
            .values(state=QUEUED, started_at=None)
        )


def _finish(store: Store, request_id: int, state: str, result: Mapping[str, Any]) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            update(resync_requests)
            .where(resync_requests.c.id == request_id)
            .values(
                state=state,
                finished_at=datetime.now(UTC),
                result=orjson.dumps(result, default=str).decode(),
            )
        )


def describe(selector: Mapping[str, Any]) -> str:
    """A selector in words, for lists and logs."""
    parts: list[str] = []
    if selector.get("emails"):
        parts.append("emails " + ", ".join(selector["emails"]))
    if selector.get("ids"):
        parts.append("ids " + ", ".join(map(str, selector["ids"])))
    if selector.get("since") or selector.get("until"):
        parts.append(f"changed {selector.get('since') or '…'} to {selector.get('until') or 'now'}")
    if selector.get("held"):
        parts.append("everyone the gate holds back")
    if selector.get("all"):
        parts.append("everything")
    return "; ".join(parts)


def conflict(selector: Mapping[str, Any]) -> str | None:
    """Why ``selector`` mixes selectors that cannot go together (None: it does not)."""
    named = [
        o
        for o, k in (("--email", "emails"), ("--id", "ids"), ("--held", "held"))
        if selector.get(k)
    ]
    ranged = [o for o, k in (("--since", "since"), ("--until", "until")) if selector.get(k)]
    if named and (ranged or selector.get("all")):
        scan = " and ".join(ranged + (["--all"] if selector.get("all") else []))
        return (
            f"{' and '.join(named)} name records, {scan} select every record by date:"
            " give one or the other (run two resyncs for both)"
        )
    if selector.get("all") and ranged:
        return f"--all reads every record and {' and '.join(ranged)} a range of them: give one"
    since, until = selector.get("since"), selector.get("until")
    if since and until and datetime.fromisoformat(since) >= datetime.fromisoformat(until):
        return f"--since {since} is not before --until {until}: that range holds no change"
    return None


def unmatched(
    store: Store, obj: str, selector: Mapping[str, Any], systems: Sequence[str]
) -> list[str]:
    """The emails and ids of ``selector`` that name nothing: no link of ``obj`` with that
    email or id, and (for ``system:kind:id``) no such configured system."""
    missing: list[str] = []
    if selector.get("held"):
        with store.engine.connect() as connection:
            if not gated.held_refs(connection, obj):
                missing.append(f"the gate holds no {obj} back")
    for email in selector.get("emails") or ():
        key = email_key(email)
        if not key or not (store.links_by_email(obj, [key]) or _held(store, obj, key)):
            missing.append(f"no {obj} linked with email {email}")
    for raw in selector.get("ids") or ():
        text = str(raw)
        parts = text.split(":", 2) if text.count(":") == 2 else None
        if parts is not None:
            if parts[0] not in systems:
                missing.append(f"{text}: no system {parts[0]!r} (one of {', '.join(systems)})")
            continue  # a record not linked yet: read where it lives
        if not any(store.find_link(obj, side, text) for side in (MARKETING, CRM)):
            missing.append(
                f"no {obj} linked with id {text} (a record not linked yet: name it system:kind:id)"
            )
    return missing


def _held(store: Store, obj: str, key: str) -> bool:
    with store.engine.connect() as connection:
        return bool(gated.held_by_email(connection, obj, [key]))


def is_empty(selector: Mapping[str, Sequence[Any] | Any]) -> bool:
    return not any(selector.get(k) for k in ("emails", "ids", "held", "since", "until", "all"))
